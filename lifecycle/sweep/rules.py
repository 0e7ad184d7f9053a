"""The decision for one guest: disable, delete, leave alone (with the reason), or nothing to do.

Pure: the same guest, ledger row, policy and instant always give the same answer. Every comparison is
between aware instants, so a clock or a date in any time zone means the same moment. A rule fires on
its boundary instant: a guest last seen at 09:30 UTC with a 90-day rule is inactive from 09:30 UTC on
day 90, not a day early or late.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, TypeVar

from config.desired_state import DesiredState
from lifecycle.models import DirectoryUser, ExternalUserState, GuestRecord, GuestState
from lifecycle.sweep.model import Action, NoticeRecord, Rule, Skip
from lifecycle.sweep.sponsors import GONE, Coverage, coverage_of, departed


@dataclass(frozen=True, slots=True)
class NoticeRules:
    enabled: bool = False
    lead_days: int = 14
    queue: str = "sponsor-notices"

    @property
    def lead(self) -> timedelta:
        return timedelta(days=self.lead_days)


@dataclass(frozen=True, slots=True)
class EffectiveRules:
    """The tenant-wide rules with a partner's overrides applied."""

    inactive_days: int | None
    pending_invitation_days: int | None
    grace_days: int
    opt_out: bool = False
    notice: NoticeRules = NoticeRules()
    attestation_days: int | None = None
    sponsor_gone_days: int | None = None
    owner: str | None = None  # the partner's owner: proposed as sponsor when every sponsor is gone


@dataclass(frozen=True, slots=True)
class SweepPolicy:
    desired: DesiredState
    protected_members: frozenset[str] = frozenset()
    # False when the tenant cannot give signInActivity (no P1/P2 licence): the inactivity rule is off, because
    # without sign-ins every guest would count as inactive since its creation.
    sign_in_activity: bool = True
    excluded_ids: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "excluded_ids", frozenset(i.lower() for i in self.desired.exclusions.object_ids))

    def without_sign_in_activity(self) -> SweepPolicy:
        return replace(self, sign_in_activity=False)

    def rules_for(self, partner: str | None) -> EffectiveRules:
        rules = self._rules_for(partner)
        return rules if self.sign_in_activity else replace(rules, inactive_days=None)

    def _rules_for(self, partner: str | None) -> EffectiveRules:
        defaults = self.desired.lifecycle
        overrides = self.desired.partners[partner].lifecycle if partner in self.desired.partners else None
        notice = defaults.sponsor_notice
        if overrides is None:
            return EffectiveRules(
                defaults.inactive_days,
                defaults.pending_invitation_days,
                defaults.grace_days,
                notice=NoticeRules(notice.enabled, notice.lead_days, notice.queue),
                attestation_days=defaults.attestation_days,
                sponsor_gone_days=defaults.sponsor_gone_days,
            )
        own = overrides.sponsor_notice
        return EffectiveRules(
            inactive_days=overrides.inactive_days if overrides.inactive_days is not None else defaults.inactive_days,
            pending_invitation_days=(
                overrides.pending_invitation_days
                if overrides.pending_invitation_days is not None
                else defaults.pending_invitation_days
            ),
            grace_days=overrides.grace_days if overrides.grace_days is not None else defaults.grace_days,
            opt_out=overrides.opt_out,
            attestation_days=_first(overrides.attestation_days, defaults.attestation_days),
            sponsor_gone_days=_first(overrides.sponsor_gone_days, defaults.sponsor_gone_days),
            owner=self.desired.partners[partner].owner if partner in self.desired.partners else None,
            notice=NoticeRules(
                enabled=_first(own.enabled if own else None, notice.enabled),
                lead_days=_first(own.lead_days if own else None, notice.lead_days),
                queue=_first(own.queue if own else None, notice.queue),
            ),
        )

    @property
    def sponsor_gone_anywhere(self) -> bool:
        """Whether the sponsor-gone rule is on for the default or any partner."""
        if self.desired.lifecycle.sponsor_gone_days is not None:
            return True
        return any(p.lifecycle.sponsor_gone_days is not None for p in self.desired.partners.values())

    @property
    def notices_anywhere(self) -> bool:
        """Whether any partner (or the default) sends sponsor notices: only then are notices looked up."""
        if self.desired.lifecycle.sponsor_notice.enabled:
            return True
        return any(
            p.lifecycle.sponsor_notice is not None and p.lifecycle.sponsor_notice.enabled
            for p in self.desired.partners.values()
        )

    def partner_of(self, user: DirectoryUser, record: GuestRecord | None) -> str | None:
        if record is not None and record.partner in self.desired.partners:
            return record.partner
        address = user.mail or next(iter(user.other_mails), None)
        if not address or "@" not in address:
            return None
        found = self.desired.partner_for_domain(address.rsplit("@", 1)[1])
        return found[0] if found else None


