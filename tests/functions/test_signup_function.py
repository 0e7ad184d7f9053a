"""The sign-up endpoint end to end through its handler: real tokens, real key fetching, both formats."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import httpx
import pytest
from structlog.testing import capture_logs

from app.signup import build_signup_services
from config.desired_state import parse_desired_state
from config.signup import load_signup_settings
from lifecycle.clock import FixedClock
from lifecycle.signup.codes import invitation_code
from lifecycle.signup.http import SignUpServices, handle_signup_request
from tenantsim.entra_issuer import LocalTokenIssuer, connector_body, extension_body

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
TIER = "extension_abc_PartnerTier"
CODE_ATTRIBUTE = "extension_abc_InvitationCode"
SECRET = "c" * 32
BASIC_PASSWORD = "b" * 20
SUBMIT_RESPONSE = "microsoft.graph.onAttributeCollectionSubmitResponseData"


@pytest.fixture(name="issuer", scope="module")
def _issuer() -> LocalTokenIssuer:
    issuer = LocalTokenIssuer()
    issuer.add_key("key-1")
    return issuer


def _services(issuer: LocalTokenIssuer, *, basic: bool = False, **sign_up: object) -> SignUpServices:
    environ = {
        "LIFECYCLE_SIGNUP_TENANT_ID": issuer.tenant_id,
        "LIFECYCLE_SIGNUP_AUDIENCES": issuer.audience,
        "LIFECYCLE_SIGNUP_INVITATION_CODE_SECRET": SECRET,
        "LIFECYCLE_SIGNUP_MAX_BODY_BYTES": "4096",
    }
    if basic:
        environ |= {"LIFECYCLE_SIGNUP_BASIC_USERNAME": "connector", "LIFECYCLE_SIGNUP_BASIC_PASSWORD": BASIC_PASSWORD}
    state = parse_desired_state(
        {
            "tenant": {"id": issuer.tenant_id, "primaryDomain": "contoso.onmicrosoft.com"},
            "partners": {"fabrikam": {"displayName": "Fabrikam", "domains": ["fabrikam.com"], "tier": "gold"}},
            "signUp": {"blockedDomains": ["gmail.com"], "partnerTierAttribute": TIER, **sign_up},
        }
    )
    client = httpx.AsyncClient(transport=issuer.transport())
    return build_signup_services(load_signup_settings(environ), state, client=client, clock=FixedClock(NOW))


@pytest.fixture(name="services")
def _default_services(issuer: LocalTokenIssuer) -> SignUpServices:
    return _services(issuer)


def _headers(issuer: LocalTokenIssuer, **claims: object) -> dict[str, str]:
    return {"Authorization": f"Bearer {issuer.mint(NOW, **claims)}", "Content-Type": "application/json"}


async def _call(services, body, headers, method="POST"):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    status, response_headers, payload = await handle_signup_request(method, headers, raw, services)
    return status, response_headers, json.loads(payload)


def _action(payload: dict) -> dict:
    assert payload["data"]["@odata.type"] == SUBMIT_RESPONSE
    [action] = payload["data"]["actions"]
    return action


class TestCustomAuthenticationExtension:
    async def test_a_partner_user_continues_with_the_tier_written(self, services, issuer):
        """A partner address gets HTTP 200 and modifyAttributeValues setting the tier attribute."""
        status, headers, payload = await _call(services, extension_body("ana@fabrikam.com"), _headers(issuer))
        assert (status, headers["Content-Type"]) == (200, "application/json; charset=utf-8")
        assert _action(payload) == {
            "@odata.type": "microsoft.graph.attributeCollectionSubmit.modifyAttributeValues",
            "attributes": {TIER: "gold"},
        }

    async def test_an_allowed_unknown_domain_continues_with_default_behaviour(self, issuer):
        """With unknown domains allowed and no claims to write, the answer is continueWithDefaultBehavior."""
        services = _services(issuer, unknownDomains="allow")
        _, _, payload = await _call(services, extension_body("bo@example.org"), _headers(issuer))
        assert _action(payload) == {
            "@odata.type": "microsoft.graph.attributeCollectionSubmit.continueWithDefaultBehavior"
        }

    @pytest.mark.parametrize(
        ("email", "code"),
        [
            ("sam@gmail.com", "SIGNUP-BLOCKED-DOMAIN"),
            ("x@mailinator.com", "SIGNUP-DISPOSABLE-DOMAIN"),
            ("bo@example.org", "SIGNUP-UNKNOWN-DOMAIN"),
        ],
    )
    async def test_blocked_domains_get_a_block_page_with_status_200(self, services, issuer, email, code):
        """Blocked, disposable and unknown domains get showBlockPage (HTTP 200) with the reference code."""
        status, _, payload = await _call(services, extension_body(email), _headers(issuer))
        action = _action(payload)
        assert status == 200
        assert action["@odata.type"] == "microsoft.graph.attributeCollectionSubmit.showBlockPage"
        assert code in action["message"]

    async def test_a_missing_invitation_code_is_a_validation_error(self, issuer):
        """When codes are required, no code gives showValidationError pinned to the code attribute."""
        services = _services(issuer, requireInvitationCode=True, invitationCodeAttribute=CODE_ATTRIBUTE)
        status, _, payload = await _call(services, extension_body("ana@fabrikam.com"), _headers(issuer))
        action = _action(payload)
        assert (status, action["@odata.type"]) == (200, "microsoft.graph.attributeCollectionSubmit.showValidationError")
        assert set(action["attributeErrors"]) == {CODE_ATTRIBUTE}

    async def test_the_right_invitation_code_continues(self, issuer):
        """With the partner's code typed in, the user continues and the tier is written."""
        services = _services(issuer, requireInvitationCode=True, invitationCodeAttribute=CODE_ATTRIBUTE)
        code = invitation_code(SECRET.encode(), "fabrikam", 1)
        body = extension_body("ana@fabrikam.com", {CODE_ATTRIBUTE: code})
        _, _, payload = await _call(services, body, _headers(issuer))
        assert _action(payload)["attributes"] == {TIER: "gold"}

    async def test_the_start_event_blocks_early_and_answers_in_its_own_types(self, services, issuer):
        """OnAttributeCollectionStart gets onAttributeCollectionStartResponseData with start actions."""
        body = extension_body("x@mailinator.com", event="attributeCollectionStart")
        _, _, payload = await _call(services, body, _headers(issuer))
        assert payload["data"]["@odata.type"] == "microsoft.graph.onAttributeCollectionStartResponseData"
        assert payload["data"]["actions"][0]["@odata.type"] == "microsoft.graph.attributeCollectionStart.showBlockPage"

    async def test_odata_type_keys_are_read_case_insensitively(self, services, issuer):
        """A data block spelling the key "@odata.Type" (as a docs sample does) is still recognised."""
        body = extension_body("ana@fabrikam.com")
        del body["type"]
        body["data"]["@odata.Type"] = body["data"].pop("@odata.type")
        _, _, payload = await _call(services, body, _headers(issuer))
        assert _action(payload)["attributes"] == {TIER: "gold"}

    async def test_the_same_request_twice_gets_the_same_answer(self, services, issuer):
        """Replaying a request (Entra retries) returns a byte-identical answer."""
        raw = json.dumps(extension_body("ana@fabrikam.com")).encode()
        headers = _headers(issuer)
        first = await handle_signup_request("POST", headers, raw, services)
        assert await handle_signup_request("POST", headers, raw, services) == first

    async def test_a_request_missing_its_sign_up_info_gets_a_block_page(self, services, issuer):
        """A recognised event without userSignUpInfo is answered in its own format with a block page."""
        body = extension_body("ana@fabrikam.com")
        del body["data"]["userSignUpInfo"]
        status, _, payload = await _call(services, body, _headers(issuer))
        assert status == 200
        assert "SIGNUP-BAD-REQUEST" in _action(payload)["message"]

    async def test_an_unsupported_event_is_a_bad_request(self, services, issuer):
        """An event type this endpoint does not serve (token issuance start) gets a plain 400."""
        body = {"type": "microsoft.graph.authenticationEvent.tokenIssuanceStart", "data": {}}
        status, _, payload = await _call(services, body, _headers(issuer))
        assert (status, payload["error"]["code"]) == (400, "BadRequest")


