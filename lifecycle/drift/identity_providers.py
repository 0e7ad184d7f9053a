"""Guest identity providers as desired state: email one-time passcode, Google federation, the redemption order.

``guestIdentityProviders`` in the desired state is planned field by field with the rest of the policy drift:

- ``emailOneTimePasscode`` is the email method's ``allowExternalIdToUseEmailOtp``. ``default`` means enabled for
  tenants that did not use the preview (emailauthenticationmethodconfiguration.md), so it is set explicitly.
- ``google`` federates Google (a socialIdentityProvider); its client secret comes from the deployment's
  LIFECYCLE_GOOGLE_CLIENT_SECRET and joins a request body only on its way to Graph. ``false`` removes it.
- ``redemptionOrder`` is the default cross-tenant policy's invitationRedemptionIdentityProviderConfiguration,
  which the redemption reset reads to know which provider a new invitee would get.

Guardrails, from the guests' own identities (the issuer Graph records when a guest redeems): email one-time
passcode is never turned off while guests redeem with it (refused, the partners named), and a fallback of
``emailOneTimePasscode`` with the method off is refused. Removing the Google federation while guests sign in
with it is held, the plan naming them, until an operator approves (``apply policies --approve-remove google``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from config.desired_state import DesiredState, GuestIdentityProviders
from lifecycle.models import DirectoryUser
from lifecycle.plans import Action, Change, FieldDiff, Refusal
from lifecycle.reset.providers import Provider, used_provider

EMAIL_OTP = "policies/authenticationMethodsPolicy/authenticationMethodConfigurations/email"
SOCIAL = "identity/identityProviders"
REDEMPTION = "crossTenantAccessPolicy/default/invitationRedemptionIdentityProviderConfiguration"
RESOURCES = (EMAIL_OTP, SOCIAL, REDEMPTION)
REDEMPTION_PROPERTY = "invitationRedemptionIdentityProviderConfiguration"
EMAIL_TYPE = "#microsoft.graph.emailAuthenticationMethodConfiguration"
SOCIAL_TYPE = "microsoft.graph.socialIdentityProvider"
REMOVE_GOOGLE = "remove-google"
ROTATE_GOOGLE = "rotate-google"
SECRET_SETTING = "LIFECYCLE_GOOGLE_CLIENT_SECRET"
GUEST_FIELDS = ("id", "mail", "userPrincipalName", "userType", "identities")
NAMED = 10  # guests named in a reason; the count says how many there are


class GuestIdentityProviderTenant(Protocol):
    """The email method, the social identity providers and the default cross-tenant policy, as Graph JSON."""

    async def get_email_otp(self) -> dict[str, Any]: ...

    async def update_email_otp(self, body: dict[str, Any]) -> None: ...

    async def list_identity_providers(self) -> list[dict[str, Any]]: ...

    async def create_identity_provider(self, body: dict[str, Any]) -> dict[str, Any]: ...

    async def update_identity_provider(self, provider_id: str, body: dict[str, Any]) -> None: ...

    async def delete_identity_provider(self, provider_id: str) -> None: ...

    async def update_default(self, body: dict[str, Any]) -> None: ...


class GuestIdentities(Protocol):
    def list_guests(self, select: Sequence[str], page_size: int = 999) -> AsyncIterator[list[DirectoryUser]]: ...


@dataclass
class ProvidersSnapshot:
    email: dict[str, Any]
    social: list[dict[str, Any]]
    redemption: dict[str, Any] | None
    users_by_provider: dict[Provider, list[DirectoryUser]] = field(default_factory=dict)


def needs_guests(wanted: GuestIdentityProviders) -> bool:
    """Whether the guardrails need every guest's identities: only when a provider is being taken away (the read
    pages through all guests, so an hourly run that turns nothing off does not make it)."""
    return wanted.email_one_time_passcode == "disabled" or wanted.google is False


async def read(
    tenant: GuestIdentityProviderTenant,
    guests: GuestIdentities,
    default_policy: dict[str, Any],
    wanted: GuestIdentityProviders,
) -> ProvidersSnapshot:
    by_provider: dict[Provider, list[DirectoryUser]] = {}
    if needs_guests(wanted):
        async for page in guests.list_guests(GUEST_FIELDS):
            for user in page:
                used = used_provider(user.identities)
                if used is not None and user.is_guest:
                    by_provider.setdefault(used.provider, []).append(user)
    redemption = default_policy.get(REDEMPTION_PROPERTY)
    return ProvidersSnapshot(
        email=await tenant.get_email_otp(),
        social=await tenant.list_identity_providers(),
        redemption=redemption if isinstance(redemption, dict) else None,
        users_by_provider=by_provider,
    )


def _name(user: DirectoryUser) -> str:
    return user.mail or user.user_principal_name or user.id


def _by_partner(users: list[DirectoryUser], desired: DesiredState) -> str:
    partners: Counter[str] = Counter()
    for user in users:
        domain = (user.mail or "").rpartition("@")[2]
        found = desired.partner_for_domain(domain) if domain else None
        partners[found[0] if found else "no partner"] += 1
    return ", ".join(f"{key} ({count})" for key, count in sorted(partners.items()))


def _named(users: list[DirectoryUser]) -> str:
    names = sorted(_name(u) for u in users)
    more = f" and {len(names) - NAMED} more" if len(names) > NAMED else ""
    return ", ".join(names[:NAMED]) + more


def refusals(
    wanted: GuestIdentityProviders, desired: DesiredState, snapshot: ProvidersSnapshot, has_secret: bool
) -> list[Refusal]:
    found = []
    otp_users = snapshot.users_by_provider.get(Provider.EMAIL_OTP, [])
    if wanted.email_one_time_passcode == "disabled" and otp_users:
        found.append(
            Refusal(
                "email-otp-in-use",
                f"email one-time passcode would be turned off while {len(otp_users)} guest(s) redeem with it "
                f"(by partner: {_by_partner(otp_users, desired)}); reset their redemption to another provider first",
            )
        )
    fallback = (wanted.redemption_order.fallback if wanted.redemption_order else None) or (
        (snapshot.redemption or {}).get("fallbackIdentityProvider")
    )
    if wanted.email_one_time_passcode == "disabled" and fallback == "emailOneTimePasscode":
        found.append(
            Refusal(
                "fallback-needs-email-otp",
                "the redemption order falls back to emailOneTimePasscode while the desired state turns email "
                "one-time passcode off: guests without another provider could not redeem",
            )
        )
    google = _google(snapshot)
    if wanted.google and not has_secret and (google is None or google.get("clientId") != wanted.google.client_id):
        found.append(
            Refusal(
                "google-secret-missing",
                f"Google federation needs its client secret: set {SECRET_SETTING} (a Key Vault reference)",
            )
        )
    return found


def _google(snapshot: ProvidersSnapshot) -> dict[str, Any] | None:
    return next(
        (
            p
            for p in snapshot.social
            if str(p.get("@odata.type", "")).lstrip("#") == SOCIAL_TYPE and p.get("identityProviderType") == "Google"
        ),
        None,
    )


def plan(wanted: GuestIdentityProviders, snapshot: ProvidersSnapshot, approvals: frozenset[str]) -> list[Action]:
    actions = []
    if wanted.email_one_time_passcode is not None:
        actions.append(_email_action(wanted.email_one_time_passcode, snapshot.email))
    google_action = _google_action(wanted, snapshot, approvals)
    if google_action is not None:
        actions.append(google_action)
    if wanted.redemption_order is not None:
        actions.append(_redemption_action(wanted, snapshot.redemption))
    return actions


def _email_action(want: str, email: dict[str, Any]) -> Action:
    have = email.get("allowExternalIdToUseEmailOtp")
    key = "emailOneTimePasscode"
    if have == want:
        return Action(EMAIL_OTP, key, Change.NONE, f"email one-time passcode for guests is {want}")
    reason = "email one-time passcode for guests differs"
    if have == "default":
        reason += " (default means enabled only for tenants that did not use the preview: set it explicitly)"
    body = {"@odata.type": EMAIL_TYPE, "allowExternalIdToUseEmailOtp": want}
    diff = FieldDiff("allowExternalIdToUseEmailOtp", want, have)
    return Action(EMAIL_OTP, key, Change.UPDATE, reason, (diff,), {"body": body})


def _google_action(
    wanted: GuestIdentityProviders, snapshot: ProvidersSnapshot, approvals: frozenset[str]
) -> Action | None:
    existing = _google(snapshot)
    key = "Google"
    if wanted.google is None:
        return None
    if wanted.google is False:
        if existing is None:
            return Action(SOCIAL, key, Change.NONE, "no Google federation, as the desired state says")
        users = snapshot.users_by_provider.get(Provider.GOOGLE, [])
        payload = {"id": existing["id"], "guests": len(users)}
        diff = (FieldDiff("identityProviderType", None, "Google"),)
        if not users:
            return Action(SOCIAL, key, Change.DELETE, "no guest signs in with Google", diff, payload)
        named = f"{len(users)} guest(s) sign in with Google: {_named(users)}"
        # The guests are a field of their own, so every rendering of the plan (not only its reasons) names them.
        diff += (FieldDiff("guestsSignedInWithIt", None, named),)
        if REMOVE_GOOGLE in approvals:
            reason = f"removed as approved by an operator; {named} (they must redeem again)"
            return Action(SOCIAL, key, Change.DELETE, reason, diff, payload)
        reason = f"held: {named}; removing it needs apply policies --approve-remove google"
        return Action(SOCIAL, key, Change.REPORT, reason, diff, payload)
    want = {"clientId": wanted.google.client_id, "displayName": wanted.google.display_name}
    if existing is None:
        body = {"@odata.type": SOCIAL_TYPE, "identityProviderType": "Google", **want}
        diffs = tuple(FieldDiff(name, value, None) for name, value in want.items())
        return Action(SOCIAL, key, Change.CREATE, "no Google federation", diffs, {"body": body, "secret": True})
    diffs = _differences(want, existing)
    if not diffs and ROTATE_GOOGLE in approvals:
        # Graph shows no secret back, so only an operator knows it changed: it is sent again.
        diff = (FieldDiff("clientSecret", "(the deployment's current secret)", existing.get("clientSecret")),)
        payload = {"id": existing["id"], "body": {}, "secret": True}
        return Action(SOCIAL, key, Change.UPDATE, "secret rotation requested by an operator", diff, payload)
    if not diffs:
        return Action(SOCIAL, key, Change.NONE, "Google federation matches (its secret is write-only)")
    body = {d.field: d.desired for d in diffs}
    # A new client id has its own secret: it goes with it.
    payload = {"id": existing["id"], "body": body, "secret": "clientId" in body}
    return Action(SOCIAL, key, Change.UPDATE, "Google federation differs", diffs, payload)


def _redemption_action(wanted: GuestIdentityProviders, have: dict[str, Any] | None) -> Action:
    assert wanted.redemption_order is not None
    want = {
        "primaryIdentityProviderPrecedenceOrder": list(wanted.redemption_order.primary),
        "fallbackIdentityProvider": wanted.redemption_order.fallback,
    }
    diffs = _differences(want, have or {})
    key = "invitationRedemption"
    if not diffs:
        return Action(REDEMPTION, key, Change.NONE, "the redemption order matches")
    return Action(
        REDEMPTION, key, Change.UPDATE, "the redemption order differs", diffs, {"body": {REDEMPTION_PROPERTY: want}}
    )


def _differences(want: dict[str, Any], have: dict[str, Any]) -> tuple[FieldDiff, ...]:
    return tuple(FieldDiff(name, value, have.get(name)) for name, value in want.items() if have.get(name) != value)


Applier = Callable[[Action], Awaitable[None]]


def applier(tenant: GuestIdentityProviderTenant, google_secret: str) -> Applier:
    """Carries out this module's actions; the Google secret joins a body only here, on its way to Graph."""

    async def apply(action: Action) -> None:
        body = dict(action.payload.get("body") or {})
        if action.payload.get("secret"):
            body["clientSecret"] = google_secret
        what = (action.resource, action.change)
        if what == (EMAIL_OTP, Change.UPDATE):
            await tenant.update_email_otp(body)
        elif what == (SOCIAL, Change.CREATE):
            await tenant.create_identity_provider(body)
        elif what == (SOCIAL, Change.UPDATE):
            await tenant.update_identity_provider(action.payload["id"], body)
        elif what == (SOCIAL, Change.DELETE):
            await tenant.delete_identity_provider(action.payload["id"])
        elif what == (REDEMPTION, Change.UPDATE):
            await tenant.update_default(body)
        else:
            raise ValueError(f"no way to apply {action.change.value} on {action.resource}")

    return apply
