"""Guest lifecycle policies as desired state: created disabled, compared field by field, switched on only when safe.

A missing policy is created with ``isEnabled: false`` whatever the file says. A policy the file wants on is switched
on only when the shadow evaluation (lifecycle.drift.native_shadow) shows it safe: no guest judged by both the native
engine and the product's sweep without the file choosing an ``owner``, no guest the product's safety gate protects,
and a first evaluation within the sweep's deletion brake unless an operator approved it
(``apply policies --approve-enable lifecycle-KEY``). The hourly timer never approves.

Graph shapes: https://learn.microsoft.com/graph/api/resources/identitygovernance-guestlifecyclepolicy?view=graph-rest-1.0
and its rule, action and notification types.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from config.desired_state import DeletionBrake
from config.lifecycle_policies import NativePolicy
from lifecycle.drift.native_bodies import PATCH_FIELDS, canonical, desired_body, rule_body, rule_type
from lifecycle.drift.native_ports import GuestLifecyclePolicies
from lifecycle.drift.native_scope import PolicyScope
from lifecycle.drift.native_shadow import PolicyShadow
from lifecycle.drift.native_widening import policy_widening, rule_widening
from lifecycle.plans import Action, Change, FieldDiff
from lifecycle.runs.brake import evaluate as brake

RESOURCE = "identityGovernance/lifecycleWorkflows/lifecyclePolicies"
RULES = f"{RESOURCE}/rules"
APPROVAL_PREFIX = "lifecycle-"
SHADOW = "shadowEvaluation"


def approval_key(key: str) -> str:
    return f"{APPROVAL_PREFIX}{key}"


def rule_actions(key: str, policy: NativePolicy, existing: dict[str, Any]) -> list[Action]:
    """One update per rule that differs (PATCH of the rule by id); a rule added or removed is shown, not written:
    the port updates existing rules only."""
    have = {rule_type(r): r for r in existing.get("rules") or []}
    want = {rule.type: rule_body(rule) for rule in policy.rules}
    actions = []
    for kind, body in want.items():
        found = have.get(kind)
        rule_key = f"{key}/{kind}"
        if found is None:
            reason = "rule missing from the policy: add it in the admin center (only existing rules are updated)"
            actions.append(Action(RULES, rule_key, Change.REPORT, reason, (FieldDiff(kind, body, None),)))
            continue
        diffs = tuple(
            FieldDiff(n, v, found.get(n)) for n, v in body.items() if n != "@odata.type" and found.get(n) != v
        )
        if diffs:
            payload = {"policyId": existing.get("id"), "ruleId": found.get("id"), "body": body}
            actions.append(Action(RULES, rule_key, Change.UPDATE, "rule differs", diffs, payload))
    for kind in sorted(set(have) - set(want)):
        reason = "rule not in the desired state: remove it in the admin center (only existing rules are updated)"
        actions.append(Action(RULES, f"{key}/{kind}", Change.REPORT, reason, (FieldDiff(kind, None, "set"),)))
    return actions


def enable_blockers(key: str, policy: NativePolicy, shadow: PolicyShadow, scope: PolicyScope) -> list[str]:
    """Why the policy may not be switched on whatever an operator approves (empty: nothing stands in the way)."""
    found = []
    if scope.unreadable is not None:
        found.append(f"{scope.unreadable}, so who it would leave out, and what it would do, cannot be told")
    if shadow.protected:
        names = ", ".join(shadow.protected[:5])
        found.append(
            f"it would act on {len(shadow.protected)} guest(s) the product protects ({names}): "
            "exclusions.objectIds, or the protected group through a nested group, which the native engine does not "
            "see (direct membership only); put them directly in an excluded group"
        )
    if shadow.sweep_overlap:
        partners = ", ".join(f"{p} ({n})" for p, n in sorted(shadow.overlap_partners.items()))
        overlap = f"{shadow.sweep_overlap} guest(s) it governs are also judged by the product's sweep: {partners}"
        if policy.owner is None:
            found.append(f"{overlap}; choose who judges them: owner: native or owner: product on the policy")
        elif policy.owner == "native":
            found.append(f"{overlap}; owner is native, so the sweep stands down: partners.<key>.lifecycle.optOut: true")
        else:
            found.append(f"{overlap}; owner is product, so the policy leaves them out: exclude them by group")
    return found


def plan_policy(
    key: str,
    policy: NativePolicy,
    scope: PolicyScope,
    existing: dict[str, Any] | None,
    shadow: PolicyShadow,
    limits: DeletionBrake,
    total: int,
    approved: bool,
) -> list[Action]:
    body = desired_body(policy, scope)
    evidence = FieldDiff(SHADOW, None, shadow.sentence())
    if existing is None:
        reason = "no such policy: created disabled, so what it would do is seen before it acts"
        if policy.enabled:
            reason += f"; switching it on then follows the shadow evaluation ({shadow.sentence()})"
        diffs = (FieldDiff("isEnabled", False, None), evidence)
        return [Action(RESOURCE, key, Change.CREATE, reason, diffs, {"body": {**body, "isEnabled": False}})]
    want, have = canonical(body), canonical(existing)
    if want["gracePeriodInDays"] is None:
        # Left out of the file: the service's default stands (the admin center's is 7 days; what Graph fills in for
        # a body without it is not documented), rather than a PATCH to null on every run.
        want["gracePeriodInDays"] = have["gracePeriodInDays"]
    diffs = [FieldDiff(name, want[name], have[name]) for name in want if want[name] != have[name]]
    actions = rule_actions(key, policy, existing)
    notes = ["the policy differs"] if diffs else []
    payload: dict[str, Any] = {"id": existing.get("id"), "shadow": _shadow_dict(shadow)}
    held: list[str] = []
    switch: FieldDiff | None = None
    is_on = existing.get("isEnabled") is True
    if policy.enabled and not is_on:
        held = enable_blockers(key, policy, shadow, scope)
        tripped = brake(len(shadow.would_act), total, limits)
        if tripped.tripped and not approved:
            held.append(
                f"its first evaluation trips the deletion brake ({tripped.reason}): "
                f"apply policies --approve-enable {approval_key(key)}"
            )
        if held:
            notes.append("held disabled: " + "; ".join(held))
        else:
            switch = FieldDiff("isEnabled", True, False)
            notes.append("switched on" + (": approved by an operator" if tripped.tripped else ""))
        diffs.append(evidence)
    elif is_on and not policy.enabled:
        switch = FieldDiff("isEnabled", False, True)
        notes.append("switched off, as the desired state says")
    elif is_on:
        widened = widening(key, policy, scope, shadow, diffs, actions, limits, total, approved)
        if widened.held:
            notes.append(widened.held)
            actions = widened.rule_actions
            if diffs:  # the policy's own widening holds its other changes with it: shown, not written
                shown = (*diffs, evidence)
                actions.insert(0, Action(RESOURCE, key, Change.REPORT, "; ".join(notes), shown, payload))
                return actions
        elif widened.reasons:
            notes.append(f"widened ({', '.join(widened.reasons)}): {widened.passed}")
            diffs.append(evidence)
        if shadow.protected and not widened.held:
            held = [protected_on(shadow)]
            notes.append(held[0])
    patch: dict[str, Any] = {}
    for diff in diffs:
        for name in PATCH_FIELDS.get(diff.field, ()):
            patch[name] = body.get(name)  # null clears what the file leaves out
    if switch is not None:
        diffs.append(switch)
        patch["isEnabled"] = switch.desired
    if patch:
        actions.insert(
            0, Action(RESOURCE, key, Change.UPDATE, "; ".join(notes), tuple(diffs), {**payload, "body": patch})
        )
    elif held and is_on:
        shown = (FieldDiff("protectedGuests", 0, len(shadow.protected)), *diffs)
        actions.insert(0, Action(RESOURCE, key, Change.REPORT, "; ".join(notes), shown, payload))
    elif held:
        hold = (FieldDiff("isEnabled", True, False), *diffs)
        actions.insert(0, Action(RESOURCE, key, Change.REPORT, "; ".join(notes), hold, payload))
    else:
        actions.insert(0, Action(RESOURCE, key, Change.NONE, "; ".join(["matches", *notes]), (), payload))
    return actions


def protected_on(shadow: PolicyShadow) -> str:
    """A policy that is on reaches guests the product protects (one joined the protected group through a nested
    group after the switch, say): Microsoft's engine acts on them whatever the product's gate says."""
    names = ", ".join(shadow.protected[:5])
    return (
        f"it is on and acts on {len(shadow.protected)} guest(s) the product protects ({names}): the native engine "
        "honours direct membership only; put them directly in an excluded group, or switch it off (enabled: false)"
    )


@dataclass
class Widening:
    reasons: list[str]  # what makes the policy reach more guests or act harder (empty: nothing widens it)
    held: str  # why the widening is not written ("" : it may be)
    passed: str  # why it may be (within the brake, or approved)
    rule_actions: list[Action]  # the rule actions, a held widening rule shown (REPORT) instead of written


def widening(
    key: str,
    policy: NativePolicy,
    scope: PolicyScope,
    shadow: PolicyShadow,
    diffs: list[FieldDiff],
    actions: list[Action],
    limits: DeletionBrake,
    total: int,
    approved: bool,
) -> Widening:
    """A policy already on, changed so that it reaches more guests or acts harder (lifecycle.drift.native_widening):
    the change passes the switch's checks over the shadow evaluation of the policy as the file wants it (the safety
    gate's findings whatever the approval, then the brake or an operator's approval)."""
    reasons = [why for d in diffs if (why := policy_widening(d)) is not None]
    widening_rules: set[str] = set()
    for action in actions:
        if action.resource == RULES and action.change is Change.UPDATE:
            rule_type = action.key.rsplit("/", 1)[-1]
            found = [why for d in action.diffs if (why := rule_widening(rule_type, d)) is not None]
            reasons += found
            widening_rules |= {action.key} if found else set()
    if not reasons:
        return Widening([], "", "", actions)
    held = enable_blockers(key, policy, shadow, scope)
    tripped = brake(len(shadow.would_act), total, limits)
    if tripped.tripped and not approved:
        held.append(
            f"as widened it trips the deletion brake ({tripped.reason}): "
            f"apply policies --approve-enable {approval_key(key)}"
        )
    if not held:
        passed = "approved by an operator" if tripped.tripped else f"within the brake: {shadow.sentence()}"
        return Widening(reasons, "", passed, actions)
    why = f"widening held ({', '.join(reasons)}): " + "; ".join(held)
    kept = [Action(a.resource, a.key, Change.REPORT, why, a.diffs) if a.key in widening_rules else a for a in actions]
    return Widening(reasons, why, "", kept)


def _shadow_dict(shadow: PolicyShadow) -> dict[str, Any]:
    return {
        "governed": shadow.governed,
        "wouldAct": len(shadow.would_act),
        "verb": shadow.verb,
        "sample": list(shadow.sample),
        "sweepOverlap": shadow.sweep_overlap,
        "protected": list(shadow.protected),
        "nestedExcluded": shadow.nested_excluded,
        "notJudged": dict(shadow.not_judged),
    }


Applier = Callable[[Action], Awaitable[object]]


def applier(port: GuestLifecyclePolicies) -> Applier:
    async def apply(action: Action) -> object:
        """Returns the created policy (its id is remembered: lifecycle.drift.native_ownership)."""
        body = action.payload.get("body") or {}
        if action.resource == RESOURCE and action.change is Change.CREATE:
            return await port.create_guest_policy(body)
        elif action.resource == RESOURCE and action.change is Change.UPDATE:
            await port.update_guest_policy(str(action.payload["id"]), body)
        elif action.resource == RULES and action.change is Change.UPDATE:
            await port.update_rule(str(action.payload["policyId"]), str(action.payload["ruleId"]), body)
        else:
            raise ValueError(f"no way to apply {action.change.value} on {action.resource}")
        return None

    return apply
