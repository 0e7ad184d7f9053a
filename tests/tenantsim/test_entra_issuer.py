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
