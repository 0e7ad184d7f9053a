"""Connected organizations: `entitlementManagement/connectedOrganizations`, each with its identity source."""

from __future__ import annotations

import copy
import re
import uuid
from typing import Any

from tenantsim.api.governance.common import EM, eq_filter, page, public, writable_body
from tenantsim.api.governance.state import state_of
from tenantsim.errors import bad_request, found
from tenantsim.runtime import Call, GraphResponse

IDENTITY_SOURCES = frozenset(
    {
        "#microsoft.graph.azureActiveDirectoryTenant",
        "#microsoft.graph.domainIdentitySource",
        "#microsoft.graph.externalDomainFederation",
        "#microsoft.graph.crossCloudAzureActiveDirectoryTenant",
        "#microsoft.graph.socialIdentitySource",
    }
)


# The identity-source filter of the list-connectedOrganizations page (any lambda variable name).
_TENANT_SOURCE_FILTER = re.compile(
    r"^identitySources/any\((\w+):\s*\1/microsoft\.graph\.azureActiveDirectoryTenant/tenantId\s+eq\s+'((?:[^']|'')*)'\)$"
)


def list_organizations(call: Call) -> GraphResponse:
    """`$filter` on displayName (eq), or on the tenant of an azureActiveDirectoryTenant identity source, the
    two forms entitlementmanagement-list-connectedorganizations.md documents."""
    call.require("entitlementManagement.read")
    by_tenant = _TENANT_SOURCE_FILTER.match(call.request.query.get("$filter", "").strip())
    if by_tenant:
        tenant_id = by_tenant.group(2).replace("''", "'").lower()
        items = [public(o) for o in state_of(call).organizations.values() if _has_tenant_source(o, tenant_id)]
    else:
        keep = eq_filter(call, {"displayName": lambda o: o["displayName"], "id": lambda o: o["id"]})
        items = [public(o) for o in state_of(call).organizations.values() if keep(o)]
    return page(call, items, f"{EM}/connectedOrganizations")


def _has_tenant_source(organization: dict[str, Any], tenant_id: str) -> bool:
    return any(
        s.get("@odata.type") == "#microsoft.graph.azureActiveDirectoryTenant"
        and str(s.get("tenantId") or "").lower() == tenant_id
        for s in organization["identitySources"]
    )


def _identity_source(source: Any) -> dict[str, Any]:
    kind = source.get("@odata.type") if isinstance(source, dict) else None
    if kind not in IDENTITY_SOURCES:
        raise bad_request(f"Invalid identity source type {kind!r}.")
    if kind == "#microsoft.graph.azureActiveDirectoryTenant" and not source.get("tenantId"):
        raise bad_request("An azureActiveDirectoryTenant identity source needs 'tenantId'.")
    if kind == "#microsoft.graph.domainIdentitySource" and not source.get("domainName"):
        raise bad_request("A domainIdentitySource needs 'domainName'.")
    return copy.deepcopy(source)


def create_organization(call: Call) -> GraphResponse:
    call.require("entitlementManagement.write")
    body = writable_body(
        call.request.body, ("displayName", "description", "identitySources", "state"), "connectedOrganization"
    )
    sources = body.get("identitySources")
    if not isinstance(sources, list) or len(sources) != 1:
        raise bad_request("'identitySources' must hold exactly one initial identity source.")
    if body.get("state", "configured") not in {"configured", "proposed"}:
        raise bad_request("'state' must be configured or proposed.")
    if not isinstance(body.get("displayName"), str) or not body["displayName"].strip():
        raise bad_request("'displayName' is required.")
    now = call.sim.now_iso()
    organization = {
        "id": str(uuid.uuid4()),
        "displayName": body["displayName"],
        "description": body.get("description"),
        "createdDateTime": now,
        "modifiedDateTime": now,
        "state": body.get("state", "configured"),
        "identitySources": [_identity_source(sources[0])],
    }
    state_of(call).organizations[organization["id"]] = organization
    answer = public(organization)
    if call.sim.config.connected_organization_create_sources == "empty":
        # The create example answers an empty identitySources although one was sent; get and list show it.
        answer["identitySources"] = []
    return GraphResponse(201, {"@odata.context": call.context_url(f"{EM}/connectedOrganizations/$entity"), **answer})


def get_organization(call: Call, organization_id: str) -> GraphResponse:
    call.require("entitlementManagement.read")
    organization = public(found(state_of(call).organizations, organization_id))
    return GraphResponse(
        200, {"@odata.context": call.context_url(f"{EM}/connectedOrganizations/$entity"), **organization}
    )


def update_organization(call: Call, organization_id: str) -> GraphResponse:
    call.require("entitlementManagement.write")
    organization = found(state_of(call).organizations, organization_id)
    body = writable_body(call.request.body, ("displayName", "description", "state"), "connectedOrganization")
    if "state" in body and body["state"] not in {"configured", "proposed"}:
        raise bad_request("'state' must be configured or proposed.")
    organization.update(body)
    organization["modifiedDateTime"] = call.sim.now_iso()
    return GraphResponse(204)


def delete_organization(call: Call, organization_id: str) -> GraphResponse:
    call.require("entitlementManagement.write")
    state = state_of(call)
    found(state.organizations, organization_id)
    for policy in state.policies.values():
        if any(t.get("connectedOrganizationId") == organization_id for t in policy["specificAllowedTargets"]):
            raise bad_request("An assignment policy still names this connected organization.")
    del state.organizations[organization_id]
    return GraphResponse(204)
