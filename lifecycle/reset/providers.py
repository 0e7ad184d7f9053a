"""Identity providers: the one a domain's new invitees would use today, and the one a guest redeemed with.

Graph redeems an invitation with the first primary provider, in the tenant's configured order, that knows
the user, and otherwise with the fallback. The order is the default cross-tenant policy's
invitationRedemptionIdentityProviderConfiguration; without one the documented default applies (entra-docs
redemption-experience.md): another Entra tenant, then a SAML/WS-Fed federation, then Google for gmail.com,
then the default fallback (an existing Microsoft account, else an email one-time passcode, else a new
Microsoft account). That default fallback is chosen per person, so a domain without an organisational
provider accepts any personal account; a fallback pinned to one-time passcodes or to Microsoft accounts
accepts only that one.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from lifecycle.models import ObjectIdentity
from lifecycle.reset.ports import ProviderLookup, RedemptionOrderSource


class Provider(enum.StrEnum):
    ENTRA = "entra"  # a Microsoft Entra tenant (identity issuer ExternalAzureAD)
    FEDERATION = "federation"  # SAML/WS-Fed direct federation configured for the domain
    GOOGLE = "google"
    MICROSOFT_ACCOUNT = "microsoft-account"
    EMAIL_OTP = "email-otp"
    FACEBOOK = "facebook"


PERSONAL = frozenset({Provider.GOOGLE, Provider.MICROSOFT_ACCOUNT, Provider.EMAIL_OTP, Provider.FACEBOOK})

# The issuer Graph records in a redeemed guest's federated identity. Any other issuer is taken to be a
# SAML/WS-Fed federation (its issuer is the federation's own; the exact value is not documented).
_ISSUERS = {
    "externalazuread": Provider.ENTRA,
    "google.com": Provider.GOOGLE,
    "microsoftaccount": Provider.MICROSOFT_ACCOUNT,
    "mail": Provider.EMAIL_OTP,
    "facebook.com": Provider.FACEBOOK,
}


@dataclass(frozen=True, slots=True)
class UsedProvider:
    """The provider a guest redeemed with, from its ``identities``."""

    provider: Provider
    issuer: str
    sign_in_type: str

    def to_json(self) -> dict[str, str]:
        return {"provider": self.provider.value, "issuer": self.issuer, "signInType": self.sign_in_type}


def used_provider(identities: Iterable[ObjectIdentity]) -> UsedProvider | None:
    """None for a guest that has not redeemed (only its userPrincipalName identity)."""
    for identity in identities:
        if identity.sign_in_type == "federated":
            provider = _ISSUERS.get(identity.issuer.lower(), Provider.FEDERATION)
            return UsedProvider(provider, identity.issuer, identity.sign_in_type)
    return None


# b2bIdentityProvidersType members (v1.0 metadata) in the primary order and as the fallback.
AZURE_AD, EXTERNAL_FEDERATION, SOCIAL = "azureActiveDirectory", "externalFederation", "socialIdentityProviders"
DEFAULT_CONFIGURED, EMAIL_OTP_FALLBACK, MSA_FALLBACK = (
    "defaultConfiguredIdp",
    "emailOneTimePasscode",
    "microsoftAccount",
)
_FALLBACK_ACCEPTS = {
    DEFAULT_CONFIGURED: frozenset({Provider.MICROSOFT_ACCOUNT, Provider.EMAIL_OTP}),
    EMAIL_OTP_FALLBACK: frozenset({Provider.EMAIL_OTP}),
    MSA_FALLBACK: frozenset({Provider.MICROSOFT_ACCOUNT}),
}
_FALLBACK_LABELS = {DEFAULT_CONFIGURED: "personal", EMAIL_OTP_FALLBACK: "email-otp", MSA_FALLBACK: "microsoft-account"}
_SOCIAL = frozenset({Provider.GOOGLE, Provider.FACEBOOK})


@dataclass(frozen=True, slots=True)
class RedemptionOrder:
    """The tenant's redemption order: primary providers by precedence, then the fallback."""

    primary: tuple[str, ...]
    fallback: str
    configured: bool = True  # False when the tenant has none and the documented default applies

    @classmethod
    def from_graph(cls, config: Mapping[str, Any] | None) -> RedemptionOrder:
        """From invitationRedemptionIdentityProviderConfiguration; absent or null means the default order.

        Members this release does not know (``unknownFutureValue``, later additions) are ignored in the
        primary order; an unknown fallback is read as the default one, which accepts any personal account,
        so an unknown setting never plans a reset.
        """
        if not isinstance(config, Mapping):
            return DEFAULT_ORDER
        primary = config.get("primaryIdentityProviderPrecedenceOrder")
        order = DEFAULT_ORDER.primary if primary is None else tuple(str(p) for p in primary)
        fallback = str(config.get("fallbackIdentityProvider") or DEFAULT_CONFIGURED)
        return cls(order, fallback if fallback in _FALLBACK_ACCEPTS else DEFAULT_CONFIGURED)

    @property
    def personal(self) -> frozenset[Provider]:
        """The personal providers a guest may have redeemed with when no primary provider applies."""
        return _FALLBACK_ACCEPTS[self.fallback] | (_SOCIAL if SOCIAL in self.primary else frozenset())

    def to_json(self) -> dict[str, Any]:
        return {"primary": list(self.primary), "fallback": self.fallback, "configured": self.configured}


