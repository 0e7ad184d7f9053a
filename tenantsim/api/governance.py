"""Identity governance: entitlement management (v1.0 model) and access review definitions.

Entitlement management state lives beside the directory (one GovernanceState per loaded tenant) and starts
from the seeded "Partner collaboration" catalog, so onboarding can assign access packages on a fresh tenant.
Assignment requests are processed asynchronously as in Graph: a request is answered `submitted`, and later
reads of it move it to `delivering` and `delivered` (``reads_until_delivered`` sets how many reads that takes).
A delivered assignment whose schedule ends expires on the tenant's clock (tenantsim.api.assignment_expiry).
"""

from __future__ import annotations

import copy
import heapq
import re
import uuid
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tenantsim.api import review_instances
from tenantsim.config import SimConfig
from tenantsim.directory import Directory
from tenantsim.errors import GraphError, bad_request, not_found
from tenantsim.runtime import Call, GraphResponse, Simulator
from tenantsim.seed import entitlement_seed

EM = "identityGovernance/entitlementManagement"
REVIEWS = "identityGovernance/accessReviews/definitions"

ALLOWED_TARGET_SCOPES = frozenset(
    {
        "notSpecified",
        "specificDirectoryUsers",
        "specificConnectedOrganizationUsers",
        "specificDirectoryServicePrincipals",
        "allMemberUsers",
        "allDirectoryUsers",
        "allDirectoryServicePrincipals",
        "allConfiguredConnectedOrganizationUsers",
        "allExternalUsers",
    }
)
SUBJECT_SETS = frozenset(
    {
        "#microsoft.graph.singleUser",
        "#microsoft.graph.groupMembers",
        "#microsoft.graph.internalSponsors",
        "#microsoft.graph.externalSponsors",
        "#microsoft.graph.requestorManager",
        "#microsoft.graph.connectedOrganizationMembers",
        "#microsoft.graph.attributeRuleMembers",
        "#microsoft.graph.targetUserSponsors",
    }
)
EXPIRATION_TYPES = frozenset({"notSpecified", "noExpiration", "afterDateTime", "afterDuration"})
IDENTITY_SOURCES = frozenset(
    {
        "#microsoft.graph.azureActiveDirectoryTenant",
        "#microsoft.graph.domainIdentitySource",
        "#microsoft.graph.externalDomainFederation",
        "#microsoft.graph.crossCloudAzureActiveDirectoryTenant",
        "#microsoft.graph.socialIdentitySource",
    }
)
LIFECYCLE_ACTIONS = frozenset({"none", "blockSignIn", "blockSignInAndDelete"})
REVIEW_SCOPES = frozenset(
    {
        "#microsoft.graph.accessReviewQueryScope",
        "#microsoft.graph.accessReviewInactiveUsersQueryScope",
        "#microsoft.graph.principalResourceMembershipsScope",
        "#microsoft.graph.accessReviewReviewerScope",
    }
)
DEFAULT_DECISIONS = frozenset({"Approve", "Deny", "Recommendation", "None"})
APPLY_ACTIONS = frozenset(
    {"#microsoft.graph.removeAccessApplyAction", "#microsoft.graph.disableAndDeleteUserApplyAction"}
)
LIVE_ASSIGNMENT = frozenset({"delivering", "delivered", "partiallyDelivered"})
# accessPackageAssignmentState and accessPackageRequestState (v1.0 resource pages), for $filter on state.
ASSIGNMENT_STATES = frozenset(
    {"delivering", "partiallyDelivered", "delivered", "expired", "deliveryFailed", "unknownFutureValue"}
)
REQUEST_STATES = frozenset(
    {
        "submitted",
        "pendingApproval",
        "delivering",
        "delivered",
        "deliveryFailed",
        "denied",
        "scheduled",
        "canceled",
        "partiallyDelivered",
        "unknownFutureValue",
    }
)
DATE_ONLY = re.compile(r"^(\d{4}-\d{2}-\d{2})")
ISO_DURATION = re.compile(r"^P(?!$)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?$")


# --- state ------------------------------------------------------------------------------------------


@dataclass
class GovernanceState:
    catalogs: dict[str, dict[str, Any]] = field(default_factory=dict)
    packages: dict[str, dict[str, Any]] = field(default_factory=dict)
    policies: dict[str, dict[str, Any]] = field(default_factory=dict)
    organizations: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: dict[str, dict[str, Any]] = field(default_factory=dict)
    assignments: dict[str, dict[str, Any]] = field(default_factory=dict)
    reviews: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Catalog resources (with their roles and scopes) and the role scopes access packages grant.
    resources: dict[str, dict[str, Any]] = field(default_factory=dict)
    role_scopes: dict[str, dict[str, Any]] = field(default_factory=dict)
    settings: dict[str, Any] = field(
        default_factory=lambda: {
            "id": str(uuid.uuid4()),
            "externalUserLifecycleAction": "blockSignInAndDelete",
            "durationUntilExternalUserDeletedAfterBlocked": "P30D",
        }
    )
    # Reads of an assignment request until it is delivered; 1 delivers on the first read after the POST.
    reads_until_delivered: int = 1
    # (end, assignment id) of delivered assignments whose schedule ends: a heap, earliest end first.
    expiries: list[tuple[datetime, str]] = field(default_factory=list)

    def watch_expiry(self, assignment: dict[str, Any]) -> None:
        end = scheduled_end(assignment)
        if end is not None:
            heapq.heappush(self.expiries, (end, assignment["id"]))

    @classmethod
    def seeded(cls) -> GovernanceState:
        seed = entitlement_seed()
        state = cls()
        state.catalogs = {c["id"]: c for c in seed["catalogs"]}
        state.packages = {p["id"]: p for p in seed["accessPackages"]}
        state.policies = {p["id"]: p for p in seed["assignmentPolicies"]}
        state.resources = {r["id"]: r for r in seed["resources"]}
        return state


_STATES: weakref.WeakKeyDictionary[Directory, GovernanceState] = weakref.WeakKeyDictionary()


def governance_state(directory: Directory) -> GovernanceState:
    """The governance state of a loaded tenant; a reseed (a new Directory) starts from the seed again."""
    state = _STATES.get(directory)
    if state is None:
        state = _STATES[directory] = GovernanceState.seeded()
    return state


def existing_governance_state(directory: Directory) -> GovernanceState | None:
    """The governance state of a tenant if anything has read or written it yet."""
    return _STATES.get(directory)


def _state(call: Call) -> GovernanceState:
    return governance_state(call.sim.directory)


# --- shared helpers ---------------------------------------------------------------------------------


def _public(record: dict[str, Any]) -> dict[str, Any]:
    """A stored record as Graph shows it: internal bookkeeping keys start with an underscore."""
    return {k: copy.deepcopy(v) for k, v in record.items() if not k.startswith("_")}


