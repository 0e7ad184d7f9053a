"""API connectors (/identity/apiConnectors) and the self-service sign-up user flows they serve (/identity/b2xUserFlows).

An identityApiConnector holds the URL Entra calls during a B2B self-service sign-up user flow and how it
authenticates (HTTP Basic, or a PKCS 12 client certificate). Graph never shows a Basic password back: reads
answer ``"******"`` (identityapiconnector-create.md, -list.md). A user flow's ``apiConnectorConfiguration``
names the connector of each step (``postFederationSignup``, ``postAttributeCollection``); it is set one step
at a time with ``PUT .../apiConnectorConfiguration/{step}/$ref`` (``{}`` clears it) and read with
``GET .../apiConnectorConfiguration?$expand=...`` (b2xidentityuserflow-get-apiconnectorconfiguration.md). The
resource page says that ``$expand`` is not supported there; the ``apiConnectorConfigurationExpand`` knob
takes that reading (``refuse``) instead of the method page's (``expand``, the default).

A PKCS 12 upload is not served: tenantsim cannot read a certificate's thumbprint and validity the way Graph
shows them, and refuses rather than answer with invented values.
"""

from __future__ import annotations

import copy
import re
import uuid
import weakref
from typing import Any

from tenantsim.api.governance.common import writable_body
from tenantsim.directory import Directory
from tenantsim.errors import GraphError, bad_request, found, unsupported_query
from tenantsim.runtime import Call, GraphResponse

CONNECTOR_FIELDS = ("displayName", "targetUrl", "authenticationConfiguration")
USER_FLOW_FIELDS = ("id", "userFlowType", "userFlowTypeVersion")
STEPS = ("postFederationSignup", "postAttributeCollection")
BASIC = "microsoft.graph.basicAuthentication"
PKCS12 = "microsoft.graph.pkcs12Certificate"
MASK = "******"
USER_FLOW_PREFIX = "B2X_1_"
_CONNECTOR_REF = re.compile(r"/identity/apiConnectors/([^/?#]+)$")


class _Tenant:
    """The connectors (password kept, never shown) and the user flows (step -> connector id) of one directory."""

    def __init__(self) -> None:
        self.connectors: dict[str, dict[str, Any]] = {}
        self.user_flows: dict[str, dict[str, Any]] = {}


_state: weakref.WeakKeyDictionary[Directory, _Tenant] = weakref.WeakKeyDictionary()


def tenant_of(directory: Directory) -> _Tenant:
    if directory not in _state:
        _state[directory] = _Tenant()
    return _state[directory]


def _type(value: dict[str, Any]) -> str:
    return str(value.get("@odata.type") or "").lstrip("#")


def _authentication(value: Any) -> dict[str, Any]:
    """The stored authentication configuration of a request body (identityapiconnector-create.md)."""
    if not isinstance(value, dict):
        raise bad_request("'authenticationConfiguration' must be an object with an '@odata.type'.")
    kind = _type(value)
    if kind == BASIC:
        extra = sorted(set(value) - {"@odata.type", "username", "password"})
        if extra:
            raise bad_request(f"Invalid property '{extra[0]}' for resource 'basicAuthentication'.")
        username, password = value.get("username"), value.get("password")
        if not isinstance(username, str) or not username or not isinstance(password, str) or not password:
            raise bad_request("Basic authentication needs a 'username' and a 'password'.")
        return {"@odata.type": f"#{BASIC}", "username": username, "password": password}
    if kind == PKCS12:
        raise bad_request("PKCS 12 client certificates are not served by this simulator.", "Request_NotSupported")
    raise bad_request("'authenticationConfiguration' must be basicAuthentication or pkcs12Certificate.")


def _view(connector: dict[str, Any]) -> dict[str, Any]:
    shown = copy.deepcopy(connector)
    auth = shown.get("authenticationConfiguration")
    if isinstance(auth, dict) and "password" in auth:
        auth["password"] = MASK
    return shown


def _entity(call: Call, connector: dict[str, Any]) -> dict[str, Any]:
    return {"@odata.context": call.context_url("identity/apiConnectors/$entity"), **_view(connector)}


