"""tenantRelationships/findTenantInformationByDomainName and ...ByTenantId.

The by-domain function's parameter is documented as a tenant's primary domain
(tenantrelationship-findtenantinformationbydomainname.md) while its example looks up contoso.com and answers
an onmicrosoft.com defaultDomainName. tenantsim resolves only the domain each tenant marks primary unless the
``tenantLookupDomains`` knob says ``verified`` (any domain the tenant verified).
"""

from __future__ import annotations

from typing import Any

from tenantsim.errors import GraphError
from tenantsim.runtime import Call, GraphResponse


def _answer(call: Call, tenant: dict[str, Any]) -> GraphResponse:
    body = {"@odata.context": call.context_url("microsoft.graph.tenantInformation")}
    body.update(
        tenantId=tenant["tenantId"],
        federationBrandName=tenant.get("federationBrandName"),
        displayName=tenant.get("displayName"),
        defaultDomainName=tenant.get("defaultDomainName"),
    )
    return GraphResponse(200, body)


def _unknown(what: str) -> GraphError:
    return GraphError(404, "Request_ResourceNotFound", f"Tenant information for '{what}' was not found.")


def by_domain_name(call: Call, domain: str) -> GraphResponse:
    call.require("tenantInformation.read")
    domain = domain.replace("''", "'").lower()
    directory = call.sim.directory
    info = directory.domains.get(domain) or {}
    tenant = directory.tenants.get(info.get("tenantId") or "")
    if info.get("identityProvider") != "AzureAD" or tenant is None:
        raise _unknown(domain)
    if call.sim.config.tenant_lookup_domains == "primary" and not info.get("primary"):
        # The parameter is documented as the tenant's primary domain; a second verified domain is not found.
        raise _unknown(domain)
    return _answer(call, tenant)


def by_tenant_id(call: Call, tenant_id: str) -> GraphResponse:
    call.require("tenantInformation.read")
    tenant = call.sim.directory.tenants.get(tenant_id.replace("''", "'").lower())
    if tenant is None:
        raise _unknown(tenant_id)
    return _answer(call, tenant)
