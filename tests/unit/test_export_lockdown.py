"""The lockdown areas' export writes a section only where planning it against the same tenant writes nothing;
what the section cannot hold is a comment, and a secret never leaves Graph."""

from __future__ import annotations

from config.desired_state import GuestConditionalAccess, ManagedGuestPolicy
from lifecycle.drift.ca_policies import LEGACY, MFA, REPORT_ONLY, desired_body
from lifecycle.drift.signup_connector import BASIC
from lifecycle.export.lockdown import GUEST_CA, PROVIDERS, SIGN_UP, export_lockdown
from lifecycle.export.lockdown_reads import LockdownPosture

BREAK_GLASS = "0b1f7a2e-5c3d-4e8f-9a6b-7c8d9e0f1a2b"
URL = "https://func-signup.contoso.example/api/signup"


def _connector(connector_id: str, name: str, kind: str = BASIC) -> dict:
    auth = {"@odata.type": f"#{kind}", "username": "entra-signup", "password": "******"}
    return {"id": connector_id, "displayName": name, "targetUrl": URL, "authenticationConfiguration": auth}


def _ca(key: str, name: str, state: str) -> dict:
    wanted = GuestConditionalAccess(break_glass_user_ids=(BREAK_GLASS,))
    return {"id": f"id-{name}", **desired_body(key, ManagedGuestPolicy(display_name=name), wanted), "state": state}


def test_the_connector_attached_to_the_flows_is_exported_with_the_steps_every_flow_shares():
    ours, stray = _connector("c1", "Partner sign-up"), _connector("c2", "Old sign-up")
    posture = LockdownPosture(
        connectors=[stray, ours],
        flows={
            "B2X_1_A": {"postFederationSignup": None, "postAttributeCollection": ours},
            "B2X_1_B": {"postFederationSignup": None, "postAttributeCollection": ours},
            "B2X_1_C": {"postFederationSignup": ours, "postAttributeCollection": None},
            "B2X_1_D": None,
        },
    )
    document, notes = export_lockdown(posture)
    assert document[SIGN_UP] == {
        "displayName": "Partner sign-up",
        "targetUrl": URL,
        "username": "entra-signup",
        "userFlows": ["B2X_1_A", "B2X_1_B"],
        "steps": ["postAttributeCollection"],
    }
    said = "\n".join(notes[SIGN_UP])
    assert "B2X_1_C calls the connector at postFederationSignup" in said
    assert "B2X_1_D" in said and "******" not in str(document)
    assert "LIFECYCLE_SIGNUP_CONNECTOR_PASSWORD" in said


def test_a_connector_without_basic_authentication_is_not_exported():
    posture = LockdownPosture(connectors=[_connector("c1", "Cert", "microsoft.graph.clientCertificateAuthentication")])
    document, notes = export_lockdown(posture)
    assert SIGN_UP not in document
    assert any("no API connector with HTTP Basic authentication (1 connector(s)" in n for n in notes[SIGN_UP])


def test_guest_policies_are_recognised_by_their_shape_and_a_disabled_one_is_left_out():
    posture = LockdownPosture(
        conditional_access=[
            _ca(MFA, "Guests must MFA", "enabled"),
            _ca(LEGACY, "Guests: legacy off", "disabled"),
            {"id": "other", "displayName": "Admins MFA", "state": "enabled", "conditions": {}, "grantControls": {}},
        ]
    )
    document, notes = export_lockdown(posture)
    assert document[GUEST_CA] == {
        "breakGlassUserIds": [BREAK_GLASS],
        "breakGlassGroupIds": [],
        "requireMfa": {"displayName": "Guests must MFA", "enabled": True},
        "blockLegacyAuthentication": None,
    }
    assert any("'Guests: legacy off' (state disabled" in n for n in notes[GUEST_CA])
    GuestConditionalAccess.model_validate(document[GUEST_CA])


def test_a_report_only_policy_exports_as_not_enabled_and_no_exclusion_is_marked_for_a_human():
    policy = _ca(MFA, "Guests MFA", REPORT_ONLY)
    policy["conditions"]["users"]["excludeUsers"] = []
    document, notes = export_lockdown(LockdownPosture(conditional_access=[policy]))
    assert document[GUEST_CA]["requireMfa"] == {"displayName": "Guests MFA", "enabled": False}
    assert any(n.startswith("DECIDE: the policies exclude no break-glass") for n in notes[GUEST_CA])


def test_no_guest_policy_of_the_products_shape_leaves_the_section_out_and_a_namesake_is_marked():
    namesake = _ca(MFA, "Guests: require MFA", "enabled")
    namesake["conditions"]["users"]["includeGuestsOrExternalUsers"]["guestOrExternalUserTypes"] = "internalGuest"
    document, notes = export_lockdown(LockdownPosture(conditional_access=[namesake]))
    assert GUEST_CA not in document
    assert "not exported: no guest Conditional Access policy of the product's shape" in notes[GUEST_CA]
    assert any(n.startswith("DECIDE: a policy is named 'Guests: require MFA'") for n in notes[GUEST_CA])


def test_email_otp_left_at_default_is_not_claimed_and_google_is_exported_without_its_secret():
    google = {
        "@odata.type": "#microsoft.graph.socialIdentityProvider",
        "id": "Google-OAUTH",
        "identityProviderType": "Google",
        "displayName": "Google",
        "clientId": "1234.apps.googleusercontent.com",
        "clientSecret": "******",
    }
    posture = LockdownPosture(email={"allowExternalIdToUseEmailOtp": "default"}, social=[google])
    document, notes = export_lockdown(posture)
    assert document[PROVIDERS] == {
        "emailOneTimePasscode": None,
        "google": {"clientId": "1234.apps.googleusercontent.com", "displayName": "Google"},
    }
    said = "\n".join(notes[PROVIDERS])
    assert "email one-time passcode for guests is 'default'" in said
    assert "LIFECYCLE_GOOGLE_CLIENT_SECRET" in said and "******" not in str(document)
    assert "no redemption order" in said


def test_an_unreadable_area_is_left_out_with_what_reading_it_needs():
    posture = LockdownPosture(unreadable={PROVIDERS: "PermissionDeniedError: 403"})
    document, notes = export_lockdown(posture)
    assert PROVIDERS not in document
    assert notes[PROVIDERS] == [
        f"not exported: the tenant's {PROVIDERS} could not be read (PermissionDeniedError: 403); reading it needs "
        "Policy.Read.All and IdentityProvider.Read.All"
    ]
