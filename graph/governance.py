"""The GovernanceGraph port on Microsoft Graph: access review definitions and entitlement management as JSON.

Like graph.policies, this gateway moves Graph JSON rather than SDK models: the planner compares JSON, and
kiota serialises ``timedelta`` fields (approval and expiration durations) as "14 days, 0:00:00" instead of
ISO 8601, which Graph refuses. Requests still go through the SDK's request adapter, so authentication,
middleware and the ODataError mapping (graph.errors) are the same as everywhere else.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote as url_quote

from kiota_abstractions.method import Method
from kiota_abstractions.request_information import RequestInformation
from msgraph import GraphServiceClient
from msgraph.generated.models.o_data_errors.o_data_error import ODataError

from graph.errors import graph_call
from lifecycle.governance.ports import CATALOGS, ORGANIZATIONS, PACKAGES, POLICIES, REVIEWS, SETTINGS

ERRORS: dict[str, Any] = {"XXX": ODataError}
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
        self._adapter = client.request_adapter
        self._v1 = self._adapter.base_url.rstrip("/")

    @classmethod
    def from_settings(cls, settings: Any, credential: Any) -> GraphGovernance:
        from graph.client import build_graph_client

        client = build_graph_client(credential=credential, base_url=settings.graph_base_url, scope=settings.graph_scope)
        return cls(client)

    async def _send(self, method: Method, url: str, body: Any = None) -> Any:
        info = RequestInformation(method)
        info.url = url
        info.headers.try_add("Accept", "application/json")
        if body is not None:
            info.set_stream_content(json.dumps(body).encode(), "application/json")
        raw = await graph_call(lambda: self._adapter.send_primitive_async(info, "bytes", ERRORS))
        return json.loads(raw) if raw else None

    async def _collection(self, url: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        next_url: str | None = f"{url}{'&' if '?' in url else '?'}$top={PAGE_SIZE}"
        while next_url:
            page = await self._send(Method.GET, next_url) or {}
            items.extend(page.get("value") or [])
            next_url = page.get("@odata.nextLink")
        return items

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
        return await self._send(Method.GET, self._url(SETTINGS)) or {}

    async def create(self, kind: str, body: dict[str, Any]) -> dict[str, Any]:
        return await self._send(Method.POST, self._url(kind), body) or {}

    async def update(self, kind: str, object_id: str | None, body: dict[str, Any]) -> None:
        if kind == SETTINGS:
            await self._send(Method.PATCH, self._url(SETTINGS), body)
        elif kind in REPLACED:
            await self._send(Method.PUT, self._url(kind, object_id), body)
        else:
            await self._send(Method.PATCH, self._url(kind, object_id), body)

    async def delete(self, kind: str, object_id: str) -> None:
        await self._send(Method.DELETE, self._url(kind, object_id))
