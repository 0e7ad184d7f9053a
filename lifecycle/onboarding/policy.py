"""Checks an onboard ticket against tenant policy before anything is written. Pure: no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from config.desired_state import DesiredState, Partner, TargetConfiguration
from lifecycle.dates import end_of, latest_last_day, shown_end
from lifecycle.tickets import OnboardTicket


@dataclass(frozen=True, slots=True)
class PolicyViolation:
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class ApprovedOnboarding:
    """What policy allows for this ticket, resolved: the values the invitation and assignment use."""

    partner_key: str
    partner: Partner
    end: datetime
    not_before: datetime | None
    redirect_url: str
    access_package: str | None


def check_onboard(
    ticket: OnboardTicket, desired: DesiredState, now: datetime
) -> ApprovedOnboarding | list[PolicyViolation]:
    violations: list[PolicyViolation] = []
    partner = desired.partners.get(ticket.partner)
    if partner is None:
        return [PolicyViolation("unknown-partner", f"partner {ticket.partner!r} is not in the desired-state file")]

    if ticket.domain not in partner.domains:
        violations.append(
            PolicyViolation(
                "domain-not-partner",
                f"{ticket.domain} is not a domain of partner {ticket.partner} ({', '.join(partner.domains)})",
            )
        )
    domain_rule = invitation_domain_violation(ticket.domain, desired)
    if domain_rule:
        violations.append(domain_rule)
    if partner.tenant_id and not inbound_allowed(partner, desired):
        violations.append(
            PolicyViolation(
                "partner-inbound-blocked",
                f"cross-tenant access blocks inbound B2B collaboration from partner {ticket.partner}",
            )
        )

    redirect = ticket.redirect_url or desired.invitations.default_redirect_url
    if not redirect_allowed(redirect, desired.invitations.redirect_url_allowlist):
        violations.append(
            PolicyViolation("redirect-not-allowed", f"redirect URL {redirect!r} is not on the redirect allowlist")
        )

    end = end_of(ticket.end_date)
    latest = now + partner.max_engagement
    if end <= now:
        violations.append(
            PolicyViolation("end-date-past", f"endDate {shown_end(end)} is over: the last day must be today or later")
        )
    elif end > latest:
        violations.append(
            PolicyViolation(
                "end-date-too-far",
                f"endDate {shown_end(end)} is beyond partner {ticket.partner}'s maximum engagement of "
                f"{partner.max_engagement_days} days (latest {latest_last_day(latest)})",
            )
        )
    not_before = end_of(ticket.not_before) if ticket.not_before else None
    if not_before and not_before >= end:
        violations.append(PolicyViolation("not-before-after-end", "notBefore must be earlier than endDate"))

    access_package = ticket.access_package or (partner.access_package.name if partner.access_package else None)
    if violations:
        return violations
    return ApprovedOnboarding(ticket.partner, partner, end, not_before, redirect, access_package)


def invitation_domain_violation(domain: str, desired: DesiredState) -> PolicyViolation | None:
    rule = desired.invitations.domains
    listed = domain in rule.domains
    if rule.mode == "allowlist" and not listed:
        return PolicyViolation("domain-not-allowed", f"{domain} is not on the invitation domain allowlist")
    if rule.mode == "blocklist" and listed:
        return PolicyViolation("domain-blocked", f"{domain} is on the invitation domain blocklist")
    return None


def inbound_allowed(partner: Partner, desired: DesiredState) -> bool:
    """Effective inbound B2B collaboration for the partner's users: partner setting, else the default's."""
    own = partner.cross_tenant_access.b2b_collaboration_inbound
    default = desired.cross_tenant_access_default.b2b_collaboration_inbound
    users: TargetConfiguration | None = (own.users_and_groups if own else None) or (
        default.users_and_groups if default else None
    )
    # No setting anywhere is the service default, which allows everyone.
    return users is None or users.access_type == "allowed"


def redirect_allowed(url: str, allowlist: tuple[str, ...]) -> bool:
    """Whether ``url`` is under an allowlist entry, compared on one unambiguous reading of the URL.

    Exact scheme (https), host and port (an explicit port only where the entry names the same one), and a
    path under the entry's path segment by segment. Refused outright, whatever the allowlist says: anything
    a browser and this check could read differently (backslashes, whitespace, control or non-ASCII
    characters, an ``@`` in the authority, dot segments or empty segments in the path, percent-encoded dots,
    slashes, backslashes or percent signs).
    """
    candidate = _unambiguous(url)
    if candidate is None:
        return False
    host, port, segments = candidate
    for allowed in allowlist:
        rule = _unambiguous(allowed)
        if rule is None or (rule[0], rule[1]) != (host, port):
            continue
        base = [s for s in rule[2] if s]
        if segments[: len(base)] == base:
            return True
    return False


_AMBIGUOUS_ESCAPES = ("%2e", "%2f", "%5c", "%25", "%00")


def _unambiguous(url: str) -> tuple[str, int | None, list[str]] | None:
    """(host, port, path segments) of an https URL, or None when the URL reads more than one way."""
    if not url.isascii() or "\\" in url or any(ord(ch) < 0x21 or ord(ch) == 0x7F for ch in url):
        return None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme != "https" or "@" in parts.netloc or not parts.hostname:
        return None
    lowered = parts.path.lower()
    if any(escape in lowered for escape in _AMBIGUOUS_ESCAPES):
        return None
    segments = parts.path.split("/")[1:] if parts.path else []
    if any(s in (".", "..") for s in segments) or any(not s for s in segments[:-1]):
        return None
    return parts.hostname.lower(), port, segments
