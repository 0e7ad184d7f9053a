"""The ports policy drift talks to: the tenant's policies (Graph JSON in, Graph JSON out) and the report store.

``DriftPorts`` is the pair, built by the composition root and held in ``Services.jobs``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from lifecycle.drift.ca_policies import ConditionalAccessWrites, SignInEvidence
from lifecycle.drift.identity_providers import GuestIdentities, GuestIdentityProviderTenant
from lifecycle.drift.native_ports import GuestLifecyclePolicies
from lifecycle.drift.native_priority import LifecyclePolicyPriority
from lifecycle.drift.native_scope import ScopeGroups
from lifecycle.drift.report import DriftReport
from lifecycle.drift.signup_connector import SignUpConnectors


class TenantPolicies(Protocol):
    """The tenant's external-collaboration policies, in Graph's JSON shapes. Raises lifecycle.errors.GraphError."""

    async def get_policy(self) -> dict[str, Any]:
        """The crossTenantAccessPolicy object itself (allowedCloudEndpoints, names), without default or partners."""
        ...

    async def get_default(self) -> dict[str, Any]: ...

    async def update_default(self, body: dict[str, Any]) -> None: ...

    async def list_partners(self) -> list[dict[str, Any]]: ...

    async def create_partner(self, body: dict[str, Any]) -> dict[str, Any]: ...

    async def update_partner(self, tenant_id: str, body: dict[str, Any]) -> None: ...

    async def delete_partner(self, tenant_id: str) -> None: ...

    async def get_identity_sync(self, tenant_id: str) -> dict[str, Any] | None:
        """The partner's user synchronization policy (its identitySynchronization); None when it has none."""
        ...

    async def get_authorization_policy(self) -> dict[str, Any]: ...

    async def update_authorization_policy(self, body: dict[str, Any]) -> None: ...

    async def list_b2b_management_policies(self) -> list[dict[str, Any]]: ...

    async def create_b2b_management_policy(self, body: dict[str, Any]) -> dict[str, Any]: ...

    async def update_b2b_management_policy(self, policy_id: str, body: dict[str, Any]) -> None: ...

    async def find_tenant_by_domain(self, domain: str) -> dict[str, Any] | None:
        """The Entra tenant that verifies ``domain``; None when none is found (Graph documents the look-up for a
        tenant's primary domain only)."""
        ...

    async def find_tenant_by_id(self, tenant_id: str) -> dict[str, Any] | None:
        """The Entra tenant ``tenant_id``; None when there is no such tenant."""
        ...

    async def list_federations(self) -> list[dict[str, Any]]:
        """SAML/WS-Fed federation configurations, each with its ``domains``."""
        ...

    async def create_federation(self, body: dict[str, Any]) -> dict[str, Any]: ...

    async def update_federation(self, config_id: str, body: dict[str, Any]) -> None: ...

    async def add_federation_domain(self, config_id: str, domain: str) -> None: ...

    async def list_conditional_access_policies(self) -> list[dict[str, Any]]:
        """Paced to the service's one request per second per tenant."""
        ...


class DriftReports(Protocol):
    """One report per run: the plan, what was applied and what failed."""

    async def save(self, report: DriftReport) -> None: ...

    async def get(self, run_id: str) -> DriftReport | None: ...

    async def recent(self, limit: int = 20) -> list[DriftReport]:
        """Newest first."""
        ...


@dataclass(frozen=True, eq=False)
class DriftPorts:
    """What policy drift reads, writes and reports through, besides the kernel's ports."""

    tenant: TenantPolicies
    reports: DriftReports
    sign_up: SignUpConnectors | None = None  # the sign-up connector's registration (desired signUpRegistration)
    conditional_access: ConditionalAccessWrites | None = None  # the managed guest policies (guestConditionalAccess)
    sign_ins: SignInEvidence | None = None  # what a report-only policy would have done
    identity_providers: GuestIdentityProviderTenant | None = None  # guestIdentityProviders
    guest_identities: GuestIdentities | None = None  # which provider each guest redeemed with (the guardrails)
    lifecycle_policies: GuestLifecyclePolicies | None = (
        None  # Microsoft's guest lifecycle policies (guestLifecyclePolicies)
    )
    scope_groups: ScopeGroups | None = None  # the groups those policies exclude, and their members
    lifecycle_priority: LifecyclePolicyPriority | None = None  # the order in which those policies bind guests
