"""Desired against actual: one Action per governed object, with field-level diffs and a reason."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any

from lifecycle.governance.ports import (
    CATALOG_RESOURCES,
    ORGANIZATIONS,
    PACKAGES,
    POLICIES,
    REVIEW_INSTANCES,
    REVIEWS,
    ROLE_SCOPES,
    SETTINGS,
    GovernanceGraph,
)
from lifecycle.governance.resource import DesiredResource
from lifecycle.governance.reviews import normal_definition, reviewers_updatable
from lifecycle.governance.reviews import update_body as review_update_body
from lifecycle.plans import Action, Change, FieldDiff, Plan

JOB = "governance"


@dataclass(frozen=True)
class Extra:
    """An object the desired state does not name under a parent whose children it governs."""

    kind: str
    key: str
    actual: dict[str, Any]
    parent_id: str
    reason: str


@dataclass
class Snapshot:
    """The tenant's governance objects as read, and the desired key each one was recognised as."""

    found: dict[str, dict[str, Any]] = field(default_factory=dict)  # desired key -> actual object
    extras: list[Extra] = field(default_factory=list)

    def id_of(self, key: str) -> str | None:
        found = self.found.get(key)
        return found.get("id") if found else None


class _Listings:
    """Each collection is read once per run."""

    def __init__(self, graph: GovernanceGraph) -> None:
        self._graph = graph
        self._read: dict[tuple[str, str | None], list[dict[str, Any]]] = {}

    async def __call__(self, kind: str, parent_id: str | None = None) -> list[dict[str, Any]]:
        if (kind, parent_id) not in self._read:
            self._read[(kind, parent_id)] = await self._graph.list(kind, parent_id)
        return self._read[(kind, parent_id)]


async def read_tenant(graph: GovernanceGraph, desired: list[DesiredResource]) -> Snapshot:
    """Read only what the desired state names; children are read only when their parent exists."""
    snapshot = Snapshot()
    listing = _Listings(graph)
    for resource in desired:
        if resource.kind == SETTINGS:
            snapshot.found[resource.key] = await graph.get_settings()
            continue
        parent_id = snapshot.id_of(resource.parent) if resource.parent is not None else None
        if resource.parent is not None and parent_id is None:
            continue
        taken_ids = {v.get("id") for v in snapshot.found.values()}
        if resource.kind == ORGANIZATIONS and "tenantId" in resource.match:
            # The service's filter on the source's tenant (documented); a read-back source may not show it.
            by_tenant = await graph.find_organizations(resource.match["tenantId"])
            found = next((o for o in by_tenant if o.get("id") not in taken_ids), None)
            if found is not None:
                snapshot.found[resource.key] = found
                continue
        candidates = await listing(resource.kind, parent_id)
        taken = {id(v) for v in snapshot.found.values()}
        match = next((c for c in candidates if id(c) not in taken and _matches(resource, c)), None)
        if match is not None:
            snapshot.found[resource.key] = match
    await _find_extras(desired, snapshot, listing)
    return snapshot


async def _find_extras(desired: list[DesiredResource], snapshot: Snapshot, listing: _Listings) -> None:
    """Children the desired state does not name under the parents it owns: first the roles packages grant,
    then the catalog's groups, which are extra only when no access package in the catalog grants them once
    the extra roles are gone (a group another, ungoverned package uses is left alone)."""
    matched = {id(v) for v in snapshot.found.values()}
    owners = [(r, kind) for r in desired for kind in r.owns if snapshot.id_of(r.key) is not None]
    for owner, kind in sorted(owners, key=lambda pair: pair[1] != ROLE_SCOPES):
        parent_id = snapshot.id_of(owner.key) or ""
        for child in await listing(kind, parent_id):
            if id(child) in matched:
                continue
            if kind == ROLE_SCOPES:
                role = (child.get("role") or {}).get("originId")
                key, reason = f"{owner.key}/role:{role}", "the package grants a role the desired state does not name"
            elif child.get("originSystem") != "AadGroup" or await _granted_in_catalog(
                child, parent_id, snapshot, listing
            ):
                continue
            else:
                key = f"{owner.key}/resource:{child.get('originId')}"
                reason = "a group in the catalog that no partner's groupMemberships names and no package grants"
            snapshot.extras.append(Extra(kind, key, child, parent_id, reason))