T = TypeVar("T")


def _first(override: T | None, default: T) -> T:
    return override if override is not None else default


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    rule: Rule
    partner: str | None
    evidence: dict[str, Any]
    due: datetime | None = None  # notify-sponsor: the instant the guest becomes due


Verdict = Decision | Skip | None


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def last_activity(user: DirectoryUser) -> datetime | None:
    """The last successful sign-in, interactive or not.

    ``lastSuccessfulSignInDateTime`` covers both kinds but is not backfilled before December 2023; when
    it is missing, the last interactive and non-interactive attempts stand in (they include failures, so
    they can only make a guest look more active, never less).
    """
    activity = user.sign_in_activity
    if activity is None:
        return None
    if activity.last_successful_sign_in is not None:
        return activity.last_successful_sign_in
    attempts = [m for m in (activity.last_sign_in, activity.last_non_interactive_sign_in) if m is not None]
    return max(attempts) if attempts else None


def _redeemed(user: DirectoryUser) -> datetime | None:
    if user.external_user_state == ExternalUserState.ACCEPTED:
        return user.external_user_state_changed
    return None


def inactivity_baseline(
    user: DirectoryUser, record: GuestRecord | None, activity_hint: datetime | None = None
) -> tuple[datetime | None, str]:
    """Since when the guest counts as inactive, and why. None means: no evidence, never act.

    A guest that never signed in counts from its redemption (or creation), never from "no data". A guest
    this product disabled and somebody re-enabled counts from that disable at the earliest.
    """
    candidates: list[tuple[datetime, str]] = []
    seen = last_activity(user) or activity_hint
    if seen is not None:
        candidates.append((seen, "lastSuccessfulSignIn"))
    else:
        for moment, source in ((user.created, "created"), (_redeemed(user), "redeemed")):
            if moment is not None:
                candidates.append((moment, source))
    reenabled = (
        record is not None
        and record.state is GuestState.DISABLED
        and record.disabled is not None
        and user.account_enabled is not False
    )
    if reenabled:
        assert record is not None and record.disabled is not None
        candidates.append((record.disabled, "reEnabledAfterDisable"))
    if not candidates:
        return None, "no-evidence"
    return max(candidates, key=lambda pair: pair[0])


def end_date_of(record: GuestRecord | None, assignment_end: datetime | None) -> datetime | None:
    """The latest known end: an extension recorded in either place keeps the guest."""
    ends = [m for m in ((record.end_date if record else None), assignment_end) if m is not None]
    return max(ends) if ends else None


@dataclass(frozen=True, slots=True)
class Due:
    """A disable rule and the instant it starts to hold for a guest."""

    rule: Rule
    at: datetime
    evidence: dict[str, Any]


