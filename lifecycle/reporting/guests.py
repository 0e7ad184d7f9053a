"""Every guest as a row a person reads: who, whose partner and sponsor, state, last sign-in, end date, and the
sweep rule that will act on the guest next and when.

The judgement is the sweep's own (lifecycle.sweep.rules: ``decide`` for what is due tonight, ``due_rules`` for
what comes later), on the same inputs the planner indexes (the ledger, the assignment end dates, the sponsor
notices, the protected group): the report never holds a second opinion about a guest.

Graph budget: one streamed pass over the guests with a $select (the planner's own plus displayName). Without a
Microsoft Entra ID P1/P2 licence Graph refuses signInActivity (403); the pass then runs without it, the
inactivity rule is left out as the sweep leaves it out, and last sign-in reads "unknown".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import structlog

from lifecycle.models import DirectoryUser, ExternalUserState, GuestRecord
from lifecycle.services import Services
from lifecycle.sweep.model import Action, NoticeRecord, Rule, Skip
from lifecycle.sweep.planner import GUEST_SELECT, GUEST_SELECT_WITHOUT_SIGN_IN, ledger_index, notice_index
from lifecycle.sweep.ports import GuestReads, SignInActivityUnavailable, SweepPorts
from lifecycle.sweep.rules import Decision, SweepPolicy, decide, due_rules, end_date_of, last_activity
from lifecycle.sweep.runner import SweepError, build_policy

log = structlog.get_logger(__name__)

REPORT_SELECT = (*GUEST_SELECT, "displayName")
REPORT_SELECT_WITHOUT_SIGN_IN = (*GUEST_SELECT_WITHOUT_SIGN_IN, "displayName")
PAGE_SIZE = 500  # Graph's cap for a page with signInActivity selected
PROTECTED_UNREAD = "the protected group could not be read: a guest in it may show a rule that will never act on it"
NO_SIGN_IN_ACTIVITY = (
    "last sign-in is unknown and the inactivity rule is left out: Graph refused signInActivity (the tenant "
    "holds no Microsoft Entra ID P1 or P2 licence)"
)


def guest_state(user: DirectoryUser) -> str:
    if user.account_enabled is False:
        return "disabled"
    return "pending" if user.external_user_state == ExternalUserState.PENDING else "active"


@dataclass(frozen=True, slots=True)
class NextStep:
    """What the sweep will do to a guest next, by which rule, from when; or why it never will."""

    action: str | None = None  # disable, delete, notify-sponsor
    rule: str | None = None
    at: datetime | None = None
    note: str = ""  # a Skip reason, or "no rule applies"

    def label(self) -> str:
        return self.rule if self.rule else (self.note or "none")


@dataclass(frozen=True, slots=True)
class GuestRow:
    object_id: str
    display_name: str
    mail: str
    partner: str | None
    sponsor: str | None
    state: str
    last_sign_in: datetime | None
    end: datetime | None
    next: NextStep
    pending_since: datetime | None = None


@dataclass
class GuestTable:
    rows: list[GuestRow] = field(default_factory=list)
    sign_in_known: bool = True
    warnings: list[str] = field(default_factory=list)


def next_step(
    user: DirectoryUser,
    record: GuestRecord | None,
    policy: SweepPolicy,
    now: datetime,
    assignment_end: datetime | None = None,
    notice: NoticeRecord | None = None,
) -> NextStep:
    """The sweep's verdict at ``now`` if one is due, else the earliest of its rules that will fire later."""
    verdict = decide(user, record, policy, now, assignment_end, notice=notice)
    rules = policy.rules_for(policy.partner_of(user, record))
    if isinstance(verdict, Decision):
        if verdict.action is Action.DELETE and record is not None and record.disabled is not None:
            return NextStep(
                verdict.action.value, verdict.rule.value, record.disabled + timedelta(days=rules.grace_days)
            )
        if verdict.action is Action.NOTIFY_SPONSOR and verdict.due is not None:
            # The notice is due from leadDays before the guest's due date: tonight, since the sweep plans it.
            return NextStep(verdict.action.value, verdict.rule.value, verdict.due - rules.notice.lead)
        dues = [d.at for d in due_rules(user, record, rules, assignment_end) if d.rule is verdict.rule]
        return NextStep(verdict.action.value, verdict.rule.value, min(dues, default=now))
    if verdict is Skip.IN_GRACE and record is not None and record.disabled is not None:
        at = record.disabled + timedelta(days=rules.grace_days)
        return NextStep(Action.DELETE.value, Rule.DISABLED_PAST_GRACE.value, at)
    if verdict is Skip.AWAITING_NOTICE_LEAD and notice is not None:
        first = min(due_rules(user, record, rules, assignment_end), key=lambda d: d.at)
        return NextStep(Action.DISABLE.value, first.rule.value, notice.notified + rules.notice.lead)
    if isinstance(verdict, Skip):
        return NextStep(note=verdict.value)
    if user.account_enabled is not False:
        later = [d for d in due_rules(user, record, rules, assignment_end) if d.at > now]
        gone = _sponsor_gone_at(record, rules.sponsor_gone_days)
        if gone is not None and all(gone <= d.at for d in later):
            # The sweep found every sponsor gone and marked it: the disable comes then, unless somebody acts first.
            return NextStep(Action.DISABLE.value, Rule.SPONSOR_GONE.value, gone)
        if later:
            first = min(later, key=lambda d: d.at)
            if not rules.notice.enabled:
                return NextStep(Action.DISABLE.value, first.rule.value, first.at)
            if notice is not None and notice.due == first.at:  # the sponsor was told: the disable comes next
                at = max(first.at, notice.notified + rules.notice.lead)
                return NextStep(Action.DISABLE.value, first.rule.value, at)
            return NextStep(Action.NOTIFY_SPONSOR.value, first.rule.value, first.at - rules.notice.lead)
    return NextStep(note="no rule applies")


