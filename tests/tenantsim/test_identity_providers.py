"""The email one-time passcode method and social identity providers, as tenantsim serves them."""

from __future__ import annotations

import pytest

EMAIL = "/v1.0/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/email"
IDPS = "/v1.0/identity/identityProviders"
METHOD_WRITE = ("Policy.ReadWrite.AuthenticationMethod",)
EMAIL_TYPE = {"@odata.type": "#microsoft.graph.emailAuthenticationMethodConfiguration"}
IDP_WRITE = ("IdentityProvider.ReadWrite.All",)
GOOGLE = {
    "@odata.type": "microsoft.graph.socialIdentityProvider",
    "displayName": "Google",
    "identityProviderType": "Google",
    "clientId": "1234-abc.apps.googleusercontent.com",
    "clientSecret": "google-secret",
}


def test_a_fresh_tenant_has_email_otp_in_its_default_state(graph):
    got = graph.get(EMAIL, roles=("Policy.Read.All",)).json()
    assert got["@odata.type"] == "#microsoft.graph.emailAuthenticationMethodConfiguration"
    assert (got["id"], got["state"], got["allowExternalIdToUseEmailOtp"]) == ("Email", "enabled", "default")


def test_email_otp_is_updated_with_its_type_named_and_the_write_permission(graph):
    body = {
        "@odata.type": "#microsoft.graph.emailAuthenticationMethodConfiguration",
        "allowExternalIdToUseEmailOtp": "disabled",
    }
    assert graph.request("PATCH", EMAIL, roles=("Policy.Read.All",), json=body).status_code == 403
    assert graph.request("PATCH", EMAIL, roles=METHOD_WRITE, json=body).status_code == 204
    assert graph.get(EMAIL, roles=METHOD_WRITE).json()["allowExternalIdToUseEmailOtp"] == "disabled"


@pytest.mark.parametrize(
    "body",
    [
        {"allowExternalIdToUseEmailOtp": "enabled"},
        {
            "@odata.type": "#microsoft.graph.emailAuthenticationMethodConfiguration",
            "allowExternalIdToUseEmailOtp": "on",
        },
        {"@odata.type": "#microsoft.graph.emailAuthenticationMethodConfiguration", "secret": 1},
    ],
    ids=["no-type", "bad-value", "unknown"],
)
def test_a_bad_email_otp_update_is_refused(graph, body):
    assert graph.request("PATCH", EMAIL, roles=METHOD_WRITE, json=body).status_code == 400


def test_google_is_created_with_its_id_and_its_secret_is_never_read_back(graph):
    created = graph.request("POST", IDPS, roles=IDP_WRITE, json=GOOGLE)
    assert created.status_code == 201 and created.json()["id"] == "Google-OAUTH"
    listed = graph.get(IDPS, roles=("IdentityProvider.Read.All",)).json()["value"]
    assert [p["id"] for p in listed] == ["MSASignup-OAUTH", "Google-OAUTH"]
    assert listed[1]["clientSecret"] == "******" and "google-secret" not in str(listed)
    assert graph.request("POST", IDPS, roles=IDP_WRITE, json=GOOGLE).status_code == 409


def test_a_social_provider_is_updated_and_deleted(graph):
    graph.request("POST", IDPS, roles=IDP_WRITE, json=GOOGLE)
    change = {"clientId": "other.apps.googleusercontent.com", "clientSecret": "rotated"}
    assert graph.request("PATCH", f"{IDPS}/Google-OAUTH", roles=IDP_WRITE, json=change).status_code == 204
    assert graph.get(f"{IDPS}/Google-OAUTH", roles=IDP_WRITE).json()["clientId"] == change["clientId"]
    assert graph.request("DELETE", f"{IDPS}/Google-OAUTH", roles=IDP_WRITE).status_code == 204
    assert graph.get(f"{IDPS}/Google-OAUTH", roles=IDP_WRITE).status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        {**GOOGLE, "identityProviderType": "Amazon"},
        {k: v for k, v in GOOGLE.items() if k != "clientSecret"},
        {**GOOGLE, "@odata.type": "microsoft.graph.appleManagedIdentityProvider"},
    ],
    ids=["b2c-only-type", "no-secret", "apple"],
)
def test_only_b2b_social_providers_with_their_credentials_are_created(graph, body):
    assert graph.request("POST", IDPS, roles=IDP_WRITE, json=body).status_code == 400


def test_identity_providers_need_their_permissions(graph):
    assert graph.get(IDPS, roles=("Policy.Read.All",)).status_code == 403
    assert graph.request("POST", IDPS, roles=("IdentityProvider.Read.All",), json=GOOGLE).status_code == 403
