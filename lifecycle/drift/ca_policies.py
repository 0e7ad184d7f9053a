"""The guest Conditional Access policies as desired state: created report-only, switched on only by approval.

``guestConditionalAccess`` in the desired state names up to two policies the product owns (found by display
name): one that requires MFA of B2B collaboration guests and members on all applications, one that blocks
their legacy authentication (Exchange ActiveSync and other clients). Both exclude the break-glass users and
groups the file names; the guardrails refuse the section without any.

A missing policy is created in ``enabledForReportingButNotEnforced``: Entra then evaluates it on every sign-in
and records what it would have done without doing it. Each run reads that evidence from the sign-in logs (the
``reportOnly*`` results of the policy over ``evidenceDays``) and shows it in the plan. A policy the file wants
``enabled`` stays report-only, its switch held in the plan with the evidence, until an operator approves it
(``apply policies --approve-enable KEY``); the hourly timer never approves. Everything else about the policy
(who it covers, the exclusions, the grant) is drift, fixed in enforce mode.

Conditional Access allows one request per second per tenant; the gateway paces every call (graph.policies).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from config.desired_state import GuestConditionalAccess, ManagedGuestPolicy
from lifecycle.drift.ca_evidence import REPORT_ONLY, CaSnapshot, Evidence, SignInEvidence, evidence_from, read_evidence
from lifecycle.plans import Action, Change, FieldDiff, Refusal
from lifecycle.ports import Directory

__all__ = ["REPORT_ONLY", "CaSnapshot", "Evidence", "SignInEvidence", "evidence_from", "read_evidence"]

RESOURCE = "identity/conditionalAccess/policies/managed"
GUEST_TYPES = ("b2bCollaborationGuest", "b2bCollaborationMember")
MFA, LEGACY = "guest-mfa", "guest-legacy-authentication"
EVIDENCE = "reportOnlyEvidence"


class ConditionalAccessWrites(Protocol):
    """Creates and updates Conditional Access policies, paced to one request per second per tenant."""

    async def create_conditional_access_policy(self, body: dict[str, Any]) -> dict[str, Any]: ...

    async def update_conditional_access_policy(self, policy_id: str, body: dict[str, Any]) -> None: ...


def wanted_policies(wanted: GuestConditionalAccess) -> dict[str, ManagedGuestPolicy]:
    chosen = {MFA: wanted.require_mfa, LEGACY: wanted.block_legacy_authentication}
    return {key: policy for key, policy in chosen.items() if policy is not None}


def desired_body(key: str, policy: ManagedGuestPolicy, wanted: GuestConditionalAccess) -> dict[str, Any]:
    """The policy as the product writes it (its state apart): guests on all apps, the break-glass excluded."""
    legacy = key == LEGACY
    return {
        "displayName": policy.display_name,
        "conditions": {
            "clientAppTypes": ["exchangeActiveSync", "other"] if legacy else ["all"],
            "applications": {"includeApplications": ["All"]},
            "users": {
                "includeGuestsOrExternalUsers": {
                    "guestOrExternalUserTypes": ",".join(GUEST_TYPES),
                    # externalTenants is an abstract type: the derived type is named, as Graph's models need it.
                    "externalTenants": {
                        "@odata.type": "#microsoft.graph.conditionalAccessAllExternalTenants",
                        "membershipKind": "all",
                    },
                },
                "excludeUsers": list(wanted.break_glass_user_ids),
                "excludeGroups": list(wanted.break_glass_group_ids),
            },
        },
        "grantControls": {"operator": "OR", "builtInControls": ["block" if legacy else "mfa"]},
    }


def canonical_policy(policy: dict[str, Any]) -> dict[str, Any]:
    """The fields the product owns, order and casing of lists aside."""
    conditions = policy.get("conditions") or {}
    users = conditions.get("users") or {}
    guests = users.get("includeGuestsOrExternalUsers") or {}
    grant = policy.get("grantControls") or {}

    def ids(value: Any) -> list[str]:
        return sorted({str(v).lower() for v in value or []})

    return {
        "guestOrExternalUserTypes": sorted(
            p.strip() for p in str(guests.get("guestOrExternalUserTypes") or "").split(",") if p.strip()
        ),
        "externalTenants": (guests.get("externalTenants") or {}).get("membershipKind"),
        "includeUsers": ids(users.get("includeUsers")),
        "includeGroups": ids(users.get("includeGroups")),
        "excludeUsers": ids(users.get("excludeUsers")),
        "excludeGroups": ids(users.get("excludeGroups")),
        "includeApplications": sorted((conditions.get("applications") or {}).get("includeApplications") or []),
        "clientAppTypes": sorted(conditions.get("clientAppTypes") or []),
        "builtInControls": sorted(grant.get("builtInControls") or []),
        "operator": grant.get("operator"),
    }


async def break_glass_problems(wanted: GuestConditionalAccess, directory: Directory) -> list[Refusal]:
    """A break-glass user id that names nobody excludes nobody, and a guest is no break-glass account: both are
    refused before a policy is written with them. (Group ids are taken as given: drift reads no groups.)"""
    found = []
    for user_id in wanted.break_glass_user_ids:
        user = await directory.get_user(user_id)
        if user is None:
            found.append(
                Refusal("ca-break-glass-unknown", f"break-glass user {user_id} does not exist: it would exclude nobody")
            )
        elif user.is_guest:
            found.append(
                Refusal(
                    "ca-break-glass-is-guest",
                    f"break-glass user {user_id} ({user.mail or user.user_principal_name}) is a guest; break-glass "
                    "accounts are the tenant's own emergency administrators",
                )
            )
    return found


def refusals(wanted: GuestConditionalAccess, snapshot: CaSnapshot) -> list[Refusal]:
    found = []
    if not wanted.break_glass_user_ids and not wanted.break_glass_group_ids:
        found.append(
            Refusal(
                "ca-break-glass-missing",
                "guestConditionalAccess names no break-glass account or group to exclude; a policy without one can "
                "lock every administrator out: set breakGlassUserIds or breakGlassGroupIds",
            )
        )
    if snapshot.policies is None:
        found.append(
            Refusal("ca-unreadable", "Conditional Access could not be read, so the guest policies cannot be planned")
        )
    for key, policy in wanted_policies(wanted).items():
        named = [p for p in snapshot.policies or [] if p.get("displayName") == policy.display_name]
        if len(named) > 1:
            found.append(
                Refusal(
                    "ca-policy-ambiguous",
                    f"{len(named)} Conditional Access policies are named {policy.display_name!r} ({key}); rename the "
                    "ones this product does not manage",
                )
            )
    return found


def plan(wanted: GuestConditionalAccess, snapshot: CaSnapshot, approved: frozenset[str]) -> list[Action]:
    if snapshot.policies is None:
        return []
    actions = []
    for key, policy in wanted_policies(wanted).items():
        named = [p for p in snapshot.policies if p.get("displayName") == policy.display_name]
        if len(named) > 1:
            continue  # refused
        actions.append(_policy_action(key, policy, wanted, named[0] if named else None, snapshot, key in approved))
    return actions


def _policy_action(
    key: str,
    policy: ManagedGuestPolicy,
    wanted: GuestConditionalAccess,
    existing: dict[str, Any] | None,
    snapshot: CaSnapshot,
    approved: bool,
) -> Action:
    body = desired_body(key, policy, wanted)
    if existing is None:
        reason = "no such policy: created report-only, so its effect is seen before it is enforced"
        if policy.enabled:
            reason += f"; switching it on then needs apply policies --approve-enable {key}"
        diffs = (FieldDiff("state", REPORT_ONLY, None),)
        return Action(RESOURCE, key, Change.CREATE, reason, diffs, {"body": {**body, "state": REPORT_ONLY}})
    want, have = canonical_policy(body), canonical_policy(existing)
    diffs = [FieldDiff(name, want[name], have[name]) for name in want if want[name] != have[name]]
    patch: dict[str, Any] = {"conditions": body["conditions"], "grantControls": body["grantControls"]} if diffs else {}
    notes = ["the policy differs"] if diffs else []
    state = existing.get("state")
    held = False
    if state == REPORT_ONLY and policy.enabled:
        if approved:
            diffs.append(FieldDiff("state", "enabled", state))
            patch["state"] = "enabled"
            notes.append("switched on: approved by an operator")
        else:
            held = True
            notes.append(f"held report-only: switching it on needs apply policies --approve-enable {key}")
    elif state == "enabled" and not policy.enabled:
        diffs.append(FieldDiff("state", REPORT_ONLY, state))
        patch["state"] = REPORT_ONLY
        notes.append("back to report-only, as the desired state says")
    elif state not in (REPORT_ONLY, "enabled"):
        diffs.append(FieldDiff("state", REPORT_ONLY, state))
        patch["state"] = REPORT_ONLY
        notes.append(f"was {state}: report-only first")
    payload: dict[str, Any] = {"id": existing.get("id")}
    evidence = snapshot.evidence.get(str(existing.get("id")))
    if evidence is not None:
        payload["evidence"] = evidence.as_dict()
        notes.append(evidence.sentence())
        if held or patch.get("state") == "enabled":
            # Beside the switch in every rendering of the plan (markdown and text show fields, not reasons).
            diffs.append(FieldDiff(EVIDENCE, None, evidence.sentence()))
    if patch:
        return Action(RESOURCE, key, Change.UPDATE, "; ".join(notes), tuple(diffs), {**payload, "body": patch})
    if held:
        hold = (FieldDiff("state", "enabled", state), *diffs)
        return Action(RESOURCE, key, Change.REPORT, "; ".join(notes), hold, payload)
    return Action(RESOURCE, key, Change.NONE, "; ".join(["matches", *notes]), (), payload)


def approval_warnings(wanted: GuestConditionalAccess, approved: frozenset[str]) -> list[str]:
    """Approvals of this area (keys ``guest-*``) that the desired state does not back."""
    keys = wanted_policies(wanted)
    found = []
    for key in sorted(k for k in approved if k.startswith("guest-")):
        if key not in keys:
            found.append(f"--approve-enable {key}: no such managed policy (known: {', '.join(sorted(keys))})")
        elif not keys[key].enabled:
            found.append(f"--approve-enable {key}: the desired state keeps it report-only (enabled: false)")
    return found


Applier = Callable[[Action], Awaitable[None]]


def applier(writes: ConditionalAccessWrites) -> Applier:
    async def apply(action: Action) -> None:
        body = action.payload.get("body") or {}
        if action.change is Change.CREATE:
            await writes.create_conditional_access_policy(body)
        elif action.change is Change.UPDATE:
            await writes.update_conditional_access_policy(str(action.payload["id"]), body)
        else:
            raise ValueError(f"no way to apply {action.change.value} on {action.resource}")

    return apply
