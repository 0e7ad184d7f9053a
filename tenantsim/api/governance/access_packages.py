"""Access packages: `entitlementManagement/accessPackages`, with `$expand` of their catalog, assignment policies
and resource role scopes, and the assignment policies of one package."""

from __future__ import annotations

import uuid
from typing import Any

from tenantsim.api.governance.catalog_resources import role_scopes_of
from tenantsim.api.governance.common import (
    EM,
    eq_filter,
    expand_options,
    expanded,
    listed_filters,
    page,
    public,
    writable_body,
)
from tenantsim.api.governance.state import LIVE_ASSIGNMENT, state_of
from tenantsim.errors import bad_request, found
from tenantsim.runtime import Call, GraphResponse

PACKAGE_WRITABLE = ("displayName", "description", "isHidden", "catalog")


def _package_view(call: Call, package: dict[str, Any], expand: dict[str, str]) -> dict[str, Any]:
    view = public(package)
    state = state_of(call)
    if "catalog" in expand:
        view["catalog"] = public(state.catalogs[package["_catalogId"]])
    if "assignmentPolicies" in expand:
        view["assignmentPolicies"] = policies_of(call, package["id"])
    if "resourceRoleScopes" in expand:
        view["resourceRoleScopes"] = role_scopes_of(state, package["id"], expand_options(expand["resourceRoleScopes"]))
    return view


def list_packages(call: Call) -> GraphResponse:
    call.require("entitlementManagement.read")
    keep = eq_filter(
        call,
        listed_filters(
            call,
            {"displayName": lambda p: p["displayName"]},
            {"id": lambda p: p["id"], "catalog/id": lambda p: p["_catalogId"]},
        ),
    )
    expand = listed_expansion(call)
    items = [_package_view(call, p, expand) for p in state_of(call).packages.values() if keep(p)]
    return page(call, items, f"{EM}/accessPackages")


def listed_expansion(call: Call) -> dict[str, str]:
    """The $expand of a list of packages, with assignmentPolicies as knob `accessPackagePoliciesExpand` says."""
    expand = expanded(call)
    if "assignmentPolicies" in expand:
        answer = call.sim.config.access_package_policies_expand
        if answer == "refuse":
            raise bad_request("Query option '$expand' of 'assignmentPolicies' is not supported on this list.")
        if answer == "ignore":
            expand.pop("assignmentPolicies")
    return expand


def policies_of(call: Call, package_id: str) -> list[dict[str, Any]]:
    return [public(p) for p in state_of(call).policies.values() if p["_accessPackageId"] == package_id]


def create_package(call: Call) -> GraphResponse:
    call.require("entitlementManagement.write")
    body = writable_body(call.request.body, PACKAGE_WRITABLE, "accessPackage")
    catalog_id = (body.get("catalog") or {}).get("id") if isinstance(body.get("catalog"), dict) else None
    if not catalog_id:
        raise bad_request("'catalog' with the id of an existing catalog is required.")
    state = state_of(call)
    found(state.catalogs, catalog_id)
    if not isinstance(body.get("displayName"), str) or not body["displayName"].strip():
        raise bad_request("'displayName' is required.")
    now = call.sim.now_iso()
    package = {
        "id": str(uuid.uuid4()),
        "displayName": body["displayName"],
        "description": body.get("description"),
        "isHidden": bool(body.get("isHidden", False)),
        "createdDateTime": now,
        "modifiedDateTime": now,
        "_catalogId": catalog_id,
    }
    state.packages[package["id"]] = package
    return GraphResponse(201, {"@odata.context": call.context_url(f"{EM}/accessPackages/$entity"), **public(package)})


def get_package(call: Call, package_id: str) -> GraphResponse:
    call.require("entitlementManagement.read")
    package = found(state_of(call).packages, package_id)
    view = _package_view(call, package, expanded(call))
    return GraphResponse(200, {"@odata.context": call.context_url(f"{EM}/accessPackages/$entity"), **view})


def update_package(call: Call, package_id: str) -> GraphResponse:
    call.require("entitlementManagement.write")
    package = found(state_of(call).packages, package_id)
    body = writable_body(call.request.body, ("displayName", "description", "isHidden"), "accessPackage")
    package.update(body)
    package["modifiedDateTime"] = call.sim.now_iso()
    return GraphResponse(204)


def delete_package(call: Call, package_id: str) -> GraphResponse:
    call.require("entitlementManagement.write")
    state = state_of(call)
    found(state.packages, package_id)
    if any(a["_accessPackageId"] == package_id and a["state"] in LIVE_ASSIGNMENT for a in state.assignments.values()):
        raise bad_request("The access package has assignments; remove them first.")
    for policy_id in [p for p, v in state.policies.items() if v["_accessPackageId"] == package_id]:
        del state.policies[policy_id]
    for scope_id in [s for s, v in state.role_scopes.items() if v["_accessPackageId"] == package_id]:
        del state.role_scopes[scope_id]
    del state.packages[package_id]
    return GraphResponse(204)


def list_package_policies(call: Call, package_id: str) -> GraphResponse:
    call.require("entitlementManagement.read")
    state = state_of(call)
    found(state.packages, package_id)
    items = [public(p) for p in state.policies.values() if p["_accessPackageId"] == package_id]
    return page(call, items, f"{EM}/accessPackages('{package_id}')/assignmentPolicies")