async def _granted_in_catalog(
    resource: dict[str, Any], catalog_id: str, snapshot: Snapshot, listing: _Listings
) -> bool:
    leaving = {id(e.actual) for e in snapshot.extras}
    for package in await listing(PACKAGES, catalog_id):
        for role_scope in await listing(ROLE_SCOPES, package["id"]):
            granted = str((role_scope.get("scope") or {}).get("originId", "")).lower()
            if id(role_scope) not in leaving and granted == str(resource.get("originId", "")).lower():
                return True
    return False


def _matches(resource: DesiredResource, actual: dict[str, Any]) -> bool:
    if resource.kind == REVIEWS:
        # The key marker survives a rename; a definition made by hand with the same name is adopted.
        marker = resource.match["marker"]
        return (
            marker in (actual.get("descriptionForAdmins") or "")
            or actual.get("displayName") == resource.body["displayName"]
        )
    if resource.kind == ORGANIZATIONS:
        for source in actual.get("identitySources") or []:
            if all(str(source.get(k, "")).lower() == v for k, v in resource.match.items()):
                return True
        return actual.get("displayName") == resource.body["displayName"]
    if resource.kind == CATALOG_RESOURCES:
        return all(str(actual.get(k, "")).lower() == v.lower() for k, v in resource.match.items())
    if resource.kind == ROLE_SCOPES:
        role = str((actual.get("role") or {}).get("originId", "")).lower()
        scope = str((actual.get("scope") or {}).get("originId", "")).lower()
        return (role, scope) == (resource.match["role"].lower(), resource.match["scope"].lower())
    return actual.get("displayName") == resource.body["displayName"]


def resolve(value: Any, ids: dict[str, str | None]) -> Any:
    """Replace every ``{"$ref": key}`` with the id of that object (None while it does not exist)."""
    if isinstance(value, dict):
        if set(value) == {"$ref"}:
            return ids.get(value["$ref"])
        return {k: resolve(v, ids) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, ids) for v in value]
    return value


