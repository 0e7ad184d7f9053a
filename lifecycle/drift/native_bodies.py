"""A guest lifecycle policy in Graph's JSON: the body the product writes from the file, and the fields it compares.

Shapes: https://learn.microsoft.com/graph/api/resources/identitygovernance-guestlifecyclepolicy?view=graph-rest-1.0
and its rule, enforcement action and notification types.
"""

from __future__ import annotations

from typing import Any

from config.lifecycle_policies import DAYS_PROPERTY, NativePolicy, NativeRule
from lifecycle.drift.native_ports import GUEST_POLICY_TYPE
from lifecycle.drift.native_scope import PolicyScope, scope_body, scope_group_ids

NS = "#microsoft.graph.identityGovernance."


def rule_body(rule: NativeRule) -> dict[str, Any]:
    body: dict[str, Any] = {"@odata.type": f"{NS}{rule.type}Rule", "isEnabled": rule.enabled}
    if rule.type in DAYS_PROPERTY:
        body[DAYS_PROPERTY[rule.type]] = rule.days
    if rule.type == "sponsorPresence":
        body["minimumSponsorCount"] = rule.minimum_sponsors
    if rule.grace_period_days is not None:
        body["gracePeriodInDays"] = rule.grace_period_days
    return body


def desired_body(policy: NativePolicy, scope: PolicyScope) -> dict[str, Any]:
    """The policy as the product writes it, its switch apart."""
    action: dict[str, Any] = {"@odata.type": f"{NS}{policy.action.kind}EnforcementAction"}
    if policy.action.delete_after_days is not None:
        action["deletionGracePeriodInDays"] = policy.action.delete_after_days
    body: dict[str, Any] = {"@odata.type": GUEST_POLICY_TYPE, "displayName": policy.display_name}
    if policy.description is not None:
        body["description"] = policy.description
    if policy.grace_period_days is not None:
        body["gracePeriodInDays"] = policy.grace_period_days
    return {
        **body,
        "enforcementAction": action,
        "notificationSchedule": {
            "@odata.type": f"{NS}lifecyclePolicyNotificationSettings",
            "offsetsAfterNonComplianceInDays": list(policy.notifications.offsets_days),
            "additionalFallbackRecipients": list(policy.notifications.fallback_recipients),
        },
        "scope": scope_body(scope),
        "rules": [rule_body(rule) for rule in policy.rules],
    }


def canonical(policy: dict[str, Any]) -> dict[str, Any]:
    """The policy's own fields the product owns (rules apart), order and casing of lists aside."""
    action = policy.get("enforcementAction") or {}
    notices = policy.get("notificationSchedule") or {}
    return {
        "displayName": policy.get("displayName"),
        "description": policy.get("description"),
        "gracePeriodInDays": policy.get("gracePeriodInDays"),
        "enforcementAction": {
            "type": str(action.get("@odata.type") or "").rsplit(".", 1)[-1],
            "deletionGracePeriodInDays": action.get("deletionGracePeriodInDays"),
        },
        "notificationOffsets": sorted(notices.get("offsetsAfterNonComplianceInDays") or [], reverse=True),
        "fallbackRecipients": sorted(str(r).lower() for r in notices.get("additionalFallbackRecipients") or []),
        "excludedGroups": scope_group_ids(policy.get("scope")),
    }


PATCH_FIELDS = {
    "displayName": ("displayName",),  # the product's own policy renamed in the admin center (native_ownership)
    "description": ("description",),
    "gracePeriodInDays": ("gracePeriodInDays",),
    "enforcementAction": ("enforcementAction",),
    "notificationOffsets": ("notificationSchedule",),
    "fallbackRecipients": ("notificationSchedule",),
    "excludedGroups": ("scope",),
}


def rule_type(rule: dict[str, Any]) -> str:
    return str(rule.get("@odata.type") or "").rsplit(".", 1)[-1].removesuffix("Rule")
