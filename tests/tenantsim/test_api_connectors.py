"""API connectors and the B2B self-service sign-up user flows they attach to, as tenantsim serves them."""

from __future__ import annotations

import pytest

CONNECTORS = "/v1.0/identity/apiConnectors"
FLOWS = "/v1.0/identity/b2xUserFlows"
WRITE = ("APIConnectors.ReadWrite.All",)
FLOW_WRITE = ("IdentityUserFlow.ReadWrite.All",)
FLOW_READ = ("IdentityUserFlow.Read.All",)
BASIC = {
    "displayName": "Partner sign-up",
    "targetUrl": "https://signup.contoso.example/api/signup",
    "authenticationConfiguration": {
        "@odata.type": "#microsoft.graph.basicAuthentication",
        "username": "entra-signup",
        "password": "s3cret-value",
    },
}


def _connector(graph) -> dict:
    created = graph.request("POST", CONNECTORS, roles=WRITE, json=BASIC)
    assert created.status_code == 201, created.text
    return created.json()


def _flow(graph, name: str = "Partner") -> str:
    body = {"id": name, "userFlowType": "signUpOrSignIn", "userFlowTypeVersion": 1}
    created = graph.request("POST", FLOWS, roles=FLOW_WRITE, json=body)
    assert created.status_code == 201, created.text
    return created.json()["id"]


def test_a_created_connector_never_shows_its_password_back(graph):
    created = _connector(graph)
    assert created["@odata.context"].endswith("$metadata#identity/apiConnectors/$entity")
    assert created["authenticationConfiguration"] == {
        "@odata.type": "#microsoft.graph.basicAuthentication",
        "username": "entra-signup",
        "password": "******",
    }
    listed = graph.get(CONNECTORS, roles=WRITE).json()["value"]
    assert [c["id"] for c in listed] == [created["id"]]
    assert listed[0]["authenticationConfiguration"]["password"] == "******"
    assert "s3cret-value" not in graph.get(f"{CONNECTORS}/{created['id']}", roles=WRITE).text


def test_an_update_answers_204_and_overwrites_the_authentication(graph):
    created = _connector(graph)
    change = {
        "targetUrl": "https://elsewhere.example/api",
        "authenticationConfiguration": {
            "@odata.type": "microsoft.graph.basicAuthentication",
            "username": "other",
            "password": "new",
        },
    }
    answer = graph.request("PATCH", f"{CONNECTORS}/{created['id']}", roles=WRITE, json=change)
    assert answer.status_code == 204
    got = graph.get(f"{CONNECTORS}/{created['id']}", roles=WRITE).json()
    assert got["targetUrl"] == change["targetUrl"] and got["authenticationConfiguration"]["username"] == "other"
    assert got["displayName"] == BASIC["displayName"]


@pytest.mark.parametrize(
    "body",
    [
        {k: v for k, v in BASIC.items() if k != "targetUrl"},
        {k: v for k, v in BASIC.items() if k != "authenticationConfiguration"},
        {**BASIC, "authenticationConfiguration": {"@odata.type": "#microsoft.graph.basicAuthentication"}},
        {**BASIC, "secret": "x"},
    ],
    ids=["no-url", "no-authentication", "basic-without-credentials", "unknown-property"],
)
def test_a_connector_without_its_required_properties_is_refused(graph, body):
    assert graph.request("POST", CONNECTORS, roles=WRITE, json=body).status_code == 400


def test_a_pkcs12_upload_is_refused_as_not_served(graph):
    body = {**BASIC, "authenticationConfiguration": {"@odata.type": "#microsoft.graph.pkcs12Certificate"}}
    answer = graph.request("POST", CONNECTORS, roles=WRITE, json=body)
    assert answer.status_code == 400 and answer.json()["error"]["code"] == "Request_NotSupported"


def test_connectors_need_api_connectors_read_write_all_even_to_read(graph):
    assert graph.get(CONNECTORS, roles=("APIConnectors.Read.All",)).status_code == 403
    assert graph.request("POST", CONNECTORS, roles=("Policy.Read.All",), json=BASIC).status_code == 403
    assert graph.get(CONNECTORS, roles=WRITE).status_code == 200