def _sponsor_gone_at(record: GuestRecord | None, days: int | None) -> datetime | None:
    if record is None or record.sponsor_gone_since is None or days is None:
        return None
    return record.sponsor_gone_since + timedelta(days=days)


async def guest_table(services: Services) -> GuestTable:
    """Every guest with its next step, from one streamed guest pass (two when Graph refuses signInActivity)."""
    now = services.clock.now()
    ports = services.jobs.find(SweepPorts)
    reads: GuestReads = ports.guest_reads if ports is not None else services.directory
    table = GuestTable()
    try:
        policy = await build_policy(services, ports.membership if ports is not None else None)
    except SweepError as error:
        log.warning("report.protected-group-unread", error=str(error))
        policy = SweepPolicy(services.desired)
        table.warnings.append(PROTECTED_UNREAD)
    records = await ledger_index(services.guests)
    notices = await notice_index(ports.runs, policy) if ports is not None else {}
    ends = await ports.expiries.end_dates() if ports is not None and ports.expiries is not None else {}
    try:
        table.rows = await _rows(reads, REPORT_SELECT, policy, records, ends, notices, now, True)
    except SignInActivityUnavailable:
        log.warning("report.sign-in-activity-unavailable")
        table.sign_in_known = False
        table.warnings.append(NO_SIGN_IN_ACTIVITY)
        policy = policy.without_sign_in_activity()
        table.rows = await _rows(reads, REPORT_SELECT_WITHOUT_SIGN_IN, policy, records, ends, notices, now, False)
    table.rows.sort(key=lambda r: (r.display_name.lower(), r.mail.lower(), r.object_id))
    return table


async def _rows(
    reads: GuestReads,
    select: tuple[str, ...],
    policy: SweepPolicy,
    records: dict[str, GuestRecord],
    ends: Mapping[str, datetime],
    notices: dict[str, NoticeRecord],
    now: datetime,
    sign_in_known: bool,
) -> list[GuestRow]:
    rows: list[GuestRow] = []
    async for page in reads.list_guests(select, page_size=PAGE_SIZE):
        for user in page:
            if not user.is_guest:
                continue
            record = records.get(user.id)
            assignment_end = ends.get(user.id)
            state = guest_state(user)
            rows.append(
                GuestRow(
                    object_id=user.id,
                    display_name=user.display_name or "",
                    mail=user.mail or (record.email if record else "") or next(iter(user.other_mails), ""),
                    partner=policy.partner_of(user, record),
                    sponsor=record.sponsor if record else None,
                    state=state,
                    last_sign_in=last_activity(user) if sign_in_known else None,
                    end=end_date_of(record, assignment_end),
                    next=next_step(user, record, policy, now, assignment_end, notices.get(user.id)),
                    pending_since=(user.external_user_state_changed or user.created) if state == "pending" else None,
                )
            )
    return rows
