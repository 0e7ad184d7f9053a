"""A fake of the reset's provider lookup: which tenant a domain resolves to, direct federation, the
tenant's redemption order."""

from __future__ import annotations

FABRIKAM_TENANT = "9a3d526c-1b7e-4c2f-8d6a-5e0f3b7c9d21"


class FakeLookup:
    def __init__(
        self,
        tenants: dict[str, str] | None = None,
        federations: dict[str, str] | None = None,
        existing: set[str] | None = None,
    ) -> None:
        default = {"fabrikam.com": FABRIKAM_TENANT, "fabrikam.co.uk": FABRIKAM_TENANT}
        self.tenants = default if tenants is None else tenants
        self.federations = federations or {}
        # Tenants found by id: those the domains name, unless a test says otherwise.
        self.existing = set(self.tenants.values()) if existing is None else existing

    async def tenant_for_domain(self, domain: str) -> str | None:
        return self.tenants.get(domain)

    async def tenant_exists(self, tenant_id: str) -> bool:
        return tenant_id in self.existing

    async def federation_for_domain(self, domain: str) -> str | None:
        return self.federations.get(domain)


class OrderedLookup(FakeLookup):
    """A lookup that also answers the tenant's redemption order (Graph JSON, None = not set)."""

    def __init__(self, order: dict | None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.order = order

    async def redemption_order(self) -> dict | None:
        return self.order