class TestApiConnector:
    async def test_a_partner_user_continues_with_the_tier_claim(self, services, issuer):
        """Continue is HTTP 200, version 1.0.0, with the tier as a returned claim."""
        status, _, payload = await _call(services, connector_body("ana@fabrikam.com"), _headers(issuer))
        assert (status, payload) == (200, {"version": "1.0.0", "action": "Continue", TIER: "gold"})

    async def test_a_blocked_domain_gets_show_block_page(self, services, issuer):
        """ShowBlockPage is HTTP 200 with a user message and the code."""
        status, _, payload = await _call(services, connector_body("sam@gmail.com"), _headers(issuer))
        assert status == 200
        assert (payload["action"], payload["code"], payload["version"]) == (
            "ShowBlockPage",
            "SIGNUP-BLOCKED-DOMAIN",
            "1.0.0",
        )
        assert payload["userMessage"]

    async def test_a_wrong_invitation_code_is_a_400_validation_error(self, issuer):
        """ValidationError is HTTP 400 with status 400 in the body."""
        services = _services(issuer, requireInvitationCode=True, invitationCodeAttribute=CODE_ATTRIBUTE)
        body = connector_body("ana@fabrikam.com", **{CODE_ATTRIBUTE: "FABRIKAM-AAAA-AAAA-AAAA-AAAA"})
        status, _, payload = await _call(services, body, _headers(issuer))
        assert (status, payload["status"], payload["action"], payload["code"]) == (
            400,
            400,
            "ValidationError",
            "SIGNUP-CODE-INVALID",
        )

    async def test_after_federation_the_code_is_not_yet_asked(self, issuer):
        """At PostFederationSignup (before the form) only the domain rules apply."""
        services = _services(issuer, requireInvitationCode=True, invitationCodeAttribute=CODE_ATTRIBUTE)
        body = connector_body("ana@fabrikam.com", step="PostFederationSignup")
        assert (await _call(services, body, _headers(issuer)))[2]["action"] == "Continue"

    async def test_a_connector_call_without_email_gets_a_block_page(self, services, issuer):
        """Without an address the connector answers ShowBlockPage with SIGNUP-EMAIL-MISSING."""
        _, _, payload = await _call(services, connector_body(None), _headers(issuer))
        assert (payload["action"], payload["code"]) == ("ShowBlockPage", "SIGNUP-EMAIL-MISSING")

    async def test_basic_auth_is_accepted_for_the_connector_when_configured(self, issuer):
        """With Basic configured, the right credentials authenticate an API connector call."""
        services = _services(issuer, basic=True)
        token = base64.b64encode(f"connector:{BASIC_PASSWORD}".encode()).decode()
        headers = {"Authorization": f"Basic {token}", "Content-Type": "application/json"}
        assert (await _call(services, connector_body("ana@fabrikam.com"), headers))[2]["action"] == "Continue"

    async def test_basic_auth_is_refused_for_the_extension_format(self, issuer):
        """Basic credentials never authenticate a custom authentication extension event."""
        services = _services(issuer, basic=True)
        token = base64.b64encode(f"connector:{BASIC_PASSWORD}".encode()).decode()
        headers = {"Authorization": f"Basic {token}", "Content-Type": "application/json"}
        assert (await _call(services, extension_body("ana@fabrikam.com"), headers))[0] == 401


