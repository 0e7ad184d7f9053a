"""Native guest lifecycle policies, piece by piece: the file's guardrails, the scope, the shadow pass, the plan of one
policy, the comparison with Microsoft's report and the applier, against the in-memory fakes."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta

import pytest
from pydantic import ValidationError

from adapters.memory import MemoryDriftReports, MemoryGuestLedger
from config.desired_state import DeletionBrake, load_desired_state
from config.lifecycle_policies import GuestLifecyclePolicies, NativePolicy
from config.settings import SAMPLE_DESIRED_STATE
from graph.permissions import GUEST_LIFECYCLE_POLICIES, Deployment, features_of, granted, required_names
from lifecycle import report
from lifecycle.drift.native_bodies import desired_body
from lifecycle.drift.native_compare import compare
from lifecycle.drift.native_entry import exposure
from lifecycle.drift.native_policies import RESOURCE, RULES, applier, plan_policy
from lifecycle.drift.native_ports import GUEST_POLICY_TYPE as GUEST_TYPE
from lifecycle.drift.native_priority import applier as priority_applier
from lifecycle.drift.native_priority import current_order, evaluation_keys, plan_priority
from lifecycle.drift.native_scope import PolicyScope, resolve_scope
from lifecycle.drift.native_shadow import PolicyShadow, Shadow, evaluate
from lifecycle.drift.report import DriftReport, DriftRun
from lifecycle.errors import PermissionDeniedError
from lifecycle.models import SignInActivity, SponsorRef
from lifecycle.plans import Action, Change
from lifecycle.safety import SafetyGate
from lifecycle.sweep.ports import SignInActivityUnavailable
from tests.builders import NOW, memory_services
from tests.fakes import FakeDirectory
from tests.fakes.lifecycle_policies import FakeGuestLifecyclePolicies, FakeScopeGroups

DESIRED = load_desired_state(SAMPLE_DESIRED_STATE)
PROTECTED = DESIRED.exclusions.protected_group_id
BRAKE = DeletionBrake(max_count=50, max_percent=100)


def _policy(**fields) -> NativePolicy:
    base = {
        "displayName": "Guests: idle",
        "enabled": True,
        "owner": "native",
        "rules": [{"type": "inactivity", "days": 90}],
        "action": {"kind": "disableOnly"},
    }
    return NativePolicy.model_validate({**base, **fields})


def _run(coro):
    return asyncio.run(coro)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"action": {"kind": "deleteOnly"}}, "deleteOnly action needs gracePeriodDays"),
        ({"excludedGroups": [f"group {n}" for n in range(11)]}, "at most 10"),
        ({"rules": [{"type": "inactivity", "days": 9}, {"type": "inactivity", "days": 90}]}, "each rule type once"),
        ({"rules": [{"type": "invitationRedemption", "days": 31}]}, "1 to 30 days"),
        ({"rules": [{"type": "sponsorPresence"}]}, "minimumSponsors"),
        ({"action": {"kind": "disableThenDelete"}}, "deleteAfterDays is required"),
    ],
)
def test_the_file_refuses_what_microsoft_or_the_guardrails_refuse(fields, message):
    with pytest.raises(ValidationError, match=message):
        _policy(**fields)


def test_more_than_ten_policies_or_two_with_one_name_are_refused():
    one = _policy().model_dump(by_alias=True)
    with pytest.raises(ValidationError, match="at most 10"):
        GuestLifecyclePolicies.model_validate({"policies": {f"p{n}": one for n in range(11)}})
    with pytest.raises(ValidationError, match="unique"):
        GuestLifecyclePolicies.model_validate({"policies": {"a": one, "b": one}})


def test_the_protected_group_is_always_excluded_and_a_name_that_finds_no_group_is_refused():
    groups = FakeScopeGroups()
    partners = groups.add("Partner admins")
    scope = _run(resolve_scope("idle", _policy(excludedGroups=["Partner admins", "Nobody"]), PROTECTED, groups))
    assert scope.group_ids == (partners, PROTECTED)
    assert [r.rule for r in scope.refusals] == ["lifecycle-group-unresolved"]
    body = desired_body(_policy(), scope)
    assert [g["id"] for g in body["scope"]["excludedGroups"]] == [partners, PROTECTED]


def test_ten_groups_of_the_file_plus_the_protected_group_are_one_too_many():
    groups = [f"0000000{n}-0000-4000-8000-000000000000" for n in range(10)]
    scope = _run(resolve_scope("idle", _policy(excludedGroups=groups), PROTECTED, FakeScopeGroups()))
    assert [r.rule for r in scope.refusals] == ["lifecycle-too-many-excluded-groups"]


def _tenant():
    directory = FakeDirectory()
    idle, active, nested = (directory.add_guest(f"{n}@woodgrovebank.com") for n in ("idle", "active", "nested"))
    for guest, days in ((idle, 200), (active, 1), (nested, 200)):
        seen = SignInActivity(last_sign_in=NOW - timedelta(days=days))
        directory.users[guest.id] = replace(guest, sign_in_activity=seen, sponsors=(SponsorRef("s", False, True),))
    groups = FakeScopeGroups()
    inner = groups.add("Inner", users={nested.id})
    outer = groups.add("Outer", groups={inner})
    return directory, groups, outer, {"idle": idle.id, "active": active.id, "nested": nested.id}


def _shadow(directory, policy, scope, desired=DESIRED, protected=None):
    gate = SafetyGate(desired, protected if protected is not None else directory)
    found = evaluate(desired, {"idle": policy}, {"idle": scope}, ("idle",), directory, MemoryGuestLedger(), gate, NOW)
    return _run(found)


def test_a_guest_reached_only_through_a_nested_group_is_governed_natively_and_flagged():
    directory, groups, outer, ids = _tenant()
    policy = _policy(excludedGroups=[outer])
    scope = _run(resolve_scope("idle", policy, None, groups))
    assert scope.nested_by_group == {outer: frozenset({ids["nested"]})}
    shadow = _shadow(directory, policy, scope).policies["idle"]
    assert shadow.would_act == {ids["idle"], ids["nested"]} and shadow.nested_excluded == 1


def test_a_protected_guest_the_native_engine_would_reach_blocks_the_switch_whatever_the_approval():
    directory, groups, _, ids = _tenant()
    inner = next(g for g, name in groups.names.items() if name == "Inner")
    groups.add("Guest lifecycle exclusions", groups={inner}, group_id=PROTECTED)  # protected through a nested group
    policy = _policy()
    scope = _run(resolve_scope("idle", policy, PROTECTED, groups))
    assert scope.direct == frozenset() and scope.protected == {ids["nested"]}  # native sees nobody to leave out
    shadow = _shadow(directory, policy, scope).policies["idle"]
    assert shadow.protected == ["nested@woodgrovebank.com"]
    existing = {"id": "p1", "isEnabled": False, **desired_body(policy, scope)}
    action = plan_policy("idle", policy, scope, existing, shadow, BRAKE, 3, approved=True)[0]
    assert action.change is Change.REPORT and "the product protects" in action.reason


def test_a_rule_that_cannot_be_read_is_counted_as_not_judged_never_guessed():
    directory, _, _, ids = _tenant()
    directory.users[ids["idle"]] = replace(directory.users[ids["idle"]], sponsors=None)
    policy = _policy(
        rules=[{"type": "sponsorPresence", "minimumSponsors": 2}, {"type": "accessPackageAssignmentRequired"}]
    )
    shadow = _shadow(directory, policy, PolicyScope()).policies["idle"]
    assert shadow.not_judged == {"sponsorPresence": 1, "accessPackageAssignmentRequired": 3}
    assert shadow.would_act == {ids["active"], ids["nested"]}  # one sponsor each, two wanted


def test_without_sign_in_activity_the_inactivity_rule_is_not_judged():
    directory, _, _, _ = _tenant()

    class NoLicence:
        async def get_user(self, user_id):
            return await directory.get_user(user_id)

        async def list_guests(self, select, page_size=999):
            if "signInActivity" in select:
                raise SignInActivityUnavailable("no P1/P2")
            async for page in directory.list_guests(select, page_size):
                yield page

    gate = SafetyGate(DESIRED, directory)
    policy, scope, on = _policy(), PolicyScope(), ("idle",)
    found = _run(evaluate(DESIRED, {"idle": policy}, {"idle": scope}, on, NoLicence(), MemoryGuestLedger(), gate, NOW))
    assert found.sign_in_activity is False and found.policies["idle"].not_judged == {"inactivity": 3}
    assert found.policies["idle"].would_act == set()


def test_no_guest_pass_is_made_while_no_policy_is_or_will_be_on():
    class Unread:
        async def get_user(self, user_id):
            raise AssertionError("read")

        async def list_guests(self, select, page_size=999):
            raise AssertionError("the tenant was enumerated")
            yield []

    gate = SafetyGate(DESIRED, None)
    policy, scope = _policy(enabled=False), PolicyScope()
    found = _run(evaluate(DESIRED, {"idle": policy}, {"idle": scope}, (), Unread(), MemoryGuestLedger(), gate, NOW))
    assert found.total == 0 and found.policies["idle"].evaluated is False
    assert found.policies["idle"].sentence().startswith("not evaluated")


def _existing(policy: NativePolicy, scope: PolicyScope, enabled: bool) -> dict:
    body = desired_body(policy, scope)
    for n, rule in enumerate(body["rules"]):
        rule["id"] = f"r{n}"
    return {"id": "p1", "isEnabled": enabled, **body}


def test_each_differing_field_and_rule_is_planned_and_only_they_are_sent():
    policy, scope = _policy(gracePeriodDays=14), PolicyScope()
    existing = _existing(policy, scope, enabled=True)
    existing["gracePeriodInDays"] = 7
    existing["rules"][0]["lastActivityThresholdInDays"] = 30
    existing["rules"].append({"@odata.type": "#microsoft.graph.identityGovernance.sponsorPresenceRule", "id": "x"})
    actions = plan_policy("idle", policy, scope, existing, PolicyShadow("idle", "disableOnly"), BRAKE, 3, False)
    by = {(a.resource, a.key): a for a in actions}
    policy_update = by[(RESOURCE, "idle")]
    assert policy_update.change is Change.UPDATE and policy_update.payload["body"] == {"gracePeriodInDays": 14}
    rule_update = by[(RULES, "idle/inactivity")]
    assert rule_update.change is Change.UPDATE and rule_update.payload["ruleId"] == "r0"
    assert rule_update.payload["body"]["lastActivityThresholdInDays"] == 90
    assert by[(RULES, "idle/sponsorPresence")].change is Change.REPORT


def test_a_grace_period_the_file_leaves_out_is_the_services_default_not_drift():
    """Graph (tenantsim: the admin center's 7 days) fills in a grace period the body left out; the plan leaves it be
    instead of PATCHing it to null on every run."""
    policy, scope = _policy(), PolicyScope()
    existing = _existing(policy, scope, enabled=True)
    existing["gracePeriodInDays"] = 7
    actions = plan_policy("idle", policy, scope, existing, PolicyShadow("idle", "disableOnly"), BRAKE, 3, False)
    assert [(a.key, a.change) for a in actions] == [("idle", Change.NONE)]


def test_an_enabled_policy_the_file_wants_off_is_switched_off():
    policy, scope = _policy(enabled=False), PolicyScope()
    shadow = PolicyShadow("idle", "disableOnly")
    action = plan_policy("idle", policy, scope, _existing(policy, scope, True), shadow, BRAKE, 3, False)[0]
    assert action.change is Change.UPDATE and action.payload["body"] == {"isEnabled": False}


def test_a_first_evaluation_within_the_brake_switches_the_policy_on_without_approval():
    policy, scope = _policy(), PolicyScope()
    shadow = PolicyShadow("idle", "disableOnly", governed=100, would_act={"a"})
    action = plan_policy("idle", policy, scope, _existing(policy, scope, False), shadow, DeletionBrake(), 100, False)[0]
    assert action.change is Change.UPDATE and action.payload["body"] == {"isEnabled": True}


def test_microsofts_report_is_compared_both_ways_and_an_ineffective_policy_is_flagged():
    port = FakeGuestLifecyclePolicies()
    created = _run(
        port.create_guest_policy({"@odata.type": "#microsoft.graph.identityGovernance.guestLifecyclePolicy"})
    )
    product = PolicyShadow("idle", "disableOnly", would_act={"a", "b"}, names={"b": "bob@x.com"})
    assert _run(compare("idle", created["id"], product, port)).action().change is Change.NONE  # not processed yet
    port.publish_report(created["id"], {"a": "nonCompliant", "b": "compliant", "c": "nonCompliant", "d": "compliant"})
    port.subjects[created["id"]].append({"subject": {"id": "e"}, "relationship": "inScopeButIneffective"})

    async def name_of(object_id: str) -> str:
        return f"{object_id}@fabrikam.com"

    found = _run(compare("idle", created["id"], product, port, name_of))
    assert (found.product_only, found.native_only, found.agreed) == (["bob@x.com"], ["c@fabrikam.com"], 2)
    assert found.action().change is Change.REPORT
    assert "never evaluates for 1 guest(s)" in found.warnings()[0]


def test_the_applier_creates_patches_the_policy_and_patches_a_rule_by_id():
    port = FakeGuestLifecyclePolicies()
    apply = applier(port)
    policy, scope = _policy(), PolicyScope()
    _run(
        apply(
            Action(
                RESOURCE, "idle", Change.CREATE, "", (), {"body": {**desired_body(policy, scope), "isEnabled": False}}
            )
        )
    )
    stored = port.named("Guests: idle")
    rule_id = stored["rules"][0]["id"]
    _run(apply(Action(RESOURCE, "idle", Change.UPDATE, "", (), {"id": stored["id"], "body": {"isEnabled": True}})))
    body = {"@odata.type": "#microsoft.graph.identityGovernance.inactivityRule", "lastActivityThresholdInDays": 120}
    _run(
        apply(
            Action(
                RULES,
                "idle/inactivity",
                Change.UPDATE,
                "",
                (),
                {"policyId": stored["id"], "ruleId": rule_id, "body": body},
            )
        )
    )
    stored = port.named("Guests: idle")
    assert stored["isEnabled"] is True and stored["versionNumber"] == 2
    assert stored["rules"][0]["lastActivityThresholdInDays"] == 120


def test_the_guest_report_shows_the_licence_exposure_of_the_latest_drift_plan():
    section = GuestLifecyclePolicies.model_validate(
        {"pricePerGovernedGuest": 0.5, "currency": "EUR", "policies": {"idle": _policy().model_dump(by_alias=True)}}
    )
    reports = MemoryDriftReports()
    services = memory_services(
        desired=DESIRED.model_copy(update={"guest_lifecycle_policies": section}),
        tenant_policies=object(),
        drift_reports=reports,
    )
    run = DriftRun(job="policy-drift", run_id="r1", at=NOW, evidence=[exposure(section, Shadow(governed=41))])
    _run(reports.save(DriftReport.of(run)))
    posture = _run(report.collect(services))
    assert posture.licence is not None and posture.licence["monthly"] == 20.5
    assert "## Licence exposure" in report.to_markdown(posture)
    assert "41 guest(s) governed by native guest lifecycle policies x 0.5 EUR = at most 20.5 EUR" in report.to_html(
        posture
    )


def _section(**policies: dict) -> GuestLifecyclePolicies:
    base = _policy().model_dump(by_alias=True, exclude_none=True)
    return GuestLifecyclePolicies.model_validate({"policies": {k: {**base, **v} for k, v in policies.items()}})


def test_two_policies_with_one_priority_are_refused():
    with pytest.raises(ValidationError, match="each priority"):
        _section(a={"displayName": "A", "priority": 1}, b={"displayName": "B", "priority": 1})


def test_the_files_priorities_take_the_top_of_the_order_and_the_rest_keep_their_places():
    port = FakeGuestLifecyclePolicies()
    for name in ("Theirs", "A", "B"):
        _run(port.create_guest_policy({"@odata.type": GUEST_TYPE, "displayName": name}))
    wanted = _section(a={"displayName": "A", "priority": 2}, b={"displayName": "B", "priority": 1})
    tenant = _run(port.list_guest_policies())
    existing = {"a": port.named("A"), "b": port.named("B")}
    config = _run(port.get_priority())
    action = plan_priority(wanted, existing, tenant, config)
    assert action is not None and action.change is Change.UPDATE
    assert action.diffs[0].desired == ["B", "A", "Theirs"] and action.diffs[0].actual == ["Theirs", "A", "B"]
    _run(priority_applier(port)(action))
    assert plan_priority(wanted, existing, tenant, _run(port.get_priority())).change is Change.NONE
    assert evaluation_keys(wanted, existing, current_order(_run(port.get_priority()), tenant)) == ["b", "a"]


def test_a_guest_in_the_scope_of_two_policies_is_governed_by_the_higher_one_only():
    directory, _, _, ids = _tenant()
    strict, lenient = (
        _policy(displayName="Strict"),
        _policy(displayName="Lenient", rules=[{"type": "inactivity", "days": 300}]),
    )
    gate = SafetyGate(DESIRED, directory)
    scopes = {"strict": PolicyScope(), "lenient": PolicyScope()}
    policies = {"lenient": lenient, "strict": strict}
    found = _run(evaluate(DESIRED, policies, scopes, ("strict", "lenient"), directory, MemoryGuestLedger(), gate, NOW))
    assert found.policies["strict"].governed == 3 and found.policies["strict"].would_act == {ids["idle"], ids["nested"]}
    assert found.policies["lenient"].governed == 0 and found.policies["lenient"].ineffective == 3
    assert (found.governed, found.several) == (3, 3)


def test_excluded_groups_whose_members_cannot_be_read_hold_the_switch_and_say_why():
    class Refusing(FakeScopeGroups):
        async def direct_members(self, group_id):
            raise PermissionDeniedError("denied", status=403, code="Authorization_RequestDenied")

    policy = _policy()
    refused = _run(resolve_scope("idle", policy, PROTECTED, Refusing()))
    absent = _run(resolve_scope("idle", policy, PROTECTED, None))
    assert "could not be read" in (refused.unreadable or "") and "no reads" in (absent.unreadable or "")
    existing = {"id": "p1", "isEnabled": False, **desired_body(policy, refused)}
    shadow = PolicyShadow("idle", "disableOnly", governed=3)
    action = plan_policy("idle", policy, refused, existing, shadow, BRAKE, 3, approved=True)[0]
    assert action.change is Change.REPORT and "cannot be told" in action.reason


def test_a_desired_state_with_lifecycle_policies_is_granted_their_permissions_and_only_then():
    """The policies' read-write permission (its read substitute while drift plans) and GroupMember.Read.All for
    the excluded groups' names and direct members: only a desired state that declares the section holds them."""
    assert GUEST_LIFECYCLE_POLICIES not in features_of(DESIRED)
    section = GuestLifecyclePolicies.model_validate({"policies": {"idle": _policy().model_dump(by_alias=True)}})
    declared = DESIRED.model_copy(update={"guest_lifecycle_policies": section})
    assert features_of(declared) == {GUEST_LIFECYCLE_POLICIES}
    assert {"LifecyclePolicies-Guests.ReadWrite.All", "GroupMember.Read.All"} <= granted(
        redemption_reset=False, features=features_of(declared)
    )
    assert not {"LifecyclePolicies-Guests.ReadWrite.All", "GroupMember.Read.All"} & granted(redemption_reset=False)
    planning = required_names(Deployment(features=features_of(declared)))
    assert {"LifecyclePolicies-Guests.Read.All", "GroupMember.Read.All"} <= planning
    assert "LifecyclePolicies-Guests.ReadWrite.All" not in planning
