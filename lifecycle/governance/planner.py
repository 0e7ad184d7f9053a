"""Desired against actual: one Action per governed object, with field-level diffs and a reason."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from lifecycle.governance.desired import DesiredResource
from lifecycle.governance.ports import ORGANIZATIONS, POLICIES, REVIEWS, SETTINGS, GovernanceGraph
from lifecycle.plans import Action, Change, FieldDiff, Plan

JOB = "governance"


@dataclass
class Snapshot:
    """The tenant's governance objects as read, and the desired key each one was recognised as."""

    found: dict[str, dict[str, Any]] = field(default_factory=dict)  # desired key -> actual object

    def id_of(self, key: str) -> str | None:
        found = self.found.get(key)
        return found.get("id") if found else None


async def read_tenant(graph: GovernanceGraph, desired: list[DesiredResource]) -> Snapshot:
    """Read only what the desired state names; children are read only when their parent exists."""
    snapshot = Snapshot()
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for resource in desired:
        if resource.kind == SETTINGS:
            snapshot.found[resource.key] = await graph.get_settings()
            continue
        if resource.parent is not None:
            parent_id = snapshot.id_of(resource.parent)
            if parent_id is None:
                continue
            candidates = await graph.list(resource.kind, parent_id)
        else:
            if resource.kind not in by_kind:
                by_kind[resource.kind] = await graph.list(resource.kind)
            candidates = by_kind[resource.kind]
        taken = {id(v) for v in snapshot.found.values()}
        match = next((c for c in candidates if id(c) not in taken and _matches(resource, c)), None)
        if match is not None:
            snapshot.found[resource.key] = match
    return snapshot


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
    return plan


def _action(resource: DesiredResource, actual: dict[str, Any] | None, ids: dict[str, str | None]) -> Action:
    body = resolve(resource.body, ids)
    if actual is None:
        reason = "not in the tenant"
        if resource.parent and ids.get(resource.parent) is None:
            reason = f"not in the tenant (its parent {resource.parent} is created first)"
        return Action(resource.kind, resource.key, Change.CREATE, reason, payload={"body": resource.body})
    fixed = field_diffs(body, actual, resource.fixed)
    if fixed:
        return Action(
            resource.kind,
            resource.key,
            Change.RECREATE,
            "Graph cannot update " + ", ".join(sorted({d.field.split(".")[0] for d in fixed})) + ": delete and create",
            tuple(fixed),
            {"id": actual.get("id"), "body": resource.body},
        )
    diffs = field_diffs(body, actual, resource.managed)
    if not diffs:
        return Action(resource.kind, resource.key, Change.NONE, "matches the desired state")
    return Action(
        resource.kind,
        resource.key,
        Change.UPDATE,
        f"{len(diffs)} setting(s) drifted",
        tuple(diffs),
        {"id": actual.get("id"), "body": _update_body(resource)},
    )


def _update_body(resource: DesiredResource) -> dict[str, Any]:
    """Review definitions and assignment policies are replaced whole (PUT); the rest is patched."""
    if resource.kind in (REVIEWS, POLICIES):
        return resource.body
    return {k: v for k, v in resource.body.items() if k in resource.managed}