def due_rules(
    user: DirectoryUser,
    record: GuestRecord | None,
    rules: EffectiveRules,
    assignment_end: datetime | None = None,
    activity_hint: datetime | None = None,
) -> list[Due]:
    """Every disable rule that applies to this guest with the instant it fires, in order of precedence."""
    found: list[Due] = []
    end = end_date_of(record, assignment_end)
    if end is not None:
        source = "ledger" if record is not None and record.end_date == end else "accessPackageAssignment"
        found.append(Due(Rule.PAST_END_DATE, end, {"endDate": _iso(end), "source": source}))

    if rules.pending_invitation_days is not None and user.external_user_state == ExternalUserState.PENDING:
        since = user.external_user_state_changed or user.created
        if since is not None:
            found.append(
                Due(
                    Rule.INVITATION_NOT_REDEEMED,
                    since + timedelta(days=rules.pending_invitation_days),
                    {"pendingSince": _iso(since), "pendingInvitationDays": rules.pending_invitation_days},
                )
            )

    if rules.inactive_days is not None:
        baseline, source = inactivity_baseline(user, record, activity_hint)
        if baseline is not None:
            found.append(
                Due(
                    Rule.INACTIVE,
                    baseline + timedelta(days=rules.inactive_days),
                    {"inactiveSince": _iso(baseline), "baseline": source, "inactiveDays": rules.inactive_days},
                )
            )

    if rules.attestation_days is not None and record is not None:
        # Only a guest this product onboarded can be attested (attest tickets need its ledger row).
        since = record.attested or record.invited or user.created
        if since is not None:
            found.append(
                Due(
                    Rule.ATTESTATION_OVERDUE,
                    since + timedelta(days=rules.attestation_days),
                    {
                        "attestedSince": _iso(since),
                        "baseline": "lastAttested" if record.attested else "invited",
                        "attestationDays": rules.attestation_days,
                    },
                )
            )
    return found


def disable_rule(
    user: DirectoryUser,
    record: GuestRecord | None,
    rules: EffectiveRules,
    now: datetime,
    assignment_end: datetime | None = None,
    activity_hint: datetime | None = None,
) -> tuple[Rule, dict[str, Any]] | None:
    """The first disable rule that holds for this guest at ``now``, with its evidence."""
    for due in due_rules(user, record, rules, assignment_end, activity_hint):
        if now >= due.at:
            return due.rule, due.evidence
    return None


def _with_notice(
    user: DirectoryUser,
    record: GuestRecord | None,
    rules: EffectiveRules,
    partner: str | None,
    now: datetime,
    assignment_end: datetime | None,
    activity_hint: datetime | None,
    notice: NoticeRecord | None,
) -> Verdict:
    """Disable decisions when sponsors are told first.

    The due date is the earliest instant any rule fires. From ``leadDays`` before it the sponsor is told
    (once per due date); the disable waits until the due date and until the notice is ``leadDays`` old.
    A guest already overdue when notices are switched on is therefore told first and disabled ``leadDays``
    later: the sponsor always gets the full lead time, even if that delays a disable that was due.
    """
    dues = due_rules(user, record, rules, assignment_end, activity_hint)
    if not dues:
        return None
    earliest = min(dues, key=lambda d: d.at)
    lead = rules.notice.lead
    if notice is not None and notice.due == earliest.at:
        ready = max(earliest.at, notice.notified + lead)
        if now < ready:
            return Skip.AWAITING_NOTICE_LEAD if now >= earliest.at else None
        rule, evidence = disable_rule(user, record, rules, now, assignment_end, activity_hint) or (
            earliest.rule,
            earliest.evidence,
        )
        told = {
            "sponsorNotifiedAt": _iso(notice.notified),
            "dueDate": _iso(earliest.at),
            "leadDays": rules.notice.lead_days,
        }
        return Decision(Action.DISABLE, rule, partner, evidence | told)
    if now >= earliest.at - lead:
        evidence = earliest.evidence | {"dueDate": _iso(earliest.at), "leadDays": rules.notice.lead_days}
        return Decision(Action.NOTIFY_SPONSOR, earliest.rule, partner, evidence, due=earliest.at)
    return None


