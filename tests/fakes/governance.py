"""A fake of the governance Graph port: access reviews, connected organisations and entitlement management
stored as Graph JSON, with the rewrites Microsoft's examples show Graph making to stored review definitions."""

from __future__ import annotations

import copy
import uuid
from typing import Any

from lifecycle.errors import PermissionDeniedError
from lifecycle.governance.ports import (
    CATALOG_RESOURCES,
    CATALOGS,
    ORGANIZATIONS,
    PACKAGES,
    POLICIES,
    REVIEW_INSTANCES,
    REVIEWS,
    ROLE_SCOPES,
)


class FakeGovernanceGraph:
    """Stores Graph JSON per kind; packages belong to a catalog and policies to a package, as in Graph.

    Catalog resources (groups) and role scopes keep their parent's id under ``_parent``, which list hides.
    Review instances are what a test puts in ``instances`` (definition id -> instances)."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, dict[str, Any]]] = {
            k: {} for k in (REVIEWS, ORGANIZATIONS, CATALOGS, PACKAGES, POLICIES, CATALOG_RESOURCES, ROLE_SCOPES)
        }
        self.instances: dict[str, list[dict[str, Any]]] = {}
        self.settings: dict[str, Any] = {
            "externalUserLifecycleAction": "none",
            "durationUntilExternalUserDeletedAfterBlocked": "P30D",
        }
        self.writes: list[tuple[str, str]] = []
        self.refuse: set[str] = set()  # kinds whose creates are denied
        self.rewrite_reviews = False  # store review definitions as Graph's examples show them
        self.puts: list[dict[str, Any]] = []  # review definition bodies sent to update

    async def list(self, kind: str, parent_id: str | None = None) -> list[dict[str, Any]]:
        if kind == REVIEW_INSTANCES:
            return copy.deepcopy(self.instances.get(parent_id or "", []))
        items = list(self.objects[kind].values())
        if kind == PACKAGES and parent_id:
            items = [i for i in items if i["catalog"]["id"] == parent_id]
        if kind == POLICIES and parent_id:
            items = [i for i in items if i["accessPackage"]["id"] == parent_id]
        if kind in (CATALOG_RESOURCES, ROLE_SCOPES):
            items = [{k: v for k, v in i.items() if k != "_parent"} for i in items if i["_parent"] == parent_id]
        if kind == ORGANIZATIONS:
            # The list example (entitlementmanagement-list-connectedorganizations.md) shows an Entra tenant
            # source by its displayName only.
            items = [{**i, "identitySources": [_without_tenant(s) for s in i["identitySources"]]} for i in items]
        return copy.deepcopy(items)

    async def find_organizations(self, tenant_id: str) -> list[dict[str, Any]]:
        return copy.deepcopy(
            [
                o
                for o in self.objects[ORGANIZATIONS].values()
                if any(str(s.get("tenantId", "")).lower() == tenant_id.lower() for s in o.get("identitySources") or [])
            ]
        )

    async def get_settings(self) -> dict[str, Any]:
        return dict(self.settings)

    async def create(self, kind: str, body: dict[str, Any], parent_id: str | None = None) -> dict[str, Any]:
        if kind in self.refuse:
            raise PermissionDeniedError("Insufficient privileges", status=403, code="Authorization_RequestDenied")
        stored = {"id": str(uuid.uuid4()), **copy.deepcopy(body)}
        if kind == REVIEWS and self.rewrite_reviews:
            stored = graph_stored_review(stored)
        if kind == CATALOG_RESOURCES:  # the resource the request adds, not the request
            group_id = body["resource"]["originId"]
            stored = {"id": stored["id"], "displayName": f"group {group_id}", "originId": group_id}
            stored.update(originSystem="AadGroup", _parent=body["catalog"]["id"])
        if kind == ROLE_SCOPES:
            stored = self.role_scope(body["role"]["originId"], body["scope"]["originId"], parent_id)
        self.objects[kind][stored["id"]] = stored
        self.writes.append(("create", kind))
        answer = copy.deepcopy({k: v for k, v in stored.items() if k != "_parent"})
        if kind == ORGANIZATIONS:
            answer["identitySources"] = []  # as the create example answers (entitlementmanagement-post-...)
        return answer

    @staticmethod
    def role_scope(role: str, scope: str, package_id: str | None) -> dict[str, Any]:
        return {
            "id": str(uuid.uuid4()),
            "role": {"displayName": role.split("_")[0], "originId": role, "originSystem": "AadGroup"},
            "scope": {"originId": scope, "originSystem": "AadGroup", "isRootScope": True},
            "_parent": package_id,
        }

    async def update(self, kind: str, object_id: str | None, body: dict[str, Any]) -> None:
        self.writes.append(("update", kind))
        if kind == REVIEWS:
            self.puts.append(copy.deepcopy(body))
            body = graph_stored_review(body) if self.rewrite_reviews else body
        if object_id is None:
            self.settings.update(body)
        else:
            self.objects[kind][object_id].update(copy.deepcopy(body))

    async def delete(self, kind: str, object_id: str, parent_id: str | None = None) -> None:
        self.writes.append(("delete", kind))
        if kind in (CATALOG_RESOURCES, ROLE_SCOPES):
            assert self.objects[kind][object_id]["_parent"] == parent_id
        del self.objects[kind][object_id]

    def only(self, kind: str, **match: Any) -> dict[str, Any]:
        found = [o for o in self.objects[kind].values() if all(o.get(k) == v for k, v in match.items())]
        assert len(found) == 1, found
        return found[0]


def _graph_query(query: str, count: str | None = None) -> str:
    if count and "$filter=" in query and "$count=" not in query:
        path, _, options = query.partition("?")
        query = f"{path}?$count=true&{options}" if count == "first" else f"{query}&$count=true"
    return f"/v1.0{query}" if query.startswith("/") and not query.startswith("/v1.0/") else query


def graph_stored_review(body: dict[str, Any]) -> dict[str, Any]:
    """A definition as Microsoft's get, list and create examples show Graph returning it: absolute queries
    under /v1.0, $count=true added, noEnd as numbered until 9999-12-31, user reviewers with queryRoot decisions."""
    stored = copy.deepcopy(body)
    for name, count in (("scope", "first"), ("instanceEnumerationScope", "last")):
        if stored.get(name):
            stored[name] = {**stored[name], "query": _graph_query(stored[name]["query"], count), "queryRoot": None}
    for name in ("reviewers", "fallbackReviewers"):
        stored[name] = [
            {**r, "query": _graph_query(r["query"]), "queryRoot": r.get("queryRoot") or "decisions"}
            for r in stored.get(name) or []
        ]
    span = stored["settings"]["recurrence"]["range"]
    if span["type"] == "noEnd":
        span.update(type="numbered", numberOfOccurrences=0, endDate="9999-12-31", recurrenceTimeZone=None)
    stored["settings"]["recurrence"]["pattern"].update(month=0, daysOfWeek=[], firstDayOfWeek="sunday")
    return stored


def _without_tenant(source: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in source.items() if k != "tenantId"}
