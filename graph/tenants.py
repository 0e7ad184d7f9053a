"""Where a domain's users authenticate: tenant lookup (findTenantInformationByDomainName) and federation.

Permission: CrossTenantInformation.ReadBasic.All. Graph answers 404 for a domain no Entra tenant has
verified (consumer domains included); that is an answer (None), not an error.
"""

from __future__ import annotations

from typing import Any, Protocol

from msgraph import GraphServiceClient

from graph.errors import graph_call
from lifecycle.errors import BadRequestError, NotFoundError


class FederationSource(Protocol):
    async def federation_for_domain(self, domain: str) -> str | None: ...


class GraphProviderLookup:
    """The reset's ProviderLookup on Graph. Answers are cached for the lookup's lifetime (one run)."""

    def __init__(self, client: GraphServiceClient, federations: FederationSource | None = None) -> None:
        self._client = client
        self._federations = federations
        self._tenants: dict[str, str | None] = {}

    async def tenant_for_domain(self, domain: str) -> str | None:
        domain = domain.lower()
        if domain not in self._tenants:
            self._tenants[domain] = await self._find_tenant(domain)
        return self._tenants[domain]

    async def federation_for_domain(self, domain: str) -> str | None:
        if self._federations is None:
            return None
        return await self._federations.federation_for_domain(domain.lower())

    async def _find_tenant(self, domain: str) -> str | None:
        relationships = self._client.tenant_relationships
        request = relationships.find_tenant_information_by_domain_name_with_domain_name(domain)
        try:
            info: Any = await graph_call(request.get)
        except (NotFoundError, BadRequestError):
            return None
        return info.tenant_id if info is not None and info.tenant_id else None
