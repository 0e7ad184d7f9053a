"""Entitlement management resources: groups in a catalog, and the roles of them an access package grants.

A group enters a catalog through a resource request (`adminAdd`, originSystem `AadGroup`) and brings two
roles, Owner and Member (originId `Owner_<groupId>` / `Member_<groupId>`), and one root scope (originId the
group id). An access package grants a role through a resource role scope whose id is `<roleId>_<scopeId>`.
Sources: entitlementmanagement-post-resourcerequests, accesspackagecatalog-list-resources,
accesspackage-post-resourcerolescopes, accesspackage-list-resourcerolescopes and
accesspackage-delete-resourcerolescopes (microsoft-graph-docs-contrib, api-reference/v1.0).
"""

from __future__ import annotations

import copy
import uuid
from typing import Any

from tenantsim.api.governance.common import EM, by_id, eq_filter, expanded, page, public, writable_body
from tenantsim.api.governance.state import GovernanceState, state_of
from tenantsim.errors import GraphError, bad_request, found, not_found
from tenantsim.runtime import Call, GraphResponse
from tenantsim.seed import group_catalog_resource

# Only groups are simulated: the product puts nothing else in its catalog.
SIMULATED_ORIGIN_SYSTEMS = frozenset({"AadGroup"})
RESOURCE_REQUEST_TYPES = frozenset({"adminAdd", "adminRemove"})


def role_view(resource: dict[str, Any], role: dict[str, Any]) -> dict[str, Any]:
    return {**copy.deepcopy(role), "originSystem": resource["originSystem"]}


def scope_view(resource: dict[str, Any], scope: dict[str, Any]) -> dict[str, Any]:
    return {**copy.deepcopy(scope), "originSystem": resource["originSystem"]}


def role_scopes_of(state: GovernanceState, package_id: str, expand: dict[str, str]) -> list[dict[str, Any]]:
    """A package's resource role scopes; role and scope only when expanded, as Graph does."""
    views = []
    for role_scope in state.role_scopes.values():
        if role_scope["_accessPackageId"] != package_id:
            continue
        view = public(role_scope)
        resource = state.resources[role_scope["_resourceId"]]
        if "role" in expand:
            view["role"] = role_view(resource, by_id(resource["_roles"], role_scope["_roleId"]))
        if "scope" in expand:
            view["scope"] = scope_view(resource, by_id(resource["_scopes"], role_scope["_scopeId"]))
        views.append(view)
    return views


def granted_groups(state: GovernanceState, package_id: str) -> set[str]:
    """The groups whose Member role the package grants."""
    groups = set()
    for role_scope in state.role_scopes.values():
        resource = state.resources.get(role_scope["_resourceId"])
        if role_scope["_accessPackageId"] != package_id or not resource or resource["originSystem"] != "AadGroup":
            continue
        if by_id(resource["_roles"], role_scope["_roleId"])["displayName"] == "Member":
            groups.add(resource["originId"])
    return groups


def _resource_view(resource: dict[str, Any], expand: dict[str, str]) -> dict[str, Any]:
    view = public(resource)
    if "roles" in expand:
        view["roles"] = [role_view(resource, r) for r in resource["_roles"]]
    if "scopes" in expand:
        view["scopes"] = [scope_view(resource, s) for s in resource["_scopes"]]
    return view


def list_catalog_resources(call: Call, catalog_id: str) -> GraphResponse:
    """GET catalogs/{id}/resources with `$expand=roles,scopes` and `$filter` on originId, originSystem or id."""
    call.require("entitlementManagement.read")
    state = state_of(call)
    found(state.catalogs, catalog_id)
    keep = eq_filter(
        call,
        {"id": lambda r: r["id"], "originId": lambda r: r["originId"], "originSystem": lambda r: r["originSystem"]},
    )
    expand = expanded(call)
    unknown = set(expand) - {"roles", "scopes"}
    if unknown:
        raise bad_request(f"Could not find a property named '{sorted(unknown)[0]}' on type 'accessPackageResource'.")
    items = [_resource_view(r, expand) for r in state.resources.values() if r["_catalogId"] == catalog_id and keep(r)]
    return page(call, items, f"{EM}/catalogs('{catalog_id}')/resources")


