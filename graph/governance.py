"""The GovernanceGraph port on Microsoft Graph: access review definitions and entitlement management as JSON.

Like graph.policies, this gateway moves Graph JSON rather than SDK models: the planner compares JSON, and
kiota serialises ``timedelta`` fields (approval and expiration durations) as "14 days, 0:00:00" instead of
ISO 8601, which Graph refuses. Requests still go through the SDK's request adapter, so authentication,
middleware and the ODataError mapping (graph.errors) are the same as everywhere else.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote as url_quote
from urllib.parse import urlencode

from kiota_abstractions.method import Method
from msgraph import GraphServiceClient

from graph.odata import quote
from graph.raw import RawGraph
from lifecycle.errors import GraphError
from lifecycle.governance.ports import (
    CATALOG_RESOURCES,
    CATALOGS,
    ORGANIZATIONS,
    PACKAGES,
    POLICIES,
    REVIEW_INSTANCES,
    REVIEWS,
    ROLE_SCOPES,
    SETTINGS,
)

PATHS = {
    REVIEWS: "/identityGovernance/accessReviews/definitions",
    ORGANIZATIONS: "/identityGovernance/entitlementManagement/connectedOrganizations",
    CATALOGS: "/identityGovernance/entitlementManagement/catalogs",
    PACKAGES: "/identityGovernance/entitlementManagement/accessPackages",
    POLICIES: "/identityGovernance/entitlementManagement/assignmentPolicies",
    SETTINGS: "/identityGovernance/entitlementManagement/settings",
}
# Groups enter and leave a catalog through resource requests (entitlementmanagement-post-resourcerequests).
RESOURCE_REQUESTS = "/identityGovernance/entitlementManagement/resourceRequests"
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
        if kind == CATALOG_RESOURCES and parent_id:
            return await self._collection(f"{self._url(CATALOGS, parent_id)}/resources")
        if kind == ROLE_SCOPES and parent_id:
            # accesspackage-list-resourcerolescopes: the package, expanded with its role scopes.
            url = f"{self._url(PACKAGES, parent_id)}?$expand=resourceRoleScopes($expand=role,scope)"
            return list((await self._raw.send(Method.GET, url) or {}).get("resourceRoleScopes") or [])
        if kind == REVIEW_INSTANCES and parent_id:
            return await self._collection(f"{self._url(REVIEWS, parent_id)}/instances")
        return await self._collection(self._url(kind))

    async def find_organizations(self, tenant_id: str) -> list[dict[str, Any]]:
        """By the identity-source filter of entitlementmanagement-list-connectedorganizations.md."""
        expression = (
            f"identitySources/any(is:is/microsoft.graph.azureActiveDirectoryTenant/tenantId eq {quote(tenant_id)})"
        )
        query = urlencode({"$filter": expression}, quote_via=url_quote)
        return await self._collection(f"{self._url(ORGANIZATIONS)}?{query}")

    async def get_settings(self) -> dict[str, Any]:
        return await self._raw.send(Method.GET, self._url(SETTINGS)) or {}

    async def create(self, kind: str, body: dict[str, Any], parent_id: str | None = None) -> dict[str, Any]:
        if kind == CATALOG_RESOURCES:
            return await self._add_to_catalog(body)
        if kind == ROLE_SCOPES:
            return await self._raw.send(Method.POST, f"{self._url(PACKAGES, parent_id)}/resourceRoleScopes", body) or {}
        return await self._raw.send(Method.POST, self._url(kind), body) or {}

    async def _add_to_catalog(self, request: dict[str, Any]) -> dict[str, Any]:
        """POST the resource request, then read the resource it added: later objects refer to its id."""
        await self._raw.send(Method.POST, f"{self._v1}{RESOURCE_REQUESTS}", request)
        catalog_id, origin_id = request["catalog"]["id"], request["resource"]["originId"]
        url = f"{self._url(CATALOGS, catalog_id)}/resources?$filter=originId eq {quote(origin_id)}"
        added = await self._raw.collection(url)
        if not added:
            raise GraphError(f"the resource request for {origin_id} was accepted but the catalog does not list it")
        return added[0]

    async def update(self, kind: str, object_id: str | None, body: dict[str, Any]) -> None:
        if kind == SETTINGS:
            await self._raw.send(Method.PATCH, self._url(SETTINGS), body)
        elif kind in REPLACED:
            await self._raw.send(Method.PUT, self._url(kind, object_id), body)
        else:
            await self._raw.send(Method.PATCH, self._url(kind, object_id), body)

    async def delete(self, kind: str, object_id: str, parent_id: str | None = None) -> None:
        if kind == CATALOG_RESOURCES:
            request = {"requestType": "adminRemove", "resource": {"id": object_id}, "catalog": {"id": parent_id}}
            await self._raw.send(Method.POST, f"{self._v1}{RESOURCE_REQUESTS}", request)
        elif kind == ROLE_SCOPES:
            scope = url_quote(object_id, safe="")
            await self._raw.send(Method.DELETE, f"{self._url(PACKAGES, parent_id)}/resourceRoleScopes/{scope}")
        else:
            await self._raw.send(Method.DELETE, self._url(kind, object_id))