class TestAuthentication:
    @pytest.mark.parametrize(
        "authorization",
        [None, "", "Bearer", "Bearer not-a-jwt", "Basic Y29ubmVjdG9yOnBhc3N3b3Jk", "Negotiate abc"],
    )
    async def test_missing_or_unusable_credentials_get_a_generic_401(self, services, authorization):
        """Every authentication failure is the same bare 401, whatever the cause."""
        headers = {"Content-Type": "application/json"}
        if authorization is not None:
            headers["Authorization"] = authorization
        status, response_headers, payload = await _call(services, connector_body("ana@fabrikam.com"), headers)
        assert (status, response_headers["WWW-Authenticate"]) == (401, "Bearer")
        assert payload == {"error": {"code": "Unauthorized", "message": "Authentication failed."}}

    async def test_a_wrong_audience_gets_401_and_the_real_reason_is_logged(self, services, issuer):
        """The caller sees a generic 401; the log line names the reason."""
        with capture_logs() as logs:
            status, _, _ = await _call(services, connector_body("ana@fabrikam.com"), _headers(issuer, aud="api://x"))
        assert status == 401
        assert [entry["reason"] for entry in logs if entry["event"] == "signup.unauthorized"] == ["audience-mismatch"]

    async def test_a_token_from_another_client_gets_401(self, services, issuer):
        """A validly signed token whose azp is not the authentication events app is refused."""
        headers = _headers(issuer, azp="11111111-2222-3333-4444-555555555555")
        assert (await _call(services, extension_body("ana@fabrikam.com"), headers))[0] == 401

    async def test_authentication_is_checked_before_the_body_is_read(self, services):
        """An unauthenticated caller gets 401 even for a malformed body, learning nothing about parsing."""
        status, _, _ = await _call(services, b"{not json", {"Content-Type": "application/json"})
        assert status == 401

    async def test_the_decision_log_carries_the_domain_but_not_the_address(self, services, issuer):
        """The canonical log line names domain, outcome and code, never the full email address."""
        with capture_logs() as logs:
            await _call(services, extension_body("ana@fabrikam.com"), _headers(issuer))
        [decided] = [entry for entry in logs if entry["event"] == "signup.decided"]
        assert (decided["domain"], decided["outcome"], decided["code"]) == (
            "fabrikam.com",
            "continue",
            "SIGNUP-PARTNER",
        )
        assert "ana@fabrikam.com" not in json.dumps(logs, default=str)