def create_resource_request(call: Call) -> GraphResponse:
    """POST resourceRequests: adminAdd puts a group in a catalog, adminRemove takes a resource out again."""
    call.require("entitlementManagement.write")
    body = writable_body(call.request.body, ("requestType", "resource", "catalog"), "accessPackageResourceRequest")
    request_type = body.get("requestType")
    if request_type not in RESOURCE_REQUEST_TYPES:
        raise bad_request(f"Invalid value '{request_type}' for 'requestType'.")
    resource = body.get("resource")
    catalog = body.get("catalog")
    if not isinstance(resource, dict) or not isinstance(catalog, dict) or not catalog.get("id"):
        raise bad_request("A resource request needs 'resource' and 'catalog' with the catalog's id.")
    state = state_of(call)
    found(state.catalogs, str(catalog["id"]))
    if request_type == "adminAdd":
        _add_group(call, state, str(catalog["id"]), resource)
    else:
        _remove(state, str(catalog["id"]), resource)
    return GraphResponse(
        201,
        {
            "@odata.context": call.context_url(f"{EM}/resourceRequests/$entity"),
            "id": str(uuid.uuid4()),
            "requestType": request_type,
            "state": "delivered",
            "createdDateTime": call.sim.now_iso(),
        },
    )


def _add_group(call: Call, state: GovernanceState, catalog_id: str, resource: dict[str, Any]) -> None:
    origin_system = resource.get("originSystem")
    if origin_system not in SIMULATED_ORIGIN_SYSTEMS:
        raise bad_request(f"Resources with originSystem {origin_system!r} are not supported here; use AadGroup.")
    # The application must also be able to change the group (entitlementmanagement-post-resourcerequests).
    call.require("entitlementManagement.addGroupResource")
    group = call.sim.directory.groups.get(str(resource.get("originId")))
    if group is None:
        raise not_found(str(resource.get("originId")))
    if any(r["_catalogId"] == catalog_id and r["originId"] == group["id"] for r in state.resources.values()):
        # The code Graph uses here is not documented; the status is a client error either way.
        raise bad_request("The resource is already in the catalog.")
    added = group_catalog_resource(catalog_id, group, call.sim.now_iso(), str(uuid.uuid4()))
    state.resources[added["id"]] = added


def _remove(state: GovernanceState, catalog_id: str, resource: dict[str, Any]) -> None:
    found = state.resources.get(str(resource.get("id")))
    if found is None or found["_catalogId"] != catalog_id:
        raise not_found(str(resource.get("id")))
    if any(s["_resourceId"] == found["id"] for s in state.role_scopes.values()):
        raise bad_request("The resource's roles are still granted by an access package; remove those first.")
    del state.resources[found["id"]]


def create_role_scope(call: Call, package_id: str) -> GraphResponse:
    """POST accessPackages/{id}/resourceRoleScopes: grant a role of a catalog resource through the package."""
    call.require("entitlementManagement.write")
    state = state_of(call)
    package = found(state.packages, package_id)
    body = writable_body(
        call.request.body, ("role", "scope", "id", "createdDateTime"), "accessPackageResourceRoleScope"
    )
    role, scope = body.get("role"), body.get("scope")
    if not isinstance(role, dict) or not isinstance(scope, dict):
        raise bad_request("A resource role scope needs 'role' and 'scope'.")
    resource_id = (role.get("resource") or {}).get("id") if isinstance(role.get("resource"), dict) else None
    resource = state.resources.get(str(resource_id))
    if resource is None or resource["_catalogId"] != package["_catalogId"]:
        raise bad_request("The role's resource must be in the access package's catalog (role.resource.id).")
    chosen_role = _pick(resource["_roles"], role, "role")
    chosen_scope = _pick(resource["_scopes"], scope, "scope")
    role_scope_id = f"{chosen_role['id']}_{chosen_scope['id']}"
    if any(s["id"] == role_scope_id and s["_accessPackageId"] == package_id for s in state.role_scopes.values()):
        raise bad_request("The access package already grants this role in this scope.")
    record = {
        "id": role_scope_id,
        "createdDateTime": call.sim.now_iso(),
        "_accessPackageId": package_id,
        "_resourceId": resource["id"],
        "_roleId": chosen_role["id"],
        "_scopeId": chosen_scope["id"],
    }
    state.role_scopes[f"{package_id}/{role_scope_id}"] = record
    context = call.context_url(f"{EM}/accessPackages('{package_id}')/resourceRoleScopes/$entity")
    return GraphResponse(201, {"@odata.context": context, **public(record)})


def _pick(known: list[dict[str, Any]], wanted: dict[str, Any], name: str) -> dict[str, Any]:
    """A role or scope by its id, else by its originId (as the documented request bodies send either)."""
    for item in known:
        if (wanted.get("id") and item["id"] == wanted["id"]) or (
            not wanted.get("id") and wanted.get("originId") and item["originId"] == wanted["originId"]
        ):
            return item
    raise GraphError(400, "Request_BadRequest", f"The {name} does not exist on the resource.")


def delete_role_scope(call: Call, package_id: str, role_scope_id: str) -> GraphResponse:
    call.require("entitlementManagement.write")
    state = state_of(call)
    found(state.packages, package_id)
    found(state.role_scopes, f"{package_id}/{role_scope_id}")
    del state.role_scopes[f"{package_id}/{role_scope_id}"]
    return GraphResponse(204)
