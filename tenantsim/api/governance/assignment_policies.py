"""Access package assignment policies (the v1.0 model): who may be assigned, with what expiry and approval.

v1.0 has no PATCH for a policy: PUT replaces it whole.
"""

from __future__ import annotations

import copy
import uuid
from typing import Any

from tenantsim.api.governance.common import (
    EM,
    check_duration,
    eq_filter,
    expanded,
    listed_filters,
    page,
    public,
    writable_body,
)
from tenantsim.api.governance.state import LIVE_ASSIGNMENT, state_of
from tenantsim.errors import bad_request, found
from tenantsim.runtime import Call, GraphResponse

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
            found(state_of(call).organizations, str(entry.get("connectedOrganizationId")))
        if kind == "#microsoft.graph.singleUser" and not entry.get("userId"):
            raise bad_request(f"A singleUser in '{name}' needs 'userId'.")
        if kind == "#microsoft.graph.groupMembers" and not entry.get("groupId"):
            raise bad_request(f"A groupMembers in '{name}' needs 'groupId'.")
    return copy.deepcopy(value)


def _validated_policy(call: Call, body: dict[str, Any]) -> dict[str, Any]:
    package_id = body.get("accessPackage", {}).get("id") if isinstance(body.get("accessPackage"), dict) else None
    if not package_id:
        raise bad_request("'accessPackage' with the id of an existing access package is required.")
    package = found(state_of(call).packages, package_id)
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
    check_duration(expiration.get("duration"), "expiration.duration")
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
        check_duration(merged["durationBeforeAutomaticDenial"], "durationBeforeAutomaticDenial")
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
    view = public(policy)
    state = state_of(call)
    if "accessPackage" in expand:
        view["accessPackage"] = public(state.packages[policy["_accessPackageId"]])
    if "catalog" in expand:
        view["catalog"] = public(state.catalogs[policy["_catalogId"]])
    return view


def list_policies(call: Call) -> GraphResponse:
    call.require("entitlementManagement.read")
    keep = eq_filter(
        call,
        listed_filters(
            call,
            {"displayName": lambda p: p["displayName"]},
            {"accessPackage/id": lambda p: p["_accessPackageId"], "catalog/id": lambda p: p["_catalogId"]},
        ),
    )
    expand = expanded(call)
    items = [_policy_view(call, p, expand) for p in state_of(call).policies.values() if keep(p)]
    return page(call, items, f"{EM}/assignmentPolicies")


def create_policy(call: Call) -> GraphResponse:
    call.require("entitlementManagement.write")
    body = writable_body(call.request.body, POLICY_WRITABLE, "accessPackageAssignmentPolicy")
    policy = _validated_policy(call, body)
    now = call.sim.now_iso()
    policy = {"id": str(uuid.uuid4()), **policy, "createdDateTime": now, "modifiedDateTime": now}
    state_of(call).policies[policy["id"]] = policy
    return GraphResponse(
        201, {"@odata.context": call.context_url(f"{EM}/assignmentPolicies/$entity"), **public(policy)}
    )


def get_policy(call: Call, policy_id: str) -> GraphResponse:
    call.require("entitlementManagement.read")
    view = _policy_view(call, found(state_of(call).policies, policy_id), expanded(call))
    return GraphResponse(200, {"@odata.context": call.context_url(f"{EM}/assignmentPolicies/$entity"), **view})


def replace_policy(call: Call, policy_id: str) -> GraphResponse:
    """PUT replaces the whole policy (v1.0 has no PATCH for assignment policies); answers 200 with it."""
    call.require("entitlementManagement.write")
    state = state_of(call)
    current = found(state.policies, policy_id)
    body = writable_body(call.request.body, POLICY_WRITABLE, "accessPackageAssignmentPolicy")
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
        200, {"@odata.context": call.context_url(f"{EM}/assignmentPolicies/$entity"), **public(updated)}
    )


def delete_policy(call: Call, policy_id: str) -> GraphResponse:
    call.require("entitlementManagement.write")
    state = state_of(call)
    found(state.policies, policy_id)
    if any(a["_policyId"] == policy_id and a["state"] in LIVE_ASSIGNMENT for a in state.assignments.values()):
        raise bad_request("The policy has assignments; remove them first.")
    del state.policies[policy_id]
    return GraphResponse(204)
