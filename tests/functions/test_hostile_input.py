"""Hostile input through the real entry points: the onboarding trigger and the sign-up HTTP handler.

Redirect URLs are compared on one unambiguous reading; domains are normalised by one function everywhere
(non-ASCII lookalikes and embedded whitespace refused, not folded or stripped); a token whose time claims
are not finite numbers is refused.
"""

from __future__ import annotations

import json
import math

import pytest

import function_app
from app.bootstrap import use_services
from tenantsim.entra_issuer import extension_body
from tests.builders import memory_services, onboard_ticket
from tests.fakes import FakeDirectory
from tests.functions.test_onboarding_function import service_bus_message
from tests.functions.test_signup_function import NOW, _call, _services

FULLWIDTH_FABRIKAM = "".join(chr(ord(c) + 0xFEE0) for c in "fabrikam")
ALLOWLIST = ("https://myapps.microsoft.com", "https://partners.contoso.com/fabrikam")


@pytest.fixture(name="directory")
def _directory() -> FakeDirectory:
    directory = FakeDirectory()
    directory.add_member("megan.bowen@contoso.com")
    return directory


def _services_with_path_rule(directory: FakeDirectory):
    services = memory_services(directory)
    invitations = services.desired.invitations.model_copy(update={"redirect_url_allowlist": ALLOWLIST})
    services.desired = services.desired.model_copy(update={"invitations": invitations})
    return services


@pytest.mark.parametrize(
    "url",
    [
        "https://partners.contoso.com/fabrikam/../admin",
        "https://partners.contoso.com/fabrikam/%2e%2e/admin",
        "https://partners.contoso.com/fabrikam/.%2E/admin",
        "https://partners.contoso.com/fabrikam%2F..%2Fadmin",
        "https://partners.contoso.com/fabrikam/..\\admin",
        "https://partners.contoso.com/fabrikam//evil.example",
        "https://@partners.contoso.com/fabrikam",
        "https://partners.contoso.com:8443/fabrikam",
        "https://partners.contoso.com/fabrikamevil",
        "https://partners.contoso.com/fabrikam/\u2025/admin",
    ],
)
async def test_a_redirect_url_that_reads_two_ways_is_rejected(directory, url):
    """A path escaping the allowed /fabrikam (raw or encoded dot segments, encoded slashes, backslashes,
    empty segments), an empty userinfo, another port or a longer segment: redirect-not-allowed, no invite."""
    services = _services_with_path_rule(directory)
    with use_services(services):
        await function_app.onboarding_worker(service_bus_message(onboard_ticket(redirectUrl=url)))
    [rejection] = [r async for r in services.rejections.all()]
    assert "redirect-not-allowed" in (rejection.code, json.dumps(rejection.details))
    assert directory.invitations == []


async def test_a_redirect_url_under_the_allowed_path_is_accepted(directory):
    """The same rule lets a plain path below the allowed one through."""
    services = _services_with_path_rule(directory)
    url = "https://partners.contoso.com/fabrikam/welcome?lang=de"
    with use_services(services):
        await function_app.onboarding_worker(service_bus_message(onboard_ticket(redirectUrl=url)))
    assert [r async for r in services.rejections.all()] == []
    assert len(directory.invitations) == 1


@pytest.mark.parametrize(
    "email",
    [
        "ana@fabri\u212aam.com",  # Kelvin sign: lower-cases to k
        "ana@" + FULLWIDTH_FABRIKAM + ".com",  # fullwidth: NFKC folds it
        "ana@fabrikam.com\n.",
    ],
)
async def test_a_ticket_with_a_lookalike_or_broken_domain_is_invalid(directory, email):
    """The ticket path and the sign-up path refuse the same spellings."""
    services = memory_services(directory)
    with use_services(services):
        await function_app.onboarding_worker(service_bus_message(onboard_ticket(email=email)))
    assert [r.code async for r in services.rejections.all()] == ["invalid-ticket"]
    assert directory.invitations == []


@pytest.fixture(name="issuer", scope="module")
def _issuer():
    from tenantsim.entra_issuer import LocalTokenIssuer

    issuer = LocalTokenIssuer()
    issuer.add_key("key-1")
    return issuer


def _headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}


def _continued(payload: dict) -> bool:
    [action] = payload["data"]["actions"]
    return "continue" in action["@odata.type"].lower() or "modify" in action["@odata.type"].lower()


@pytest.mark.parametrize(
    "email",
    [
        "ana@fabri\u212aam.com",
        "ana@" + FULLWIDTH_FABRIKAM + ".com",
        "ana@gmail.com\n.",
        "ana@gmail.com\t",
        "ana@fab rikam.com",
    ],
)
async def test_a_sign_up_with_a_lookalike_or_padded_domain_is_blocked(issuer, email):
    """A Kelvin sign or fullwidth letters do not make a partner domain, and a newline does not take a
    blocked domain off the blocklist: the sign-up is blocked (an unreadable address is never continued), even
    where unknown domains are allowed."""
    services = _services(issuer, unknownDomains="allow")
    status, _, payload = await _call(services, extension_body(email), _headers(issuer.mint(NOW)))
    assert status == 200 and not _continued(payload)


async def test_a_plain_partner_sign_up_still_continues(issuer):
    services = _services(issuer)
    status, _, payload = await _call(services, extension_body("ana@FABRIKAM.com."), _headers(issuer.mint(NOW)))
    assert status == 200 and _continued(payload)


@pytest.mark.parametrize(
    "claims",
    [
        {"exp": math.nan},
        {"exp": math.inf},
        {"exp": "9999999999"},
        {"exp": 10**20},
        {"exp": -math.inf},
        {"nbf": math.nan},
        {"iat": math.inf},
        {"iat": "now"},
    ],
)
async def test_a_token_with_non_finite_or_absurd_time_claims_is_refused(issuer, claims):
    """NaN compares false with every instant and Infinity outlives them all: such a token would never
    expire. exp, nbf and iat must be finite numbers within year 9999, else 401."""
    services = _services(issuer)
    token = issuer.mint(NOW, **claims)
    status, _, _ = await _call(services, extension_body("ana@fabrikam.com"), _headers(token))
    assert status == 401
