"""Guest identity providers, pure: what the plan does with each setting, the secret's path, the guardrails."""

from __future__ import annotations

import asyncio

from config.desired_state import GuestIdentityProviders, load_desired_state
from config.settings import SAMPLE_DESIRED_STATE
from lifecycle.drift.identity_providers import (
    EMAIL_OTP,
    REDEMPTION,
    REMOVE_GOOGLE,
    SOCIAL,
    ProvidersSnapshot,
    applier,
    plan,
    refusals,
)
from lifecycle.models import DirectoryUser
from lifecycle.plans import Change
from lifecycle.reset.providers import Provider

GOOGLE = {
    "@odata.type": "#microsoft.graph.socialIdentityProvider",
    "id": "Google-OAUTH",
    "identityProviderType": "Google",
    "displayName": "Google",
    "clientId": "old.apps.googleusercontent.com",
    "clientSecret": "******",
}


def _wanted(**section: object) -> GuestIdentityProviders:
    return GuestIdentityProviders.model_validate(section)


def _snapshot(email: str = "enabled", social: list | None = None, redemption=None, users=None) -> ProvidersSnapshot:
    return ProvidersSnapshot({"allowExternalIdToUseEmailOtp": email}, social or [], redemption, users or {})


def _guest(mail: str) -> DirectoryUser:
    return DirectoryUser(id=mail, user_type="Guest", mail=mail)


def test_default_email_otp_is_set_explicitly_with_the_type_graph_requires():
    (action,) = plan(_wanted(), _snapshot(email="default"), frozenset())
    assert action.change is Change.UPDATE and "set it explicitly" in action.reason
    assert action.payload["body"] == {
        "@odata.type": "#microsoft.graph.emailAuthenticationMethodConfiguration",
        "allowExternalIdToUseEmailOtp": "enabled",
    }


def test_a_new_google_client_id_carries_the_secret_and_a_new_display_name_alone_does_not():
    moved = plan(
        _wanted(google={"clientId": "new.apps.googleusercontent.com"}), _snapshot(social=[GOOGLE]), frozenset()
    )
    renamed = plan(
        _wanted(google={"clientId": GOOGLE["clientId"], "displayName": "Gmail"}),
        _snapshot(social=[GOOGLE]),
        frozenset(),
    )
    assert moved[1].payload["secret"] is True and renamed[1].payload["secret"] is False
    assert renamed[1].payload["body"] == {"displayName": "Gmail"}


def test_the_secret_joins_the_body_only_in_the_applier():
    sent = []

    class Tenant:
        async def create_identity_provider(self, body):
            sent.append(body)

    (_, create) = plan(_wanted(google={"clientId": "x"}), _snapshot(), frozenset())
    assert "clientSecret" not in create.payload["body"]
    asyncio.run(applier(Tenant(), "s3cret")(create))  # type: ignore[arg-type]
    assert sent[0]["clientSecret"] == "s3cret" and sent[0]["identityProviderType"] == "Google"


def test_removing_google_is_held_while_guests_use_it_and_goes_ahead_when_approved():
    users = {Provider.GOOGLE: [_guest("ana@gmail.com")]}
    held = plan(_wanted(google=False), _snapshot(social=[GOOGLE], users=users), frozenset())[1]
    approved = plan(_wanted(google=False), _snapshot(social=[GOOGLE], users=users), frozenset({REMOVE_GOOGLE}))[1]
    assert held.change is Change.REPORT and "ana@gmail.com" in held.reason
    assert approved.change is Change.DELETE and approved.payload["id"] == "Google-OAUTH"


def test_the_redemption_order_is_compared_in_order():
    order = {"primary": ["externalFederation", "azureActiveDirectory"], "fallback": "microsoftAccount"}
    have = {
        "primaryIdentityProviderPrecedenceOrder": ["azureActiveDirectory", "externalFederation"],
        "fallbackIdentityProvider": "microsoftAccount",
    }
    action = plan(_wanted(redemptionOrder=order), _snapshot(redemption=have), frozenset())[1]
    assert action.resource == REDEMPTION and [d.field for d in action.diffs] == [
        "primaryIdentityProviderPrecedenceOrder"
    ]


def test_turning_email_otp_off_is_refused_by_partner_while_guests_use_it_or_the_tenants_fallback_needs_it():
    desired = load_desired_state(SAMPLE_DESIRED_STATE)
    partner_domain = next(iter(next(iter(desired.partners.values())).domains))
    users = {Provider.EMAIL_OTP: [_guest(f"a@{partner_domain}"), _guest("b@unknown.example")]}
    off = _wanted(emailOneTimePasscode="disabled")
    rules = refusals(off, desired, _snapshot(users=users), has_secret=True)
    assert [r.rule for r in rules] == ["email-otp-in-use"] and "no partner (1)" in rules[0].message
    fallback = {"fallbackIdentityProvider": "emailOneTimePasscode"}
    assert [r.rule for r in refusals(off, desired, _snapshot(redemption=fallback), True)] == [
        "fallback-needs-email-otp"
    ]
    assert plan(off, _snapshot(), frozenset())[0].resource == EMAIL_OTP
    assert SOCIAL not in {a.resource for a in plan(off, _snapshot(), frozenset())}


def test_the_guests_are_read_only_when_a_provider_is_being_taken_away():
    from lifecycle.drift.identity_providers import read

    class Tenant:
        async def get_email_otp(self):
            return {"allowExternalIdToUseEmailOtp": "enabled"}

        async def list_identity_providers(self):
            return []

    class Guests:
        calls = 0

        async def list_guests(self, select, page_size=999):
            Guests.calls += 1
            yield [_guest("ana@gmail.com")]

    asyncio.run(read(Tenant(), Guests(), {}, _wanted(emailOneTimePasscode="enabled")))  # type: ignore[arg-type]
    assert Guests.calls == 0
    asyncio.run(read(Tenant(), Guests(), {}, _wanted(google=False)))  # type: ignore[arg-type]
    assert Guests.calls == 1
