"""Read the tenant's posture through the drift and governance ports and render it as a desired-state file."""

from __future__ import annotations

from lifecycle.drift.native_ports import GuestLifecyclePolicies
from lifecycle.drift.ports import TenantPolicies
from lifecycle.export.build import TenantPosture, build, render
from lifecycle.export.governance import GovernancePosture
from lifecycle.export.lifecycle_policies import read_native
from lifecycle.export.lockdown_reads import LockdownReads, read_lockdown
from lifecycle.governance.ports import (
    CATALOG_RESOURCES,
    CATALOGS,
    ORGANIZATIONS,
    PACKAGES,
    POLICIES,
    REVIEWS,
    ROLE_SCOPES,
    GovernanceGraph,
)


async def read_governance(partner_ids: list[str], governance: GovernanceGraph) -> GovernancePosture:
    """Every governance object the desired state can describe: the catalogs with their packages, policies,
    granted roles and resources, the connected organisations (and which belong to each partner tenant), the
    entitlement management settings and the access review definitions."""
    posture = GovernancePosture(settings=await governance.get_settings())
    posture.catalogs = await governance.list(CATALOGS)
    for catalog in posture.catalogs:
        catalog_id = str(catalog.get("id"))
        posture.packages[catalog_id] = await governance.list(PACKAGES, catalog_id)
        posture.resources[catalog_id] = await governance.list(CATALOG_RESOURCES, catalog_id)
        for package in posture.packages[catalog_id]:
            package_id = str(package.get("id"))
            posture.policies[package_id] = await governance.list(POLICIES, package_id)
            posture.role_scopes[package_id] = await governance.list(ROLE_SCOPES, package_id)
    posture.organizations = await governance.list(ORGANIZATIONS)
    for partner_id in partner_ids:
        posture.tenant_organizations[partner_id] = await governance.find_organizations(partner_id)
    posture.reviews = await governance.list(REVIEWS)
    return posture


async def read_posture(
    tenant_id: str,
    policies: TenantPolicies,
    governance: GovernanceGraph,
    lockdown: LockdownReads | None = None,
    lifecycle_policies: GuestLifecyclePolicies | None = None,
) -> TenantPosture:
    own = await policies.find_tenant_by_id(tenant_id) or {}
    partners = await policies.list_partners()
    names: dict[str, str] = {}
    domains: dict[str, str] = {}
    partner_ids = []
    for partner in partners:
        partner_id = str(partner.get("tenantId", "")).lower()
        partner_ids.append(partner_id)
        info = await policies.find_tenant_by_id(partner_id) or {}
        if info.get("displayName"):
            names[partner_id] = str(info["displayName"])
        if info.get("defaultDomainName"):
            domains[partner_id] = str(info["defaultDomainName"]).lower()
    default = await policies.get_default()
    return TenantPosture(
        tenant_id=tenant_id.lower(),
        primary_domain=str(own.get("defaultDomainName") or "unknown.invalid"),
        default=default,
        partners=partners,
        partner_names=names,
        partner_domains=domains,
        authorization=await policies.get_authorization_policy(),
        b2b_policies=await policies.list_b2b_management_policies(),
        federations=await policies.list_federations(),
        governance=await read_governance(partner_ids, governance),
        lockdown=None
        if lockdown is None
        else await read_lockdown(lockdown, policies.list_conditional_access_policies, default),
        native=None if lifecycle_policies is None else await read_native(lifecycle_policies),
    )


async def export_desired_state(
    tenant_id: str,
    policies: TenantPolicies,
    governance: GovernanceGraph,
    lockdown: LockdownReads | None = None,
    lifecycle_policies: GuestLifecyclePolicies | None = None,
) -> str:
    """The tenant as a desired-state file; ``lockdown`` reads the sign-up connector, guest Conditional Access and
    guest identity providers, ``lifecycle_policies`` Microsoft's guest lifecycle policies (without them those
    sections are left out, with a comment saying so)."""
    return render(build(await read_posture(tenant_id, policies, governance, lockdown, lifecycle_policies)))
