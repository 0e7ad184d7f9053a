"""The TenantPolicies port on Microsoft Graph: the tenant's external-collaboration policies as Graph JSON.

The desired-state file mirrors Graph's shapes and the drift planner compares JSON, so this gateway moves
JSON rather than SDK models: a model round trip would drop what matters here (an explicit ``null`` is how
a partner setting inherits the default) and the v1.0 SDK has no models for the beta B2B management
policy. Requests still go through the SDK's request adapter: the same authentication, middleware and
ODataError mapping (graph.errors) as every other gateway.

Conditional Access allows about one request per second per tenant and throttles without Retry-After,
so its reads are paced and backed off here.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote as url_quote
from urllib.parse import urlencode

from kiota_abstractions.method import Method
from msgraph import GraphServiceClient

from graph.odata import quote
from graph.raw import RawGraph
from lifecycle.errors import NotFoundError, ThrottledError

XTAP = "/policies/crossTenantAccessPolicy"
REDEMPTION_ORDER = "invitationRedemptionIdentityProviderConfiguration"
B2B_POLICIES = "/policies/b2bManagementPolicies"
FEDERATION_TYPE = "microsoft.graph.samlOrWsFedExternalDomainFederation"
FEDERATIONS = f"/directory/federationConfigurations/{FEDERATION_TYPE}"
CONDITIONAL_ACCESS = "/identity/conditionalAccess/policies"
CONDITIONAL_ACCESS_INTERVAL = 1.0  # seconds between Conditional Access requests (1 request/s per tenant)
CONDITIONAL_ACCESS_ATTEMPTS = 5


class GraphPolicies:
    def __init__(
        self,
        client: GraphServiceClient,
        *,
        beta_url: str,
        conditional_access_interval: float = CONDITIONAL_ACCESS_INTERVAL,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._raw = RawGraph(client)
        self._v1 = self._raw.v1
        self._beta = beta_url.rstrip("/")
        self._interval = conditional_access_interval
        self._sleep = sleep
        self._last_conditional_access: float | None = None

    @classmethod
    def from_settings(cls, settings: Any, credential: Any) -> GraphPolicies:
        from graph.client import build_graph_client

        client = build_graph_client(credential=credential, base_url=settings.graph_base_url, scope=settings.graph_scope)
        return cls(client, beta_url=settings.graph_beta_url)

    # --- transport ----------------------------------------------------------------------------------

    async def _collection(self, url: str) -> list[dict[str, Any]]:
        return await self._raw.collection(url)

    # --- cross-tenant access ------------------------------------------------------------------------

    async def get_policy(self) -> dict[str, Any]:
        return await self._raw.send(Method.GET, f"{self._v1}{XTAP}")

    async def get_default(self) -> dict[str, Any]:
        return await self._raw.send(Method.GET, f"{self._v1}{XTAP}/default")

    async def get_redemption_order(self) -> dict[str, Any] | None:
        """The default policy's invitationRedemptionIdentityProviderConfiguration; None when absent or null."""
        value = (await self.get_default()).get(REDEMPTION_ORDER)
        return value if isinstance(value, dict) else None

    async def update_default(self, body: dict[str, Any]) -> None:
        await self._raw.send(Method.PATCH, f"{self._v1}{XTAP}/default", body)

    async def list_partners(self) -> list[dict[str, Any]]:
        return await self._collection(f"{self._v1}{XTAP}/partners")

    async def create_partner(self, body: dict[str, Any]) -> dict[str, Any]:
        return await self._raw.send(Method.POST, f"{self._v1}{XTAP}/partners", body)

    async def update_partner(self, tenant_id: str, body: dict[str, Any]) -> None:
        await self._raw.send(Method.PATCH, f"{self._v1}{XTAP}/partners/{url_quote(tenant_id)}", body)

    async def delete_partner(self, tenant_id: str) -> None:
        await self._raw.send(Method.DELETE, f"{self._v1}{XTAP}/partners/{url_quote(tenant_id)}")

    async def get_identity_sync(self, tenant_id: str) -> dict[str, Any] | None:
        """crosstenantidentitysyncpolicypartner-get.md; a partner without a synchronization policy answers 404."""
        try:
            return await self._raw.send(
                Method.GET, f"{self._v1}{XTAP}/partners/{url_quote(tenant_id)}/identitySynchronization"
            )
        except NotFoundError:
            return None

    # --- authorization policy -----------------------------------------------------------------------

    async def get_authorization_policy(self) -> dict[str, Any]:
        return await self._raw.send(Method.GET, f"{self._v1}/policies/authorizationPolicy")

    async def update_authorization_policy(self, body: dict[str, Any]) -> None:
        await self._raw.send(Method.PATCH, f"{self._v1}/policies/authorizationPolicy", body)

    # --- invitation domain list (beta) --------------------------------------------------------------

    async def list_b2b_management_policies(self) -> list[dict[str, Any]]:
        return await self._collection(f"{self._beta}{B2B_POLICIES}")

    async def create_b2b_management_policy(self, body: dict[str, Any]) -> dict[str, Any]:
        return await self._raw.send(Method.POST, f"{self._beta}{B2B_POLICIES}", body)

    async def update_b2b_management_policy(self, policy_id: str, body: dict[str, Any]) -> None:
        await self._raw.send(Method.PATCH, f"{self._beta}{B2B_POLICIES}/{url_quote(policy_id)}", body)

    # --- tenants and direct federation --------------------------------------------------------------

    async def find_tenant_by_domain(self, domain: str) -> dict[str, Any] | None:
        """The Entra tenant that verifies ``domain``, or None when no tenant does (Graph answers 404)."""
        function = f"findTenantInformationByDomainName(domainName={url_quote(quote(domain), safe=chr(39))})"
        try:
            return await self._raw.send(Method.GET, f"{self._v1}/tenantRelationships/{function}")
        except NotFoundError:
            return None

    async def find_tenant_by_id(self, tenant_id: str) -> dict[str, Any] | None:
        """The Entra tenant ``tenant_id``'s information, or None when there is no such tenant (404)."""
        function = f"findTenantInformationByTenantId(tenantId={url_quote(quote(tenant_id), safe=chr(39))})"
        try:
            return await self._raw.send(Method.GET, f"{self._v1}/tenantRelationships/{function}")
        except NotFoundError:
            return None

    async def list_federations(self) -> list[dict[str, Any]]:
        """Every configuration with its ``domains``: as the list page's example shows them, else read from the
        configuration's domains collection (samlorwsfedexternaldomainfederation-list-domains.md)."""
        configs = await self._collection(f"{self._v1}{FEDERATIONS}")
        for config in configs:
            if "domains" not in config and config.get("id"):
                config["domains"] = await self._collection(f"{self._v1}{FEDERATIONS}/{url_quote(config['id'])}/domains")
        return configs

    async def federation_for_domain(self, domain: str) -> str | None:
        """The id of the SAML/WS-Fed configuration that federates ``domain``, if any, by the filter the get
        page documents (samlorwsfedexternaldomainfederation-get.md)."""
        expression = f"domains/any(x: x/id eq {quote(domain.lower())})"
        found = await self._collection(
            f"{self._v1}{FEDERATIONS}?{urlencode({'$filter': expression}, quote_via=url_quote)}"
        )
        return str(found[0]["id"]) if found and found[0].get("id") else None

    async def create_federation(self, body: dict[str, Any]) -> dict[str, Any]:
        return await self._raw.send(Method.POST, f"{self._v1}{FEDERATIONS}", body)

    async def update_federation(self, config_id: str, body: dict[str, Any]) -> None:
        await self._raw.send(
            Method.PATCH, f"{self._v1}/directory/federationConfigurations/{url_quote(config_id)}", body
        )

    async def add_federation_domain(self, config_id: str, domain: str) -> None:
        url = f"{self._v1}/directory/federationConfigurations/{url_quote(config_id)}/{FEDERATION_TYPE}/domains"
        await self._raw.send(Method.POST, url, {"@odata.type": "microsoft.graph.externalDomainName", "id": domain})

    # --- conditional access (paced) -------------------------------------------------------------------

    async def list_conditional_access_policies(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        next_url: str | None = f"{self._v1}{CONDITIONAL_ACCESS}"
        while next_url:
            page = await self._paced(next_url) or {}
            items.extend(page.get("value") or [])
            next_url = page.get("@odata.nextLink")
        return items

    async def create_conditional_access_policy(self, body: dict[str, Any]) -> dict[str, Any]:
        return await self._paced(f"{self._v1}{CONDITIONAL_ACCESS}", Method.POST, body)

    async def update_conditional_access_policy(self, policy_id: str, body: dict[str, Any]) -> None:
        await self._paced(f"{self._v1}{CONDITIONAL_ACCESS}/{url_quote(policy_id, safe='')}", Method.PATCH, body)

    async def _paced(self, url: str, method: Method = Method.GET, body: Any = None) -> Any:
        """Every Conditional Access request, read or write, a full interval after the last answer; a 429 (which
        means the request was not carried out) is retried after an exponential back-off."""
        delay = self._interval
        for attempt in range(CONDITIONAL_ACCESS_ATTEMPTS):
            if self._last_conditional_access is not None:
                wait = self._last_conditional_access + self._interval - time.monotonic()
                if wait > 0:
                    await self._sleep(wait)
            try:
                return await self._raw.send(method, url, body)
            except ThrottledError:
                if attempt == CONDITIONAL_ACCESS_ATTEMPTS - 1:
                    raise
                # No Retry-After from this service: back off exponentially from the pacing interval.
                await self._sleep(delay)
                delay *= 2
            finally:
                # Paced from when the service answered: the next request must land a full interval later.
                self._last_conditional_access = time.monotonic()
        raise AssertionError("unreachable")
