"""The ``guestLifecyclePolicies`` area of the drift plan: read, resolve the scopes, shadow-evaluate, plan, compare.

Planned only when the desired state has the section; the composition root gives the port
(``DriftPorts.lifecycle_policies``), the group reads the scopes need (``DriftPorts.scope_groups``) and the priority
configuration (``DriftPorts.lifecycle_priority``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from config.lifecycle_policies import MAX_POLICIES, GuestLifecyclePolicies
from lifecycle.drift import native_ownership as ownership
from lifecycle.drift import native_priority
from lifecycle.drift.fields import LICENCE_EXPOSURE, SHADOW_EVALUATION, Evidence
from lifecycle.drift.native_compare import compare
from lifecycle.drift.native_policies import (
    APPROVAL_PREFIX,
    RESOURCE,
    RULES,
    Applier,
    approval_key,
    plan_policy,
)
from lifecycle.drift.native_policies import applier as policy_applier
from lifecycle.drift.native_ports import FEATURE, READ_PERMISSION
from lifecycle.drift.native_scope import DIRECT_ONLY, PolicyScope, resolve_scope
from lifecycle.drift.native_shadow import Shadow, evaluate, name_of
from lifecycle.errors import PermissionDeniedError
from lifecycle.plans import Action, Change, Refusal
from lifecycle.safety import gate_of
from lifecycle.sweep.ports import GuestReads, SweepPorts

if TYPE_CHECKING:
    from lifecycle.drift.ports import DriftPorts
    from lifecycle.services import Services

RESOURCES = (RESOURCE, RULES, native_priority.RESOURCE)


@dataclass
class NativePlan:
    actions: list[Action] = field(default_factory=list)
    refusals: list[Refusal] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    evidence: list[Evidence] = field(default_factory=list)
    appliers: dict[str, Applier] = field(default_factory=dict)  # by resource


async def plan(services: Services, ports: DriftPorts, approvals: frozenset[str]) -> NativePlan:
    wanted = services.desired.guest_lifecycle_policies
    found = NativePlan()
    if wanted is None:
        return found
    port = ports.lifecycle_policies
    if port is None:
        reason = "the desired state has guestLifecyclePolicies but this deployment has no gateway for them"
        found.refusals.append(Refusal("lifecycle-policies-not-composed", reason))
        return found
    try:
        tenant = await port.list_guest_policies()
    except PermissionDeniedError as exc:  # a deployment granted without the feature: say so, plan the rest
        reason = (
            f"the tenant's guest lifecycle policies cannot be read ({exc}): reading needs {READ_PERMISSION}, "
            f"granted with infra/grant-graph-permissions --feature {FEATURE}"
        )
        found.refusals.append(Refusal("lifecycle-policies-unreadable", reason))
        return found
    named: dict[str, list[dict[str, Any]]] = {}
    for policy in tenant:
        named.setdefault(str(policy.get("displayName")), []).append(policy)
    found.refusals += _tenant_refusals(wanted, tenant, named)
    protected = services.desired.exclusions.protected_group_id
    scopes: dict[str, PolicyScope] = {}
    for key, policy in wanted.policies.items():
        scopes[key] = await resolve_scope(key, policy, protected, ports.scope_groups)
        found.refusals += scopes[key].refusals
    matched = ownership.match(wanted, tenant, await ownership.remembered(services, wanted), approvals)
    existing = matched.existing
    switched_on = frozenset(
        key for key, p in wanted.policies.items() if p.enabled or (existing[key] or {}).get("isEnabled") is True
    )
    priority = ports.lifecycle_priority
    config = await priority.get_priority() if priority is not None else None
    order = native_priority.current_order(config, tenant)
    binding = [key for key in native_priority.evaluation_keys(wanted, existing, order) if key in switched_on]
    sweep = services.jobs.find(SweepPorts)
    reads = sweep.guest_reads if sweep is not None else services.directory
    now = services.clock.now()
    shadow = await evaluate(
        services.desired, dict(wanted.policies), scopes, binding, reads, services.guests, gate_of(services), now
    )
    limits = services.desired.lifecycle.deletion_brake
    for key, policy in wanted.policies.items():
        approved = approval_key(key) in approvals
        planned = plan_policy(
            key, policy, scopes[key], existing[key], shadow.policies[key], limits, shadow.total, approved
        )
        if key in matched.foreign:
            planned = ownership.hold(key, matched.foreign[key], planned)
        if key in matched.adopted:
            planned.append(ownership.adoption(key, matched.adopted[key], policy.display_name))
        found.actions += planned
        if shadow.policies[key].evaluated:
            counts, sentence = _counts(shadow, key), shadow.policies[key].sentence()
            found.evidence.append(Evidence(RESOURCE, key, "firstEvaluation", counts, SHADOW_EVALUATION, sentence))
        found.warnings += _flags(key, scopes[key], shadow)
        current = existing[key]
        if current is not None and current.get("isEnabled") is True:
            result = await compare(key, str(current.get("id")), shadow.policies[key], port, _namer(reads))
            found.actions.append(result.action())
            found.warnings += result.warnings()
    found.warnings += _several(shadow) + _approval_warnings(wanted, approvals) + _unmanaged(wanted, tenant)
    found.warnings += _adoption_warnings(wanted, approvals, matched)
    found.evidence.append(exposure(wanted, shadow))
    found.appliers = {
        RESOURCE: _remembering(services, policy_applier(port)),
        RULES: policy_applier(port),
        ownership.OWNERSHIP: _adopting(services),
    }
    if priority is not None:
        ours = {k: None if k in matched.foreign else v for k, v in existing.items()}  # never reorder someone else's
        ordered = native_priority.plan_priority(wanted, ours, tenant, config)
        found.actions += [ordered] if ordered is not None else []
        found.appliers[native_priority.RESOURCE] = native_priority.applier(priority)
    elif any(p.priority is not None for p in wanted.policies.values()):
        found.warnings.append(
            "guestLifecyclePolicies gives priorities but this deployment has no gateway for the priority "
            "configuration: the order is neither read nor written"
        )
    return found


def _remembering(services: Services, apply: Applier) -> Applier:
    """The policy applier, remembering the id of each policy the product creates or writes (native_ownership)."""

    async def run(action: Action) -> object:
        done = await apply(action)
        created = done.get("id") if isinstance(done, dict) else None
        policy_id = created if action.change is Change.CREATE else action.payload.get("id")
        if policy_id:
            await ownership.remember(services, action.key, str(policy_id))
        return done

    return run


def _adopting(services: Services) -> Applier:
    async def run(action: Action) -> object:
        await ownership.remember(services, action.key, str(action.payload["id"]))
        return None

    return run


def _counts(shadow: Shadow, key: str) -> dict[str, Any]:
    policy = shadow.policies[key]
    return {"guests": shadow.total, "governed": policy.governed, "wouldAct": len(policy.would_act), "verb": policy.verb}


def exposure(wanted: GuestLifecyclePolicies, shadow: Shadow) -> Evidence:
    """Governed guests times the per-guest meter: the most a month of these policies can cost."""
    monthly = round(shadow.governed * wanted.price_per_governed_guest, 2)
    value = {
        "governedGuests": shadow.governed,
        "pricePerGovernedGuest": wanted.price_per_governed_guest,
        "currency": wanted.currency,
        "monthly": monthly,
    }
    note = (
        f"{shadow.governed} guest(s) governed by a policy that is or will be on x {wanted.price_per_governed_guest} "
        f"{wanted.currency} = at most {monthly} {wanted.currency} a month (billed per guest with a governance action "
        "that month)"
    )
    return Evidence(RESOURCE, "licence", "estimatedMonthlyExposure", value, LICENCE_EXPOSURE, note)


def _tenant_refusals(
    wanted: GuestLifecyclePolicies, tenant: list[dict[str, Any]], named: dict[str, list[dict[str, Any]]]
) -> list[Refusal]:
    found = []
    for key, policy in wanted.policies.items():
        if len(named.get(policy.display_name) or []) > 1:
            found.append(
                Refusal(
                    "lifecycle-policy-ambiguous",
                    f"{len(named[policy.display_name])} guest lifecycle policies are named {policy.display_name!r} "
                    f"({key}); rename the ones this product does not manage",
                )
            )
    missing = [p for p in wanted.policies.values() if p.display_name not in named]
    if len(tenant) + len(missing) > MAX_POLICIES:
        found.append(
            Refusal(
                "lifecycle-too-many-policies",
                f"the tenant has {len(tenant)} guest lifecycle policies and the file adds {len(missing)}: Microsoft "
                f"allows at most {MAX_POLICIES} per tenant",
            )
        )
    return found


def _flags(key: str, scope: PolicyScope, shadow: Shadow) -> list[str]:
    found = []
    for group_id, users in sorted(scope.nested_by_group.items()):
        found.append(
            f"lifecycle policy {key}: excluded group {group_id} reaches {len(users)} user(s) through nested groups; "
            f"the native engine honours {DIRECT_ONLY}, so it governs them although the file leaves them out"
        )
    return found


def _several(shadow: Shadow) -> list[str]:
    found = [
        f"lifecycle policy {key} never evaluates for {policy.ineffective} guest(s) in its scope: a higher-priority "
        "policy binds them"
        for key, policy in sorted(shadow.policies.items())
        if policy.ineffective
    ]
    if shadow.several:
        found.append(
            f"{shadow.several} guest(s) are in the scope of more than one guest lifecycle policy that is or will be "
            "on: only the highest-priority one binds each guest (priority in the file, or the tenant's order)"
        )
    return found


def _approval_warnings(wanted: GuestLifecyclePolicies, approvals: frozenset[str]) -> list[str]:
    found = []
    for approval in sorted(a for a in approvals if a.startswith(APPROVAL_PREFIX)):
        key = approval.removeprefix(APPROVAL_PREFIX)
        if key not in wanted.policies:
            found.append(f"--approve-enable {approval}: no such lifecycle policy (known: {', '.join(wanted.policies)})")
        elif not wanted.policies[key].enabled:
            found.append(f"--approve-enable {approval}: the desired state keeps it disabled (enabled: false)")
    return found


def _adoption_warnings(
    wanted: GuestLifecyclePolicies, approvals: frozenset[str], matched: ownership.Matched
) -> list[str]:
    found = []
    for approval in sorted(a for a in approvals if a.startswith(ownership.ADOPT_PREFIX)):
        key = approval.removeprefix(ownership.ADOPT_PREFIX)
        if key not in wanted.policies:
            found.append(f"--approve-enable {approval}: no such lifecycle policy (known: {', '.join(wanted.policies)})")
        elif key not in matched.adopted:
            found.append(
                f"--approve-enable {approval}: nothing to adopt, the policy managed as {key} is this product's"
            )
    return found


def _unmanaged(wanted: GuestLifecyclePolicies, tenant: list[dict[str, Any]]) -> list[str]:
    names = {p.display_name for p in wanted.policies.values()}
    others: Counter[bool] = Counter(bool(p.get("isEnabled")) for p in tenant if p.get("displayName") not in names)
    if not others:
        return []
    return [
        f"the tenant has {sum(others.values())} guest lifecycle policy(ies) the desired state does not name "
        f"({others[True]} on): left alone, but they judge guests too"
    ]


def _namer(reads: GuestReads) -> Callable[[str], Awaitable[str]]:
    async def name(object_id: str) -> str:
        user = await reads.get_user(object_id)
        return name_of(user) if user is not None else f"{object_id} (no longer in the directory)"

    return name
