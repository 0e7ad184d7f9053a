"""The sign-up decision: pure, built once from the desired state, the same answer for the same request.

Precedence: an explicitly blocked domain always blocks (even a partner's, which is a configuration
mistake worth a block rather than a silent allow); a partner domain continues; a disposable domain
blocks; any other domain follows ``signUp.unknownDomains``; then, once the form has been filled, the
invitation code is checked when the policy asks for one.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field

from disposable_email_domains import blocklist as DISPOSABLE_DOMAINS

from config.desired_state import DesiredState, SignUpPolicy
from lifecycle.errors import DesiredStateError
from lifecycle.signup.codes import InvitationCodes
from lifecycle.signup.requests import SignUpRequest


class Outcome(enum.StrEnum):
    CONTINUE = "continue"
    BLOCK = "block"
    INVALID = "invalid"  # stay on the form and fix a field


class Code(enum.StrEnum):
    PARTNER = "SIGNUP-PARTNER"
    UNKNOWN_ALLOWED = "SIGNUP-UNKNOWN-ALLOWED"
    EMAIL_MISSING = "SIGNUP-EMAIL-MISSING"
    BLOCKED_DOMAIN = "SIGNUP-BLOCKED-DOMAIN"
    DISPOSABLE_DOMAIN = "SIGNUP-DISPOSABLE-DOMAIN"
    UNKNOWN_DOMAIN = "SIGNUP-UNKNOWN-DOMAIN"
    CODE_MISSING = "SIGNUP-CODE-MISSING"
    CODE_INVALID = "SIGNUP-CODE-INVALID"
    BAD_REQUEST = "SIGNUP-BAD-REQUEST"


MESSAGES: Mapping[Code, str] = {
    Code.EMAIL_MISSING: "We could not read a valid email address for this sign-up. Please start again.",
    Code.BLOCKED_DOMAIN: "Personal email addresses cannot be used to sign up. "
    "Please sign up with the work address your organisation gave you.",
    Code.DISPOSABLE_DOMAIN: "Temporary or disposable email addresses cannot be used to sign up. "
    "Please sign up with your work address.",
    Code.UNKNOWN_DOMAIN: "Sign-up is open to people from approved partner organisations only. "
    "Please ask your contact with us for an invitation.",
    Code.CODE_MISSING: "Enter the invitation code your organisation received.",
    Code.CODE_INVALID: "This invitation code is not valid for your organisation. Check it and try again.",
    Code.BAD_REQUEST: "We could not process this sign-up. Please try again later.",
}


@dataclass(frozen=True, slots=True)
class Decision:
    outcome: Outcome
    code: Code
    user_message: str | None = None
    claims: Mapping[str, str] = field(default_factory=dict)
    attribute_errors: Mapping[str, str] = field(default_factory=dict)
    domain: str | None = None
    partner: str | None = None


def refuse(outcome: Outcome, code: Code, domain: str | None = None, attribute: str | None = None) -> Decision:
    """A block or validation error with the user message of ``code`` (pinned on ``attribute`` if given)."""
    errors = {attribute: MESSAGES[code]} if attribute else {}
    return Decision(outcome, code, MESSAGES[code], attribute_errors=errors, domain=domain)


def is_listed(domain: str, listed: Callable[[str], bool]) -> bool:
    """True when ``domain`` or one of its parent domains (down to two labels) is listed."""
    labels = domain.split(".")
    return any(listed(".".join(labels[i:])) for i in range(len(labels) - 1))


@dataclass(frozen=True, slots=True)
class PartnerEntry:
    key: str
    tier: str | None


class SignUpRules:
    def __init__(
        self,
        policy: SignUpPolicy,
        partners_by_domain: Mapping[str, PartnerEntry],
        *,
        codes: InvitationCodes | None = None,
        disposable: Collection[str] = DISPOSABLE_DOMAINS,
    ) -> None:
        if policy.require_invitation_code and codes is None:
            raise DesiredStateError(
                "signUp.requireInvitationCode is true but LIFECYCLE_SIGNUP_INVITATION_CODE_SECRET is not set"
            )
        self._policy = policy
        self._partners = dict(partners_by_domain)
        self._blocked = frozenset(policy.blocked_domains)
        self._disposable = disposable
        self._codes = codes

    @classmethod
    def from_desired_state(cls, state: DesiredState, code_secret: bytes | None = None) -> SignUpRules:
        partners = {
            domain: PartnerEntry(key, partner.tier)
            for key, partner in state.partners.items()
            for domain in partner.domains
        }
        policy = state.sign_up
        codes = InvitationCodes(code_secret, state.partners, policy.invitation_code_generation) if code_secret else None
        return cls(policy, partners, codes=codes)

    def decide(self, request: SignUpRequest) -> Decision:
        domain = request.email_domain
        if domain is None:
            return refuse(Outcome.BLOCK, Code.EMAIL_MISSING)
        if is_listed(domain, self._blocked.__contains__):
            return refuse(Outcome.BLOCK, Code.BLOCKED_DOMAIN, domain)
        partner = self._partners.get(domain)
        if partner is None:
            if self._policy.block_disposable_domains and is_listed(domain, self._disposable.__contains__):
                return refuse(Outcome.BLOCK, Code.DISPOSABLE_DOMAIN, domain)
            if self._policy.unknown_domains == "block":
                return refuse(Outcome.BLOCK, Code.UNKNOWN_DOMAIN, domain)
        refusal = self._check_code(request, domain, partner)
        if refusal is not None:
            return refusal
        if partner is None:
            return Decision(Outcome.CONTINUE, Code.UNKNOWN_ALLOWED, domain=domain)
        return Decision(
            Outcome.CONTINUE, Code.PARTNER, claims=self._tier_claim(partner), domain=domain, partner=partner.key
        )

    def _check_code(self, request: SignUpRequest, domain: str, partner: PartnerEntry | None) -> Decision | None:
        attribute = self._policy.invitation_code_attribute
        if not self._policy.require_invitation_code or not request.attributes_collected or attribute is None:
            return None
        assert self._codes is not None  # guaranteed by __init__
        typed = request.text_attribute(attribute)
        if typed is None:
            return refuse(Outcome.INVALID, Code.CODE_MISSING, domain, attribute)
        owner = self._codes.partner_of(typed)
        if owner is None or (partner is not None and owner != partner.key):
            return refuse(Outcome.INVALID, Code.CODE_INVALID, domain, attribute)
        return None

    def _tier_claim(self, partner: PartnerEntry) -> dict[str, str]:
        attribute = self._policy.partner_tier_attribute
        return {attribute: partner.tier} if attribute and partner.tier else {}
