"""The guest Conditional Access plan, pure: what each state of a managed policy plans, the evidence, warnings."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from config.desired_state import GuestConditionalAccess
from lifecycle.drift.ca_policies import (
    LEGACY,
    MFA,
    REPORT_ONLY,
    CaSnapshot,
    Evidence,
    applier,
    approval_warnings,
    desired_body,
    evidence_from,
    plan,
    read_evidence,
    refusals,
)
from lifecycle.errors import PermissionDeniedError
from lifecycle.plans import Action, Change

WANTED = GuestConditionalAccess.model_validate(
    {
        "breakGlassGroupIds": ["0B1F7A2E-5C3D-4E8F-9A6B-7C8D9E0F1A2B"],
        "requireMfa": {"displayName": "MFA", "enabled": True},
    }
)


def _existing(state: str, key: str = MFA) -> dict:
    policy = WANTED.require_mfa if key == MFA else WANTED.block_legacy_authentication
    assert policy is not None
    return {"id": f"id-{key}", "state": state, **desired_body(key, policy, WANTED)}


def _actions(policies: list[dict], approved: frozenset[str] = frozenset(), evidence=None) -> dict[str, Action]:
    snapshot = CaSnapshot(policies, evidence or {})
    return {a.key: a for a in plan(WANTED, snapshot, approved)}


def test_the_break_glass_groups_are_excluded_and_guests_on_all_apps_are_covered():
    body = desired_body(MFA, WANTED.require_mfa, WANTED)
    users = body["conditions"]["users"]
    assert users["excludeGroups"] == ["0b1f7a2e-5c3d-4e8f-9a6b-7c8d9e0f1a2b"]
    assert (
        users["includeGuestsOrExternalUsers"]["guestOrExternalUserTypes"]
        == "b2bCollaborationGuest,b2bCollaborationMember"
    )
    assert body["grantControls"]["builtInControls"] == ["mfa"]
    legacy = desired_body(LEGACY, WANTED.block_legacy_authentication, WANTED)
    assert legacy["conditions"]["clientAppTypes"] == ["exchangeActiveSync", "other"]
    assert legacy["grantControls"]["builtInControls"] == ["block"]


def test_a_missing_policy_is_created_report_only_even_when_the_file_wants_it_on():
    action = _actions([])[MFA]
    assert action.change is Change.CREATE and action.payload["body"]["state"] == REPORT_ONLY
    assert "--approve-enable guest-mfa" in action.reason


@pytest.mark.parametrize(
    ("state", "approved", "change", "sent"),
    [
        (REPORT_ONLY, False, Change.REPORT, None),
        (REPORT_ONLY, True, Change.UPDATE, "enabled"),
        ("enabled", False, Change.NONE, None),
        ("disabled", True, Change.UPDATE, REPORT_ONLY),
    ],
)
def test_what_each_state_plans_for_a_policy_the_file_wants_on(state, approved, change, sent):
    action = _actions([_existing(state)], frozenset({MFA}) if approved else frozenset())[MFA]
    assert action.change is change
    assert action.payload.get("body", {}).get("state") == sent


def test_an_enabled_policy_the_file_keeps_report_only_goes_back_to_report_only():
    action = _actions([_existing("enabled", LEGACY)])[LEGACY]
    assert action.change is Change.UPDATE and action.payload["body"] == {"state": REPORT_ONLY}


def test_the_evidence_counts_would_be_blocks_by_guest_and_says_what_graph_did_not_spell_out():
    applied = lambda result: {"appliedConditionalAccessPolicies": [{"id": "p", "result": result}]}  # noqa: E731
    sign_ins = [
        {"userId": "a", **applied("reportOnlyFailure")},
        {"userId": "a", **applied("reportOnlyFailure")},
        {"userId": "b", **applied("reportOnlyInterrupted")},
        {"userId": "c", **applied("unknownFutureValue")},
        {"userId": "d", "appliedConditionalAccessPolicies": [{"id": "other", "result": "reportOnlyFailure"}]},
    ]
    evidence = evidence_from(sign_ins, "p", 7)
    assert (evidence.blocked_sign_ins, evidence.blocked_users, evidence.prompted_sign_ins) == (2, 1, 1)
    assert "1 result(s) were not spelled out" in evidence.sentence()


def test_evidence_that_cannot_be_read_is_said_plainly_and_does_not_stop_the_plan():
    class Refusing:
        async def sign_ins_for_policy(self, policy_id, since):
            raise PermissionDeniedError("denied", status=403, code="Authorization_RequestDenied")

    snapshot = asyncio.run(read_evidence(WANTED, [_existing(REPORT_ONLY)], Refusing(), datetime.now(UTC)))
    evidence = snapshot.evidence["id-guest-mfa"]
    assert evidence.unreadable and "403" in evidence.unreadable
    assert "cannot tell" in _actions([_existing(REPORT_ONLY)], evidence={"id-guest-mfa": evidence})[MFA].reason


def test_the_guardrails_want_a_break_glass_exclusion_and_a_readable_conditional_access():
    bare = WANTED.model_copy(update={"break_glass_group_ids": ()})
    assert [r.rule for r in refusals(bare, CaSnapshot([]))] == ["ca-break-glass-missing"]
    assert [r.rule for r in refusals(WANTED, CaSnapshot(None))] == ["ca-unreadable"]


def test_an_approval_the_desired_state_does_not_back_is_warned_about():
    warned = approval_warnings(WANTED, frozenset({LEGACY, "guest-typo"}))
    assert any("keeps it report-only" in w for w in warned) and any("no such managed policy" in w for w in warned)


def test_the_applier_creates_and_updates_and_refuses_anything_else():
    sent = []

    class Writes:
        async def create_conditional_access_policy(self, body):
            sent.append(("create", body))
            return body

        async def update_conditional_access_policy(self, policy_id, body):
            sent.append(("update", policy_id, body))

    apply = applier(Writes())
    asyncio.run(apply(_actions([_existing(REPORT_ONLY)], frozenset({MFA}))[MFA]))
    assert sent == [("update", "id-guest-mfa", {"state": "enabled"})]
    with pytest.raises(ValueError):
        asyncio.run(apply(Action("x", MFA, Change.DELETE, "no")))
    assert Evidence(7).sentence().startswith("in the last 7 days")