class TestBadInput:
    async def test_a_wrong_method_gets_405(self, services, issuer):
        """GET is answered 405 with Allow: POST."""
        status, headers, _ = await _call(services, b"", _headers(issuer), method="GET")
        assert (status, headers["Allow"]) == (405, "POST")

    async def test_a_body_over_the_limit_gets_413(self, services, issuer):
        """A body larger than LIFECYCLE_SIGNUP_MAX_BODY_BYTES is refused before anything else is read."""
        body = connector_body("ana@fabrikam.com", padding="x" * 5000)
        assert (await _call(services, body, _headers(issuer)))[0] == 413

    async def test_a_wrong_content_type_gets_415(self, services, issuer):
        """Only application/json is accepted (parameters such as charset allowed)."""
        headers = {**_headers(issuer), "Content-Type": "text/plain"}
        assert (await _call(services, connector_body("ana@fabrikam.com"), headers))[0] == 415
        headers["Content-Type"] = "application/json; charset=utf-8"
        assert (await _call(services, connector_body("ana@fabrikam.com"), headers))[0] == 200

    @pytest.mark.parametrize(
        "raw", [b"{not json", b"\xff\xfe", b"[]", b'"text"', b"{}", b'{"foo": 1}', b"[" * 2000 + b"]" * 2000]
    )
    async def test_bodies_that_are_not_sign_up_requests_get_a_clean_400(self, services, issuer, raw):
        """Malformed JSON or JSON of an unknown shape gets a JSON 400 error, never a stack trace."""
        status, _, payload = await _call(services, raw, _headers(issuer))
        assert (status, payload["error"]["code"]) == (400, "BadRequest")
        assert "Traceback" not in json.dumps(payload)

    async def test_an_attribute_that_is_not_an_attribute_object_gets_a_block_page(self, services, issuer):
        """Mangled attributes in a recognised event are answered in that event's format."""
        body = extension_body("ana@fabrikam.com")
        body["data"]["userSignUpInfo"]["attributes"] = {"city": "Seattle"}
        status, _, payload = await _call(services, body, _headers(issuer))
        assert status == 200 and "SIGNUP-BAD-REQUEST" in _action(payload)["message"]

    async def test_an_unexpected_failure_is_a_generic_500(self, services, issuer, monkeypatch):
        """A bug in the rules yields a bare JSON 500 and a logged exception, not a leaked traceback."""

        def broken(_request):
            raise RuntimeError("boom")

        monkeypatch.setattr(services.rules, "decide", broken)
        with capture_logs() as logs:
            status, _, payload = await _call(services, connector_body("ana@fabrikam.com"), _headers(issuer))
        assert (status, payload["error"]["code"]) == (500, "InternalError")
        assert "boom" not in json.dumps(payload)
        assert any(entry["event"] == "signup.failed" for entry in logs)
