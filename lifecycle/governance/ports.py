"""The port the governance job talks to: identity governance resources as Graph JSON.

``GovernancePorts`` holds it for ``Services.jobs``; the composition root builds it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

REVIEWS = "accessReviews/definitions"
REVIEW_INSTANCES = "accessReviews/definitions/instances"  # read-only evidence, listed per definition
ORGANIZATIONS = "entitlementManagement/connectedOrganizations"
CATALOGS = "entitlementManagement/catalogs"
CATALOG_RESOURCES = "entitlementManagement/catalogs/resources"  # groups in a catalog, listed per catalog
PACKAGES = "entitlementManagement/accessPackages"
ROLE_SCOPES = "entitlementManagement/accessPackages/resourceRoleScopes"  # roles a package grants, per package
POLICIES = "entitlementManagement/assignmentPolicies"
SETTINGS = "entitlementManagement/settings"
# The order apply creates and updates in (a parent before what refers to it); deletes go in reverse.
KINDS = (SETTINGS, ORGANIZATIONS, CATALOGS, CATALOG_RESOURCES, PACKAGES, ROLE_SCOPES, POLICIES, REVIEWS)


class GovernanceGraph(Protocol):
    """Raises lifecycle.errors.GraphError subclasses, like every Graph port."""

    async def list(self, kind: str, parent_id: str | None = None) -> list[dict[str, Any]]:
        """Every object of ``kind``; packages are listed per catalog, policies and role scopes per package,
        catalog resources per catalog and review instances per definition (``parent_id``)."""
        ...

    async def find_organizations(self, tenant_id: str) -> list[dict[str, Any]]:
        """The connected organisations whose identity sources include the Entra tenant ``tenant_id``, as the
        service finds them (a listed organisation need not show its source's tenant id)."""
        ...

    async def get_settings(self) -> dict[str, Any]: ...

    async def create(self, kind: str, body: dict[str, Any], parent_id: str | None = None) -> dict[str, Any]:
        """The created object as Graph lists it (a catalog resource, not the request that added it)."""
        ...

    async def update(self, kind: str, object_id: str | None, body: dict[str, Any]) -> None:
        """PATCH where Graph patches; PUT of the whole object for review definitions and assignment policies."""
        ...

    async def delete(self, kind: str, object_id: str, parent_id: str | None = None) -> None: ...


@dataclass(frozen=True, eq=False)
class GovernancePorts:
    """What the governance job reads and writes through, besides the kernel's ports."""

    graph: GovernanceGraph