def decide(
    user: DirectoryUser,
    record: GuestRecord | None,
    policy: SweepPolicy,
    now: datetime,
    assignment_end: datetime | None = None,
    activity_hint: datetime | None = None,
    notice: NoticeRecord | None = None,
) -> Verdict:
    """What the sweep does to ``user`` at ``now``: a Decision, a Skip reason, or None (nothing due).

    ``notice`` is the last sponsor notice recorded for the guest; it matters only where notices are on.
    """
    if not user.is_guest:
        return Skip.NOT_A_GUEST
    if user.id.lower() in policy.excluded_ids:
        return Skip.EXCLUDED_OBJECT
    if user.id in policy.protected_members:
        return Skip.PROTECTED_GROUP
    if record is not None and record.rearm_until is not None and now < record.rearm_until:
        return Skip.RESTORED_COOL_OFF
    partner = policy.partner_of(user, record)
    rules = policy.rules_for(partner)
    if rules.opt_out:
        return Skip.PARTNER_OPT_OUT

    if user.account_enabled is False:
        if record is None or record.state is not GuestState.DISABLED or record.disabled is None:
            return Skip.DISABLED_ELSEWHERE
        grace_ends = record.disabled + timedelta(days=rules.grace_days)
        if now < grace_ends:
            return Skip.IN_GRACE
        still = disable_rule(user, record, rules, now, assignment_end, activity_hint) or still_gone(user, record, rules)
        if still is None:
            return None
        rule, evidence = still
        return Decision(
            Action.DELETE,
            Rule.DISABLED_PAST_GRACE,
            partner,
            {"disabledAt": _iso(record.disabled), "graceDays": rules.grace_days, "stillEligibleBy": rule.value}
            | evidence,
        )

    if rules.notice.enabled:
        verdict = _with_notice(user, record, rules, partner, now, assignment_end, activity_hint, notice)
        return verdict if verdict is not None else sponsor_gone(user, record, rules, partner, now)
    found = disable_rule(user, record, rules, now, assignment_end, activity_hint)
    if found is None:
        return sponsor_gone(user, record, rules, partner, now)
    rule, evidence = found
    return Decision(Action.DISABLE, rule, partner, evidence)


def still_gone(user: DirectoryUser, record: GuestRecord, rules: EffectiveRules) -> tuple[Rule, dict[str, Any]] | None:
    """Whether a guest disabled in a sponsor-gone period still has every sponsor gone (so its delete may follow)."""
    coverage = coverage_of(user, record)
    if rules.sponsor_gone_days is None or record.sponsor_gone_since is None or coverage not in GONE:
        return None
    assert coverage is not None
    return Rule.SPONSOR_GONE, {"sponsorGoneSince": _iso(record.sponsor_gone_since), "coverage": coverage.value}


def sponsor_gone(
    user: DirectoryUser, record: GuestRecord | None, rules: EffectiveRules, partner: str | None, now: datetime
) -> Decision | None:
    """The sponsor-gone rule, for an enabled guest no other rule acts on.

    Only a guest this product onboarded (its ledger row keeps the moment the sweep first found its sponsors
    gone) and only from a read that expanded its sponsors with their state: a guest whose sponsors' state is not
    known is never judged gone. First the sponsor-reassign event goes out; the guest is disabled once
    ``sponsorGoneDays`` have passed since, unless a sponsor answers for it again or a ticket extends or
    attests it (either clears the mark, and the period starts afresh if the sponsors are still gone).
    """
    days = rules.sponsor_gone_days
    if record is None:
        return None
    since = record.sponsor_gone_since
    if days is None:
        # Switched off with a period running: end it, or switching the rule on again would disable at once on an
        # old event.
        ended = {"sponsorGoneSince": _iso(since), "why": "rule-off"}
        return Decision(Action.SPONSOR_GONE_ENDED, Rule.SPONSOR_GONE, partner, ended) if since is not None else None
    coverage = coverage_of(user, record)
    if coverage is Coverage.COVERED and since is not None:
        ended = {"sponsorGoneSince": _iso(since), "why": "sponsor-back"}
        return Decision(Action.SPONSOR_GONE_ENDED, Rule.SPONSOR_GONE, partner, ended)
    if coverage not in GONE:
        return None
    assert coverage is not None
    evidence: dict[str, Any] = {
        "coverage": coverage.value,
        "departedSponsorIds": list(departed(user, record)),
        "sponsorGoneDays": days,
    }
    if since is None:
        due = now + timedelta(days=days)
        evidence |= {"sponsorGoneSince": _iso(now), "dueDate": _iso(due)}
        return Decision(Action.SPONSOR_REASSIGN, Rule.SPONSOR_GONE, partner, evidence, due=due)
    due = since + timedelta(days=days)
    if now < due:
        return None
    return Decision(
        Action.DISABLE, Rule.SPONSOR_GONE, partner, evidence | {"sponsorGoneSince": _iso(since), "dueDate": _iso(due)}
    )