def _check_url(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise bad_request("'targetUrl' must be a URL.")
    return value


def list_connectors(call: Call) -> GraphResponse:
    call.require("apiConnectors.read")
    if any(k.startswith("$") and k != "$expand" for k in call.request.query):
        raise unsupported_query("Only $expand is documented on API connectors; tenantsim serves no other option.")
    connectors = tenant_of(call.sim.directory).connectors.values()
    return GraphResponse(
        200, {"@odata.context": call.context_url("identity/apiConnectors"), "value": [_view(c) for c in connectors]}
    )


def get_connector(call: Call, connector_id: str) -> GraphResponse:
    call.require("apiConnectors.read")
    connector = found(tenant_of(call.sim.directory).connectors, connector_id)
    return GraphResponse(200, _entity(call, connector))


def create_connector(call: Call) -> GraphResponse:
    call.require("apiConnectors.write")
    body = writable_body(call.request.body, CONNECTOR_FIELDS, "identityApiConnector")
    missing = [name for name in CONNECTOR_FIELDS if not body.get(name)]
    if missing:
        raise bad_request(f"Required properties are missing: {', '.join(missing)}.")
    connector = {
        "id": str(uuid.uuid4()),
        "displayName": str(body["displayName"]),
        "targetUrl": _check_url(body["targetUrl"]),
        "authenticationConfiguration": _authentication(body["authenticationConfiguration"]),
    }
    tenant_of(call.sim.directory).connectors[connector["id"]] = connector
    return GraphResponse(201, _entity(call, connector))


def update_connector(call: Call, connector_id: str) -> GraphResponse:
    call.require("apiConnectors.write")
    connector = found(tenant_of(call.sim.directory).connectors, connector_id)
    body = writable_body(call.request.body, CONNECTOR_FIELDS, "identityApiConnector")
    changes: dict[str, Any] = {}
    if "displayName" in body:
        if not isinstance(body["displayName"], str) or not body["displayName"]:
            raise bad_request("'displayName' must be a non-empty string.")
        changes["displayName"] = body["displayName"]
    if "targetUrl" in body:
        changes["targetUrl"] = _check_url(body["targetUrl"])
    if "authenticationConfiguration" in body:
        # The update page: a new configuration overwrites the previous one.
        changes["authenticationConfiguration"] = _authentication(body["authenticationConfiguration"])
    connector.update(changes)
    return GraphResponse(204)


def delete_connector(call: Call, connector_id: str) -> GraphResponse:
    call.require("apiConnectors.write")
    state = tenant_of(call.sim.directory)
    found(state.connectors, connector_id)
    del state.connectors[connector_id]
    for flow in state.user_flows.values():
        for step in STEPS:
            if flow["_steps"].get(step) == connector_id:
                flow["_steps"][step] = None
    return GraphResponse(204)


def _flow_view(flow: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in flow.items() if not k.startswith("_")}


def list_user_flows(call: Call) -> GraphResponse:
    call.require("userFlows.read")
    flows = tenant_of(call.sim.directory).user_flows.values()
    return GraphResponse(
        200, {"@odata.context": call.context_url("identity/b2xUserFlows"), "value": [_flow_view(f) for f in flows]}
    )


def get_user_flow(call: Call, flow_id: str) -> GraphResponse:
    call.require("userFlows.read")
    flow = found(tenant_of(call.sim.directory).user_flows, flow_id)
    return GraphResponse(200, {"@odata.context": call.context_url("identity/b2xUserFlows/$entity"), **_flow_view(flow)})


def create_user_flow(call: Call) -> GraphResponse:
    """identitycontainer-post-b2xuserflows.md: id, userFlowType signUpOrSignIn and version 1 are required; the
    id gets the B2X_1_ prefix. Identity providers and a connector configuration on create are not served."""
    call.require("userFlows.write")
    body = writable_body(call.request.body, USER_FLOW_FIELDS, "b2xIdentityUserFlow")
    name = body.get("id")
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", name):
        raise bad_request("'id' is required: the user flow's name.")
    if body.get("userFlowType") != "signUpOrSignIn" or body.get("userFlowTypeVersion") != 1:
        raise bad_request("'userFlowType' must be signUpOrSignIn and 'userFlowTypeVersion' 1.")
    flow_id = f"{USER_FLOW_PREFIX}{name}"
    state = tenant_of(call.sim.directory)
    if flow_id in state.user_flows:
        raise GraphError(409, "Conflict", f"A user flow named '{flow_id}' already exists.")
    state.user_flows[flow_id] = {
        "id": flow_id,
        "userFlowType": "signUpOrSignIn",
        "userFlowTypeVersion": 1,
        "apiConnectorConfiguration": {},
        "_steps": dict.fromkeys(STEPS),
    }
    flow = _flow_view(state.user_flows[flow_id])
    location = f"{call.sim.base_url}/{call.request.version}/identity/b2xUserFlows/{flow_id}"
    return GraphResponse(
        201,
        {"@odata.context": call.context_url("identity/b2xUserFlows/$entity"), **flow},
        headers={"Location": location},
    )


def get_connector_configuration(call: Call, flow_id: str) -> GraphResponse:
    call.require("userFlows.apiConnectorConfiguration")
    state = tenant_of(call.sim.directory)
    flow = found(state.user_flows, flow_id)
    expand = [part.strip() for part in call.request.query.get("$expand", "").split(",") if part.strip()]
    if expand and call.sim.config.api_connector_configuration_expand == "refuse":
        raise unsupported_query("The $expand query parameter is not supported for apiConnectorConfiguration.")
    unknown = [part for part in expand if part not in STEPS]
    if unknown:
        raise bad_request(f"Could not find a property named '{unknown[0]}' on type userFlowApiConnectorConfiguration.")
    context = f"identity/b2xUserFlows('{flow_id}')/apiConnectorConfiguration"
    body: dict[str, Any] = {"@odata.context": call.context_url(context)}
    for step in expand:
        connector_id = flow["_steps"].get(step)
        connector = state.connectors.get(connector_id) if connector_id else None
        body[step] = _view(connector) if connector else None
    return GraphResponse(200, body)


def put_connector_configuration(call: Call, flow_id: str, step: str) -> GraphResponse:
    call.require("userFlows.apiConnectorConfiguration")
    state = tenant_of(call.sim.directory)
    flow = found(state.user_flows, flow_id)
    if step not in STEPS:
        raise bad_request(f"'{step}' is not a step of userFlowApiConnectorConfiguration.")
    body = call.request.body
    if not isinstance(body, dict) or set(body) - {"@odata.id"}:
        raise bad_request("The body is an '@odata.id' naming an API connector, or {} to disable the step.")
    if not body:
        flow["_steps"][step] = None
        return GraphResponse(204)
    reference = _CONNECTOR_REF.search(str(body["@odata.id"]))
    if reference is None:
        raise bad_request("'@odata.id' must name an API connector (.../identity/apiConnectors/{id}).")
    flow["_steps"][step] = found(state.connectors, reference.group(1))["id"]
    return GraphResponse(204)
