"""What the doctor reads: Graph and the app's storage, read-only. Raises lifecycle.errors.GraphError for Graph
failures; storage failures raise StorageProblem."""

from __future__ import annotations

from typing import Any, Protocol


class StorageProblem(Exception):
    """Storage could not be read (unreachable, refused, misconfigured)."""


class DoctorProbe(Protocol):
    async def access_token(self) -> str:
        """A Graph access token for the product's identity (acquiring it is the check)."""
        ...

    async def read(self, name: str) -> None:
        """Perform the Graph read ``name`` (one of lifecycle.doctor.reads.READS) and discard the answer."""
        ...

    async def authorization_policy(self) -> dict[str, Any]: ...

    async def b2b_management_policies(self) -> list[dict[str, Any]]: ...

    async def role_assignments(self, principal_id: str) -> list[dict[str, Any]]:
        """The principal's directory role assignments (GET /roleManagement/directory/roleAssignments)."""
        ...

    async def tenant_by_id(self, tenant_id: str) -> dict[str, Any] | None: ...

    async def tenant_by_domain(self, domain: str) -> dict[str, Any] | None: ...

    async def group_exists(self, group_id: str) -> bool: ...

    async def user_flow_connectors(self, flow_id: str) -> dict[str, Any] | None:
        """The user flow's API connector per step (expanded); None when Graph will not expand them; NotFoundError
        for an unknown flow."""
        ...

    async def catalogs(self) -> list[dict[str, Any]]: ...

    async def catalog_packages(self, catalog_id: str) -> list[dict[str, Any]]: ...

    async def tables(self) -> list[tuple[str, bool]]:
        """Every table the app keeps, and whether it exists."""
        ...

    async def queue(self, name: str) -> tuple[bool, int]:
        """Whether queue ``name`` (prefixed) exists, and how many dead letters it holds."""
        ...
