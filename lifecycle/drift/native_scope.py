"""Who a guest lifecycle policy leaves out, as the native engine sees it and as this product sees it.

The native policy's scope excludes the members of up to 10 groups. The product reads each excluded group's
members twice: directly (what the native engine honours: direct membership only) and through nested groups (what
this product's own protected group honours). A guest reached only through a nested group is flagged: the native
engine would judge it although the file meant to leave it out. Groups may be named by display name; a name that
finds no group, or more than one, is refused rather than guessed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from config.lifecycle_policies import MAX_EXCLUDED_GROUPS, NativePolicy
from lifecycle.errors import GraphError
from lifecycle.plans import Refusal

DIRECT_ONLY = "direct membership only"
# The Graph permission the group look-ups need (group-list, group-list-members), named in what the plan says.
GROUP_READ = "GroupMember.Read.All"


@dataclass(frozen=True, slots=True)
class GroupMembers:
    """A group's direct members: users and groups, by object id."""

    users: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()


@runtime_checkable
class ScopeGroups(Protocol):
    """The groups a policy's scope names. Raises lifecycle.errors.GraphError."""

    async def groups_named(self, display_name: str) -> list[str]:
        """The object ids of the groups with exactly this display name."""
        ...

    async def direct_members(self, group_id: str) -> GroupMembers:
        """The group's direct members; a group that does not exist has none."""
        ...


@dataclass
class PolicyScope:
    """One policy's exclusions: the group ids it sends and who they leave out, natively and transitively."""

    group_ids: tuple[str, ...] = ()
    direct: frozenset[str] = frozenset()  # guests the native engine leaves out
    transitive: frozenset[str] = frozenset()  # everyone the file means to leave out (nested groups included)
    protected: frozenset[str] = frozenset()  # the protected group's members, nested groups included
    nested_by_group: dict[str, frozenset[str]] = field(default_factory=dict)  # group -> users only nested reach
    refusals: list[Refusal] = field(default_factory=list)
    unreadable: str | None = None  # why the excluded groups' members are not known (then nobody counts as excluded)

    @property
    def nested_only(self) -> frozenset[str]:
        return self.transitive - self.direct


async def resolve_scope(
    key: str, policy: NativePolicy, protected_group: str | None, groups: ScopeGroups | None
) -> PolicyScope:
    """The policy's excluded group ids (the protected group always among them) and their members."""
    scope = PolicyScope()
    ids: list[str] = []
    for entry in policy.excluded_groups:
        if policy.is_group_id[entry]:
            ids.append(entry)
            continue
        if groups is None:
            scope.refusals.append(
                Refusal(
                    "lifecycle-groups-unreadable", f"{key}: group {entry!r} is named, but no group reads exist here"
                )
            )
            continue
        try:
            found = await groups.groups_named(entry)
        except GraphError as exc:
            scope.refusals.append(
                Refusal(
                    "lifecycle-groups-unreadable",
                    f"{key}: group {entry!r} cannot be looked up ({type(exc).__name__}: {exc}); finding a group by "
                    f"name and reading its members needs {GROUP_READ}",
                )
            )
            continue
        if len(found) != 1:
            problem = "no group" if not found else f"{len(found)} groups"
            scope.refusals.append(
                Refusal("lifecycle-group-unresolved", f"{key}: {problem} named {entry!r}; name it by object id")
            )
            continue
        ids.append(found[0].lower())
    if protected_group and protected_group not in ids:
        ids.append(protected_group)  # the product's protected guests are never left to the native engine
    scope.group_ids = tuple(dict.fromkeys(ids))
    if len(scope.group_ids) > MAX_EXCLUDED_GROUPS:
        scope.refusals.append(
            Refusal(
                "lifecycle-too-many-excluded-groups",
                f"{key}: {len(scope.group_ids)} excluded groups (the protected group included); Microsoft allows at "
                f"most {MAX_EXCLUDED_GROUPS} per policy and the rest would be ignored",
            )
        )
    if not scope.group_ids:
        return scope
    if groups is None:
        scope.unreadable = "this deployment has no reads of the excluded groups' members"
        return scope
    direct: set[str] = set()
    transitive: set[str] = set()
    try:
        for group_id in scope.group_ids:
            members = await groups.direct_members(group_id)
            reached = await _transitive(group_id, groups)
            direct |= members.users
            transitive |= reached
            if group_id == protected_group:
                scope.protected = frozenset(reached)
            if reached - members.users:
                scope.nested_by_group[group_id] = frozenset(reached - members.users)
    except GraphError as exc:
        scope.unreadable = (
            f"the excluded groups' members could not be read ({type(exc).__name__}: {exc}; needs {GROUP_READ})"
        )
        scope.nested_by_group = {}
        return scope
    scope.direct, scope.transitive = frozenset(direct), frozenset(transitive)
    return scope


async def _transitive(group_id: str, groups: ScopeGroups) -> set[str]:
    """Every user under ``group_id``, nested groups followed once each (a cycle ends)."""
    seen, users, todo = {group_id}, set(), [group_id]
    while todo:
        members = await groups.direct_members(todo.pop())
        users |= members.users
        for nested in members.groups - seen:
            seen.add(nested)
            todo.append(nested)
    return users


def scope_body(scope: PolicyScope) -> dict[str, object] | None:
    """The scope as the policy is written: all guests but the excluded groups' members (null: all guests)."""
    if not scope.group_ids:
        return None
    return {
        "@odata.type": "#microsoft.graph.identityGovernance.allExcludingGroupsSubjectSet",
        "excludedGroups": [{"id": group_id} for group_id in scope.group_ids],
    }


def scope_group_ids(scope: object) -> list[str]:
    """The excluded group ids of a policy's scope as read (ids or objects with an id), sorted."""
    if not isinstance(scope, dict):
        return []
    found = []
    for group in scope.get("excludedGroups") or []:
        group_id = group.get("id") if isinstance(group, dict) else group
        if group_id:
            found.append(str(group_id).lower())
    return sorted(set(found))
