"""Conditional Access policies (/identity/conditionalAccess/policies) with the service's own rate limit.

Identity protection and Conditional Access allow about one request per second per tenant and answer
429 without a Retry-After header (graph-contract.md section 12.3), so clients must pace and back off on
their own. The limit is modelled per tenant across all apps, on reads and writes alike, and follows the
simulator's throttling switch and time compression like every other quota.

The policies live beside the tenant's directory state: a reseed (which builds a new directory) starts
from the seed document's ``policies.conditionalAccessPolicies`` when the directory carries them, else
from none. Tests create the policies they need through POST, as an administrator would.
"""

from __future__ import annotations

import copy
import uuid
import weakref
from typing import Any

from tenantsim.directory import Directory
from tenantsim.errors import GraphError, bad_request, found, not_found, unsupported_query
from tenantsim.runtime import Call, GraphResponse, Simulator

WINDOW_SECONDS = 1.0
STATES = frozenset({"enabled", "disabled", "enabledForReportingButNotEnforced"})
WRITABLE = frozenset({"displayName", "state", "conditions", "grantControls", "sessionControls", "templateId"})

_policies: weakref.WeakKeyDictionary[Directory, dict[str, dict[str, Any]]] = weakref.WeakKeyDictionary()
_last_request: weakref.WeakKeyDictionary[Simulator, dict[str, float]] = weakref.WeakKeyDictionary()


def policies_of(directory: Directory) -> dict[str, dict[str, Any]]:
    """The tenant's Conditional Access policies by id (created on first use)."""
    if directory not in _policies:
        seeded = getattr(directory, "conditional_access_policies", None) or []
        _policies[directory] = {p["id"]: copy.deepcopy(p) for p in seeded}
    return _policies[directory]


def _pace(call: Call) -> None:
    """One request per second per tenant; the 429 carries no Retry-After, as the service sends none."""
    sim = call.sim
    if not sim.config.throttling_enabled:
        return
    window = WINDOW_SECONDS / sim.config.time_compression
    seen = _last_request.setdefault(sim, {})
    now = sim.clock()
    last = seen.get(call.caller.tenant_id)
    if last is not None and now - last < window:
        sim.counters.throttled["Tenant"] += 1
        raise GraphError(429, "TooManyRequests", "Too many requests for conditional access policies. Retry later.")
    seen[call.caller.tenant_id] = now


def _entity(call: Call, policy: dict[str, Any]) -> dict[str, Any]:
    body = {"@odata.context": call.context_url("identity/conditionalAccess/policies/$entity")}
    body.update(copy.deepcopy(policy))
    return body


def list_policies(call: Call) -> GraphResponse:
    call.require("conditionalAccess.read")
    options = sorted(k for k in call.request.query if k.startswith("$"))
    if options:
        # conditionalaccessroot-list-policies.md documents $skip, $top, $count, $filter, $orderBy and $select;
        # tenantsim serves none of them and refuses them rather than answering as if they were applied.
        raise unsupported_query(
            f"Query option '{options[0]}' on conditional access policies is not supported by this simulator."
        )
    _pace(call)
    return GraphResponse(
        200,
        {
            "@odata.context": call.context_url("identity/conditionalAccess/policies"),
            "value": [copy.deepcopy(p) for p in policies_of(call.sim.directory).values()],
        },
    )


def get_policy(call: Call, ca_id: str) -> GraphResponse:
    call.require("conditionalAccess.read")
    _pace(call)
    return GraphResponse(200, _entity(call, found(policies_of(call.sim.directory), ca_id)))


def create_policy(call: Call) -> GraphResponse:
    call.require("conditionalAccess.write")
    _pace(call)
    body = call.request.body
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.")
    unknown = sorted(set(body) - WRITABLE - {"@odata.type"})
    if unknown:
        raise bad_request(f"Invalid property '{unknown[0]}' for resource 'conditionalAccessPolicy'.")
    if not body.get("displayName") or body.get("state") not in STATES or not isinstance(body.get("conditions"), dict):
        raise bad_request(
            "'displayName', 'state' (enabled, disabled, enabledForReportingButNotEnforced) and 'conditions' "
            "are required."
        )
    policy = {
        "id": str(uuid.uuid4()),
        "templateId": body.get("templateId"),
        "displayName": body["displayName"],
        "createdDateTime": call.sim.now_iso(),
        "modifiedDateTime": None,
        "state": body["state"],
        "conditions": copy.deepcopy(body["conditions"]),
        "grantControls": copy.deepcopy(body.get("grantControls")),
        "sessionControls": copy.deepcopy(body.get("sessionControls")),
    }
    policies_of(call.sim.directory)[policy["id"]] = policy
    return GraphResponse(201, _entity(call, policy))


def delete_policy(call: Call, ca_id: str) -> GraphResponse:
    call.require("conditionalAccess.write")
    _pace(call)
    if policies_of(call.sim.directory).pop(ca_id, None) is None:
        raise not_found(ca_id)
    return GraphResponse(204)


def update_policy(call: Call, ca_id: str) -> GraphResponse:
    """conditionalaccesspolicy-update.md: 204; what the body leaves out keeps its value."""
    call.require("conditionalAccess.write")
    _pace(call)
    policy = found(policies_of(call.sim.directory), ca_id)
    body = call.request.body
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.")
    unknown = sorted(set(body) - WRITABLE - {"@odata.type"})
    if unknown:
        raise bad_request(f"Invalid property '{unknown[0]}' for resource 'conditionalAccessPolicy'.")
    if "state" in body and body["state"] not in STATES:
        raise bad_request("'state' must be enabled, disabled or enabledForReportingButNotEnforced.")
    if "displayName" in body and not body["displayName"]:
        raise bad_request("'displayName' cannot be empty.")
    if "conditions" in body and not isinstance(body["conditions"], dict):
        raise bad_request("'conditions' must be an object.")
    for name, value in body.items():
        if name == "conditions":
            # A partial conditions object changes the conditions it names, as the page's example does.
            policy["conditions"] = {**(policy.get("conditions") or {}), **copy.deepcopy(value)}
        elif name != "@odata.type":
            policy[name] = copy.deepcopy(value)
    policy["modifiedDateTime"] = call.sim.now_iso()
    return GraphResponse(204)
