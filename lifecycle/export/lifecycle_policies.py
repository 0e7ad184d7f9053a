"""The tenant's guest lifecycle policies as the ``guestLifecyclePolicies`` section.

Each policy the section can describe is exported by display name under a key made from it, with its rules, action,
grace, notices and excluded groups (by id), so that policy drift planning the exported file against the same tenant
has nothing to write. What the section cannot describe is a comment, never a guess: a rule or action type it does
not know, a rule type twice, a delete-only action without a grace period (the file refuses it). ``owner`` is never
exported: who judges the guests (the native engine or the product's sweep) is the operator's decision.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from config.lifecycle_policies import DAYS_PROPERTY, NativePolicy
from lifecycle.drift.native_ports import FEATURE, READ_PERMISSION, GuestLifecyclePolicies
from lifecycle.drift.native_scope import scope_group_ids
from lifecycle.errors import GraphError

SECTION = "guestLifecyclePolicies"
NEEDS = READ_PERMISSION
RULE_TYPES = ("inactivity", "sponsorPresence", "periodicAttestation", "invitationRedemption")
RULE_TYPES += ("accessPackageAssignmentRequired",)
ACTIONS = ("disableOnly", "deleteOnly", "disableThenDelete")


@dataclass
class NativePosture:
    """What was read: the guest policies, or why they could not be read."""

    policies: list[dict[str, Any]] = field(default_factory=list)
    unreadable: str | None = None


async def read_native(port: GuestLifecyclePolicies) -> NativePosture:
    try:
        return NativePosture(await port.list_guest_policies())
    except GraphError as exc:
        return NativePosture(unreadable=f"{type(exc).__name__}: {exc}")


def export_native(posture: NativePosture | None) -> tuple[dict[str, Any] | None, list[str]]:
    """The section (None when there is nothing to describe) and its comments."""
    if posture is None:
        return None, ["not exported: this export read no guest lifecycle policies"]
    if posture.unreadable is not None:
        return None, [
            f"not exported: the guest lifecycle policies could not be read ({posture.unreadable}); needs {NEEDS}"
        ]
    policies: dict[str, Any] = {}
    notes: list[str] = []
    for policy in sorted(posture.policies, key=lambda p: str(p.get("displayName"))):
        name = str(policy.get("displayName") or "")
        exported, problem = _policy(policy)
        if problem is not None:
            notes.append(f"not expressible: guest lifecycle policy {name!r}: {problem}; left out")
            continue
        policies[_key(name, policies)] = exported
    if not policies:
        return None, notes
    decide = (
        f"DECIDE: with {SECTION} present, policy drift manages these policies and the deployment needs their "
        f"permissions (infra/grant-graph-permissions --feature {FEATURE}); set each policy's owner (native or product) "
        "before one that is on can stay on: a guest is never judged by both the native engine and the sweep."
    )
    return {"policies": policies}, [decide, *notes]


def _policy(policy: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    rules = []
    for rule in policy.get("rules") or []:
        kind = str(rule.get("@odata.type") or "").rsplit(".", 1)[-1].removesuffix("Rule")
        if kind not in RULE_TYPES:
            return {}, f"rule type {kind or '(none)'} is not one the section knows"
        entry: dict[str, Any] = {"type": kind}
        if kind in DAYS_PROPERTY:
            entry["days"] = rule.get(DAYS_PROPERTY[kind])
        if kind == "sponsorPresence":
            entry["minimumSponsors"] = rule.get("minimumSponsorCount")
        if rule.get("gracePeriodInDays") is not None:
            entry["gracePeriodDays"] = rule["gracePeriodInDays"]
        if rule.get("isEnabled") is False:
            entry["enabled"] = False
        rules.append(entry)
    action_type = str((policy.get("enforcementAction") or {}).get("@odata.type") or "").rsplit(".", 1)[-1]
    kind = action_type.removesuffix("EnforcementAction")
    if kind not in ACTIONS:
        return {}, f"enforcement action {action_type or '(none)'} is not one the section knows"
    action: dict[str, Any] = {"kind": kind}
    if kind == "disableThenDelete":
        action["deleteAfterDays"] = (policy.get("enforcementAction") or {}).get("deletionGracePeriodInDays")
    notices = policy.get("notificationSchedule") or {}
    exported: dict[str, Any] = {"displayName": policy.get("displayName"), "enabled": policy.get("isEnabled") is True}
    if policy.get("description"):
        exported["description"] = policy["description"]
    groups = scope_group_ids(policy.get("scope"))
    if groups:
        exported["excludedGroups"] = groups
    exported.update(rules=rules, action=action)
    if policy.get("gracePeriodInDays") is not None:
        exported["gracePeriodDays"] = policy["gracePeriodInDays"]
    exported["notifications"] = {
        "offsetsDays": list(notices.get("offsetsAfterNonComplianceInDays") or []),
        "fallbackRecipients": list(notices.get("additionalFallbackRecipients") or []),
    }
    try:
        NativePolicy.model_validate(exported)
    except ValidationError as exc:
        return {}, "; ".join(str(e["msg"]) for e in exc.errors())
    return exported, None


def _key(name: str, taken: dict[str, Any]) -> str:
    base = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:60] or "policy"
    key, n = base, 2
    while key in taken:
        key, n = f"{base}-{n}", n + 1
    return key
