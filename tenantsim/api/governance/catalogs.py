"""Access package catalogs: `entitlementManagement/catalogs` and the access packages a catalog holds."""

from __future__ import annotations

import uuid
from typing import Any

from tenantsim.api.governance.access_packages import listed_expansion, policies_of
from tenantsim.api.governance.common import EM, eq_filter, expanded, page, public, writable_body
from tenantsim.api.governance.state import state_of
from tenantsim.errors import bad_request, found
from tenantsim.runtime import Call, GraphResponse

CATALOG_WRITABLE = ("displayName", "description", "state", "isExternallyVisible", "catalogType")


def list_catalogs(call: Call) -> GraphResponse:
    call.require("entitlementManagement.read")
    keep = eq_filter(call, {"displayName": lambda c: c["displayName"], "id": lambda c: c["id"]})
    items = [public(c) for c in state_of(call).catalogs.values() if keep(c)]
    return page(call, items, f"{EM}/catalogs")


def create_catalog(call: Call) -> GraphResponse:
    call.require("entitlementManagement.write")
    body = writable_body(call.request.body, CATALOG_WRITABLE, "accessPackageCatalog")
    if not isinstance(body.get("displayName"), str) or not body["displayName"].strip():
        raise bad_request("'displayName' is required.")
    now = call.sim.now_iso()
    catalog = {
        "id": str(uuid.uuid4()),
        "displayName": body["displayName"],
        "description": body.get("description"),
        "catalogType": "userManaged",
        "state": body.get("state", "published"),
        "isExternallyVisible": bool(body.get("isExternallyVisible", True)),
        "createdDateTime": now,
        "modifiedDateTime": now,
    }
    _catalog_state(catalog["state"])
    state_of(call).catalogs[catalog["id"]] = catalog
    return GraphResponse(201, {"@odata.context": call.context_url(f"{EM}/catalogs/$entity"), **public(catalog)})


def _catalog_state(value: Any) -> None:
    if value not in {"published", "unpublished"}:
        raise bad_request("'state' must be published or unpublished.")


def get_catalog(call: Call, catalog_id: str) -> GraphResponse:
    call.require("entitlementManagement.read")
    catalog = public(found(state_of(call).catalogs, catalog_id))
    if "accessPackages" in expanded(call):
        catalog["accessPackages"] = packages_in(call, catalog_id)
    return GraphResponse(200, {"@odata.context": call.context_url(f"{EM}/catalogs/$entity"), **catalog})


def update_catalog(call: Call, catalog_id: str) -> GraphResponse:
    call.require("entitlementManagement.write")
    catalog = found(state_of(call).catalogs, catalog_id)
    body = writable_body(call.request.body, CATALOG_WRITABLE, "accessPackageCatalog")
    if "state" in body:
        _catalog_state(body["state"])
    catalog.update(body)
    catalog["modifiedDateTime"] = call.sim.now_iso()
    return GraphResponse(204)


def delete_catalog(call: Call, catalog_id: str) -> GraphResponse:
    call.require("entitlementManagement.write")
    state = state_of(call)
    found(state.catalogs, catalog_id)
    if any(p["_catalogId"] == catalog_id for p in state.packages.values()):
        raise bad_request("The catalog still holds access packages; delete them first.")
    for resource_id in [r for r, v in state.resources.items() if v["_catalogId"] == catalog_id]:
        del state.resources[resource_id]
    del state.catalogs[catalog_id]
    return GraphResponse(204)


def packages_in(call: Call, catalog_id: str) -> list[dict[str, Any]]:
    return [public(p) for p in state_of(call).packages.values() if p["_catalogId"] == catalog_id]


def list_catalog_packages(call: Call, catalog_id: str) -> GraphResponse:
    call.require("entitlementManagement.read")
    found(state_of(call).catalogs, catalog_id)
    items = packages_in(call, catalog_id)
    if "assignmentPolicies" in listed_expansion(call):
        items = [{**package, "assignmentPolicies": policies_of(call, package["id"])} for package in items]
    return page(call, items, f"{EM}/catalogs('{catalog_id}')/accessPackages")
