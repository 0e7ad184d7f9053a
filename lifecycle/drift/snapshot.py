"""The tenant as policy drift reads it: one snapshot per run of every object the planner compares."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import structlog

from lifecycle.drift.desired import DesiredPolicies
from lifecycle.drift.ports import TenantPolicies
from lifecycle.errors import GraphError

log = structlog.get_logger(__name__)


@dataclass
class TenantSnapshot:
    default: dict[str, Any]
    partners: dict[str, dict[str, Any]]  # by lower-case tenant id
    authorization: dict[str, Any]
    b2b_policies: list[dict[str, Any]]
    federations: list[dict[str, Any]]
    conditional_access: list[dict[str, Any]] | None  # None when it could not be read
    conditional_access_error: str | None = None
    entra_domains: dict[str, str] = field(default_factory=dict)  # federated domain -> verifying tenant id
    # Federated domains the look-up by domain did not place although their partner names an Entra tenant that
    # exists: Graph documents that look-up for primary domains, so the domain may still be that tenant's.
    unverified_domains: dict[str, str] = field(default_factory=dict)  # domain -> the partner's tenant id
    policy: dict[str, Any] = field(default_factory=dict)  # the crossTenantAccessPolicy object itself
    identity_sync: dict[str, dict[str, Any]] = field(default_factory=dict)  # partner tenant id -> its sync policy


async def read_tenant(tenant: TenantPolicies, desired: DesiredPolicies) -> TenantSnapshot:
    entra: dict[str, str] = {}
    unverified: dict[str, str] = {}
    declared = {p.key: p.tenant_id for p in desired.partners.values()}
    for federation in desired.federations:
        for domain in federation.domains:
            found = await tenant.find_tenant_by_domain(domain)
            if found:
                entra[domain] = str(found.get("tenantId") or "unknown")
            elif (partner_tenant := declared.get(federation.partner)) and await tenant.find_tenant_by_id(
                partner_tenant
            ):
                unverified[domain] = partner_tenant
    policies: list[dict[str, Any]] | None = None
    error: str | None = None
    try:
        policies = await tenant.list_conditional_access_policies()
    except GraphError as exc:
        # Conditional Access is only reported: an unreadable posture is reported too, not fatal.
        error = f"{type(exc).__name__}: {exc}"
        log.warning("drift.conditional-access.unreadable", **exc.describe())
    partners = {str(p.get("tenantId", "")).lower(): p for p in await tenant.list_partners()}
    identity_sync = {}
    for tenant_id in sorted(partners):
        sync = await tenant.get_identity_sync(tenant_id)
        if sync is not None:
            identity_sync[tenant_id] = sync
    return TenantSnapshot(
        policy=await tenant.get_policy(),
        identity_sync=identity_sync,
        default=await tenant.get_default(),
        partners=partners,
        authorization=await tenant.get_authorization_policy(),
        b2b_policies=await tenant.list_b2b_management_policies(),
        federations=await tenant.list_federations() if desired.federations else [],
        conditional_access=policies,
        conditional_access_error=error,
        entra_domains=entra,
        unverified_domains=unverified,
    )