DEFAULT_ORDER = RedemptionOrder((AZURE_AD, EXTERNAL_FEDERATION, SOCIAL), DEFAULT_CONFIGURED, configured=False)


async def redemption_order(lookup: ProviderLookup) -> RedemptionOrder:
    """The tenant's order through the lookup, or the documented default when the lookup cannot read it."""
    if isinstance(lookup, RedemptionOrderSource):
        return RedemptionOrder.from_graph(await lookup.redemption_order())
    return DEFAULT_ORDER


@dataclass(frozen=True, slots=True)
class ExpectedProvider:
    """What a new invitee of ``domain`` would redeem with; ``provider`` None means a personal account."""

    domain: str
    provider: Provider | None
    tenant_id: str | None = None
    federation_id: str | None = None
    personal: frozenset[Provider] = PERSONAL  # accepted when ``provider`` is None
    fallback: str = DEFAULT_CONFIGURED
    # Why the provider could not be established (then ``provider`` is None and nothing is concluded).
    unverified: str | None = None

    def accepts(self, used: Provider) -> bool:
        return used in self.personal if self.provider is None else used is self.provider

    @property
    def label(self) -> str:
        if self.unverified:
            return "unverified"
        return self.provider.value if self.provider else _FALLBACK_LABELS[self.fallback]

    def to_json(self) -> dict[str, Any]:
        return {
            "domain": self.domain,
            "provider": self.label,
            "tenantId": self.tenant_id,
            "federationId": self.federation_id,
            "accepts": sorted(p.value for p in self.personal) if self.provider is None else [self.provider.value],
        } | ({"unverified": self.unverified} if self.unverified else {})


async def expected_provider(
    domain: str,
    lookup: ProviderLookup,
    order: RedemptionOrder = DEFAULT_ORDER,
    partner_tenant_id: str | None = None,
) -> ExpectedProvider:
    """The first primary provider of ``order`` that serves ``domain``, else the fallback's personal accounts.

    Google (socialIdentityProviders) serves only gmail.com and googlemail.com addresses, never a partner's
    own domain: it widens the personal accounts accepted rather than naming an organisational provider.

    The tenant look-up by domain is documented for a tenant's primary domain only: when it finds nothing for
    a domain of a partner that names its Entra tenant, and that tenant still exists, the domain may be one of
    its other domains, so the answer is unverified rather than the fallback.
    """
    for member in order.primary:
        if member == AZURE_AD:
            tenant_id = await lookup.tenant_for_domain(domain)
            if tenant_id:
                return ExpectedProvider(domain, Provider.ENTRA, tenant_id=tenant_id)
        elif member == EXTERNAL_FEDERATION:
            federation_id = await lookup.federation_for_domain(domain)
            if federation_id:
                return ExpectedProvider(domain, Provider.FEDERATION, federation_id=federation_id)
    if AZURE_AD in order.primary and partner_tenant_id and await lookup.tenant_exists(partner_tenant_id):
        reason = (
            f"no tenant was found for {domain} by domain (Graph finds a tenant by its primary domain only), "
            f"but the partner's Entra tenant {partner_tenant_id} exists and may verify it; its guests are left "
            "alone: reset them by ticket, or run the reset for the domain with force"
        )
        return ExpectedProvider(domain, None, tenant_id=partner_tenant_id, unverified=reason)
    return ExpectedProvider(domain, None, personal=order.personal, fallback=order.fallback)
