"""Guest lifecycle policies of Lifecycle Workflows: ``/identityGovernance/lifecycleWorkflows/lifecyclePolicies``.

What Microsoft documents (contract: contract/lifecycle-policies.md, each row citing its page):

- a polymorphic collection of ``lifecyclePolicy``; tenantsim serves the guest subject type
  (``guestLifecyclePolicy``) with inline ``rules`` (ANDed: any enabled rule violated makes the guest
  noncompliant), an ``enforcementAction``, a ``notificationSchedule`` and a ``scope`` (null for all guests, or
  ``allExcludingGroupsSubjectSet`` whose ``excludedGroups`` relationship names groups);
- limits answered as 400 with Graph's codes: ``lifecyclePoliciesPerSubjectLimitExceeded`` (10 per subject type),
  ``lifecyclePolicyRulesLimitExceeded`` (10 rules), ``lifecyclePolicyExcludedGroupsLimitExceeded`` (10 groups);
- ``versionNumber`` starts at 1 and increments on every update; earlier versions are listed under ``versions``;
- precedence: ``lifecyclePolicyPriorityConfigurations/{subjectType}`` orders the policies, and only the
  highest-priority matching policy binds to a guest (the report's ``relationship``);
- the report and its subjects come from lifecycle_evaluation, run by the test hook
  ``POST /_tenantsim/lifecycle-policies/process`` (Microsoft evaluates enabled policies once a day).
"""

from __future__ import annotations

import copy
import uuid
import weakref
from dataclasses import dataclass, field
from typing import Any

from tenantsim.api.governance.common import writable_body
from tenantsim.directory import Directory
from tenantsim.errors import GraphError, bad_request, found
from tenantsim.runtime import Call, GraphResponse

NS = "microsoft.graph.identityGovernance"
GUEST_POLICY = f"#{NS}.guestLifecyclePolicy"
AGENT_POLICY = f"#{NS}.agentIdentityLifecyclePolicy"
EXCLUDING_GROUPS = f"#{NS}.allExcludingGroupsSubjectSet"
NOTIFICATION_SETTINGS = f"#{NS}.lifecyclePolicyNotificationSettings"
CONTAINER = "identityGovernance/lifecycleWorkflows"
# The subject type whose priority configuration orders guest policies (lifecyclePolicyPriorityConfiguration:
# subjectType user | agentIdentity).
GUEST_SUBJECT_TYPE = "user"