def test_a_user_flow_gets_the_b2x_prefix_and_an_empty_connector_configuration(graph):
    body = {"id": "Partner", "userFlowType": "signUpOrSignIn", "userFlowTypeVersion": 1}
    created = graph.request("POST", FLOWS, roles=FLOW_WRITE, json=body)
    assert created.status_code == 201
    assert created.json()["id"] == "B2X_1_Partner" and created.json()["apiConnectorConfiguration"] == {}
    assert created.headers["Location"].endswith("/v1.0/identity/b2xUserFlows/B2X_1_Partner")
    assert graph.get(f"{FLOWS}/B2X_1_Partner", roles=FLOW_READ).json()["userFlowType"] == "signUpOrSignIn"
    assert graph.request("POST", FLOWS, roles=FLOW_READ, json=body).status_code == 403


def test_the_user_flows_are_listed_with_identity_user_flow_read_all(graph):
    first, second = _flow(graph, "PartnerA"), _flow(graph, "PartnerB")
    listed = graph.get(FLOWS, roles=FLOW_READ)
    assert listed.status_code == 200
    assert listed.json()["@odata.context"].endswith("/$metadata#identity/b2xUserFlows")
    assert {first, second} <= {flow["id"] for flow in listed.json()["value"]}
    assert all("_steps" not in flow for flow in listed.json()["value"])
    assert graph.get(FLOWS, roles=("Policy.Read.All",)).status_code == 403


def test_a_step_is_attached_by_reference_read_back_expanded_and_cleared_with_an_empty_body(graph):
    connector, flow = _connector(graph), _flow(graph)
    ref = {"@odata.id": f"https://graph.microsoft.com/v1.0/identity/apiConnectors/{connector['id']}"}
    step = f"{FLOWS}/{flow}/apiConnectorConfiguration/postAttributeCollection/$ref"
    assert graph.request("PUT", step, roles=FLOW_WRITE, json=ref).status_code == 204
    read = f"{FLOWS}/{flow}/apiConnectorConfiguration?$expand=postFederationSignup,postAttributeCollection"
    got = graph.get(read, roles=FLOW_WRITE).json()
    assert got["postAttributeCollection"]["id"] == connector["id"] and got["postFederationSignup"] is None
    assert got["postAttributeCollection"]["authenticationConfiguration"]["password"] == "******"
    assert graph.request("PUT", step, roles=FLOW_WRITE, json={}).status_code == 204
    assert graph.get(read, roles=FLOW_WRITE).json()["postAttributeCollection"] is None


def test_the_connector_configuration_needs_identity_user_flow_read_write_all(graph):
    flow = _flow(graph)
    read = f"{FLOWS}/{flow}/apiConnectorConfiguration?$expand=postAttributeCollection"
    assert graph.get(read, roles=FLOW_READ).status_code == 403
    assert graph.get(read, roles=FLOW_WRITE).status_code == 200


def test_a_reference_to_an_unknown_connector_or_step_is_refused(graph):
    flow = _flow(graph)
    ref = {"@odata.id": "https://graph.microsoft.com/v1.0/identity/apiConnectors/nope"}
    good_step = f"{FLOWS}/{flow}/apiConnectorConfiguration/postAttributeCollection/$ref"
    assert graph.request("PUT", good_step, roles=FLOW_WRITE, json=ref).status_code == 404
    bad_step = f"{FLOWS}/{flow}/apiConnectorConfiguration/preSignIn/$ref"
    assert graph.request("PUT", bad_step, roles=FLOW_WRITE, json={}).status_code == 400


def test_the_resource_pages_reading_refuses_expand_on_the_connector_configuration(graph, admin):
    flow = _flow(graph)
    admin.configure(apiConnectorConfigurationExpand="refuse")
    answer = graph.get(f"{FLOWS}/{flow}/apiConnectorConfiguration?$expand=postAttributeCollection", roles=FLOW_WRITE)
    assert answer.status_code == 400 and answer.json()["error"]["code"] == "Request_UnsupportedQuery"


def test_deleting_a_connector_detaches_it_from_its_user_flows(graph):
    connector, flow = _connector(graph), _flow(graph)
    ref = {"@odata.id": f"https://graph.microsoft.com/v1.0/identity/apiConnectors/{connector['id']}"}
    step = f"{FLOWS}/{flow}/apiConnectorConfiguration/postFederationSignup/$ref"
    assert graph.request("PUT", step, roles=FLOW_WRITE, json=ref).status_code == 204
    assert graph.request("DELETE", f"{CONNECTORS}/{connector['id']}", roles=WRITE).status_code == 204
    got = graph.get(f"{FLOWS}/{flow}/apiConnectorConfiguration?$expand=postFederationSignup", roles=FLOW_WRITE)
    assert got.json()["postFederationSignup"] is None
