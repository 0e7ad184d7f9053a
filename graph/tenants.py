"""Where a domain's users authenticate: tenant lookup (findTenantInformationByDomainName) and federation.

Permission: CrossTenantInformation.ReadBasic.All. Graph answers 404 for a domain no Entra tenant has
verified (consumer domains included); that is an answer (None), not an error. The by-domain look-up is
documented for a tenant's primary domain only, so a 404 does not prove that no tenant verifies the domain:
the reset asks whether the partner's own tenant still exists (by its id) before it trusts that answer.
"""

from __future__ import annotations

from typing import Any, Protocol

from lifecycle.errors import BadRequestError


class TenantDirectory(Protocol):
    async def find_tenant_by_domain(self, domain: str) -> dict[str, Any] | None: ...

    async def find_tenant_by_id(self, tenant_id: str) -> dict[str, Any] | None: ...

    async def federation_for_domain(self, domain: str) -> str | None: ...

    async def get_redemption_order(self) -> dict[str, Any] | None: ...


class GraphProviderLookup:
    """The reset's ProviderLookup and RedemptionOrderSource on Graph (through graph.policies.GraphPolicies).
    Answers are cached for the lookup's lifetime, one run."""

    def __init__(self, policies: TenantDirectory) -> None:
        self._policies = policies
        self._tenants: dict[str, str | None] = {}
        self._order: dict[str, Any] | None = None
        self._order_read = False

    async def tenant_for_domain(self, domain: str) -> str | None:
        domain = domain.lower()
        if domain not in self._tenants:
            try:
                info = await self._policies.find_tenant_by_domain(domain)
            except BadRequestError:  # consumer domains are refused rather than "not found"
                info = None
            self._tenants[domain] = str(info["tenantId"]) if info and info.get("tenantId") else None
        return self._tenants[domain]

    async def tenant_exists(self, tenant_id: str) -> bool:
        return await self._policies.find_tenant_by_id(tenant_id.lower()) is not None

    async def federation_for_domain(self, domain: str) -> str | None:
        return await self._policies.federation_for_domain(domain.lower())

    async def redemption_order(self) -> dict[str, Any] | None:
        """The tenant's invitation redemption order (Policy.Read.All), read once per lookup."""
        if not self._order_read:
            self._order = await self._policies.get_redemption_order()
            self._order_read = True
        return self._order