def _object(body: Any, writable: Iterable[str], resource: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.")
    allowed = set(writable) | {"@odata.type"}
    for name in body:
        if name not in allowed:
            raise bad_request(f"Invalid property '{name}' for resource '{resource}'.")
    return {k: v for k, v in body.items() if k != "@odata.type"}


def _find(records: dict[str, dict[str, Any]], record_id: str) -> dict[str, Any]:
    record = records.get(record_id)
    if record is None:
        raise not_found(record_id)
    return record


def _duration(value: Any, name: str) -> None:
    if value is not None and (not isinstance(value, str) or not ISO_DURATION.match(value)):
        raise bad_request(f"'{name}' must be an ISO 8601 duration.")


def _page(call: Call, items: list[dict[str, Any]], context: str) -> GraphResponse:
    """$top/$skip paging with an @odata.nextLink, as access reviews and entitlement management do."""
    query = call.request.query
    try:
        top = int(query.get("$top", 100))
        skip = int(query.get("$skip", 0))
    except ValueError as exc:
        raise bad_request("$top and $skip must be integers.") from exc
    if top < 1 or skip < 0:
        raise bad_request("$top must be positive and $skip not negative.")
    body: dict[str, Any] = {"@odata.context": call.context_url(context), "value": items[skip : skip + top]}
    if skip + top < len(items):
        path = f"{call.sim.base_url}/{call.request.version}{call.request.path}"
        kept = "&".join(f"{k}={v}" for k, v in query.items() if k not in {"$top", "$skip"})
        body["@odata.nextLink"] = f"{path}?{kept + '&' if kept else ''}$top={top}&$skip={skip + top}"
    return GraphResponse(200, body)


_COMPARISON = re.compile(r"^\s*([A-Za-z/]+)\s+eq\s+'((?:[^']|'')*)'\s*$")


def _filter(
    call: Call,
    supported: dict[str, Callable[[dict[str, Any]], Any]],
    enums: dict[str, frozenset[str]] | None = None,
) -> Callable[[dict[str, Any]], bool]:
    """The `a eq 'x' [and b eq 'y']` subset Graph documents for these collections.

    An enum property matches its members whatever the literal's casing: the list-assignments page filters
    `state eq 'Delivered'` on a property whose member is `delivered`. A literal naming no member is a 400.
    """
    raw = call.request.query.get("$filter")
    if not raw:
        return lambda _record: True
    clauses: list[tuple[Callable[[dict[str, Any]], Any], str]] = []
    for part in re.split(r"\s+and\s+", raw.strip()):
        match = _COMPARISON.match(part)
        if match is None or match.group(1) not in supported:
            raise GraphError(400, "BadRequest", f"Invalid filter clause: {part!r}.")
        value = match.group(2).replace("''", "'")
        members = (enums or {}).get(match.group(1))
        if members is not None:
            value = _enum_member(members, value, match.group(1))
        clauses.append((supported[match.group(1)], value))
    return lambda record: all(str(getter(record) or "") == value for getter, value in clauses)


def _enum_member(members: frozenset[str], literal: str, name: str) -> str:
    member = next((m for m in members if m.lower() == literal.lower()), None)
    if member is None:
        raise GraphError(400, "BadRequest", f"Invalid value '{literal}' for the enum property '{name}'.")
    return member


def _expand(call: Call) -> dict[str, str]:
    return expand_options(call.request.query.get("$expand", ""))


def expand_options(raw: str) -> dict[str, str]:
    """`a,b($expand=c,d)` as {"a": "", "b": "c,d"}: each expanded navigation with its nested $expand."""
    found: dict[str, str] = {}
    depth, start = 0, 0
    for index, char in enumerate(raw + ","):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "," and depth == 0:
            part = raw[start:index].strip()
            start = index + 1
            if not part:
                continue
            name, _, options = part.partition("(")
            nested = re.match(r"^\$expand=(.*)\)$", options.strip())
            if options and nested is None:
                raise bad_request(f"Unsupported nested query options in $expand: {part!r}.")
            found[name.strip()] = nested.group(1) if nested else ""
    if depth:
        raise bad_request("Unbalanced parentheses in $expand.")
    return found


# --- catalogs ---------------------------------------------------------------------------------------

CATALOG_WRITABLE = ("displayName", "description", "state", "isExternallyVisible", "catalogType")


def list_catalogs(call: Call) -> GraphResponse:
    call.require("entitlementManagement.read")
    keep = _filter(call, {"displayName": lambda c: c["displayName"], "id": lambda c: c["id"]})
    items = [_public(c) for c in _state(call).catalogs.values() if keep(c)]
    return _page(call, items, f"{EM}/catalogs")


def create_catalog(call: Call) -> GraphResponse:
    call.require("entitlementManagement.write")
    body = _object(call.request.body, CATALOG_WRITABLE, "accessPackageCatalog")
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
    _state(call).catalogs[catalog["id"]] = catalog
    return GraphResponse(201, {"@odata.context": call.context_url(f"{EM}/catalogs/$entity"), **_public(catalog)})


def _catalog_state(value: Any) -> None:
    if value not in {"published", "unpublished"}:
        raise bad_request("'state' must be published or unpublished.")


def get_catalog(call: Call, catalog_id: str) -> GraphResponse:
    call.require("entitlementManagement.read")
    catalog = _public(_find(_state(call).catalogs, catalog_id))
    if "accessPackages" in _expand(call):
        catalog["accessPackages"] = _packages_in(call, catalog_id)
    return GraphResponse(200, {"@odata.context": call.context_url(f"{EM}/catalogs/$entity"), **catalog})


def update_catalog(call: Call, catalog_id: str) -> GraphResponse:
    call.require("entitlementManagement.write")
    catalog = _find(_state(call).catalogs, catalog_id)
    body = _object(call.request.body, CATALOG_WRITABLE, "accessPackageCatalog")
    if "state" in body:
        _catalog_state(body["state"])
    catalog.update(body)
    catalog["modifiedDateTime"] = call.sim.now_iso()
    return GraphResponse(204)


def delete_catalog(call: Call, catalog_id: str) -> GraphResponse:
    call.require("entitlementManagement.write")
    state = _state(call)
    _find(state.catalogs, catalog_id)
    if any(p["_catalogId"] == catalog_id for p in state.packages.values()):
        raise bad_request("The catalog still holds access packages; delete them first.")
    for resource_id in [r for r, v in state.resources.items() if v["_catalogId"] == catalog_id]:
        del state.resources[resource_id]
    del state.catalogs[catalog_id]
    return GraphResponse(204)


def _packages_in(call: Call, catalog_id: str) -> list[dict[str, Any]]:
    return [_public(p) for p in _state(call).packages.values() if p["_catalogId"] == catalog_id]


def list_catalog_packages(call: Call, catalog_id: str) -> GraphResponse:
    call.require("entitlementManagement.read")
    _find(_state(call).catalogs, catalog_id)
    return _page(call, _packages_in(call, catalog_id), f"{EM}/catalogs('{catalog_id}')/accessPackages")


# --- access packages --------------------------------------------------------------------------------

PACKAGE_WRITABLE = ("displayName", "description", "isHidden", "catalog")


def _package_view(call: Call, package: dict[str, Any], expand: dict[str, str]) -> dict[str, Any]:
    view = _public(package)
    state = _state(call)
    if "catalog" in expand:
        view["catalog"] = _public(state.catalogs[package["_catalogId"]])
    if "assignmentPolicies" in expand:
        view["assignmentPolicies"] = [
            _public(p) for p in state.policies.values() if p["_accessPackageId"] == package["id"]
        ]
    if "resourceRoleScopes" in expand:
        view["resourceRoleScopes"] = role_scopes_of(state, package["id"], expand_options(expand["resourceRoleScopes"]))
    return view


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
        view = _public(role_scope)
        resource = state.resources[role_scope["_resourceId"]]
        if "role" in expand:
            view["role"] = role_view(resource, _by_id(resource["_roles"], role_scope["_roleId"]))
        if "scope" in expand:
            view["scope"] = scope_view(resource, _by_id(resource["_scopes"], role_scope["_scopeId"]))
        views.append(view)
    return views


def _by_id(items: list[dict[str, Any]], item_id: str) -> dict[str, Any]:
    return next(i for i in items if i["id"] == item_id)


def list_packages(call: Call) -> GraphResponse:
    call.require("entitlementManagement.read")
    keep = _filter(
        call,
        {
            "displayName": lambda p: p["displayName"],
            "id": lambda p: p["id"],
            "catalog/id": lambda p: p["_catalogId"],
        },
    )
    expand = _expand(call)
    items = [_package_view(call, p, expand) for p in _state(call).packages.values() if keep(p)]
    return _page(call, items, f"{EM}/accessPackages")


def create_package(call: Call) -> GraphResponse:
    call.require("entitlementManagement.write")
    body = _object(call.request.body, PACKAGE_WRITABLE, "accessPackage")
    catalog_id = (body.get("catalog") or {}).get("id") if isinstance(body.get("catalog"), dict) else None
    if not catalog_id:
        raise bad_request("'catalog' with the id of an existing catalog is required.")
    state = _state(call)
    _find(state.catalogs, catalog_id)
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
    return GraphResponse(201, {"@odata.context": call.context_url(f"{EM}/accessPackages/$entity"), **_public(package)})


def get_package(call: Call, package_id: str) -> GraphResponse:
    call.require("entitlementManagement.read")
    package = _find(_state(call).packages, package_id)
    view = _package_view(call, package, _expand(call))
    return GraphResponse(200, {"@odata.context": call.context_url(f"{EM}/accessPackages/$entity"), **view})


def update_package(call: Call, package_id: str) -> GraphResponse:
    call.require("entitlementManagement.write")
    package = _find(_state(call).packages, package_id)
    body = _object(call.request.body, ("displayName", "description", "isHidden"), "accessPackage")
    package.update(body)
    package["modifiedDateTime"] = call.sim.now_iso()
    return GraphResponse(204)


def delete_package(call: Call, package_id: str) -> GraphResponse:
    call.require("entitlementManagement.write")
    state = _state(call)
    _find(state.packages, package_id)
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
    state = _state(call)
    _find(state.packages, package_id)
    items = [_public(p) for p in state.policies.values() if p["_accessPackageId"] == package_id]
    return _page(call, items, f"{EM}/accessPackages('{package_id}')/assignmentPolicies")


# --- assignment policies (v1.0 model) ---------------------------------------------------------------

POLICY_WRITABLE = (
    "displayName",
    "description",
    "allowedTargetScope",
    "specificAllowedTargets",
    "expiration",
    "requestorSettings",
    "requestApprovalSettings",
    "reviewSettings",
    "automaticRequestSettings",
    "accessPackage",
    "questions",
    "notificationSettings",
    "customExtensionStageSettings",
    "id",
    "createdDateTime",
    "modifiedDateTime",
    "catalog",
)
REQUESTOR_DEFAULTS = {
    "enableTargetsToSelfAddAccess": False,
    "enableTargetsToSelfUpdateAccess": False,
    "enableTargetsToSelfRemoveAccess": False,
    "allowCustomAssignmentSchedule": False,
    "enableOnBehalfRequestorsToAddAccess": False,
    "enableOnBehalfRequestorsToUpdateAccess": False,
    "enableOnBehalfRequestorsToRemoveAccess": False,
    "onBehalfRequestors": [],
}
APPROVAL_DEFAULTS = {
    "isApprovalRequiredForAdd": False,
    "isApprovalRequiredForUpdate": False,
    "isRequestorJustificationRequired": False,
    "stages": [],
}
STAGE_DEFAULTS = {
    "durationBeforeAutomaticDenial": "P14D",
    "isApproverJustificationRequired": False,
    "isEscalationEnabled": False,
    "durationBeforeEscalation": "PT0S",
    "primaryApprovers": [],
    "fallbackPrimaryApprovers": [],
    "escalationApprovers": [],
    "fallbackEscalationApprovers": [],
}


def _subject_sets(value: Any, name: str, call: Call) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise bad_request(f"'{name}' must be a collection of subject sets.")
    for entry in value:
        kind = entry.get("@odata.type") if isinstance(entry, dict) else None
        if kind not in SUBJECT_SETS:
            raise bad_request(f"Invalid subject set in '{name}': {kind!r}.")
        if kind == "#microsoft.graph.connectedOrganizationMembers":
            _find(_state(call).organizations, str(entry.get("connectedOrganizationId")))
        if kind == "#microsoft.graph.singleUser" and not entry.get("userId"):
            raise bad_request(f"A singleUser in '{name}' needs 'userId'.")
        if kind == "#microsoft.graph.groupMembers" and not entry.get("groupId"):
            raise bad_request(f"A groupMembers in '{name}' needs 'groupId'.")
    return copy.deepcopy(value)


def _validated_policy(call: Call, body: dict[str, Any]) -> dict[str, Any]:
    package_id = body.get("accessPackage", {}).get("id") if isinstance(body.get("accessPackage"), dict) else None
    if not package_id:
        raise bad_request("'accessPackage' with the id of an existing access package is required.")
    package = _find(_state(call).packages, package_id)
    if not isinstance(body.get("displayName"), str) or not body["displayName"].strip():
        raise bad_request("'displayName' is required.")
    scope = body.get("allowedTargetScope", "notSpecified")
    if scope not in ALLOWED_TARGET_SCOPES:
        raise bad_request(f"Invalid value '{scope}' for 'allowedTargetScope'.")
    targets = _subject_sets(body.get("specificAllowedTargets"), "specificAllowedTargets", call)
    if scope.startswith("specific") and not targets:
        raise bad_request(f"allowedTargetScope '{scope}' needs specificAllowedTargets.")
    expiration = {"endDateTime": None, "duration": None, "type": "noExpiration", **(body.get("expiration") or {})}
    if expiration["type"] not in EXPIRATION_TYPES:
        raise bad_request("Invalid expiration type.")
    _duration(expiration.get("duration"), "expiration.duration")
    if expiration["type"] == "afterDuration" and not expiration.get("duration"):
        raise bad_request("An afterDuration expiration needs 'duration'.")
    if expiration["type"] == "afterDateTime" and not expiration.get("endDateTime"):
        raise bad_request("An afterDateTime expiration needs 'endDateTime'.")
    unknown = set(body.get("requestorSettings") or {}) - set(REQUESTOR_DEFAULTS) - {"@odata.type"}
    if unknown:
        # allowedRequestors/scopeType are the beta model; v1.0 says who may ask with allowedTargetScope.
        raise bad_request(
            f"Invalid property '{sorted(unknown)[0]}' for resource 'accessPackageAssignmentRequestorSettings'."
        )
    requestor = {**REQUESTOR_DEFAULTS, **(body.get("requestorSettings") or {})}
    requestor["onBehalfRequestors"] = _subject_sets(requestor["onBehalfRequestors"], "onBehalfRequestors", call)
    approval = {**APPROVAL_DEFAULTS, **(body.get("requestApprovalSettings") or {})}
    stages = []
    for stage in approval.get("stages") or []:
        merged = {**STAGE_DEFAULTS, **stage}
        for name in ("primaryApprovers", "fallbackPrimaryApprovers", "escalationApprovers"):
            merged[name] = _subject_sets(merged[name], name, call)
        _duration(merged["durationBeforeAutomaticDenial"], "durationBeforeAutomaticDenial")
        stages.append(merged)
    approval["stages"] = stages
    if approval["isApprovalRequiredForAdd"] and not stages:
        raise bad_request("Approval is required but no approval stage is given.")
    return {
        "displayName": body["displayName"],
        "description": body.get("description"),
        "allowedTargetScope": scope,
        "specificAllowedTargets": targets,
        "expiration": expiration,
        "requestorSettings": requestor,
        "requestApprovalSettings": approval,
        "reviewSettings": copy.deepcopy(body.get("reviewSettings")),
        "automaticRequestSettings": copy.deepcopy(body.get("automaticRequestSettings")),
        "_accessPackageId": package_id,
        "_catalogId": package["_catalogId"],
    }


def _policy_view(call: Call, policy: dict[str, Any], expand: dict[str, str]) -> dict[str, Any]:
    view = _public(policy)
    state = _state(call)
    if "accessPackage" in expand:
        view["accessPackage"] = _public(state.packages[policy["_accessPackageId"]])
    if "catalog" in expand:
        view["catalog"] = _public(state.catalogs[policy["_catalogId"]])
    return view


def list_policies(call: Call) -> GraphResponse:
    call.require("entitlementManagement.read")
    keep = _filter(
        call,
        {
            "displayName": lambda p: p["displayName"],
            "accessPackage/id": lambda p: p["_accessPackageId"],
            "catalog/id": lambda p: p["_catalogId"],
        },
    )
    expand = _expand(call)
    items = [_policy_view(call, p, expand) for p in _state(call).policies.values() if keep(p)]
    return _page(call, items, f"{EM}/assignmentPolicies")


def create_policy(call: Call) -> GraphResponse:
    call.require("entitlementManagement.write")
    body = _object(call.request.body, POLICY_WRITABLE, "accessPackageAssignmentPolicy")
    policy = _validated_policy(call, body)
    now = call.sim.now_iso()
    policy = {"id": str(uuid.uuid4()), **policy, "createdDateTime": now, "modifiedDateTime": now}
    _state(call).policies[policy["id"]] = policy
    return GraphResponse(
        201, {"@odata.context": call.context_url(f"{EM}/assignmentPolicies/$entity"), **_public(policy)}
    )


def get_policy(call: Call, policy_id: str) -> GraphResponse:
    call.require("entitlementManagement.read")
    view = _policy_view(call, _find(_state(call).policies, policy_id), _expand(call))
    return GraphResponse(200, {"@odata.context": call.context_url(f"{EM}/assignmentPolicies/$entity"), **view})


def replace_policy(call: Call, policy_id: str) -> GraphResponse:
    """PUT replaces the whole policy (v1.0 has no PATCH for assignment policies); answers 200 with it."""
    call.require("entitlementManagement.write")
    state = _state(call)
    current = _find(state.policies, policy_id)
    body = _object(call.request.body, POLICY_WRITABLE, "accessPackageAssignmentPolicy")
    replacement = _validated_policy(call, body)
    if replacement["_accessPackageId"] != current["_accessPackageId"]:
        raise bad_request("A policy cannot move to another access package.")
    updated = {
        "id": policy_id,
        **replacement,
        "createdDateTime": current["createdDateTime"],
        "modifiedDateTime": call.sim.now_iso(),
    }
    state.policies[policy_id] = updated
    return GraphResponse(
        200, {"@odata.context": call.context_url(f"{EM}/assignmentPolicies/$entity"), **_public(updated)}
    )


def delete_policy(call: Call, policy_id: str) -> GraphResponse:
    call.require("entitlementManagement.write")
    state = _state(call)
    _find(state.policies, policy_id)
    if any(a["_policyId"] == policy_id and a["state"] in LIVE_ASSIGNMENT for a in state.assignments.values()):
        raise bad_request("The policy has assignments; remove them first.")
    del state.policies[policy_id]
    return GraphResponse(204)


# --- connected organizations ------------------------------------------------------------------------


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
        items = [_public(o) for o in _state(call).organizations.values() if _has_tenant_source(o, tenant_id)]
    else:
        keep = _filter(call, {"displayName": lambda o: o["displayName"], "id": lambda o: o["id"]})
        items = [_public(o) for o in _state(call).organizations.values() if keep(o)]
    return _page(call, items, f"{EM}/connectedOrganizations")


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
    body = _object(
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
    _state(call).organizations[organization["id"]] = organization
    answer = _public(organization)
    if call.sim.config.connected_organization_create_sources == "empty":
        # The create example answers an empty identitySources although one was sent; get and list show it.
        answer["identitySources"] = []
    return GraphResponse(201, {"@odata.context": call.context_url(f"{EM}/connectedOrganizations/$entity"), **answer})


def get_organization(call: Call, organization_id: str) -> GraphResponse:
    call.require("entitlementManagement.read")
    organization = _public(_find(_state(call).organizations, organization_id))
    return GraphResponse(
        200, {"@odata.context": call.context_url(f"{EM}/connectedOrganizations/$entity"), **organization}
    )


def update_organization(call: Call, organization_id: str) -> GraphResponse:
    call.require("entitlementManagement.write")
    organization = _find(_state(call).organizations, organization_id)
    body = _object(call.request.body, ("displayName", "description", "state"), "connectedOrganization")
    if "state" in body and body["state"] not in {"configured", "proposed"}:
        raise bad_request("'state' must be configured or proposed.")
    organization.update(body)
    organization["modifiedDateTime"] = call.sim.now_iso()
    return GraphResponse(204)


def delete_organization(call: Call, organization_id: str) -> GraphResponse:
    call.require("entitlementManagement.write")
    state = _state(call)
    _find(state.organizations, organization_id)
    for policy in state.policies.values():
        if any(t.get("connectedOrganizationId") == organization_id for t in policy["specificAllowedTargets"]):
            raise bad_request("An assignment policy still names this connected organization.")
    del state.organizations[organization_id]
    return GraphResponse(204)


# --- settings ---------------------------------------------------------------------------------------


def get_settings(call: Call) -> GraphResponse:
    call.require("entitlementManagement.read")
    return GraphResponse(
        200, {"@odata.context": call.context_url(f"{EM}/settings/$entity"), **_public(_state(call).settings)}
    )


def update_settings(call: Call) -> GraphResponse:
    call.require("entitlementManagement.write")
    body = _object(
        call.request.body,
        ("externalUserLifecycleAction", "durationUntilExternalUserDeletedAfterBlocked"),
        "entitlementManagementSettings",
    )
    if "externalUserLifecycleAction" in body and body["externalUserLifecycleAction"] not in LIFECYCLE_ACTIONS:
        raise bad_request("Invalid value for 'externalUserLifecycleAction'.")
    _duration(body.get("durationUntilExternalUserDeletedAfterBlocked"), "durationUntilExternalUserDeletedAfterBlocked")
    _state(call).settings.update(body)
    return GraphResponse(204)


# --- assignment requests and assignments ------------------------------------------------------------

REQUEST_TYPES = frozenset({"adminAdd", "adminRemove", "adminUpdate", "userAdd", "userRemove", "userUpdate"})


def create_request(call: Call) -> GraphResponse:
    call.require("entitlementManagement.write")
    body = _object(
        call.request.body,
        ("requestType", "assignment", "schedule", "justification", "answers", "requestor", "accessPackage"),
        "accessPackageAssignmentRequest",
    )
    request_type = body.get("requestType")
    if request_type not in REQUEST_TYPES:
        raise bad_request(f"Invalid value '{request_type}' for 'requestType'.")
    assignment = body.get("assignment")
    if not isinstance(assignment, dict):
        raise bad_request("'assignment' is required.")
    state = _state(call)
    if request_type in {"adminRemove", "adminUpdate", "userRemove", "userUpdate"}:
        existing = _find(state.assignments, str(assignment.get("id")))
        target_id, package_id, policy_id = existing["_targetId"], existing["_accessPackageId"], existing["_policyId"]
    else:
        target_id, package_id, policy_id = _checked_add(call, state, assignment)
    request = {
        "id": str(uuid.uuid4()),
        "requestType": request_type,
        "state": "submitted",
        "status": "Accepted",
        "createdDateTime": call.sim.now_iso(),
        "completedDateTime": None,
        "schedule": _request_schedule(body.get("schedule"), state.policies[policy_id]),
        "answers": copy.deepcopy(body.get("answers") or []),
        "justification": body.get("justification"),
        "_targetId": target_id,
        "_accessPackageId": package_id,
        "_policyId": policy_id,
        "_assignmentId": assignment.get("id"),
        "_reads": 0,
    }
    state.requests[request["id"]] = request
    return GraphResponse(
        201, {"@odata.context": call.context_url(f"{EM}/assignmentRequests/$entity"), **_public(request)}
    )


def _checked_add(call: Call, state: GovernanceState, assignment: dict[str, Any]) -> tuple[str, str, str]:
    target_id = assignment.get("targetId")
    package_id = assignment.get("accessPackageId")
    policy_id = assignment.get("assignmentPolicyId")
    if not (target_id and package_id and policy_id):
        raise bad_request("An add request needs assignment.targetId, accessPackageId and assignmentPolicyId.")
    record = call.sim.directory.users.get(target_id)
    if record is None:
        raise not_found(target_id)
    if record.visible_after > call.sim.clock() and call.sim.config.assignment_target_unreplicated == "notFound":
        # The replica that takes the request cannot see the user yet: the 404 Graph gives for managing an
        # object just after creating it (SupportArticles-docs 404-not-found-error-manage-objects-microsoft-graph).
        raise not_found(target_id)
    policy = _find(state.policies, policy_id)
    if policy["_accessPackageId"] != package_id:
        raise bad_request("The assignment policy does not belong to the access package.")
    if not _policy_admits(call, state, policy, record.data):
        raise bad_request("The target is not in the scope of the assignment policy.")
    for existing in state.assignments.values():
        if (
            existing["_targetId"] == target_id
            and existing["_accessPackageId"] == package_id
            and existing["state"] in LIVE_ASSIGNMENT
        ):
            # The code Graph uses here is not documented; the status is a client error either way.
            raise bad_request("The target already has an assignment of this access package.")
    return target_id, package_id, policy_id


def _policy_admits(call: Call, state: GovernanceState, policy: dict[str, Any], user: dict[str, Any]) -> bool:
    scope = policy["allowedTargetScope"]
    is_guest = user.get("userType") == "Guest"
    if scope in {"notSpecified", "allDirectoryUsers", "specificDirectoryUsers"}:
        return True
    if scope == "allMemberUsers":
        return not is_guest
    if scope == "allExternalUsers":
        return is_guest
    if scope == "allConfiguredConnectedOrganizationUsers":
        organizations = [o for o in state.organizations.values() if o["state"] == "configured"]
    elif scope == "specificConnectedOrganizationUsers":
        wanted = {t.get("connectedOrganizationId") for t in policy["specificAllowedTargets"]}
        organizations = [o for o in state.organizations.values() if o["id"] in wanted]
    else:
        return False
    return is_guest and any(_organization_has(call, o, user) for o in organizations)


def _organization_has(call: Call, organization: dict[str, Any], user: dict[str, Any]) -> bool:
    domain = str(user.get("mail") or "").rsplit("@", 1)[-1].lower()
    home_tenant = (call.sim.directory.domains.get(domain) or {}).get("tenantId")
    for source in organization["identitySources"]:
        if source.get("domainName", "").lower() == domain:
            return True
        if home_tenant and source.get("tenantId") == home_tenant:
            return True
    return False


def _request_schedule(schedule: Any, policy: dict[str, Any]) -> dict[str, Any]:
    if schedule is not None and not isinstance(schedule, dict):
        raise bad_request("'schedule' must be an object.")
    chosen = copy.deepcopy(schedule) if schedule else {}
    expiration = chosen.get("expiration") or copy.deepcopy(policy["expiration"])
    if expiration.get("type") not in EXPIRATION_TYPES:
        raise bad_request("Invalid schedule expiration type.")
    _duration(expiration.get("duration"), "schedule.expiration.duration")
    if expiration.get("endDateTime") is not None and _instant(expiration["endDateTime"]) is None:
        raise bad_request("'schedule.expiration.endDateTime' must be an ISO 8601 date and time.")
    return {
        "startDateTime": chosen.get("startDateTime"),
        "recurrence": chosen.get("recurrence"),
        "expiration": {"endDateTime": None, "duration": None, **expiration},
    }


def _instant(value: Any) -> datetime | None:
    """A DateTimeOffset from a JSON body, in UTC; None when it is not one."""
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


def scheduled_end(assignment: dict[str, Any]) -> datetime | None:
    """When the assignment's schedule ends it; None when the schedule names no end."""
    end = ((assignment.get("schedule") or {}).get("expiration") or {}).get("endDateTime")
    return _instant(end) if end is not None else None


def _advance(call: Call, state: GovernanceState, request: dict[str, Any]) -> None:
    """One read's worth of background processing of a request that is not finished yet."""
    if request["state"] not in {"submitted", "delivering"}:
        return
    request["_reads"] += 1
    delivered = request["_reads"] >= state.reads_until_delivered
    if request["requestType"].endswith("Add"):
        assignment = _assignment_for(call, state, request)
        assignment["state"] = "delivered" if delivered else "delivering"
        assignment["status"] = "Delivered" if delivered else "Delivering"
        if delivered:
            sync_group_memberships(call.sim, state, request["_targetId"])
            state.watch_expiry(assignment)
    elif delivered:
        assignment = state.assignments[request["_assignmentId"]]
        if request["requestType"].endswith("Remove"):
            assignment["state"], assignment["status"] = "expired", "Expired"
            assignment["expiredDateTime"] = call.sim.now_iso()
            sync_group_memberships(call.sim, state, request["_targetId"], assignment["_accessPackageId"])
            apply_lifecycle_action(call.sim, state, request["_targetId"])
    request["state"] = "delivered" if delivered else "delivering"
    request["status"] = "Delivered" if delivered else "Delivering"
    if delivered:
        request["completedDateTime"] = call.sim.now_iso()


def _assignment_for(call: Call, state: GovernanceState, request: dict[str, Any]) -> dict[str, Any]:
    if request["_assignmentId"] in state.assignments:
        return state.assignments[request["_assignmentId"]]
    assignment = {
        "id": str(uuid.uuid4()),
        "state": "delivering",
        "status": "Delivering",
        "expiredDateTime": None,
        "schedule": {**copy.deepcopy(request["schedule"]), "startDateTime": call.sim.now_iso()},
        "_targetId": request["_targetId"],
        "_accessPackageId": request["_accessPackageId"],
        "_policyId": request["_policyId"],
    }
    state.assignments[assignment["id"]] = assignment
    request["_assignmentId"] = assignment["id"]
    return assignment


def _granted_groups(state: GovernanceState, package_id: str) -> set[str]:
    """The groups whose Member role the package grants."""
    groups = set()
    for role_scope in state.role_scopes.values():
        resource = state.resources.get(role_scope["_resourceId"])
        if role_scope["_accessPackageId"] != package_id or not resource or resource["originSystem"] != "AadGroup":
            continue
        if _by_id(resource["_roles"], role_scope["_roleId"])["displayName"] == "Member":
            groups.add(resource["originId"])
    return groups


def sync_group_memberships(
    sim: Simulator, state: GovernanceState, user_id: str, ended_package_id: str | None = None
) -> None:
    """A delivered assignment makes the user a member of the package's groups; an ended one takes that back,
    except where another live assignment still grants the same group."""
    live = [a for a in state.assignments.values() if a["_targetId"] == user_id and a["state"] == "delivered"]
    keep = set().union(*(_granted_groups(state, a["_accessPackageId"]) for a in live))
    groups = sim.directory.groups
    for group_id in keep:
        if group_id in groups and user_id not in groups[group_id]["members"]:
            groups[group_id]["members"].append(user_id)
    if ended_package_id is not None:
        for group_id in _granted_groups(state, ended_package_id) - keep:
            if group_id in groups and user_id in groups[group_id]["members"]:
                groups[group_id]["members"].remove(user_id)


def apply_lifecycle_action(sim: Simulator, state: GovernanceState, user_id: str) -> None:
    """External users whose last assignment ends are blocked from signing in when the settings say so."""
    record = sim.directory.users.get(user_id)
    if record is None or record.data.get("userType") != "Guest":
        return
    if any(a["_targetId"] == user_id and a["state"] in LIVE_ASSIGNMENT for a in state.assignments.values()):
        return
    if state.settings["externalUserLifecycleAction"] in {"blockSignIn", "blockSignInAndDelete"}:
        sim.directory.update_user(user_id, {"accountEnabled": False})


def get_request(call: Call, request_id: str) -> GraphResponse:
    call.require("entitlementManagement.read")
    state = _state(call)
    request = _find(state.requests, request_id)
    _advance(call, state, request)
    return GraphResponse(
        200, {"@odata.context": call.context_url(f"{EM}/assignmentRequests/$entity"), **_public(request)}
    )


def list_requests(call: Call) -> GraphResponse:
    call.require("entitlementManagement.read")
    keep = _filter(
        call, {"state": lambda r: r["state"], "requestType": lambda r: r["requestType"]}, {"state": REQUEST_STATES}
    )
    items = [_public(r) for r in _state(call).requests.values() if keep(r)]
    return _page(call, items, f"{EM}/assignmentRequests")


def _subject(call: Call, user_id: str) -> dict[str, Any]:
    record = call.sim.directory.users.get(user_id) or call.sim.directory.deleted.get(user_id)
    user = record.data if record else {"id": user_id}
    return {
        "id": user_id,
        "objectId": user_id,
        "displayName": user.get("displayName"),
        "email": user.get("mail"),
        "principalName": user.get("userPrincipalName"),
        "subjectType": "user",
        "onPremisesSecurityIdentifier": None,
    }


def list_assignments(call: Call) -> GraphResponse:
    call.require("entitlementManagement.read")
    state = _state(call)
    keep = _filter(
        call,
        {
            "target/objectId": lambda a: a["_targetId"],
            "accessPackage/id": lambda a: a["_accessPackageId"],
            "assignmentPolicy/id": lambda a: a["_policyId"],
            "state": lambda a: a["state"],
        },
        {"state": ASSIGNMENT_STATES},
    )
    expand = _expand(call)
    items = [_assignment_view(call, state, a, expand) for a in state.assignments.values() if keep(a)]
    return _page(call, items, f"{EM}/assignments")


def get_assignment(call: Call, assignment_id: str) -> GraphResponse:
    call.require("entitlementManagement.read")
    state = _state(call)
    view = _assignment_view(call, state, _find(state.assignments, assignment_id), _expand(call))
    return GraphResponse(200, {"@odata.context": call.context_url(f"{EM}/assignments/$entity"), **view})


def _assignment_view(
    call: Call, state: GovernanceState, assignment: dict[str, Any], expand: dict[str, str]
) -> dict[str, Any]:
    view = _public(assignment)
    if "target" in expand:
        view["target"] = _subject(call, assignment["_targetId"])
    if "accessPackage" in expand:
        view["accessPackage"] = _public(state.packages[assignment["_accessPackageId"]])
    if "assignmentPolicy" in expand:
        view["assignmentPolicy"] = _public(state.policies[assignment["_policyId"]])
    return view


# --- access review definitions ----------------------------------------------------------------------

REVIEW_WRITABLE = (
    "displayName",
    "descriptionForAdmins",
    "descriptionForReviewers",
    "scope",
    "instanceEnumerationScope",
    "reviewers",
    "fallbackReviewers",
    "backupReviewers",
    "additionalNotificationRecipients",
    "settings",
    "stageSettings",
    "id",
    "status",
    "createdBy",
    "createdDateTime",
    "lastModifiedDateTime",
)
SETTINGS_DEFAULTS: dict[str, Any] = {
    "mailNotificationsEnabled": False,
    "reminderNotificationsEnabled": False,
    "justificationRequiredOnApproval": False,
    "defaultDecisionEnabled": False,
    "defaultDecision": "None",
    "instanceDurationInDays": 0,
    "autoApplyDecisionsEnabled": False,
    "recommendationsEnabled": False,
    "recurrence": None,
    "applyActions": [],
}
PATTERN_DEFAULTS = {
    "month": 0,
    "dayOfMonth": 0,
    "daysOfWeek": [],
    "firstDayOfWeek": "sunday",
    "index": "first",
}
RANGE_DEFAULTS = {"numberOfOccurrences": 0, "recurrenceTimeZone": None, "endDate": None}


# Reviewers resolved per reviewed user, relative to each decision: "Because ./manager is a relative query,
# specify the queryRoot property with the value decisions" (accessreviews-reviewers-concept); ./sponsors, each
# guest's sponsors, is the same kind of query. ./owners (all-groups reviews) is relative to the group instead.
PER_DECISION_REVIEWERS = frozenset({"./manager", "./sponsors"})
GROUP_OWNERS = "./owners"
# How Graph stores a definition's queries (accessreviewscheduledefinition-get, accessreviewset-list-definitions,
# accessreviewset-post-definitions example 2): absolute queries under /v1.0, filtered scope queries with $count.
VERSION_PREFIX = "/v1.0"
NO_END_DATE = "9999-12-31"
INDIVIDUAL_USER = re.compile(r"^(/v1\.0)?/users/[^/?]+$")


def _stored_query(query: str, config: SimConfig, count: str | None = None) -> str:
    """The query as Graph keeps it. ``count`` is where a filtered query gets its added ``$count=true``: first
    for a scope (``./members/...?$count=true&$filter=...``), last for an instanceEnumerationScope."""
    if count and "$filter=" in query and "$count=" not in query:
        if count == "first":
            path, _, options = query.partition("?")
            query = f"{path}?$count=true&{options}"
        else:
            query = f"{query}&$count=true"
    if config.review_query_version_prefix and query.startswith("/") and not query.startswith(("/v1.0/", "/beta/")):
        query = VERSION_PREFIX + query
    return query


def _reviewer_scopes(value: Any, name: str, config: SimConfig) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise bad_request(f"'{name}' must be a collection.")
    scopes = []
    for entry in value:
        if not isinstance(entry, dict) or not isinstance(entry.get("query"), str) or not entry["query"]:
            raise bad_request(f"Every entry of '{name}' needs a 'query'.")
        if entry["query"] in PER_DECISION_REVIEWERS and entry.get("queryRoot") != "decisions":
            raise bad_request(f"The relative reviewer query '{entry['query']}' needs queryRoot 'decisions'.")
        scopes.append(
            {
                "query": _stored_query(entry["query"], config),
                "queryType": entry.get("queryType", "MicrosoftGraph"),
                "queryRoot": None,
            }
            | ({"queryRoot": entry["queryRoot"]} if entry.get("queryRoot") else {})
        )
    return scopes


def _review_scope(value: Any, name: str, required: bool, config: SimConfig, count: str) -> dict[str, Any] | None:
    if value is None:
        if required:
            raise bad_request(f"'{name}' is required.")
        return None
    if not isinstance(value, dict) or value.get("@odata.type") not in REVIEW_SCOPES:
        raise bad_request(f"'{name}' must name a supported access review scope type.")
    scope = copy.deepcopy(value)
    if "query" in scope:
        if isinstance(scope["query"], str):
            scope["query"] = _stored_query(scope["query"], config, count)
        scope.setdefault("queryType", "MicrosoftGraph")
        scope.setdefault("queryRoot", None)
    _duration(scope.get("inactiveDuration"), f"{name}.inactiveDuration")
    return scope


def _recurrence(value: Any, config: SimConfig) -> dict[str, Any] | None:
    if value is None:
        return None
    pattern, span = value.get("pattern"), value.get("range")
    if not isinstance(pattern, dict) or pattern.get("type") not in {"weekly", "absoluteMonthly"}:
        raise bad_request("recurrence.pattern.type must be weekly or absoluteMonthly.")
    if not isinstance(span, dict) or span.get("type") not in {"noEnd", "numbered", "endDate"}:
        raise bad_request("recurrence.range.type must be noEnd, numbered or endDate.")
    start = DATE_ONLY.match(str(span.get("startDate") or ""))
    if start is None:
        raise bad_request("recurrence.range.startDate is required.")
    normalised_range = {**RANGE_DEFAULTS, **span, "startDate": start.group(1)}
    if normalised_range.get("endDate"):
        end = DATE_ONLY.match(str(normalised_range["endDate"]))
        normalised_range["endDate"] = end.group(1) if end else None
    if normalised_range["type"] == "noEnd" and config.review_no_end_as_numbered:
        normalised_range.update(type="numbered", numberOfOccurrences=0, endDate=NO_END_DATE)
    return {"pattern": {**PATTERN_DEFAULTS, "interval": 1, **pattern}, "range": normalised_range}


def _owners_fit_the_scope(review: dict[str, Any], config: SimConfig) -> None:
    """./owners names each reviewed group's owners: documented for reviews of all groups; a review of one group
    names /groups/{id}/owners (accessreviews-reviewers-concept)."""
    if review["instanceEnumerationScope"] is not None or config.review_relative_owners_on_single_group:
        return
    for name in ("reviewers", "fallbackReviewers"):
        if any(entry["query"] == GROUP_OWNERS for entry in review[name]):
            raise bad_request(
                f"'{name}' names './owners' but the review has no instanceEnumerationScope: "
                "name the group's owners as /groups/{id}/owners."
            )


def _validated_review(body: dict[str, Any], config: SimConfig) -> dict[str, Any]:
    if not isinstance(body.get("displayName"), str) or not body["displayName"].strip():
        raise bad_request("'displayName' is required.")
    settings = {**SETTINGS_DEFAULTS, **(body.get("settings") or {})}
    if settings["defaultDecision"] not in DEFAULT_DECISIONS:
        raise bad_request("Invalid value for 'settings.defaultDecision'.")
    for action in settings["applyActions"]:
        if not isinstance(action, dict) or action.get("@odata.type") not in APPLY_ACTIONS:
            raise bad_request("Invalid entry in 'settings.applyActions'.")
    _duration(settings.get("recommendationLookBackDuration"), "recommendationLookBackDuration")
    settings["recurrence"] = _recurrence(settings["recurrence"], config)
    # Setting either backupReviewers or fallbackReviewers fills fallbackReviewers (backupReviewers is deprecated).
    fallback = (
        body.get("fallbackReviewers") if body.get("fallbackReviewers") is not None else body.get("backupReviewers")
    )
    review = {
        "displayName": body["displayName"],
        "descriptionForAdmins": body.get("descriptionForAdmins"),
        "descriptionForReviewers": body.get("descriptionForReviewers"),
        "scope": _review_scope(body.get("scope"), "scope", True, config, "first"),
        "instanceEnumerationScope": _review_scope(
            body.get("instanceEnumerationScope"), "instanceEnumerationScope", False, config, "last"
        ),
        "reviewers": _reviewer_scopes(body.get("reviewers"), "reviewers", config),
        "fallbackReviewers": _reviewer_scopes(fallback, "fallbackReviewers", config),
        "additionalNotificationRecipients": copy.deepcopy(body.get("additionalNotificationRecipients") or []),
        "settings": settings,
    }
    if body.get("stageSettings"):
        review["stageSettings"] = copy.deepcopy(body["stageSettings"])
    _owners_fit_the_scope(review, config)
    return review


def list_reviews(call: Call) -> GraphResponse:
    call.require("accessReview.read")
    raw = call.request.query.get("$filter", "")
    contains = re.match(r"^contains\(scope/microsoft\.graph\.accessReviewQueryScope/query,\s*'((?:[^']|'')*)'\)$", raw)
    if contains:
        needle = contains.group(1).replace("''", "'")
        items = [_public(r) for r in _state(call).reviews.values() if needle in (r["scope"] or {}).get("query", "")]
    else:
        keep = _filter(call, {"status": lambda r: r["status"]})
        items = [_public(r) for r in _state(call).reviews.values() if keep(r)]
    return _page(call, items, REVIEWS)


def create_review(call: Call) -> GraphResponse:
    call.require("accessReview.write")
    body = _object(call.request.body, REVIEW_WRITABLE, "accessReviewScheduleDefinition")
    review = {
        "id": str(uuid.uuid4()),
        **_validated_review(body, call.sim.config),
        "status": "NotStarted",
        "createdDateTime": call.sim.now_iso(),
        "lastModifiedDateTime": call.sim.now_iso(),
        "createdBy": {"id": call.caller.app_id, "displayName": "Guest lifecycle", "userPrincipalName": None},
    }
    _state(call).reviews[review["id"]] = review
    return GraphResponse(201, {"@odata.context": call.context_url(f"{REVIEWS}/$entity"), **_public(review)})


def get_review(call: Call, review_id: str) -> GraphResponse:
    call.require("accessReview.read")
    review = _public(_find(_state(call).reviews, review_id))
    return GraphResponse(200, {"@odata.context": call.context_url(f"{REVIEWS}/$entity"), **review})


def _reviewer_set(scopes: list[dict[str, Any]]) -> list[tuple[str, str | None]]:
    return sorted((entry["query"], entry.get("queryRoot")) for entry in scopes)


def _individual_users(scopes: list[dict[str, Any]]) -> bool:
    return bool(scopes) and all(INDIVIDUAL_USER.match(entry["query"]) for entry in scopes)


def replace_review(call: Call, review_id: str) -> GraphResponse:
    """PUT with the full definition, answered 204 (accessreviewscheduledefinition-update). scope and
    instanceEnumerationScope cannot change after creation; reviewers only while individual users review."""
    call.require("accessReview.write")
    state = _state(call)
    current = _find(state.reviews, review_id)
    body = _object(call.request.body, REVIEW_WRITABLE, "accessReviewScheduleDefinition")
    replacement = _validated_review(body, call.sim.config)
    for fixed in ("scope", "instanceEnumerationScope"):
        if replacement[fixed] != current[fixed]:
            raise bad_request(f"'{fixed}' of an access review definition cannot be updated.")
    if _reviewer_set(replacement["reviewers"]) != _reviewer_set(current["reviewers"]) and not (
        _individual_users(current["reviewers"]) and _individual_users(replacement["reviewers"])
    ):
        raise bad_request("'reviewers' can only be updated when individual users are assigned as reviewers.")
    current.update(replacement)
    current["lastModifiedDateTime"] = call.sim.now_iso()
    return GraphResponse(204)


def delete_review(call: Call, review_id: str) -> GraphResponse:
    call.require("accessReview.write")
    state = _state(call)
    _find(state.reviews, review_id)
    del state.reviews[review_id]
    return GraphResponse(204)


def list_review_instances(call: Call, review_id: str) -> GraphResponse:
    """The instances the definition has run by now and its next one (see tenantsim.api.review_instances)."""
    call.require("accessReview.read")
    review = _find(_state(call).reviews, review_id)
    now = datetime.fromisoformat(call.sim.now_iso().replace("Z", "+00:00"))
    groups = list(call.sim.directory.groups.values())
    keep = _filter(call, {"status": lambda i: i["status"]})
    items = [i for i in review_instances.instances(review, groups, now) if keep(i)]
    return _page(call, items, f"{REVIEWS}('{review_id}')/instances")
