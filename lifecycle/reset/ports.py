"""What redemption reset needs to know about a domain beyond the Directory port, and its bundle of ports.

``ResetPorts`` is built by the composition root and held in ``Services.jobs``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from lifecycle.sweep.ports import GroupMembership, SweepRuns


@runtime_checkable
class ProviderLookup(Protocol):
    """Where a newly invited user of a domain would authenticate today (graph.tenants on Graph)."""

    async def tenant_for_domain(self, domain: str) -> str | None:
        """The id of the Microsoft Entra tenant that has verified ``domain``, or None when the look-up finds none
        (Graph documents the look-up for a tenant's primary domain only)."""
        ...

    async def tenant_exists(self, tenant_id: str) -> bool:
        """Whether the Microsoft Entra tenant ``tenant_id`` exists (looked up by its id)."""
        ...

    async def federation_for_domain(self, domain: str) -> str | None:
        """The id of the SAML/WS-Fed federation configured for ``domain`` in this tenant, or None."""
        ...


@runtime_checkable
class RedemptionOrderSource(Protocol):
    """The tenant's invitation redemption order (graph.tenants on Graph; optional for a ProviderLookup)."""

    async def redemption_order(self) -> dict[str, Any] | None:
        """The default cross-tenant policy's invitationRedemptionIdentityProviderConfiguration as Graph JSON,
        or None when the tenant answers none."""
        ...


@dataclass(frozen=True, eq=False)
class ResetPorts:
    """What redemption reset plans and acts through, besides the kernel's ports.

    ``runs`` is the sweep's run store (reset runs live beside sweep runs). ``membership`` lists the protected
    group's members; without it a configured protected group stops detection. ``lookup`` answers where a
    domain's users authenticate; without it a detection run or a domain ticket is refused, while a ticket
    naming one guest still works.
    """

    runs: SweepRuns
    membership: GroupMembership | None = None
    lookup: ProviderLookup | None = None