# Each rule type with the properties of its own (resources/identitygovernance-*rule.md, v1.0); every rule also has
# isEnabled and the optional gracePeriodInDays (0 through 30) of lifecyclePolicyRule.
INACTIVITY_FIELDS = ("isEnabled", "gracePeriodInDays", "lastActivityThresholdInDays")
SPONSOR_FIELDS = ("isEnabled", "gracePeriodInDays", "minimumSponsorCount")
ATTESTATION_FIELDS = ("isEnabled", "gracePeriodInDays", "attestationIntervalInDays")
ACCESS_PACKAGE_FIELDS = ("isEnabled", "gracePeriodInDays")
REDEMPTION_FIELDS = ("isEnabled", "gracePeriodInDays", "invitationRedemptionThresholdInDays")
RULE_TYPES: dict[str, tuple[str, ...]] = {
    f"#{NS}.inactivityRule": ("lastActivityThresholdInDays",),
    f"#{NS}.sponsorPresenceRule": ("minimumSponsorCount",),
    f"#{NS}.periodicAttestationRule": ("attestationIntervalInDays",),
    f"#{NS}.accessPackageAssignmentRequiredRule": (),
    f"#{NS}.invitationRedemptionRule": ("invitationRedemptionThresholdInDays",),
}
# Ranges the pages state for Graph itself.
RULE_GRACE_RANGE = (0, 30)  # lifecyclePolicyRule.gracePeriodInDays
GRAPH_RANGES = {"invitationRedemptionThresholdInDays": (1, 30)}  # invitationRedemptionRule
# Ranges the admin center offers (entra-docs guest-lifecycle-policies.md); whether Graph refuses values outside
# them is not said, so they apply under the lifecyclePolicyPortalRanges knob.
PORTAL_RANGES = {
    "attestationIntervalInDays": (30, 365),
    "lastActivityThresholdInDays": (30, 730),
    "minimumSponsorCount": (1, 5),
    "deletionGracePeriodInDays": (7, 90),
    "gracePeriodInDays": (1, 10_000),
}
ENFORCEMENT_TYPES: dict[str, tuple[str, ...]] = {
    f"#{NS}.deleteOnlyEnforcementAction": (),
    f"#{NS}.disableOnlyEnforcementAction": (),
    f"#{NS}.disableThenDeleteEnforcementAction": ("deletionGracePeriodInDays",),
}
NOTIFICATION_FIELDS = ("additionalFallbackRecipients", "offsetsAfterNonComplianceInDays")
CREATE_FIELDS = (
    "displayName",
    "description",
    "isEnabled",
    "enforcementAction",
    "gracePeriodInDays",
    "notificationSchedule",
    "rules",
    "scope",
)
# The update page lists description, displayName, enforcementAction, isEnabled, notificationSchedule and scope;
# gracePeriodInDays is a writable property of the type, and rules travel with the policy (the update page's
# lifecyclePolicyRulesLimitExceeded error is for "the update"). Whether Graph takes those two in a PATCH is not
# said: knob lifecyclePolicyUpdateUnlisted "accept" (the default) takes them, "refuse" answers 400 as for a
# property the update does not list.
UPDATE_FIELDS = CREATE_FIELDS
UPDATE_LISTED = ("description", "displayName", "enforcementAction", "isEnabled", "notificationSchedule", "scope")
LIMIT = 10  # rules per policy, excluded groups per policy (resources/identitygovernance-lifecyclepolicy.md)


@dataclass
class LifecycleState:
    policies: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Guest policy ids, highest priority first (lifecyclePolicyPriorityConfiguration.orderedPolicyIds).
    order: list[str] = field(default_factory=list)
    order_version: int = 1
    # Previous versions of each policy, oldest first.
    versions: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    # Last sponsor attestation of each guest (the test hook stands in for sponsors attesting in My Access).
    attestations: dict[str, str] = field(default_factory=dict)
    # (policy id) -> the latest report and its subjects, written by lifecycle_evaluation.process.
    reports: dict[str, dict[str, Any]] = field(default_factory=dict)
    subjects: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    # (policy id, user id) -> when the guest was first found noncompliant under the policy.
    first_violation: dict[tuple[str, str], str] = field(default_factory=dict)


_STATES: weakref.WeakKeyDictionary[Directory, LifecycleState] = weakref.WeakKeyDictionary()


def lifecycle_state(directory: Directory) -> LifecycleState:
    if directory not in _STATES:
        _STATES[directory] = LifecycleState()
    return _STATES[directory]


def _limit_error(code: str, message: str) -> GraphError:
    return GraphError(400, code, message)


