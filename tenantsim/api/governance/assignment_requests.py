"""Access package assignment requests: `entitlementManagement/assignmentRequests`.

Requests are processed asynchronously as in Graph: a request is answered `submitted` and moves on to
`delivering` and `delivered` (GovernanceState.reads_until_delivered sets how many steps that takes). An add
request creates the assignment; a remove request ends it. Knob `assignmentRequestProcessing` says what drives a
step: `onRead` (a read of that request) or `background` (every call to the tenant, whoever makes it, as Graph
processes requests nobody is looking at). Knob `assignmentRequestWhileOpen` says what a second add for the same
target and package gets while the first is still open: no page says, so `accept` or `refuse` (400).
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable
from typing import Any

from tenantsim.api.governance.assignment_policies import EXPIRATION_TYPES
from tenantsim.api.governance.assignments import apply_lifecycle_action, sync_group_memberships
from tenantsim.api.governance.common import (
    EM,
    check_duration,
    enum_member,
    expanded,
    instant,
    page,
    public,
    writable_body,
)
from tenantsim.api.governance.state import (
    LIVE_ASSIGNMENT,
    GovernanceState,
    existing_governance_state,
    state_of,
)
from tenantsim.errors import bad_request, found, not_found
from tenantsim.odata_filter import BoolOp, InList, Node, Not, compile_filter, parse_filter
from tenantsim.runtime import Call, GraphResponse, Simulator

# accessPackageRequestState (v1.0 metadata), for $filter on state.
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
# The request types a client may create (the create-request page); the enum (v1.0 metadata) has more members.
REQUEST_TYPES = frozenset({"adminAdd", "adminRemove", "adminUpdate", "userAdd", "userRemove", "userUpdate"})
REQUEST_TYPE_MEMBERS = REQUEST_TYPES | {
    "notSpecified",
    "systemAdd",
    "systemUpdate",
    "systemRemove",
    "onBehalfAdd",
    "approverRemove",
    "notDefined",
    "unknownFutureValue",
}
OPEN_STATES = frozenset({"submitted", "delivering"})


def create_request(call: Call) -> GraphResponse:
    call.require("entitlementManagement.write")
    body = writable_body(
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
    state = state_of(call)
    if request_type in {"adminRemove", "adminUpdate", "userRemove", "userUpdate"}:
        existing = found(state.assignments, str(assignment.get("id")))
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
    state.open_requests.add(request["id"])
    return GraphResponse(
        201, {"@odata.context": call.context_url(f"{EM}/assignmentRequests/$entity"), **public(request)}
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
    policy = found(state.policies, policy_id)
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
    if call.sim.config.assignment_request_while_open == "refuse" and any(
        r["_targetId"] == target_id and r["_accessPackageId"] == package_id and r["requestType"].endswith("Add")
        for r in (state.requests[i] for i in state.open_requests)
    ):
        raise bad_request("The target already has an open request for this access package.")
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
    check_duration(expiration.get("duration"), "schedule.expiration.duration")
    if expiration.get("endDateTime") is not None and instant(expiration["endDateTime"]) is None:
        raise bad_request("'schedule.expiration.endDateTime' must be an ISO 8601 date and time.")
    return {
        "startDateTime": chosen.get("startDateTime"),
        "recurrence": chosen.get("recurrence"),
        "expiration": {"endDateTime": None, "duration": None, **expiration},
    }


def process_in_background(sim: Simulator) -> None:
    """With `background` processing, one step of every open request before each call to the tenant."""
    if sim.config.assignment_request_processing != "background":
        return
    state = existing_governance_state(sim.directory)
    if state is None:
        return
    for request_id in list(state.open_requests):
        _advance(sim, state, state.requests[request_id])


def _advance(sim: Simulator, state: GovernanceState, request: dict[str, Any]) -> None:
    """One step of processing of a request that is not finished yet."""
    if request["state"] not in OPEN_STATES:
        state.open_requests.discard(request["id"])
        return
    request["_reads"] += 1
    delivered = request["_reads"] >= state.reads_until_delivered
    if request["requestType"].endswith("Add"):
        assignment = _assignment_for(sim, state, request)
        assignment["state"] = "delivered" if delivered else "delivering"
        assignment["status"] = "Delivered" if delivered else "Delivering"
        if delivered:
            sync_group_memberships(sim, state, request["_targetId"])
            state.watch_expiry(assignment)
    elif delivered:
        assignment = state.assignments[request["_assignmentId"]]
        if request["requestType"].endswith("Remove"):
            assignment["state"], assignment["status"] = "expired", "Expired"
            assignment["expiredDateTime"] = sim.now_iso()
            sync_group_memberships(sim, state, request["_targetId"], assignment["_accessPackageId"])
            apply_lifecycle_action(sim, state, request["_targetId"])
    request["state"] = "delivered" if delivered else "delivering"
    request["status"] = "Delivered" if delivered else "Delivering"
    if delivered:
        request["completedDateTime"] = sim.now_iso()
        state.open_requests.discard(request["id"])


def _assignment_for(sim: Simulator, state: GovernanceState, request: dict[str, Any]) -> dict[str, Any]:
    if request["_assignmentId"] in state.assignments:
        return state.assignments[request["_assignmentId"]]
    assignment = {
        "id": str(uuid.uuid4()),
        "state": "delivering",
        "status": "Delivering",
        "expiredDateTime": None,
        "schedule": {**copy.deepcopy(request["schedule"]), "startDateTime": sim.now_iso()},
        "_targetId": request["_targetId"],
        "_accessPackageId": request["_accessPackageId"],
        "_policyId": request["_policyId"],
    }
    state.assignments[assignment["id"]] = assignment
    request["_assignmentId"] = assignment["id"]
    return assignment


def get_request(call: Call, request_id: str) -> GraphResponse:
    call.require("entitlementManagement.read")
    state = state_of(call)
    request = found(state.requests, request_id)
    if call.sim.config.assignment_request_processing == "onRead":
        _advance(call.sim, state, request)
    return GraphResponse(
        200, {"@odata.context": call.context_url(f"{EM}/assignmentRequests/$entity"), **public(request)}
    )


def list_requests(call: Call) -> GraphResponse:
    """The list page's filters (`accessPackage/id eq`, with `$expand=accessPackage` as callers scoped to a catalog
    must send it; `createdDateTime gt` an instant) and `state`/`requestType`, in tenantsim's OData filter grammar."""
    call.require("entitlementManagement.read")
    state = state_of(call)
    keep = _request_filter(call.request.query.get("$filter"))
    with_package = "accessPackage" in expanded(call)
    items = []
    for request in state.requests.values():
        if keep(request):
            view = public(request)
            if with_package:
                view["accessPackage"] = public(state.packages.get(request["_accessPackageId"]) or {})
            items.append(view)
    return page(call, items, f"{EM}/assignmentRequests")


