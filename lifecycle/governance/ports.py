"""The port the governance job talks to: identity governance resources as Graph JSON."""

from __future__ import annotations

from typing import Any, Protocol

REVIEWS = "accessReviews/definitions"
ORGANIZATIONS = "entitlementManagement/connectedOrganizations"
CATALOGS = "entitlementManagement/catalogs"
PACKAGES = "entitlementManagement/accessPackages"
POLICIES = "entitlementManagement/assignmentPolicies"
SETTINGS = "entitlementManagement/settings"
KINDS = (SETTINGS, ORGANIZATIONS, CATALOGS, PACKAGES, POLICIES, REVIEWS)  # also the order apply works in


class GovernanceGraph(Protocol):
    """Raises lifecycle.errors.GraphError subclasses, like every Graph port."""

    async def list(self, kind: str, parent_id: str | None = None) -> list[dict[str, Any]]:
        """Every object of ``kind``; packages are listed per catalog and policies per package (``parent_id``)."""
        ...

    async def get_settings(self) -> dict[str, Any]: ...

    async def create(self, kind: str, body: dict[str, Any]) -> dict[str, Any]: ...

    async def update(self, kind: str, object_id: str | None, body: dict[str, Any]) -> None:
        """PATCH where Graph patches; PUT of the whole object for review definitions and assignment policies."""
        ...

    async def delete(self, kind: str, object_id: str) -> None: ...