def _int_in(value: Any, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad_request(f"'{name}' must be an integer.")
    if not low <= value <= high:
        raise bad_request(f"'{name}' must be between {low} and {high}.")
    return value


def _portal_range(call: Call, name: str, value: Any) -> None:
    low, high = PORTAL_RANGES[name] if call.sim.config.lifecycle_policy_portal_ranges else (0, 2**31 - 1)
    _int_in(value, name, low, high)


def _rule(call: Call, raw: Any, rule_id: str | None = None) -> dict[str, Any]:
    if not isinstance(raw, dict) or raw.get("@odata.type") not in RULE_TYPES:
        raise bad_request(f"Each rule must name its '@odata.type', one of {', '.join(sorted(RULE_TYPES))}.")
    kind = raw["@odata.type"]
    own = RULE_TYPES[kind]
    body = _rule_body({k: v for k, v in raw.items() if k != "id"}, kind.rsplit(".", 1)[-1])
    rule: dict[str, Any] = {"@odata.type": kind, "id": rule_id or raw.get("id") or str(uuid.uuid4())}
    is_enabled = body.get("isEnabled", True)
    if not isinstance(is_enabled, bool):
        raise bad_request("'isEnabled' must be a boolean.")
    rule["isEnabled"] = is_enabled
    grace = body.get("gracePeriodInDays")
    rule["gracePeriodInDays"] = None if grace is None else _int_in(grace, "gracePeriodInDays", *RULE_GRACE_RANGE)
    for name in own:
        if name not in body:
            raise bad_request(f"'{name}' is required for {kind.rsplit('.', 1)[-1]}.")
        if name in GRAPH_RANGES:
            _int_in(body[name], name, *GRAPH_RANGES[name])
        else:
            _portal_range(call, name, body[name])
        rule[name] = body[name]
    return rule


def _rule_body(raw: dict[str, Any], kind: str) -> dict[str, Any]:
    """The rule's writable properties, checked against its own type's (one call per type, so the name check of
    the tests sees each type's list)."""
    if kind == "inactivityRule":
        return writable_body(raw, INACTIVITY_FIELDS, "inactivityRule")
    if kind == "sponsorPresenceRule":
        return writable_body(raw, SPONSOR_FIELDS, "sponsorPresenceRule")
    if kind == "periodicAttestationRule":
        return writable_body(raw, ATTESTATION_FIELDS, "periodicAttestationRule")
    if kind == "accessPackageAssignmentRequiredRule":
        return writable_body(raw, ACCESS_PACKAGE_FIELDS, "accessPackageAssignmentRequiredRule")
    return writable_body(raw, REDEMPTION_FIELDS, "invitationRedemptionRule")


def _rules(call: Call, raw: Any, existing: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise bad_request("'rules' must be a collection.")
    if len(raw) > LIMIT:
        raise _limit_error(
            "lifecyclePolicyRulesLimitExceeded", "A maximum of 10 rules are allowed per lifecycle policy."
        )
    known = {r["id"] for r in existing or []}
    rules = [_rule(call, r, r.get("id") if isinstance(r, dict) and r.get("id") in known else None) for r in raw]
    return rules


def _enforcement(call: Call, raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict) or raw.get("@odata.type") not in ENFORCEMENT_TYPES:
        raise bad_request(
            f"'enforcementAction' must name its '@odata.type', one of {', '.join(sorted(ENFORCEMENT_TYPES))}."
        )
    kind = raw["@odata.type"]
    if kind.endswith("disableThenDeleteEnforcementAction"):
        body = writable_body(raw, ("deletionGracePeriodInDays",), "disableThenDeleteEnforcementAction")
    elif kind.endswith("deleteOnlyEnforcementAction"):
        body = writable_body(raw, (), "deleteOnlyEnforcementAction")
    else:
        body = writable_body(raw, (), "disableOnlyEnforcementAction")
    action: dict[str, Any] = {"@odata.type": kind}
    for name in ENFORCEMENT_TYPES[kind]:
        value = body.get(name, 30)  # the admin center's default grace before deletion
        _portal_range(call, name, value)
        action[name] = value
    return action


def _notification(raw: Any) -> dict[str, Any] | None:
    if raw is None:
        return None
    body = writable_body(raw, NOTIFICATION_FIELDS, "lifecyclePolicyNotificationSettings")
    recipients = body.get("additionalFallbackRecipients", [])
    offsets = body.get("offsetsAfterNonComplianceInDays", [])
    if not isinstance(recipients, list) or not all(isinstance(r, str) and "@" in r for r in recipients):
        raise bad_request("'additionalFallbackRecipients' must be a collection of email addresses.")
    if not isinstance(offsets, list) or not all(isinstance(o, int) and not isinstance(o, bool) for o in offsets):
        raise bad_request("'offsetsAfterNonComplianceInDays' must be a collection of integers.")
    return {
        "@odata.type": NOTIFICATION_SETTINGS,
        "additionalFallbackRecipients": recipients,
        "offsetsAfterNonComplianceInDays": offsets,
    }


def _group_id_of_reference(reference: Any) -> str:
    if not isinstance(reference, str) or "/groups/" not in reference:
        raise bad_request("Each 'excludedGroups@odata.bind' entry must be a group's URL (.../groups/{id}).")
    return reference.rstrip("/").rsplit("/", 1)[-1]


def _scope(call: Call, raw: Any) -> tuple[dict[str, Any] | None, list[str]]:
    """The stored scope and its excluded group ids. How a client sends a relationship of a complex property is
    not shown on any page: ``excludedGroups@odata.bind`` (OData's way, the default) or inline ``excludedGroups``
    objects under the lifecyclePolicyExcludedGroups knob."""
    if raw is None:
        return None, []
    if not isinstance(raw, dict) or raw.get("@odata.type") != EXCLUDING_GROUPS:
        raise bad_request(f"'scope' must be null or an '{EXCLUDING_GROUPS}'.")
    inline = call.sim.config.lifecycle_policy_excluded_groups == "inline"
    name = "excludedGroups" if inline else "excludedGroups@odata.bind"
    if inline:
        body = writable_body(raw, ("excludedGroups",), "allExcludingGroupsSubjectSet")
    else:
        body = writable_body(raw, ("excludedGroups@odata.bind",), "allExcludingGroupsSubjectSet")
    entries = body.get(name, [])
    if not isinstance(entries, list):
        raise bad_request(f"'{name}' must be a collection.")
    if inline:
        if not all(isinstance(e, dict) and isinstance(e.get("id"), str) for e in entries):
            raise bad_request("Each of 'excludedGroups' must be a group with its 'id'.")
        ids = [e["id"] for e in entries]
    else:
        ids = [_group_id_of_reference(e) for e in entries]
    if len(set(ids)) > LIMIT:
        raise _limit_error(
            "lifecyclePolicyExcludedGroupsLimitExceeded",
            "A maximum of 10 excluded groups are allowed per lifecycle policy.",
        )
    for group_id in ids:
        found(call.sim.directory.groups, group_id)
    return {"@odata.type": EXCLUDING_GROUPS}, list(dict.fromkeys(ids))


def _policy_grace(call: Call, value: Any) -> int:
    if value is None:
        return 7  # the admin center's default grace period (entra-docs guest-lifecycle-policies.md)
    _portal_range(call, "gracePeriodInDays", value)
    return int(value)


def _require_type(raw: Any, verb: str) -> None:
    if not isinstance(raw, dict):
        raise bad_request("The request body must be a JSON object.")
    kind = raw.get("@odata.type")
    if kind == AGENT_POLICY:
        raise GraphError(400, "Request_NotSupported", "This tenant serves guest lifecycle policies only.")
    if kind != GUEST_POLICY:
        raise bad_request(f"The body must name '@odata.type' to {verb} a lifecycle policy, e.g. '{GUEST_POLICY}'.")


def view(call: Call, policy: dict[str, Any]) -> dict[str, Any]:
    """A policy as Graph shows it: rules inline as the get and list examples show; the scope's excluded groups
    inline under the 'inline' reading, otherwise only when expanded."""
    shown = {k: copy.deepcopy(v) for k, v in policy.items() if not k.startswith("_")}
    if call.sim.config.lifecycle_policy_rules_inline or _expands(call, "rules"):
        shown["rules"] = copy.deepcopy(policy["_rules"])
    if shown.get("scope") is not None:
        inline = call.sim.config.lifecycle_policy_excluded_groups == "inline"
        if inline or _expands(call, "scope"):
            groups = call.sim.directory.groups
            shown["scope"]["excludedGroups"] = [
                {"@odata.type": "#microsoft.graph.group", "id": g, "displayName": groups.get(g, {}).get("displayName")}
                for g in policy["_excludedGroupIds"]
            ]
    return shown


def _expands(call: Call, name: str) -> bool:
    raw = call.request.query.get("$expand")
    if not raw:
        return False
    parts = {p.strip().split("(")[0].split("/")[0] for p in raw.split(",")}
    unknown = parts - {"rules", "scope"}
    if unknown:
        raise bad_request(
            f"Parsing OData Select and Expand failed: Could not find a property named '{sorted(unknown)[0]}'."
        )
    return name in parts


def _guest_policies(state: LifecycleState) -> list[dict[str, Any]]:
    return [state.policies[p] for p in state.order]


def list_policies(call: Call) -> GraphResponse:
    call.require("lifecyclePolicies.guests.read")
    state = lifecycle_state(call.sim.directory)
    source = _policy_source_filter(call)
    value = [view(call, p) for p in _guest_policies(state) if source is None or p["policySource"] == source]
    return GraphResponse(200, {"@odata.context": call.context_url(f"{CONTAINER}/lifecyclePolicies"), "value": value})


def _policy_source_filter(call: Call) -> str | None:
    raw = call.request.query.get("$filter")
    if not raw:
        return None
    parts = raw.split()
    if len(parts) != 3 or parts[0] != "policySource" or parts[1] != "eq" or not parts[2].startswith("'"):
        raise bad_request(f"Invalid filter clause: {raw!r}; the list filters on policySource.")
    return parts[2].strip("'")


def get_policy(call: Call, policy_id: str) -> GraphResponse:
    call.require("lifecyclePolicies.guests.read")
    policy = found(lifecycle_state(call.sim.directory).policies, policy_id)
    context = call.context_url(f"{CONTAINER}/lifecyclePolicies/$entity")
    return GraphResponse(200, {"@odata.context": context, **view(call, policy)})


def create_policy(call: Call) -> GraphResponse:
    call.require("lifecyclePolicies.guests.write")
    raw = call.request.body
    _require_type(raw, "create")
    body = writable_body(raw, CREATE_FIELDS, "guestLifecyclePolicy")
    missing = [n for n in ("displayName", "enforcementAction", "isEnabled") if body.get(n) is None]
    if missing:
        raise bad_request(f"Required properties are missing: {', '.join(missing)}.")
    state = lifecycle_state(call.sim.directory)
    if len(state.order) >= call.sim.config.guest_lifecycle_policy_limit:
        raise _limit_error(
            "lifecyclePoliciesPerSubjectLimitExceeded",
            "A maximum of 10 lifecycle policies are allowed per subject type per tenant.",
        )
    policy = _build(call, body, policy_id=str(uuid.uuid4()))
    now = call.sim.now_iso()
    policy.update(createdDateTime=now, lastModifiedDateTime=now, versionNumber=1, policySource="userCreated")
    state.policies[policy["id"]] = policy
    if call.sim.config.lifecycle_policy_new_priority == "highest":
        state.order.insert(0, policy["id"])
    else:
        state.order.append(policy["id"])
    state.order_version += 1
    shown = view(call, policy)
    shown["rules"] = copy.deepcopy(policy["_rules"])  # the create example answers the rules it made
    context = call.context_url(f"{CONTAINER}/lifecyclePolicies/$entity")
    return GraphResponse(201, {"@odata.context": context, **shown})


def _build(call: Call, body: dict[str, Any], policy_id: str, current: dict[str, Any] | None = None) -> dict[str, Any]:
    base = current or {}
    name = body.get("displayName", base.get("displayName"))
    if not isinstance(name, str) or not name.strip():
        raise bad_request("'displayName' must be a non-empty string.")
    enabled = body.get("isEnabled", base.get("isEnabled"))
    if not isinstance(enabled, bool):
        raise bad_request("'isEnabled' must be a boolean.")
    scope, excluded = (
        _scope(call, body["scope"]) if "scope" in body else (base.get("scope"), base.get("_excludedGroupIds", []))
    )
    return {
        "@odata.type": GUEST_POLICY,
        "id": policy_id,
        "displayName": name,
        "description": body.get("description", base.get("description")),
        "isEnabled": enabled,
        "gracePeriodInDays": _policy_grace(call, body["gracePeriodInDays"])
        if "gracePeriodInDays" in body
        else base.get("gracePeriodInDays", 7),
        "enforcementAction": _enforcement(call, body["enforcementAction"])
        if "enforcementAction" in body
        else base["enforcementAction"],
        "notificationSchedule": _notification(body["notificationSchedule"])
        if "notificationSchedule" in body
        else base.get("notificationSchedule"),
        "scope": scope,
        "policySource": base.get("policySource", "userCreated"),
        "versionNumber": base.get("versionNumber", 1),
        "createdDateTime": base.get("createdDateTime"),
        "lastModifiedDateTime": base.get("lastModifiedDateTime"),
        "_rules": _rules(call, body["rules"], base.get("_rules")) if "rules" in body else base.get("_rules", []),
        "_excludedGroupIds": excluded,
    }


def _new_version(call: Call, state: LifecycleState, policy: dict[str, Any], updated: dict[str, Any]) -> None:
    state.versions.setdefault(policy["id"], []).append(copy.deepcopy(policy))
    updated["versionNumber"] = policy["versionNumber"] + 1
    updated["lastModifiedDateTime"] = call.sim.now_iso()
    state.policies[policy["id"]] = updated


def update_policy(call: Call, policy_id: str) -> GraphResponse:
    call.require("lifecyclePolicies.guests.write")
    state = lifecycle_state(call.sim.directory)
    policy = found(state.policies, policy_id)
    raw = call.request.body
    _require_type(raw, "update")
    if call.sim.config.lifecycle_policy_update_unlisted == "refuse":
        body = writable_body(raw, UPDATE_LISTED, "guestLifecyclePolicy")
    else:
        body = writable_body(raw, UPDATE_FIELDS, "guestLifecyclePolicy")
    _new_version(call, state, policy, _build(call, body, policy_id, current=policy))
    return GraphResponse(204)


def delete_policy(call: Call, policy_id: str) -> GraphResponse:
    """A soft delete (the delete page); tenantsim does not serve the deleted items container or restore."""
    call.require("lifecyclePolicies.guests.write")
    state = lifecycle_state(call.sim.directory)
    found(state.policies, policy_id)
    del state.policies[policy_id]
    state.order.remove(policy_id)
    state.order_version += 1
    state.reports.pop(policy_id, None)
    state.subjects.pop(policy_id, None)
    return GraphResponse(204)


def list_versions(call: Call, policy_id: str) -> GraphResponse:
    call.require("lifecyclePolicies.guests.read")
    state = lifecycle_state(call.sim.directory)
    found(state.policies, policy_id)
    value = [view(call, v) for v in state.versions.get(policy_id, [])]
    context = call.context_url(f"{CONTAINER}/lifecyclePolicies('{policy_id}')/versions")
    return GraphResponse(200, {"@odata.context": context, "value": value})


def list_rules(call: Call, policy_id: str) -> GraphResponse:
    call.require("lifecyclePolicies.guests.read")
    policy = found(lifecycle_state(call.sim.directory).policies, policy_id)
    context = call.context_url(f"{CONTAINER}/lifecyclePolicies('{policy_id}')/rules")
    return GraphResponse(200, {"@odata.context": context, "value": copy.deepcopy(policy["_rules"])})


def _find_rule(policy: dict[str, Any], rule_id: str) -> dict[str, Any]:
    return found({r["id"]: r for r in policy["_rules"]}, rule_id)


def get_rule(call: Call, policy_id: str, rule_id: str) -> GraphResponse:
    call.require("lifecyclePolicies.guests.read")
    _rule_methods_served(call)
    policy = found(lifecycle_state(call.sim.directory).policies, policy_id)
    context = call.context_url(f"{CONTAINER}/lifecyclePolicies('{policy_id}')/rules/$entity")
    return GraphResponse(200, {"@odata.context": context, **copy.deepcopy(_find_rule(policy, rule_id))})


def _rule_methods_served(call: Call) -> None:
    """The beta pages document get and update of one rule; the v1.0 lifecyclePolicyRule page lists no methods
    and says updating individual rules directly isn't supported. On v1.0 tenantsim refuses them unless the
    lifecyclePolicyRuleMethods knob says "patch"."""
    if call.request.version == "v1.0" and call.sim.config.lifecycle_policy_rule_methods == "none":
        raise GraphError(405, "Request_BadRequest", "Specified HTTP method is not allowed for the request target.")


def update_rule(call: Call, policy_id: str, rule_id: str) -> GraphResponse:
    call.require("lifecyclePolicies.guests.write")
    _rule_methods_served(call)
    state = lifecycle_state(call.sim.directory)
    policy = found(state.policies, policy_id)
    rule = _find_rule(policy, rule_id)
    raw = call.request.body
    if not isinstance(raw, dict) or raw.get("@odata.type") != rule["@odata.type"]:
        raise bad_request(f"The body must name the rule's '@odata.type', '{rule['@odata.type']}'.")
    changed = {**{k: v for k, v in rule.items() if k not in {"@odata.type", "id"}}, **raw}
    updated = copy.deepcopy(policy)
    updated["_rules"] = [_rule(call, changed, rule_id) if r["id"] == rule_id else r for r in policy["_rules"]]
    _new_version(call, state, policy, updated)
    return GraphResponse(204)


# --- priority -----------------------------------------------------------------------------------------------


def _priority_view(call: Call, state: LifecycleState) -> dict[str, Any]:
    return {
        "@odata.type": f"#{NS}.lifecyclePolicyPriorityConfiguration",
        "@odata.etag": f'W/"{state.order_version}"',
        "id": GUEST_SUBJECT_TYPE,
        "subjectType": GUEST_SUBJECT_TYPE,
        "orderedPolicyIds": list(state.order),
    }


def list_priority_configurations(call: Call) -> GraphResponse:
    call.require("lifecyclePolicies.guests.read")
    state = lifecycle_state(call.sim.directory)
    context = call.context_url(f"{CONTAINER}/lifecyclePolicyPriorityConfigurations")
    return GraphResponse(200, {"@odata.context": context, "value": [_priority_view(call, state)]})


def get_priority_configuration(call: Call, subject_type: str) -> GraphResponse:
    call.require("lifecyclePolicies.guests.read")
    state = lifecycle_state(call.sim.directory)
    found({GUEST_SUBJECT_TYPE: True}, subject_type)
    return GraphResponse(200, _priority_view(call, state))


def update_priority_configuration(call: Call, subject_type: str) -> GraphResponse:
    call.require("lifecyclePolicies.guests.write")
    state = lifecycle_state(call.sim.directory)
    found({GUEST_SUBJECT_TYPE: True}, subject_type)
    if call.request.headers.get("if-match") != f'W/"{state.order_version}"':
        raise GraphError(412, "PreconditionFailed", "The If-Match header is missing or does not match the ETag.")
    body = writable_body(call.request.body, ("orderedPolicyIds",), "lifecyclePolicyPriorityConfiguration")
    ordered = body.get("orderedPolicyIds")
    if not isinstance(ordered, list) or sorted(ordered) != sorted(state.order):
        raise bad_request("'orderedPolicyIds' must list every lifecycle policy of the subject type once.")
    state.order = list(ordered)
    state.order_version += 1
    return GraphResponse(204)