# The properties a request list filters on, and the kinds tenantsim.odata_filter compares them as.
REQUEST_FILTERABLE = {
    "accessPackage/id": "string",
    "createdDateTime": "datetime",
    "state": "string",
    "requestType": "string",
}
# Enum members a filter literal must name (the v1.0 metadata's, whatever the casing).
REQUEST_ENUMS = {"state": REQUEST_STATES, "requestType": REQUEST_TYPE_MEMBERS}


def _request_filter(raw: str | None) -> Callable[[dict[str, Any]], bool]:
    if not raw:
        return lambda _request: True
    node, _ = parse_filter(raw)
    _check_enums(node)
    keep = compile_filter(node, REQUEST_FILTERABLE)
    return lambda request: keep(
        {
            "accessPackage": {"id": request["_accessPackageId"]},
            "createdDateTime": request["createdDateTime"],
            "state": request["state"],
            "requestType": request["requestType"],
        }
    )


def _check_enums(node: Node) -> None:
    """A literal that names no member of the property's enum is a 400, as for other enum filters."""
    if isinstance(node, BoolOp | Not):
        for operand in node.operands if isinstance(node, BoolOp) else (node.operand,):
            _check_enums(operand)
        return
    members = REQUEST_ENUMS.get(getattr(node, "prop", ""))
    values = node.values if isinstance(node, InList) else (getattr(node, "value", None),)
    if members is not None:
        for value in values:
            enum_member(members, str(value), node.prop)
