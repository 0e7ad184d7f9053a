"""Detection: which redeemed guests of the partner domains used a provider their domain no longer has."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from config.desired_state import DesiredState
from lifecycle.models import DirectoryUser, ExternalUserState
from lifecycle.onboarding.policy import inbound_allowed
from lifecycle.plans import Action, Change, FieldDiff, Plan
from lifecycle.ports import Directory
from lifecycle.reset.ports import ProviderLookup
from lifecycle.reset.providers import (
    DEFAULT_ORDER,
    ExpectedProvider,
    Provider,
    RedemptionOrder,
    UsedProvider,
    expected_provider,
    redemption_order,
    used_provider,
)

GUEST_FIELDS = (
    "id",
    "displayName",
    "mail",
    "otherMails",
    "userType",
    "accountEnabled",
    "externalUserState",
    "externalUserStateChangeDateTime",
    "identities",
)
# Skip reason of a guest whose domain moved to an Entra tenant the desired state does not let in.
BLOCKED_SKIP = "provider-tenant-not-allowed-inbound"
# Skip reason of a guest whose domain's provider could not be established (see expected_provider).
UNVERIFIED_SKIP = "provider-unverified"


@dataclass(frozen=True, slots=True)
class PlannedReset:
    """One guest to reset, with the evidence that it redeemed with a provider its domain no longer uses."""

    object_id: str
    email: str
    domain: str
    partner: str | None
    expected: str
    used: str
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "objectId": self.object_id,
            "email": self.email,
            "domain": self.domain,
            "partner": self.partner,
            "expected": self.expected,
            "used": self.used,
            "evidence": self.evidence,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PlannedReset:
        return cls(
            object_id=str(data["objectId"]),
            email=str(data["email"]),
            domain=str(data["domain"]),
            partner=data.get("partner"),
            expected=str(data["expected"]),
            used=str(data["used"]),
            evidence=dict(data.get("evidence") or {}),
        )


@dataclass
class Detection:
    expected: dict[str, ExpectedProvider]
    order: RedemptionOrder = DEFAULT_ORDER  # the tenant's redemption order the expectations follow
    resets: list[PlannedReset] = field(default_factory=list)
    examined: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    # Domains whose new Entra tenant the desired state does not let in: domain -> what to do about it.
    blocked: dict[str, str] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        """Planned resets per transition, e.g. ``reset/google->entra``."""
        return dict(Counter(f"reset/{r.used}->{r.expected}" for r in self.resets))

    def to_plan(self) -> Plan:
        plan = Plan("redemption-reset", warnings=[f"{d}: {why}" for d, why in sorted(self.blocked.items())])
        for reset in self.resets:
            plan.actions.append(
                Action(
                    resource="users/redemption",
                    key=reset.object_id,
                    change=Change.UPDATE,
                    reason=f"{reset.email}: redeemed with {reset.used}, {reset.domain} now uses {reset.expected}",
                    diffs=(FieldDiff("identityProvider", reset.expected, reset.used),),
                    payload={
                        "invitedUserEmailAddress": reset.email,
                        "resetRedemption": True,
                        "invitedUser": {"id": reset.object_id},
                    },
                )
            )
        return plan


def partner_domains(desired: DesiredState) -> dict[str, str]:
    return {domain: key for key, partner in desired.partners.items() for domain in partner.domains}


async def detect(
    directory: Directory,
    lookup: ProviderLookup,
    desired: DesiredState,
    domains: Sequence[str] | None = None,
    *,
    force: bool = False,
    protected: frozenset[str] = frozenset(),
) -> Detection:
    """Compare each redeemed guest's provider with its domain's; ``force`` plans every redeemed guest.

    ``protected`` are the protected group's members: excluded like the listed object ids.
    """
    partners = partner_domains(desired)
    wanted = sorted(d.lower() for d in domains) if domains else sorted(partners)
    order = await redemption_order(lookup)
    detection = Detection(
        {d: await expected_provider(d, lookup, order, _declared_tenant(desired, partners.get(d))) for d in wanted},
        order=order,
    )
    detection.blocked = {
        domain: why
        for domain, expected in detection.expected.items()
        if (why := tenant_not_let_in(expected, partners.get(domain), desired)) is not None
    }
    excluded = set(desired.exclusions.object_ids)
    async for page in directory.list_guests(GUEST_FIELDS):
        for guest in page:
            domain = domain_of(guest.mail)
            if domain not in detection.expected:
                continue
            detection.examined += 1
            expected = detection.expected[domain]
            used = used_provider(guest.identities)
            skip = "protected-group" if guest.id in protected else _skip_reason(guest, used, excluded)
            if skip is None and domain in detection.blocked:
                skip = BLOCKED_SKIP
            if skip is None and expected.unverified and not force:
                skip = UNVERIFIED_SKIP
            if skip is None and used is not None and not force and expected.accepts(used.provider):
                skip = "provider-unchanged"
            if skip is not None or used is None:
                detection.skipped[skip or "not-redeemed"] += 1
                continue
            detection.resets.append(_planned(guest, domain, partners.get(domain), expected, used, force, order))
    return detection


def _declared_tenant(desired: DesiredState, partner_key: str | None) -> str | None:
    partner = desired.partners.get(partner_key) if partner_key else None
    return partner.tenant_id if partner is not None else None


def tenant_not_let_in(expected: ExpectedProvider, partner_key: str | None, desired: DesiredState) -> str | None:
    """Why a reset to ``expected`` would lock the partner out, or None when its tenant may come in.

    A reset guest redeems again with its domain's new Entra tenant. Cross-tenant access then applies the
    partner policy for that tenant, or the default when the desired state has none, and the policy drift
    job enforces the desired state every hour: resetting before the desired state lets the tenant in
    would end with guests who cannot sign in.
    """
    tenant_id = expected.tenant_id
    if expected.provider is not Provider.ENTRA or tenant_id is None:
        return None
    named = [p for p in desired.partners.values() if p.tenant_id and p.tenant_id.lower() == tenant_id.lower()]
    if named and inbound_allowed(named[0], desired):
        return None
    if not named and default_inbound_allowed(desired):
        return None
    where = f"partners.{partner_key}.tenantId" if partner_key else "a partner's tenantId"
    return (
        f"now signs in with Entra tenant {tenant_id}, which the desired state does not allow inbound; "
        f"set {where} to it, apply policy drift, then run the reset again"
    )


def default_inbound_allowed(desired: DesiredState) -> bool:
    default = desired.cross_tenant_access_default.b2b_collaboration_inbound
    users = default.users_and_groups if default else None
    return users is None or users.access_type == "allowed"


def domain_of(address: str | None) -> str:
    return address.rsplit("@", 1)[1].lower() if address and "@" in address else ""


def _skip_reason(guest: DirectoryUser, used: UsedProvider | None, excluded: set[str]) -> str | None:
    if guest.id in excluded:
        return "excluded-object"
    if guest.account_enabled is False:
        return "disabled"
    if guest.external_user_state != ExternalUserState.ACCEPTED or used is None:
        return "not-redeemed"
    return None


def _planned(
    guest: DirectoryUser,
    domain: str,
    partner: str | None,
    expected: ExpectedProvider,
    used: UsedProvider,
    forced: bool,
    order: RedemptionOrder = DEFAULT_ORDER,
) -> PlannedReset:
    redeemed = guest.external_user_state_changed
    return PlannedReset(
        object_id=guest.id,
        email=guest.mail or "",
        domain=domain,
        partner=partner,
        expected=expected.label,
        used=used.provider.value,
        evidence={
            "domainProvider": expected.to_json(),
            "guestIdentity": used.to_json(),
            "redeemedAt": redeemed.isoformat() if redeemed else None,
            "forced": forced,
            "redemptionOrder": order.to_json(),
        },
    )
