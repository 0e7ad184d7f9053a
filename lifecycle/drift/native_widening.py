"""Which changes to a guest lifecycle policy that is already on make it reach more guests, or act harder on them.

Switching a policy on is held behind the shadow evaluation, the safety gate's findings and the deletion brake
(lifecycle.drift.native_policies). A policy already on is just as dangerous when a change widens it: an excluded
group dropped from its scope, an action that deletes where it disabled (or deletes sooner), a shorter grace period,
a rule that starts earlier, a rule switched on. Those changes pass the same checks as a switch; a change that only
narrows the policy (or touches its notices and description) is written as before.

A change whose direction cannot be told (a value missing on either side, a type the product does not know) counts
as widening: holding it costs an approval, writing it blind could cost a guest.
"""

from __future__ import annotations

from typing import Any

from config.lifecycle_policies import DAYS_PROPERTY
from lifecycle.plans import FieldDiff

# From the mildest to the harshest enforcement action (guestLifecyclePolicy enforcementAction types).
_HARSHNESS = {
    "disableOnlyEnforcementAction": 0,
    "disableThenDeleteEnforcementAction": 1,
    "deleteOnlyEnforcementAction": 2,
}
# Rule properties where a smaller number acts sooner; one where a larger number does.
_SOONER_WHEN_SMALLER = {*DAYS_PROPERTY.values(), "gracePeriodInDays"}
_STRICTER_WHEN_LARGER = {"minimumSponsorCount"}


def _smaller(want: Any, have: Any) -> bool:
    """True unless ``want`` is a number no smaller than ``have`` (unknown counts as smaller)."""
    if not isinstance(want, int | float) or not isinstance(have, int | float):
        return True
    return want < have


def policy_widening(diff: FieldDiff) -> str | None:
    """Why this change to the policy's own fields widens it (None: it does not). ``diff`` compares
    ``native_bodies.canonical`` values: desired first, actual second."""
    want, have = diff.desired, diff.actual
    if diff.field == "excludedGroups":
        dropped = sorted(set(have or ()) - set(want or ()))
        return f"excluded group(s) {', '.join(dropped)} dropped from its scope" if dropped else None
    if diff.field == "enforcementAction":
        new, old = (want or {}).get("type"), (have or {}).get("type")
        if _HARSHNESS.get(new, 99) > _HARSHNESS.get(old, -1):
            return f"its action becomes {new} (was {old})"
        days = "deletionGracePeriodInDays"
        new_days, old_days = (want or {}).get(days), (have or {}).get(days)
        if new == old and new_days != old_days and _smaller(new_days, old_days):
            return f"it deletes after {new_days} day(s) (was {old_days})"
        return None
    if diff.field == "gracePeriodInDays" and _smaller(want, have):
        return f"its grace period becomes {want} day(s) (was {have})"
    return None


def rule_widening(rule_type: str, diff: FieldDiff) -> str | None:
    """Why this change to one rule widens the policy (None: it does not)."""
    want, have = diff.desired, diff.actual
    if diff.field == "isEnabled":
        return f"rule {rule_type} switched on" if want is True and have is not True else None
    if diff.field in _SOONER_WHEN_SMALLER and _smaller(want, have):
        return f"rule {rule_type}: {diff.field} becomes {want} (was {have})"
    if diff.field in _STRICTER_WHEN_LARGER and _smaller(have, want):
        return f"rule {rule_type}: {diff.field} becomes {want} (was {have})"
    return None
