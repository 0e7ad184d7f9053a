"""The order in which guest lifecycle policies bind guests: Graph's ``lifecyclePolicyPriorityConfiguration``.

Policies are evaluated in priority order and only the highest-priority matching policy binds a guest; the order is
one ``orderedPolicyIds`` list per subject type, the first being the highest
(https://learn.microsoft.com/graph/api/resources/identitygovernance-lifecyclepolicypriorityconfiguration?view=graph-rest-1.0),
changed with a PATCH that names every policy once
(https://learn.microsoft.com/graph/api/identitygovernance-lifecyclepolicypriorityconfiguration-update?view=graph-rest-1.0).

The file gives a policy a ``priority`` (1 first). The policies that have one take the top of the order in that
order; every other guest policy of the tenant, the file's or not, keeps its place relative to the others below them.
A policy not created yet is ordered on the run after its creation.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from config.lifecycle_policies import GuestLifecyclePolicies
from lifecycle.plans import Action, Change, FieldDiff

RESOURCE = "identityGovernance/lifecycleWorkflows/lifecyclePolicyPriorityConfigurations"
KEY = "user"  # the subject type guest policies are ordered under


@runtime_checkable
class LifecyclePolicyPriority(Protocol):
    """The guest policies' priority configuration. Raises lifecycle.errors.GraphError."""

    async def get_priority(self) -> dict[str, Any] | None:
        """The configuration (``orderedPolicyIds`` and its ``@odata.etag``); None when Graph has none."""
        ...

    async def set_priority(self, ordered_policy_ids: list[str], etag: str | None) -> None:
        """PATCH ``orderedPolicyIds``, guarded by ``etag`` (If-Match) when there is one."""
        ...


def current_order(config: dict[str, Any] | None, tenant: list[dict[str, Any]]) -> list[str]:
    """The tenant's order: the configuration's ids that are guest policies, then any policy it does not name."""
    ids = [str(p.get("id")) for p in tenant]
    named = [i for i in (config or {}).get("orderedPolicyIds") or [] if i in ids]
    return named + [i for i in ids if i not in named]


def desired_order(
    wanted: GuestLifecyclePolicies, existing: dict[str, dict[str, Any] | None], order: list[str]
) -> list[str]:
    first = [
        str(existing[key]["id"])  # type: ignore[index]
        for key, policy in sorted(wanted.policies.items(), key=lambda item: item[1].priority or 0)
        if policy.priority is not None and existing.get(key) is not None
    ]
    return first + [i for i in order if i not in first]


def evaluation_keys(
    wanted: GuestLifecyclePolicies, existing: dict[str, dict[str, Any] | None], order: list[str]
) -> list[str]:
    """The file's policies in the order they will bind guests once the plan is applied: by desired order for those
    that exist, then those not created yet (ordered by their priority, last among them those without)."""
    keys_by_id = {str(p["id"]): key for key, p in existing.items() if p is not None}
    ordered = [keys_by_id[i] for i in desired_order(wanted, existing, order) if i in keys_by_id]
    missing = sorted(
        (key for key in wanted.policies if key not in ordered), key=lambda key: wanted.policies[key].priority or 99
    )
    return ordered + missing


def plan_priority(
    wanted: GuestLifecyclePolicies,
    existing: dict[str, dict[str, Any] | None],
    tenant: list[dict[str, Any]],
    config: dict[str, Any] | None,
) -> Action | None:
    """The order to write when the file gives priorities and the tenant's order differs; None when it gives none."""
    if not any(p.priority is not None for p in wanted.policies.values()):
        return None
    order = current_order(config, tenant)
    want = desired_order(wanted, existing, order)
    names = {str(p.get("id")): str(p.get("displayName")) for p in tenant}
    pending = sorted(k for k, p in wanted.policies.items() if p.priority is not None and existing.get(k) is None)
    note = f"; not created yet, ordered on the next run: {', '.join(pending)}" if pending else ""
    if want == order:
        return Action(RESOURCE, KEY, Change.NONE, "the guest policies' priority order matches" + note)
    diffs = (FieldDiff("orderedPolicyIds", [names[i] for i in want], [names[i] for i in order]),)
    payload = {"body": {"orderedPolicyIds": want}, "etag": (config or {}).get("@odata.etag")}
    reason = "the guest policies' priority order differs: only the highest-priority matching policy binds a guest"
    return Action(RESOURCE, KEY, Change.UPDATE, reason + note, diffs, payload)


def applier(port: LifecyclePolicyPriority):  # type: ignore[no-untyped-def]
    async def apply(action: Action) -> None:
        if action.change is not Change.UPDATE:
            raise ValueError(f"no way to apply {action.change.value} on {action.resource}")
        await port.set_priority(list(action.payload["body"]["orderedPolicyIds"]), action.payload.get("etag"))

    return apply
