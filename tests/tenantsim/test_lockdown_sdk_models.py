"""The lockdown features' answers are absorbed by msgraph-sdk's v1.0 models with nothing left over."""

from __future__ import annotations

from msgraph.generated.models.b2x_identity_user_flow_collection_response import B2xIdentityUserFlowCollectionResponse
from msgraph.generated.models.email_authentication_method_configuration import EmailAuthenticationMethodConfiguration
from msgraph.generated.models.identity_api_connector import IdentityApiConnector
from msgraph.generated.models.identity_api_connector_collection_response import IdentityApiConnectorCollectionResponse
from msgraph.generated.models.identity_provider_base_collection_response import (
    IdentityProviderBaseCollectionResponse,
)
from msgraph.generated.models.sign_in_collection_response import SignInCollectionResponse
from msgraph.generated.models.user_flow_api_connector_configuration import UserFlowApiConnectorConfiguration

from tests.tenantsim.sdk_models import assert_absorbed
from tests.tenantsim.test_api_connectors import BASIC, CONNECTORS, FLOW_READ, FLOW_WRITE, FLOWS, WRITE
from tests.tenantsim.test_identity_providers import EMAIL, GOOGLE, IDP_WRITE, IDPS


def test_api_connectors_and_a_flows_connector_configuration_are_absorbed(graph):
    created = graph.request("POST", CONNECTORS, roles=WRITE, json=BASIC).json()
    assert_absorbed(created, IdentityApiConnector)
    assert_absorbed(graph.get(CONNECTORS, roles=WRITE).json(), IdentityApiConnectorCollectionResponse)
    body = {"id": "Partner", "userFlowType": "signUpOrSignIn", "userFlowTypeVersion": 1}
    flow = graph.request("POST", FLOWS, roles=FLOW_WRITE, json=body).json()["id"]
    ref = {"@odata.id": f"https://graph.microsoft.com/v1.0/identity/apiConnectors/{created['id']}"}
    graph.request(
        "PUT", f"{FLOWS}/{flow}/apiConnectorConfiguration/postAttributeCollection/$ref", roles=FLOW_WRITE, json=ref
    )
    read = f"{FLOWS}/{flow}/apiConnectorConfiguration?$expand=postFederationSignup,postAttributeCollection"
    assert_absorbed(graph.get(read, roles=FLOW_WRITE).json(), UserFlowApiConnectorConfiguration)
    assert_absorbed(graph.get(FLOWS, roles=FLOW_READ).json(), B2xIdentityUserFlowCollectionResponse)


def test_the_email_method_and_the_identity_providers_are_absorbed(graph):
    assert_absorbed(graph.get(EMAIL, roles=("Policy.Read.All",)).json(), EmailAuthenticationMethodConfiguration)
    graph.request("POST", IDPS, roles=IDP_WRITE, json=GOOGLE)
    assert_absorbed(graph.get(IDPS, roles=IDP_WRITE).json(), IdentityProviderBaseCollectionResponse)


def test_sign_ins_are_absorbed(graph, admin):
    admin.add_sign_ins(
        {
            "userId": "u1",
            "userPrincipalName": "u1@contoso.com",
            "appliedConditionalAccessPolicies": [{"id": "p", "displayName": "x", "result": "reportOnlyFailure"}],
        }
    )
    roles = ("AuditLog.Read.All", "Directory.Read.All", "Policy.Read.All")
    body = graph.get("/v1.0/auditLogs/signIns", roles=roles, headers={"Prefer": "include-unknown-enum-members"})
    assert_absorbed(body.json(), SignInCollectionResponse)
