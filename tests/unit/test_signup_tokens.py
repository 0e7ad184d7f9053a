"""Bearer token validation against keys published by a local issuer through the JWKS adapter."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from adapters.signing_keys import JwksSigningKeys
from config.signup import AUTHENTICATION_EVENTS_APP_ID
from lifecycle.clock import FixedClock
from lifecycle.signup.auth import BasicCredentials, BearerValidator, Unauthorized
from tenantsim.entra_issuer import LocalTokenIssuer

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
APP_ID_URI = "api://signup.contoso.com/c0ffee00-1234-4abc-9def-0123456789ab"
CIAM_ISSUER = "https://contosoext.ciamlogin.com/3f2d6a1e-8c4b-4e7a-9b1d-2c5e7f9a0b13/v2.0"


@pytest.fixture(name="issuer", scope="module")
def _issuer() -> LocalTokenIssuer:
    issuer = LocalTokenIssuer()
    issuer.add_key("key-1")
    return issuer


@pytest.fixture(name="clock")
def _clock() -> FixedClock:
    return FixedClock(NOW)


@pytest.fixture(name="validator")
def _validator(issuer: LocalTokenIssuer, clock: FixedClock) -> BearerValidator:
    keys = JwksSigningKeys(issuer.metadata_url, client=httpx.AsyncClient(transport=issuer.transport()), clock=clock)
    return BearerValidator(
        keys,
        issuers=[issuer.issuer, CIAM_ISSUER],
        audiences=[issuer.audience, APP_ID_URI],
        authorized_party=AUTHENTICATION_EVENTS_APP_ID,
        clock=clock,
        leeway=timedelta(seconds=60),
    )


async def _reason(validator: BearerValidator, token: str) -> str:
    with pytest.raises(Unauthorized) as caught:
        await validator.validate(token)
    return caught.value.reason


class TestAccepted:
    async def test_a_v2_token_from_authentication_events_is_accepted(self, validator, issuer):
        """A v2 token with the right issuer, audience and azp is accepted and its claims returned."""
        caller = await validator.validate(issuer.mint(NOW))
        assert (caller.scheme, caller.claims["azp"]) == ("bearer", AUTHENTICATION_EVENTS_APP_ID)

    async def test_a_v1_token_is_checked_on_appid(self, validator, issuer):
        """A v1 token carries the caller in appid; it is accepted when appid is authentication events."""
        token = issuer.mint(NOW, ver="1.0", azp=None, appid=AUTHENTICATION_EVENTS_APP_ID)
        assert (await validator.validate(token)).claims["appid"] == AUTHENTICATION_EVENTS_APP_ID

    async def test_the_app_id_uri_audience_is_accepted_when_configured(self, validator, issuer):
        """Either configured audience form (client id or App ID URI) is accepted."""
        assert (await validator.validate(issuer.mint(NOW, aud=APP_ID_URI))).claims["aud"] == APP_ID_URI

    async def test_the_external_tenant_issuer_is_accepted_when_configured(self, validator, issuer):
        """The ciamlogin.com issuer form is accepted when it is configured."""
        assert (await validator.validate(issuer.mint(NOW, iss=CIAM_ISSUER))).claims["iss"] == CIAM_ISSUER

    async def test_expiry_within_the_clock_skew_is_tolerated(self, validator, issuer):
        """A token that expired less than the skew ago is still accepted."""
        token = issuer.mint(NOW, exp=int((NOW - timedelta(seconds=30)).timestamp()))
        assert (await validator.validate(token)).scheme == "bearer"


class TestRefused:
    async def test_an_expired_token_is_refused(self, validator, issuer):
        """A token past exp plus skew is refused."""
        token = issuer.mint(NOW, exp=int((NOW - timedelta(minutes=5)).timestamp()))
        assert await _reason(validator, token) == "token-expired"

    async def test_a_token_is_refused_once_the_clock_passes_its_expiry(self, validator, issuer, clock):
        """Expiry is judged by the clock port: the same token flips to refused when the clock moves on."""
        token = issuer.mint(NOW)
        await validator.validate(token)
        clock.advance(timedelta(hours=2))
        assert await _reason(validator, token) == "token-expired"

    async def test_a_token_used_before_nbf_is_refused(self, validator, issuer):
        """A token not valid until later than now plus skew is refused."""
        token = issuer.mint(NOW, nbf=int((NOW + timedelta(minutes=10)).timestamp()))
        assert await _reason(validator, token) == "token-not-yet-valid"

    async def test_a_token_without_exp_is_refused(self, validator, issuer):
        """exp is required."""
        assert await _reason(validator, issuer.mint(NOW, exp=None)) == "token-invalid"

    async def test_a_wrong_issuer_is_refused(self, validator, issuer):
        """A token from another tenant's issuer is refused even though the signature verifies."""
        token = issuer.mint(NOW, iss="https://login.microsoftonline.com/00000000-0000-0000-0000-000000000000/v2.0")
        assert await _reason(validator, token) == "issuer-mismatch"

    async def test_a_wrong_audience_is_refused(self, validator, issuer):
        """A token for another app registration is refused."""
        assert await _reason(validator, issuer.mint(NOW, aud="api://someone-else")) == "audience-mismatch"

    async def test_a_wrong_azp_is_refused(self, validator, issuer):
        """A v2 token whose azp is another client (not authentication events) is refused."""
        token = issuer.mint(NOW, azp="11111111-2222-3333-4444-555555555555")
        assert await _reason(validator, token) == "caller-not-authentication-events"

    async def test_a_v2_token_with_only_appid_is_refused(self, validator, issuer):
        """A v2 token is judged on azp; a right appid cannot stand in for a missing azp."""
        token = issuer.mint(NOW, azp=None, appid=AUTHENTICATION_EVENTS_APP_ID)
        assert await _reason(validator, token) == "caller-not-authentication-events"

    async def test_a_wrong_appid_on_a_v1_token_is_refused(self, validator, issuer):
        """A v1 token from another client (appid) is refused."""
        token = issuer.mint(NOW, ver="1.0", azp=None, appid="11111111-2222-3333-4444-555555555555")
        assert await _reason(validator, token) == "caller-not-authentication-events"

    async def test_an_unsigned_alg_none_token_is_refused(self, validator, issuer):
        """alg none is refused before any key is looked up."""
        token = issuer.forge({"alg": "none", "typ": "JWT", "kid": "key-1"}, issuer.claims(NOW))
        assert await _reason(validator, token) == "algorithm-not-allowed"

    async def test_hs256_keyed_with_the_public_key_is_refused(self, validator, issuer):
        """The algorithm-confusion attack (HS256 with the RSA public key as secret) is refused."""
        token = issuer.forge_hs256_with_public_key(NOW, "key-1")
        assert await _reason(validator, token) == "algorithm-not-allowed"

    async def test_a_tampered_payload_is_refused(self, validator, issuer):
        """Changing the claims after signing breaks the signature."""
        header, _, signature = issuer.mint(NOW).split(".")
        forged = issuer.forge({}, issuer.claims(NOW, oid="attacker")).split(".")[1]
        assert await _reason(validator, f"{header}.{forged}.{signature}") == "signature-invalid"

    async def test_a_token_signed_by_an_unpublished_key_is_refused(self, validator, issuer):
        """A well-formed RS256 token from a key the tenant never published is refused (unknown kid)."""
        rogue = LocalTokenIssuer()
        rogue.add_key("rogue")
        assert await _reason(validator, rogue.mint(NOW)) == "kid-unknown"

    async def test_a_published_kid_with_another_keys_signature_is_refused(self, validator, issuer):
        """Claiming a published kid while signing with a different private key fails the signature."""
        rogue = LocalTokenIssuer()
        rogue.add_key("key-1")
        assert await _reason(validator, rogue.mint(NOW, kid="key-1")) == "signature-invalid"

    @pytest.mark.parametrize("token", ["", "abc", "a.b", "a.b.c", "x" * 20000])
    async def test_garbage_is_refused(self, validator, token):
        """Strings that are not JWTs (or absurdly long) are refused without an exception escaping."""
        assert await _reason(validator, token) in {"token-malformed", "token-too-large"}

    async def test_a_token_without_kid_is_refused(self, validator, issuer):
        """A token with no kid header is refused."""
        token = issuer.forge({"alg": "RS256", "typ": "JWT"}, issuer.claims(NOW), b"sig")
        assert await _reason(validator, token) == "kid-missing"


class TestBasic:
    def test_the_configured_credentials_are_accepted(self):
        """user:password in base64 matching the settings is accepted."""
        basic = BasicCredentials("connector", "s" * 20)
        assert basic.check(base64.b64encode(b"connector:" + b"s" * 20).decode()).scheme == "basic"

    @pytest.mark.parametrize("encoded", ["Y29ubmVjdG9yOndyb25n", "bm9jb2xvbg==", "!!!not-base64", "", "Y29ubmVjdG9y"])
    def test_wrong_or_malformed_credentials_are_refused(self, encoded):
        """A wrong password, no colon, or bad base64 is refused."""
        with pytest.raises(Unauthorized):
            BasicCredentials("connector", "s" * 20).check(encoded)
