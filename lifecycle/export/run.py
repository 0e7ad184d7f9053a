"""Read the tenant's posture through the drift and governance ports and render it as a desired-state file."""

from __future__ import annotations

from typing import Any

from lifecycle.drift.ports import TenantPolicies
from lifecycle.export.build import TenantPosture, build, render
from lifecycle.governance.ports import CATALOGS, PACKAGES, POLICIES, REVIEWS, GovernanceGraph


async def read_posture(tenant_id: str, policies: TenantPolicies, governance: GovernanceGraph) -> TenantPosture:
    own = await policies.find_tenant_by_id(tenant_id) or {}
    partners = await policies.list_partners()
    names: dict[str, str] = {}
    domains: dict[str, str] = {}
    organizations: dict[str, bool] = {}
    for partner in partners:
        partner_id = str(partner.get("tenantId", "")).lower()
        info = await policies.find_tenant_by_id(partner_id) or {}
        if info.get("displayName"):
            names[partner_id] = str(info["displayName"])
        if info.get("defaultDomainName"):
            domains[partner_id] = str(info["defaultDomainName"]).lower()
        organizations[partner_id] = bool(await governance.find_organizations(partner_id))
    reported: dict[str, list[dict[str, Any]]] = {}
    catalogs = await governance.list(CATALOGS)
    reported["catalog"] = catalogs
    packages = [p for c in catalogs if c.get("id") for p in await governance.list(PACKAGES, str(c["id"]))]
    reported["access package"] = packages
    reported["assignment policy"] = [
        p for package in packages if package.get("id") for p in await governance.list(POLICIES, str(package["id"]))
    ]
    reported["access review"] = await governance.list(REVIEWS)
    return TenantPosture(
        tenant_id=tenant_id.lower(),
        primary_domain=str(own.get("defaultDomainName") or "unknown.invalid"),
        default=await policies.get_default(),
        partners=partners,
        partner_names=names,
        partner_domains=domains,
        authorization=await policies.get_authorization_policy(),
        b2b_policies=await policies.list_b2b_management_policies(),
        federations=await policies.list_federations(),
        governance=reported,
        organizations=organizations,
    )


async def export_desired_state(tenant_id: str, policies: TenantPolicies, governance: GovernanceGraph) -> str:
    return render(build(await read_posture(tenant_id, policies, governance)))
