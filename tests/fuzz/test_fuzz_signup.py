"""Hostile requests to the sign-up connector, through ``handle_signup_request`` with real tokens and keys.

Per request: no exception, never a 500, an answer in one of the documented shapes (the extension's
``data.actions``, the API connector's ``version``/``action``, or the plain ``error`` object for 401, 400,
405, 413 and 415), and nothing continues unless its email domain is a partner's (``unknownDomains`` is
``block`` here, so a continue for any other domain would be a hole). A caller without a valid token
never gets past 401, whatever the body.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from hypothesis import event, given, settings
from hypothesis import strategies as st

from app.signup import build_signup_services
from config.desired_state import parse_desired_state
from config.signup import load_signup_settings
from lifecycle.clock import FixedClock
from lifecycle.signup.auth import MAX_TOKEN_CHARS
from lifecycle.signup.http import SignUpServices, handle_signup_request
from tenantsim.entra_issuer import LocalTokenIssuer, connector_body, extension_body
from tests.fuzz.profile import FUZZ, examples
from tests.fuzz.test_fuzz_tickets import CONFUSABLES, CONTROL, FORBIDDEN_IN_EMAIL, ODATA

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
PARTNER_DOMAINS = {"fabrikam.com", "fabrikam.co.uk"}
MAX_BODY = 4096
BASIC_PASSWORD = "b" * 20

ISSUER = LocalTokenIssuer()
ISSUER.add_key("key-1")
STRANGER = LocalTokenIssuer()  # same kid, another key: a forged signature
STRANGER.add_key("key-1")


def _services() -> SignUpServices:
    environ = {
        "LIFECYCLE_SIGNUP_TENANT_ID": ISSUER.tenant_id,
        "LIFECYCLE_SIGNUP_AUDIENCES": ISSUER.audience,
        "LIFECYCLE_SIGNUP_MAX_BODY_BYTES": str(MAX_BODY),
        "LIFECYCLE_SIGNUP_BASIC_USERNAME": "connector",
        "LIFECYCLE_SIGNUP_BASIC_PASSWORD": BASIC_PASSWORD,
    }
    state = parse_desired_state(
        {
            "tenant": {"id": ISSUER.tenant_id, "primaryDomain": "contoso.onmicrosoft.com"},
            "partners": {"fabrikam": {"displayName": "Fabrikam", "domains": sorted(PARTNER_DOMAINS), "tier": "gold"}},
            "signUp": {"blockedDomains": ["gmail.com"], "unknownDomains": "block"},
        }
    )
    client = httpx.AsyncClient(transport=ISSUER.transport())
    return build_signup_services(load_signup_settings(environ), state, client=client, clock=FixedClock(NOW))


SERVICES = _services()
GOOD_TOKEN = ISSUER.mint(NOW)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


BAD_AUTHORIZATION = st.sampled_from(
    [
        "",
        "Bearer",
        "Bearer ",
        "bearer x.y.z",
        "Bearer not-a-jwt",
        "Bearer a.b",
        "Bearer ....",
        f"Bearer {GOOD_TOKEN[:-5]}AAAAA",
        f"Bearer {GOOD_TOKEN.rsplit('.', 1)[0]}.",
        f"Bearer {ISSUER.forge({'alg': 'none', 'typ': 'JWT', 'kid': 'key-1'}, ISSUER.claims(NOW))}",
        f"Bearer {ISSUER.forge({'alg': 'None', 'kid': 'key-1'}, ISSUER.claims(NOW))}",
        f"Bearer {ISSUER.forge({'alg': 'RS256'}, ISSUER.claims(NOW), b'x' * 256)}",
        f"Bearer {ISSUER.forge({'alg': 'RS256', 'kid': 12}, ISSUER.claims(NOW), b'x' * 256)}",
        f"Bearer {ISSUER.forge({'alg': 'RS256', 'kid': 'unknown'}, ISSUER.claims(NOW), b'x' * 256)}",
        f"Bearer {ISSUER.forge({'alg': ['RS256'], 'kid': 'key-1'}, ISSUER.claims(NOW))}",
        f"Bearer {ISSUER.forge_hs256_with_public_key(NOW, 'key-1')}",
        f"Bearer {STRANGER.mint(NOW)}",
        f"Bearer {ISSUER.mint(NOW, aud='api://someone-else')}",
        f"Bearer {ISSUER.mint(NOW, iss='https://login.microsoftonline.com/evil/v2.0')}",
        f"Bearer {ISSUER.mint(NOW, azp='00000000-0000-0000-0000-000000000000')}",
        f"Bearer {ISSUER.mint(NOW, ver='1.0', azp=None, appid='11111111-1111-1111-1111-111111111111')}",
        f"Bearer {ISSUER.mint(NOW - timedelta(hours=3))}",
        f"Bearer {ISSUER.mint(NOW, nbf=int((NOW + timedelta(hours=1)).timestamp()))}",
        f"Bearer {ISSUER.mint(NOW, exp=None)}",
        f"Bearer {ISSUER.mint(NOW, aud=None)}",
        f"Bearer {'A' * (MAX_TOKEN_CHARS + 1)}",
        f"Bearer {ISSUER.mint(NOW, padding='x' * MAX_TOKEN_CHARS)}",
        f"Bearer {_b64(b'{}')}.{_b64(b'{}')}.{_b64(b'')}",
        f"Bearer {_b64(b'[1]')}.{_b64(b'{}')}.x",
        "Bearer " + _b64(b"\xff\xfe") + "." + _b64(b"{}") + ".x",
        "Basic " + base64.b64encode(b"connector:wrong-password-123").decode(),
        "Basic " + base64.b64encode(b"connector").decode(),
        "Basic !!!not-base64!!!",
        "Basic " + base64.b64encode(b"connector:" + BASIC_PASSWORD.encode() + b"x").decode(),
        "Digest username=connector",
        "Bearer\t" + GOOD_TOKEN + "\x00",
        "Negotiate " + GOOD_TOKEN,
    ]
)


@st.composite
def hostile_emails(draw: st.DrawFn) -> str | None:
    base = draw(st.sampled_from(["ana@fabrikam.com", "ana@fabrikam.co.uk", "ana@gmail.com", "ana@mailinator.com"]))
    kind = draw(st.sampled_from(["insert", "confusable", "odata", "lookalike-domain", "text", "none"]))
    if kind == "insert":
        at = draw(st.integers(0, len(base)))
        return base[:at] + draw(st.sampled_from(FORBIDDEN_IN_EMAIL + CONTROL)) + base[at:]
    if kind == "confusable":
        at = draw(st.sampled_from([i for i, ch in enumerate(base) if ch.isalpha()]))
        return base[:at] + draw(st.sampled_from(CONFUSABLES)) + base[at + 1 :]
    if kind == "odata":
        return base + draw(st.sampled_from(ODATA))
    if kind == "lookalike-domain":
        return draw(
            st.sampled_from(
                [
                    "ana@fabrikam.com.evil.example",
                    "ana@evil-fabrikam.com",
                    "ana@fabrikam.co",
                    "ana@sub.fabrikam.com",
                    "ana@fabrikam.com@evil.example",
                    "ana@evil.example#@fabrikam.com",
                    "ana@xn--fabrikm-n5a.com",
                    "ana@[127.0.0.1]",
                    "fabrikam.com",
                    "@fabrikam.com",
                ]
            )
        )
    if kind == "text":
        return draw(st.text(max_size=40))
    return None


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)


@st.composite
def hostile_bodies(draw: st.DrawFn) -> bytes:
    email = draw(hostile_emails())
    shape = draw(st.sampled_from(["extension", "start", "connector", "mangled", "json", "bytes", "big", "deep"]))
    if shape in ("extension", "start", "connector"):
        if shape == "connector":
            body = connector_body(
                email, step=draw(st.sampled_from(["PostAttributeCollection", "PostFederationSignup"]))
            )
        else:
            body = extension_body(
                email, event="attributeCollectionStart" if shape == "start" else "attributeCollectionSubmit"
            )
        return json.dumps(body).encode()
    if shape == "mangled":
        body = extension_body("ana@fabrikam.com")
        target = draw(st.sampled_from(["data", "userSignUpInfo", "attributes", "identities", "type", "context"]))
        value = draw(JSON_VALUES)
        info = body["data"]["userSignUpInfo"]
        if target == "data":
            body["data"] = value
        elif target == "userSignUpInfo":
            body["data"]["userSignUpInfo"] = value
        elif target == "attributes":
            info["attributes"] = value if draw(st.booleans()) else {"email": value}
        elif target == "identities":
            info["identities"] = value if draw(st.booleans()) else [{"signInType": "email", "issuerAssignedId": value}]
        elif target == "type":
            body["type"] = value
        else:
            body["data"]["authenticationContext"] = value
        return json.dumps(body).encode()
    if shape == "json":
        return json.dumps(draw(JSON_VALUES)).encode()
    if shape == "bytes":
        return draw(st.binary(max_size=200))
    if shape == "big":
        return json.dumps(connector_body("ana@fabrikam.com", pad="x" * (MAX_BODY + draw(st.integers(1, 500))))).encode()
    depth = draw(st.integers(100, 2000))
    return b'{"email": "ana@fabrikam.com", "x": ' + b"[" * depth + b"]" * depth + b"}"


# Mostly JSON, so that most requests reach the parser and the rules.
OTHER_TYPES = ["application/json; charset=utf-8", "APPLICATION/JSON", "text/plain", "", "application/xml"]
OTHER_TYPES += ["application/x-www-form-urlencoded", "application/json-patch+json", "multipart/form-data"]
CONTENT_TYPES = st.sampled_from([*["application/json"] * 8, *OTHER_TYPES])


def _domain_of(email: object) -> str | None:
    if not isinstance(email, str) or email.count("@") != 1:
        return None
    return email.strip().partition("@")[2].lower().rstrip(".")


def check_shape(status: int, body: dict[str, Any]) -> str:
    """The documented answer shapes; returns the action (or error code) for the label."""
    if "error" in body:
        assert status in (400, 401, 405, 413, 415), status
        assert set(body["error"]) == {"code", "message"}
        return body["error"]["code"]
    if "version" in body:
        assert body["version"] == "1.0.0"
        assert body["action"] in ("Continue", "ShowBlockPage", "ValidationError"), body
        assert status == (400 if body["action"] == "ValidationError" else 200)
        return body["action"]
    assert status == 200
    [action] = body["data"]["actions"]
    assert body["data"]["@odata.type"] in (
        "microsoft.graph.onAttributeCollectionSubmitResponseData",
        "microsoft.graph.onAttributeCollectionStartResponseData",
    )
    return action["@odata.type"].rsplit(".", 1)[1]


def _continues(action: str) -> bool:
    return action in ("Continue", "continueWithDefaultBehavior", "modifyAttributeValues")


def _email_in(raw: bytes) -> object:
    try:
        document = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    if not isinstance(document, dict):
        return None
    if "email" in document:
        return document["email"]
    try:
        [identity] = document["data"]["userSignUpInfo"]["identities"]
        return identity["issuerAssignedId"]
    except (KeyError, TypeError, ValueError):
        return None


@settings(FUZZ, max_examples=examples(1000))
@given(
    authorization=st.just(f"Bearer {GOOD_TOKEN}") | BAD_AUTHORIZATION,
    body=hostile_bodies(),
    content_type=CONTENT_TYPES,
    method=st.sampled_from([*["POST"] * 12, "post", "GET", "PUT", "DELETE"]),
)
async def test_a_hostile_request_gets_a_documented_answer_and_never_an_undeserved_continue(
    authorization, body, content_type, method
):
    headers = {"Authorization": authorization, "Content-Type": content_type}
    status, response_headers, payload = await handle_signup_request(method, headers, body, SERVICES)
    assert status != 500
    assert response_headers["Content-Type"].startswith("application/json")
    outcome = check_shape(status, json.loads(payload))
    event(f"{status} {outcome}")
    authenticated = authorization == f"Bearer {GOOD_TOKEN}"
    if not authenticated and method.upper() == "POST" and len(body) <= MAX_BODY:
        assert status == 401, (authorization[:80], status, outcome)
    if _continues(outcome):
        assert authenticated
        assert _domain_of(_email_in(body)) in PARTNER_DOMAINS, (body[:200], outcome)