def comparable(value: Any) -> Any:
    """Graph's echo of a body: null members dropped, lists of objects in a stable order."""
    if isinstance(value, dict):
        return {k: comparable(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        items = [comparable(v) for v in value]
        if all(isinstance(i, dict) for i in items):
            return sorted(items, key=lambda i: json.dumps(i, sort_keys=True))
        return items
    return value


def contains(want: Any, have: Any) -> bool:
    """``have`` says at least what ``want`` says: Graph echoes objects with defaults filled in."""
    if isinstance(want, dict):
        return isinstance(have, dict) and all(contains(v, have.get(k)) for k, v in want.items())
    if isinstance(want, list):
        if not isinstance(have, list) or len(want) != len(have):
            return False
        unused = list(have)
        for item in want:
            match = next((i for i, candidate in enumerate(unused) if contains(item, candidate)), None)
            if match is None:
                return False
            unused.pop(match)
        return True
    return want == have


def _leaves(value: Any, path: tuple[str, ...]) -> list[tuple[tuple[str, ...], Any]]:
    if isinstance(value, dict) and value:
        found: list[tuple[tuple[str, ...], Any]] = []
        for name, child in value.items():
            found += _leaves(child, (*path, name))
        return found
    return [(path, value)]


def _lookup(actual: Any, path: tuple[str, ...]) -> Any:
    for part in path:
        if not isinstance(actual, dict):
            return None
        actual = actual.get(part)
    return actual


def field_diffs(want: dict[str, Any], have: dict[str, Any], fields: tuple[str, ...]) -> list[FieldDiff]:
    diffs = []
    for name in fields:
        wanted = comparable(want.get(name))
        for path, value in _leaves(wanted, (name,)):
            actual = comparable(_lookup(have, path))
            if not contains(value, actual) and not (value in ([], {}) and actual is None):
                diffs.append(FieldDiff(".".join(path), value, actual))
    return diffs


def plan_governance(desired: list[DesiredResource], snapshot: Snapshot) -> Plan:
    ids = {r.key: snapshot.id_of(r.key) for r in desired}
    plan = Plan(JOB)
    for resource in desired:
        plan.actions.append(_action(resource, snapshot.found.get(resource.key), ids))
    plan.actions += [_removal(extra) for extra in snapshot.extras]
    return plan


def _removal(extra: Extra) -> Action:
    if extra.kind == ROLE_SCOPES:
        role, scope = extra.actual.get("role") or {}, extra.actual.get("scope") or {}
        diffs = (FieldDiff("role", None, f"{role.get('displayName')} ({role.get('originId')})"),)
        diffs += (FieldDiff("scope", None, scope.get("originId")),)
    else:
        diffs = (FieldDiff("resource", None, f"{extra.actual.get('displayName')} ({extra.actual.get('originId')})"),)
    payload = {"id": extra.actual.get("id"), "parentId": extra.parent_id}
    return Action(extra.kind, extra.key, Change.DELETE, extra.reason, diffs, payload)


def _action(resource: DesiredResource, actual: dict[str, Any] | None, ids: dict[str, str | None]) -> Action:
    body = resolve(resource.body, ids)
    if actual is None:
        reason = {
            CATALOG_RESOURCES: "the group is not in the catalog (adding it needs Group.ReadWrite.All as well)",
            ROLE_SCOPES: "the package does not grant membership of this group",
        }.get(resource.kind, "not in the tenant")
        if resource.parent and ids.get(resource.parent) is None:
            reason += f" (its parent {resource.parent} is created first)"
        payload = {"body": resource.body, **({"parent": resource.parent} if resource.parent else {})}
        return Action(resource.kind, resource.key, Change.CREATE, reason, payload=payload)
    # Review definitions are compared as Graph means them: it stores them rewritten (lifecycle.governance.reviews).
    want, have = (normal_definition(body), normal_definition(actual)) if resource.kind == REVIEWS else (body, actual)
    fixed = field_diffs(want, have, resource.fixed)
    if fixed:
        return Action(
            resource.kind,
            resource.key,
            Change.RECREATE,
            "Graph cannot update " + ", ".join(sorted({d.field.split(".")[0] for d in fixed})) + ": delete and create",
            tuple(fixed),
            {"id": actual.get("id"), "body": resource.body},
        )
    diffs = field_diffs(want, have, resource.managed)
    if not diffs:
        return Action(resource.kind, resource.key, Change.NONE, "matches the desired state")
    if resource.kind == REVIEWS and _reviewers_differ(diffs) and not reviewers_updatable(want, have):
        return Action(
            resource.kind,
            resource.key,
            Change.RECREATE,
            "Graph updates reviewers only while individual users review (before and after): delete and create",
            tuple(diffs),
            {"id": actual.get("id"), "body": resource.body},
        )
    return Action(
        resource.kind,
        resource.key,
        Change.UPDATE,
        f"{len(diffs)} setting(s) drifted",
        tuple(diffs),
        {"id": actual.get("id"), "body": _update_body(resource, body, actual)},
    )


def _reviewers_differ(diffs: list[FieldDiff]) -> bool:
    return any(d.field == "reviewers" or d.field.startswith("reviewers.") for d in diffs)


def _update_body(resource: DesiredResource, body: dict[str, Any], actual: dict[str, Any]) -> dict[str, Any]:
    """Review definitions and assignment policies are replaced whole (PUT); the rest is patched. A review's
    PUT carries back what is unchanged as Graph stores it."""
    if resource.kind == REVIEWS:
        return review_update_body(body, actual)
    if resource.kind == POLICIES:
        return resource.body
    return {k: v for k, v in resource.body.items() if k in resource.managed}


async def explain_review_recreates(plan: Plan, graph: GovernanceGraph) -> None:
    """Say in each review recreate what deleting the definition loses: its instances and their decisions."""
    for index, action in enumerate(plan.actions):
        if action.resource != REVIEWS or action.change is not Change.RECREATE:
            continue
        definition_id = action.payload["id"]
        instances = await graph.list(REVIEW_INSTANCES, definition_id)
        started = [i for i in instances if i.get("status") != "NotStarted"]
        running = [i for i in started if i.get("status") == "InProgress"]
        loss = (
            f"deleting definition {definition_id} loses its {len(started)} instance(s) so far "
            f"({len(running)} in progress) and every decision recorded in them"
        )
        plan.actions[index] = replace(
            action,
            reason=f"{action.reason}; {loss}",
            payload={**action.payload, "instances": len(started), "inProgress": len(running)},
        )
