"""Which tenant policy is the one the product manages under a key: by the id it created or adopted, not by name alone.

A display name is anyone's to change in the admin center. Matched by name only, a policy renamed into the file's name
(or created under it after the product's own was deleted) would be adopted silently and rewritten to the file's
definition, while the product's own policy, renamed away, would go on acting unmanaged. So the product remembers the
id of each policy it created or wrote (a job-ledger row ``lifecycle-policy:<key>``, written only by an enforced apply)
and matches that id first:

- the remembered policy is in the tenant: it is the one, whatever its name now (a rename is drift, put back);
- it is gone and another policy carries the file's name: that policy is someone else's. Its changes are shown, not
  written, until an operator adopts it: ``apply policies --approve-enable adopt-lifecycle-KEY``;
- nothing remembered (a policy created before this row existed, or in the admin center first): matched by name, as
  before, and remembered once the product writes it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lifecycle.models import WorkItem, WorkStatus
from lifecycle.plans import Action, Change, FieldDiff

if TYPE_CHECKING:
    from config.lifecycle_policies import GuestLifecyclePolicies
    from lifecycle.services import Services

KIND = "lifecycle-policy"
OWNERSHIP = "lifecyclePolicyOwnership"  # a plan resource written to the job ledger only, never to Graph
ADOPT_PREFIX = "adopt-lifecycle-"
WRITES = (Change.CREATE, Change.UPDATE, Change.DELETE, Change.RECREATE)


def marker_key(key: str) -> str:
    return f"{KIND}:{key}"


def adopt_key(key: str) -> str:
    return f"{ADOPT_PREFIX}{key}"


@dataclass
class Matched:
    existing: dict[str, dict[str, Any] | None] = field(default_factory=dict)  # by key: the tenant policy, if any
    foreign: dict[str, str] = field(default_factory=dict)  # by key: why its writes are held
    adopted: dict[str, str] = field(default_factory=dict)  # by key: the id an operator adopts in this apply


async def remembered(services: Services, wanted: GuestLifecyclePolicies) -> dict[str, str]:
    """The id the product last created or wrote under each key (absent: never)."""
    found = {}
    for key in wanted.policies:
        item = await services.work_items.get(marker_key(key))
        if item is not None and item.result.get("id"):
            found[key] = str(item.result["id"])
    return found


def match(
    wanted: GuestLifecyclePolicies,
    tenant: list[dict[str, Any]],
    owned: dict[str, str],
    approvals: frozenset[str],
) -> Matched:
    by_id = {str(p.get("id")): p for p in tenant}
    by_name: dict[str, dict[str, Any]] = {}
    for policy in tenant:
        by_name.setdefault(str(policy.get("displayName")), policy)
    found = Matched()
    for key, policy in wanted.policies.items():
        ours = owned.get(key)
        named = by_name.get(policy.display_name)
        if ours is not None and ours in by_id:
            found.existing[key] = by_id[ours]
            if named is not None and str(named.get("id")) != ours:
                found.foreign[key] = (
                    f"the policy this product manages as {key} ({ours}) was renamed to "
                    f"{by_id[ours].get('displayName')!r} and another policy ({named.get('id')}) now carries "
                    f"{policy.display_name!r}: rename one of them in the admin center"
                )
            continue
        found.existing[key] = named
        if ours is None or named is None:
            continue
        other = str(named.get("id"))
        if adopt_key(key) in approvals:
            found.adopted[key] = other
            continue
        found.foreign[key] = (
            f"the policy this product created as {key} ({ours}) is gone and {policy.display_name!r} is now another "
            f"policy ({other}), created or renamed by someone else: not changed. Adopt it with: apply policies "
            f"--approve-enable {adopt_key(key)}"
        )
    return found


def hold(key: str, why: str, actions: list[Action]) -> list[Action]:
    """The key's writes shown with the reason, never written."""
    mine = (f"{key}", f"{key}/")
    return [
        Action(a.resource, a.key, Change.REPORT, f"{why} (would: {a.reason})", a.diffs, a.payload)
        if a.change in WRITES and (a.key == mine[0] or a.key.startswith(mine[1]))
        else a
        for a in actions
    ]


def adoption(key: str, policy_id: str, name: str) -> Action:
    reason = f"adopted by an operator: the policy {policy_id} named {name!r} is the one managed as {key} from now on"
    return Action(OWNERSHIP, key, Change.UPDATE, reason, (FieldDiff("id", policy_id, None),), {"id": policy_id})


async def remember(services: Services, key: str, policy_id: str) -> None:
    """Record ``policy_id`` as the key's policy (after an enforced write, or an adoption)."""
    now = services.clock.now()
    item = await services.work_items.get(marker_key(key))
    if item is None:
        fresh = WorkItem(marker_key(key), KIND, WorkStatus.DONE, created=now, updated=now, result={"id": policy_id})
        await services.work_items.create(fresh)
        return
    if item.result.get("id") == policy_id:
        return
    item.result, item.updated = {**item.result, "id": policy_id}, now
    await services.work_items.save(item)
