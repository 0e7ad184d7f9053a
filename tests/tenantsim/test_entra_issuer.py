"""The simulated Entra token issuance for the sign-up connector (tenantsim.entra_issuer): the addresses and
keys it publishes, the claims of the tokens it mints and the request bodies it builds, each as Microsoft's
pages describe them (tenantsim/contract/entra-token-issuer.md)."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import jwt

from tenantsim.entra_issuer import LocalTokenIssuer, connector_body, extension_body

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
AUTHENTICATION_EVENTS = "99045fe1-7639-4a75-9d4a-577b6ca3810f"
AZURE_CLI = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"
CLIENT_ID = "6a0f3c2e-1b4d-4e8a-9c7f-2d5e8a1b3c4f"
OID = "7c9e6679-7425-40de-944b-e07fc1f90ae7"


def test_the_openid_configuration_and_keys_are_served_at_the_documented_addresses():
    issuer = LocalTokenIssuer()
    published = issuer.add_key("published")
    issuer.add_key("held-back", publish=False)
    authority = f"https://login.microsoftonline.com/{issuer.tenant_id}"
    with httpx.Client(transport=issuer.transport()) as client:
        metadata = client.get(f"{authority}/v2.0/.well-known/openid-configuration").json()
        assert metadata == {"issuer": f"{authority}/v2.0", "jwks_uri": f"{authority}/discovery/v2.0/keys"}
        keys = client.get(metadata["jwks_uri"]).json()["keys"]
    assert [(k["kid"], k["kty"], k["use"]) for k in keys] == [(published, "RSA", "sig")]
    assert keys[0]["n"] and keys[0]["e"] == "AQAB"


def test_a_token_names_the_authentication_events_service_and_the_workforce_issuer():
    issuer = LocalTokenIssuer()
    kid = issuer.add_key()
    token = issuer.mint(NOW)
    assert jwt.get_unverified_header(token)["kid"] == kid
    claims = jwt.decode(
        token,
        issuer.private_keys[kid].public_key(),
        algorithms=["RS256"],
        audience=issuer.audience,
        options={"verify_exp": False, "verify_iat": False, "verify_nbf": False},
    )
    assert claims["azp"] == AUTHENTICATION_EVENTS
    assert claims["iss"] == f"https://login.microsoftonline.com/{issuer.tenant_id}/v2.0"
    assert (claims["ver"], claims["tid"]) == ("2.0", issuer.tenant_id)


def test_a_v1_token_names_the_service_in_appid_instead():
    issuer = LocalTokenIssuer()
    kid = issuer.add_key()
    token = issuer.mint(NOW, ver="1.0", azp=None, appid=AUTHENTICATION_EVENTS)
    claims = jwt.decode(token, options={"verify_signature": False})
    assert (claims["appid"], claims["ver"]) == (AUTHENTICATION_EVENTS, "1.0")
    assert "azp" not in claims
    assert jwt.get_unverified_header(token)["kid"] == kid


def test_an_access_token_for_a_person_carries_scp_roles_and_the_name_by_version():
    issuer = LocalTokenIssuer()
    issuer.add_key()
    person = {"client_id": AZURE_CLI, "oid": OID, "name": "ines@contoso.com", "roles": ("Lifecycle.Operator",)}
    v2 = jwt.decode(issuer.access_token(NOW, api=CLIENT_ID, **person), options={"verify_signature": False})
    assert (v2["iss"], v2["aud"], v2["ver"]) == (issuer.issuer, CLIENT_ID, "2.0")
    assert (v2["azp"], v2["preferred_username"], v2["scp"]) == (AZURE_CLI, "ines@contoso.com", "user_impersonation")
    assert (v2["oid"], v2["tid"], v2["roles"]) == (OID, issuer.tenant_id, ["Lifecycle.Operator"])
    v1 = jwt.decode(
        issuer.access_token(NOW, api="api://guest-lifecycle", version="1.0", **person),
        options={"verify_signature": False},
    )
    assert (v1["iss"], v1["aud"], v1["ver"]) == (
        f"https://sts.windows.net/{issuer.tenant_id}/",
        "api://guest-lifecycle",
        "1.0",
    )
    assert (v1["appid"], v1["upn"], v1["scp"]) == (AZURE_CLI, "ines@contoso.com", "user_impersonation")
    assert "azp" not in v1 and "preferred_username" not in v1


def test_an_app_only_access_token_has_no_scp_and_no_name():
    issuer = LocalTokenIssuer()
    issuer.add_key()
    token = issuer.access_token(NOW, api=CLIENT_ID, client_id=AZURE_CLI, oid=OID, name=None, roles=("X",), scopes=())
    claims = jwt.decode(token, options={"verify_signature": False})
    assert "scp" not in claims and "preferred_username" not in claims and "upn" not in claims
    assert (claims["roles"], claims["idtyp"]) == (["X"], "app")


def test_the_attribute_collection_submit_body_has_the_documented_shape():
    body = extension_body("sam@fabrikam.com", {"givenName": "Sam"})
    assert body["type"] == "microsoft.graph.authenticationEvent.attributeCollectionSubmit"
    data = body["data"]
    assert data["@odata.type"] == "microsoft.graph.onAttributeCollectionSubmitCalloutData"
    assert data["userSignUpInfo"]["attributes"]["givenName"] == {
        "@odata.type": "microsoft.graph.stringDirectoryAttributeValue",
        "value": "Sam",
        "attributeType": "builtIn",
    }
    assert data["userSignUpInfo"]["identities"] == [
        {"signInType": "email", "issuer": "contoso.onmicrosoft.com", "issuerAssignedId": "sam@fabrikam.com"}
    ]
    assert {"correlationId", "client", "protocol"} <= set(data["authenticationContext"])
    start = extension_body(None, event="attributeCollectionStart")
    assert start["data"]["@odata.type"] == "microsoft.graph.onAttributeCollectionStartCalloutData"
    assert start["data"]["userSignUpInfo"]["identities"] == []


def test_the_api_connector_body_carries_flat_claims():
    body = connector_body("sam@fabrikam.com", city="Oslo")
    assert body["email"] == "sam@fabrikam.com"
    assert body["identities"][0]["signInType"] == "federated"
    assert (body["ui_locales"], body["city"], body["step"]) == ("en-US", "Oslo", "PostAttributeCollection")
    assert "email" not in connector_body(None)
