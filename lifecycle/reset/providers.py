"""Identity providers: the one a domain's new invitees would use today, and the one a guest redeemed with.

Graph redeems an invitation with the first primary provider that knows the user (default precedence:
another Entra tenant, then a SAML/WS-Fed federation, then Google for gmail.com) and otherwise falls back to
the user's own Microsoft account or an email one-time passcode. The fallback is chosen per person, so a
domain without an organisational provider accepts any of the personal ones: only a change of the
organisational provider (appearing, disappearing or being replaced) calls for a reset.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from lifecycle.models import ObjectIdentity
from lifecycle.reset.ports import ProviderLookup


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


@dataclass(frozen=True, slots=True)
class ExpectedProvider:
    """What a new invitee of ``domain`` would redeem with; ``provider`` None means a personal account."""

    domain: str
    provider: Provider | None
    tenant_id: str | None = None
    federation_id: str | None = None
    # Why the provider could not be established (then ``provider`` is None and nothing is concluded).
    unverified: str | None = None

    def accepts(self, used: Provider) -> bool:
        return used in PERSONAL if self.provider is None else used is self.provider

    @property
    def label(self) -> str:
        if self.unverified:
            return "unverified"
        return self.provider.value if self.provider else "personal"

    def to_json(self) -> dict[str, Any]:
        return {
            "domain": self.domain,
            "provider": self.label,
            "tenantId": self.tenant_id,
            "federationId": self.federation_id,
        } | ({"unverified": self.unverified} if self.unverified else {})


async def expected_provider(
    domain: str, lookup: ProviderLookup, partner_tenant_id: str | None = None
) -> ExpectedProvider:
    """The provider a new invitee of ``domain`` would use. The tenant look-up by domain is documented for a
    tenant's primary domain only: when it finds nothing for a domain of a partner that names its Entra tenant,
    and that tenant still exists, the domain may be one of its other domains, so the answer is unverified
    rather than "personal"."""
    tenant_id = await lookup.tenant_for_domain(domain)
    if tenant_id:
        return ExpectedProvider(domain, Provider.ENTRA, tenant_id=tenant_id)
    federation_id = await lookup.federation_for_domain(domain)
    if federation_id:
        return ExpectedProvider(domain, Provider.FEDERATION, federation_id=federation_id)
    if partner_tenant_id and await lookup.tenant_exists(partner_tenant_id):
        reason = (
            f"no tenant was found for {domain} by domain (Graph finds a tenant by its primary domain only), "
            f"but the partner's Entra tenant {partner_tenant_id} exists and may verify it; its guests are left "
            "alone: reset them by ticket, or run the reset for the domain with force"
        )
        return ExpectedProvider(domain, None, tenant_id=partner_tenant_id, unverified=reason)
    return ExpectedProvider(domain, None)
