"""Access package assignments: `entitlementManagement/assignments`, with `$expand` of their target, package
and policy, and what a delivered or ended assignment does to the user: the groups it grants, and the
external-user lifecycle action when the last one ends. A delivered assignment whose schedule ends expires on
the tenant's clock (tenantsim.api.governance.assignment_expiry)."""

from __future__ import annotations

from typing import Any

from tenantsim.api.governance.catalog_resources import granted_groups
from tenantsim.api.governance.common import EM, eq_filter, expanded, page, public
from tenantsim.api.governance.state import LIVE_ASSIGNMENT, GovernanceState, state_of
from tenantsim.errors import found
from tenantsim.runtime import Call, GraphResponse, Simulator

# accessPackageAssignmentState (v1.0 resource page), for $filter on state.
ASSIGNMENT_STATES = frozenset(
    {"delivering", "partiallyDelivered", "delivered", "expired", "deliveryFailed", "unknownFutureValue"}
)


def sync_group_memberships(
    sim: Simulator, state: GovernanceState, user_id: str, ended_package_id: str | None = None
) -> None:
    """A delivered assignment makes the user a member of the package's groups; an ended one takes that back,
    except where another live assignment still grants the same group."""
    live = [a for a in state.assignments.values() if a["_targetId"] == user_id and a["state"] == "delivered"]
    keep = set().union(*(granted_groups(state, a["_accessPackageId"]) for a in live))
    groups = sim.directory.groups
    for group_id in keep:
        if group_id in groups and user_id not in groups[group_id]["members"]:
            groups[group_id]["members"].append(user_id)
    if ended_package_id is not None:
        for group_id in granted_groups(state, ended_package_id) - keep:
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
    state = state_of(call)
    keep = eq_filter(
        call,
        {
            "target/objectId": lambda a: a["_targetId"],
            "accessPackage/id": lambda a: a["_accessPackageId"],
            "assignmentPolicy/id": lambda a: a["_policyId"],
            "state": lambda a: a["state"],
        },
        {"state": ASSIGNMENT_STATES},
    )
    expand = expanded(call)
    items = [_assignment_view(call, state, a, expand) for a in state.assignments.values() if keep(a)]
    return page(call, items, f"{EM}/assignments")


def get_assignment(call: Call, assignment_id: str) -> GraphResponse:
    call.require("entitlementManagement.read")
    state = state_of(call)
    view = _assignment_view(call, state, found(state.assignments, assignment_id), expanded(call))
    return GraphResponse(200, {"@odata.context": call.context_url(f"{EM}/assignments/$entity"), **view})


def _assignment_view(
    call: Call, state: GovernanceState, assignment: dict[str, Any], expand: dict[str, str]
) -> dict[str, Any]:
    view = public(assignment)
    if "target" in expand:
        view["target"] = _subject(call, assignment["_targetId"])
    if "accessPackage" in expand:
        view["accessPackage"] = public(state.packages[assignment["_accessPackageId"]])
    if "assignmentPolicy" in expand:
        view["assignmentPolicy"] = public(state.policies[assignment["_policyId"]])
    return view
