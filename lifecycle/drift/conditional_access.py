"""The guests' Conditional Access posture: checked and reported, never written.

Two expectations: an enabled policy that covers guests and external users on all applications and
requires MFA (or the authentication strength the file names), and an enabled one that blocks legacy
authentication (Exchange ActiveSync and other clients) for them.
"""

from __future__ import annotations

from typing import Any

from config.desired_state import ConditionalAccessPosture
from lifecycle.plans import Action, Change, FieldDiff

RESOURCE = "identity/conditionalAccess/policies"
GUEST_TYPES = frozenset({"b2bCollaborationGuest", "b2bCollaborationMember"})
LEGACY_CLIENTS = frozenset({"exchangeActiveSync", "other"})


def _list(value: Any) -> list[str]:
    return [str(v) for v in value or []]


def _guest_types(value: Any) -> set[str]:
    """guestOrExternalUserTypes is a flags enum: one comma-separated string."""
    return {part.strip() for part in str(value or "").split(",") if part.strip()}


def covers_guests(policy: dict[str, Any]) -> bool:
    """Enabled, on all applications, including every user or the B2B guest types, and not excluding them."""
    conditions = policy.get("conditions") or {}
    users = conditions.get("users") or {}
    apps = conditions.get("applications") or {}
    if policy.get("state") != "enabled" or "All" not in _list(apps.get("includeApplications")):
        return False
    included = _guest_types((users.get("includeGuestsOrExternalUsers") or {}).get("guestOrExternalUserTypes"))
    excluded = _guest_types((users.get("excludeGuestsOrExternalUsers") or {}).get("guestOrExternalUserTypes"))
    includes = (
        "All" in _list(users.get("includeUsers"))
        or "GuestsOrExternalUsers" in _list(users.get("includeUsers"))
        or included >= GUEST_TYPES
    )
    excludes = "GuestsOrExternalUsers" in _list(users.get("excludeUsers")) or bool(GUEST_TYPES & excluded)
    return includes and not excludes


def requires_mfa(policy: dict[str, Any], strength: str | None) -> bool:
    grant = policy.get("grantControls") or {}
    chosen = grant.get("authenticationStrength") or {}
    if strength is not None:
        return strength.lower() in {str(chosen.get("id", "")).lower(), str(chosen.get("displayName", "")).lower()}
    return "mfa" in _list(grant.get("builtInControls")) or bool(chosen)


def blocks_legacy(policy: dict[str, Any]) -> bool:
    conditions = policy.get("conditions") or {}
    clients = set(_list(conditions.get("clientAppTypes")))
    grant = policy.get("grantControls") or {}
    return (clients >= LEGACY_CLIENTS or "all" in clients) and "block" in _list(grant.get("builtInControls"))


def check(
    posture: ConditionalAccessPosture, policies: list[dict[str, Any]] | None, read_error: str | None = None
) -> list[Action]:
    expectations = []
    if posture.require_guest_mfa:
        need = (
            f"authentication strength {posture.authentication_strength}" if posture.authentication_strength else "MFA"
        )
        expectations.append(
            (
                "guest-mfa",
                f"an enabled policy for guests on all apps requiring {need}",
                lambda p: covers_guests(p) and requires_mfa(p, posture.authentication_strength),
            )
        )
    if posture.block_legacy_authentication:
        expectations.append(
            (
                "guest-legacy-authentication",
                "an enabled policy for guests blocking legacy authentication",
                lambda p: covers_guests(p) and blocks_legacy(p),
            )
        )
    actions = []
    for key, wanted, satisfied in expectations:
        if policies is None:
            diff = FieldDiff("policy", wanted, f"unreadable: {read_error}")
            actions.append(Action(RESOURCE, key, Change.REPORT, "Conditional Access could not be read", (diff,)))
            continue
        matching = sorted(str(p.get("displayName")) for p in policies if satisfied(p))
        if matching:
            actions.append(Action(RESOURCE, key, Change.NONE, f"satisfied by {', '.join(matching)}"))
        else:
            diff = FieldDiff("policy", wanted, None)
            actions.append(
                Action(RESOURCE, key, Change.REPORT, "no Conditional Access policy does this (report only)", (diff,))
            )
    return actions
