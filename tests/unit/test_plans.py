"""The shared plan format: exit codes, markdown and JSON shapes."""

from __future__ import annotations

from lifecycle.plans import EXIT_CLEAN, EXIT_DRIFT, EXIT_ERROR, Action, Change, FieldDiff, Plan, Refusal


def _update() -> Action:
    diff = FieldDiff("inboundTrust.isMfaAccepted", True, False)
    return Action("crossTenantAccessPolicy/partners", "fabrikam", Change.UPDATE, "MFA trust differs", (diff,))


def test_a_plan_without_drift_exits_clean_and_says_so():
    """Only NONE actions: exit 0 and a 'no drift' row."""
    plan = Plan("policy-drift", [Action("authorizationPolicy", "tenant", Change.NONE, "matches")])
    assert plan.exit_code == EXIT_CLEAN and "no drift" in plan.to_markdown()


def test_drift_exits_two_and_lists_each_field():
    """A change exits 2 and its field, desired and actual values appear in the markdown."""
    plan = Plan("policy-drift", [_update()])
    text = plan.to_markdown()
    assert plan.exit_code == EXIT_DRIFT
    assert "inboundTrust.isMfaAccepted" in text and "| true | false |" in text


def test_a_guardrail_refusal_exits_one_whatever_else_the_plan_holds():
    """A refused desired state is an error for pipelines, even with drift present."""
    plan = Plan("policy-drift", [_update()], refusals=[Refusal("mfa-on-default", "MFA trust on the default policy")])
    assert plan.exit_code == EXIT_ERROR
    assert plan.as_dict()["refusals"] == [{"rule": "mfa-on-default", "message": "MFA trust on the default policy"}]


def test_the_json_form_names_the_change_as_a_string():
    """as_dict is JSON-ready: the change is its value, diffs are plain mappings."""
    [action] = Plan("governance", [_update()]).as_dict()["actions"]
    assert action["change"] == "update" and action["diffs"][0]["field"] == "inboundTrust.isMfaAccepted"
