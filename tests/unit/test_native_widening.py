"""A guest lifecycle policy already on is not widened (an excluded group dropped, a harsher action, a rule that acts
sooner) past the safety gate's findings and the deletion brake without an operator's approval; narrowing is written."""

from __future__ import annotations

from config.desired_state import DeletionBrake
from config.lifecycle_policies import NativePolicy
from lifecycle.drift.native_bodies import desired_body
from lifecycle.drift.native_policies import RESOURCE, RULES, plan_policy
from lifecycle.drift.native_scope import PolicyScope
from lifecycle.drift.native_shadow import PolicyShadow
from lifecycle.plans import Change

KEEP_OUT = "11111111-1111-1111-1111-111111111111"
BRAKE = DeletionBrake(max_count=2, max_percent=100)


def _policy(**fields) -> NativePolicy:
    base = {
        "displayName": "Guests: idle",
        "enabled": True,
        "owner": "native",
        "rules": [{"type": "inactivity", "days": 180}],
        "action": {"kind": "disableOnly"},
    }
    return NativePolicy.model_validate({**base, **fields})


def _on(policy: NativePolicy, scope: PolicyScope) -> dict:
    body = desired_body(policy, scope)
    for n, rule in enumerate(body["rules"]):
        rule["id"] = f"r{n}"
    return {"id": "p1", "isEnabled": True, **body}


def _shadow(would_act: int, protected: tuple[str, ...] = ()) -> PolicyShadow:
    found = PolicyShadow("idle", "disableOnly", governed=10, would_act={f"g{n}" for n in range(would_act)})
    found.protected = list(protected)
    return found


def _by(actions):
    return {(a.resource, a.key): a for a in actions}


def test_dropping_an_excluded_group_of_a_policy_that_is_on_is_held_by_the_brake_until_approved():
    policy = _policy()
    existing = _on(policy, PolicyScope(group_ids=(KEEP_OUT,)))
    held = _by(plan_policy("idle", policy, PolicyScope(), existing, _shadow(5), BRAKE, 10, approved=False))
    action = held[(RESOURCE, "idle")]
    assert action.change is Change.REPORT and "body" not in action.payload
    assert f"excluded group(s) {KEEP_OUT.lower()} dropped" in action.reason
    assert "--approve-enable lifecycle-idle" in action.reason
    approved = _by(plan_policy("idle", policy, PolicyScope(), existing, _shadow(5), BRAKE, 10, approved=True))
    written = approved[(RESOURCE, "idle")]
    assert written.change is Change.UPDATE and written.payload["body"] == {"scope": None}
    assert "approved by an operator" in written.reason


def test_a_harsher_action_on_a_policy_that_is_on_is_held_and_its_other_changes_with_it():
    before = _policy(description="old")
    after = _policy(description="new", action={"kind": "deleteOnly"}, gracePeriodDays=7)
    existing = _on(before, PolicyScope())
    existing["gracePeriodInDays"] = 7
    action = plan_policy("idle", after, PolicyScope(), existing, _shadow(5), BRAKE, 10, approved=False)[0]
    assert action.change is Change.REPORT
    assert "its action becomes deleteOnlyEnforcementAction (was disableOnlyEnforcementAction)" in action.reason


def test_a_rule_that_acts_sooner_on_a_policy_that_is_on_is_shown_not_written_past_the_brake():
    policy = _policy(rules=[{"type": "inactivity", "days": 30}])
    existing = _on(_policy(), PolicyScope())
    actions = _by(plan_policy("idle", policy, PolicyScope(), existing, _shadow(5), BRAKE, 10, approved=False))
    rule = actions[(RULES, "idle/inactivity")]
    assert rule.change is Change.REPORT and "lastActivityThresholdInDays becomes 30 (was 180)" in rule.reason


def test_a_widening_that_reaches_a_guest_the_product_protects_is_held_whatever_the_approval():
    policy = _policy()
    existing = _on(policy, PolicyScope(group_ids=(KEEP_OUT,)))
    shadow = _shadow(1, protected=("vip@contoso.com",))
    action = plan_policy("idle", policy, PolicyScope(), existing, shadow, BRAKE, 10, approved=True)[0]
    assert action.change is Change.REPORT and "vip@contoso.com" in action.reason


def test_a_widening_within_the_brake_is_written_and_a_narrowing_never_asks():
    policy = _policy(rules=[{"type": "inactivity", "days": 90}])
    existing = _on(_policy(), PolicyScope())
    rule = _by(plan_policy("idle", policy, PolicyScope(), existing, _shadow(1), BRAKE, 10, approved=False))[
        (RULES, "idle/inactivity")
    ]
    assert rule.change is Change.UPDATE and rule.payload["body"]["lastActivityThresholdInDays"] == 90
    narrower = _policy(rules=[{"type": "inactivity", "days": 365}])
    rule = _by(plan_policy("idle", narrower, PolicyScope(), existing, _shadow(9), BRAKE, 10, approved=False))[
        (RULES, "idle/inactivity")
    ]
    assert rule.change is Change.UPDATE and rule.payload["body"]["lastActivityThresholdInDays"] == 365


def test_a_policy_that_is_on_and_reaches_a_protected_guest_is_drift_that_says_what_to_do():
    """A guest joined the protected group through a nested group after the switch: Microsoft's engine will act on
    them, so the plan says so (drift, exit 2 every hour) instead of 'matches'."""
    policy = _policy()
    existing = _on(policy, PolicyScope())
    shadow = _shadow(1, protected=("vip@contoso.com",))
    action = plan_policy("idle", policy, PolicyScope(), existing, shadow, BRAKE, 10, approved=False)[0]
    assert action.change is Change.REPORT and "vip@contoso.com" in action.reason
    assert "put them directly in an excluded group, or switch it off (enabled: false)" in action.reason
    quiet = plan_policy("idle", policy, PolicyScope(), existing, _shadow(1), BRAKE, 10, approved=False)[0]
    assert quiet.change is Change.NONE
