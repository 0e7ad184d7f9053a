"""The GovernanceGraph port on Microsoft Graph: access review definitions and entitlement management as JSON.

Like graph.policies, this gateway moves Graph JSON rather than SDK models: the planner compares JSON, and
kiota serialises ``timedelta`` fields (approval and expiration durations) as "14 days, 0:00:00" instead of
ISO 8601, which Graph refuses. Requests still go through the SDK's request adapter, so authentication,
middleware and the ODataError mapping (graph.errors) are the same as everywhere else.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote as url_quote

from kiota_abstractions.method import Method
from msgraph import GraphServiceClient

from graph.raw import RawGraph
from lifecycle.governance.ports import CATALOGS, ORGANIZATIONS, PACKAGES, POLICIES, REVIEWS, SETTINGS

PATHS = {
    REVIEWS: "/identityGovernance/accessReviews/definitions",
    ORGANIZATIONS: "/identityGovernance/entitlementManagement/connectedOrganizations",
    CATALOGS: "/identityGovernance/entitlementManagement/catalogs",
    PACKAGES: "/identityGovernance/entitlementManagement/accessPackages",
    POLICIES: "/identityGovernance/entitlementManagement/assignmentPolicies",
    SETTINGS: "/identityGovernance/entitlementManagement/settings",
}
# Graph updates these by replacing the whole object (PUT); the others take a PATCH of the changed fields.
REPLACED = frozenset({REVIEWS, POLICIES})
PAGE_SIZE = 100  # access reviews and entitlement management page with $top/$skip; 100 is the default


class GraphGovernance:
    def __init__(self, client: GraphServiceClient) -> None:
        self._raw = RawGraph(client)
        self._v1 = self._raw.v1

    @classmethod
    def from_settings(cls, settings: Any, credential: Any) -> GraphGovernance:
        from graph.client import build_graph_client

        client = build_graph_client(credential=credential, base_url=settings.graph_base_url, scope=settings.graph_scope)
        return cls(client)

    async def _collection(self, url: str) -> list[dict[str, Any]]:
        return await self._raw.collection(f"{url}{'&' if '?' in url else '?'}$top={PAGE_SIZE}")

    def _url(self, kind: str, object_id: str | None = None) -> str:
        base = f"{self._v1}{PATHS[kind]}"
        return f"{base}/{url_quote(object_id, safe='')}" if object_id else base

    async def list(self, kind: str, parent_id: str | None = None) -> list[dict[str, Any]]:
        if kind == PACKAGES and parent_id:
            return await self._collection(f"{self._url(CATALOGS, parent_id)}/accessPackages")
        if kind == POLICIES and parent_id:
            return await self._collection(f"{self._url(PACKAGES, parent_id)}/assignmentPolicies")
        return await self._collection(self._url(kind))

    async def get_settings(self) -> dict[str, Any]:
        return await self._raw.send(Method.GET, self._url(SETTINGS)) or {}

    async def create(self, kind: str, body: dict[str, Any]) -> dict[str, Any]:
        return await self._raw.send(Method.POST, self._url(kind), body) or {}

    async def update(self, kind: str, object_id: str | None, body: dict[str, Any]) -> None:
        if kind == SETTINGS:
            await self._raw.send(Method.PATCH, self._url(SETTINGS), body)
        elif kind in REPLACED:
            await self._raw.send(Method.PUT, self._url(kind, object_id), body)
        else:
            await self._raw.send(Method.PATCH, self._url(kind, object_id), body)

    async def delete(self, kind: str, object_id: str) -> None:
        await self._raw.send(Method.DELETE, self._url(kind, object_id))
