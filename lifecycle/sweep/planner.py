"""Planning: enumerate guests page by page, decide each one, store the page's actions, keep counts.

Memory stays flat in the guest count: a page of guests is the most the planner holds of the tenant.
Beside it the planner keeps three compact indexes, each built by one streamed read per run: the ledger
rows of the guests this product manages, the last sponsor notice per notified guest (only where notices
are on), and one end instant per guest with an ending access package assignment.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import structlog

from lifecycle import progress
from lifecycle.models import DirectoryUser, GuestRecord, SponsorRef
from lifecycle.ports import GuestLedger
from lifecycle.runs.model import SIGN_IN_ACTIVITY_UNAVAILABLE, SIGN_IN_ACTIVITY_UNAVAILABLE_MESSAGE, DailyRun
from lifecycle.sweep.model import Action, NoticeRecord, PlannedAction, Skip
from lifecycle.sweep.ports import (
    AssignmentExpiries,
    GuestReads,
    ResumableGuestReads,
    SignInActivityUnavailable,
    SponsorStates,
    SweepRuns,
)
from lifecycle.sweep.rules import Decision, SweepPolicy, decide
from lifecycle.sweep.sponsors import SponsorTally, with_sponsor_states

log = structlog.get_logger(__name__)

# The smallest $select that decides every rule; mail names the partner of a guest the ledger lacks.
GUEST_SELECT = (
    "id",
    "userType",
    "accountEnabled",
    "createdDateTime",
    "externalUserState",
    "externalUserStateChangeDateTime",
    "signInActivity",
    "mail",
)
# Without a P1/P2 licence Graph refuses signInActivity; every other rule is decided from these.
GUEST_SELECT_WITHOUT_SIGN_IN = tuple(name for name in GUEST_SELECT if name != "signInActivity")
SPONSOR_COVERAGE_UNAVAILABLE = "sponsor-coverage-unavailable"
SPONSOR_COVERAGE_UNAVAILABLE_MESSAGE = (
    "sponsor coverage was not counted: Graph refused to expand sponsors in the guest pages; the rules ran as usual"
)
# Named in a select, the sponsors relationship is expanded (with each sponsor's state) rather than selected.
SPONSORS = "sponsors"
# Graph caps pages with signInActivity selected at 500 (older documentation: 120); nextLink does the rest.
PAGE_SIZE = 500


@dataclass
class PlanTally:
    total: int = 0
    actions: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    sponsors: SponsorTally | None = None  # sponsor coverage, when the pages expand sponsors

    def apply_to(self, run: DailyRun) -> None:
        run.total_guests = self.total
        run.actions = dict(self.actions)
        run.skipped = dict(self.skipped)
        counted = self.sponsors is not None and (self.sponsors.counts or self.sponsors.pending)
        run.sponsor_coverage = self.sponsors.to_json() if self.sponsors is not None and counted else {}

    @classmethod
    def resumed(cls, run: DailyRun, coverage: bool) -> PlanTally:
        sponsors = SponsorTally.from_json(run.sponsor_coverage) if coverage else None
        return cls(run.total_guests, Counter(run.actions), Counter(run.skipped), sponsors)


async def ledger_index(ledger: GuestLedger) -> dict[str, GuestRecord]:
    """The ledger rows the rules read, from one streaming scan (a page of 1,000 rows per request).

    One point read per guest would cost a request and ~2 ms of CPU each: 200 CPU seconds for 100,000
    guests. The scan costs a request per 1,000 rows; the index holds the ledger's rows without their
    history, so it grows with the guests this product manages, not with the tenant's guest count.
    """
    index: dict[str, GuestRecord] = {}
    async for record in ledger.all():
        record.history = []
        index[record.object_id] = record
    return index


async def notice_index(runs: SweepRuns, policy: SweepPolicy) -> dict[str, NoticeRecord]:
    """The last sponsor notice per guest, from one scan; empty (and not read) where notices are off."""
    if not policy.notices_anywhere:
        return {}
    return {notice.object_id: notice async for notice in runs.notices()}


def sponsors_of(record: GuestRecord | None) -> tuple[str, ...]:
    return (record.sponsor,) if record is not None and record.sponsor else ()


def _sponsor_ids(verdict: Decision, record: GuestRecord | None) -> tuple[str, ...]:
    """A notice names the sponsors the ledger recorded; a reassign event the sponsors who are gone."""
    if verdict.action is Action.NOTIFY_SPONSOR:
        return sponsors_of(record)
    if verdict.action is Action.SPONSOR_REASSIGN:
        return tuple(str(i) for i in verdict.evidence.get("departedSponsorIds", ()))
    return ()


async def plan_page(
    run: DailyRun,
    page: Sequence[DirectoryUser],
    policy: SweepPolicy,
    records: dict[str, GuestRecord],
    ends: Mapping[str, datetime] | None,
    tally: PlanTally,
    notices: dict[str, NoticeRecord] | None = None,
    states: Callable[[list[str]], Awaitable[Mapping[str, SponsorRef]]] | None = None,
) -> list[PlannedAction]:
    """Decide one page. ``states`` (where the sponsor-gone rule is on) fills in sponsor states the page left out."""
    ends = ends or {}
    notices = notices or {}
    now = run.started
    planned: list[PlannedAction] = []
    if states is not None:
        page = await with_sponsor_states(page, records, states)
    for user in page:
        tally.total += 1
        record = records.get(user.id)
        if tally.sponsors is not None:
            tally.sponsors.add(user, record)
        verdict = decide(user, record, policy, now, ends.get(user.id), notice=notices.get(user.id))
        if isinstance(verdict, Skip):
            tally.skipped[verdict.value] += 1
        elif isinstance(verdict, Decision):
            tally.actions[f"{verdict.action.value}/{verdict.rule.value}"] += 1
            planned.append(
                PlannedAction(
                    run.run_id,
                    user.id,
                    verdict.action,
                    verdict.rule,
                    verdict.partner,
                    verdict.evidence,
                    due=verdict.due,
                    sponsor_ids=_sponsor_ids(verdict, record),
                )
            )
    return planned


async def plan_run(
    run: DailyRun,
    reads: GuestReads,
    ledger: GuestLedger,
    runs: SweepRuns,
    policy: SweepPolicy,
    *,
    expiries: AssignmentExpiries | None = None,
    page_size: int = PAGE_SIZE,
    now: Callable[[], datetime] | None = None,
    sponsor_coverage: bool = False,
) -> tuple[PlanTally, DailyRun]:
    """Decide every guest as of ``run.started`` and store the actions under the run id, page by page.

    The decision instant is the run's start, not the wall clock while paging: every guest of a run is
    judged at the same moment, and a re-plan of the same run decides the same way. With reads that give
    page links, the run row records after each page where to continue (and the tally so far), so a run
    whose planner died resumes from there instead of enumerating the tenant again.
    """
    # Sponsor coverage needs reads that expand sponsors (graph.users.GraphSweepReads); other reads plan without it.
    coverage = sponsor_coverage and isinstance(reads, SponsorStates)
    tally = PlanTally.resumed(run, coverage) if run.cursor else PlanTally(sponsors=SponsorTally() if coverage else None)
    records = await ledger_index(ledger)
    notices = await notice_index(runs, policy)
    ends = await expiries.end_dates() if expiries is not None else {}
    if not run.sign_in_activity_known:
        policy = policy.without_sign_in_activity()
    try:
        run = await _enumerate(run, reads, runs, policy, records, ends, notices, tally, page_size, now)
    except SignInActivityUnavailable:
        if run.pages or run.cursor or not run.sign_in_activity_known:
            raise  # pages were planned with the inactivity rule: the run fails and the next one starts over
        # Nothing planned yet: plan every other rule, and say which one did not run and why.
        log.warning("sweep.sign-in-activity-unavailable", run_id=run.run_id)
        run.warnings[SIGN_IN_ACTIVITY_UNAVAILABLE] = SIGN_IN_ACTIVITY_UNAVAILABLE_MESSAGE
        tally = PlanTally(sponsors=SponsorTally() if coverage else None)
        policy = policy.without_sign_in_activity()
        run = await _enumerate(run, reads, runs, policy, records, ends, notices, tally, page_size, now)
    run.cursor = None
    if tally.sponsors is not None and isinstance(reads, SponsorStates):
        await tally.sponsors.settle(reads.sponsor_states)
        if tally.total and not tally.sponsors.counts:
            run.warnings[SPONSOR_COVERAGE_UNAVAILABLE] = SPONSOR_COVERAGE_UNAVAILABLE_MESSAGE
    log.info(
        "sweep.planned", run_id=run.run_id, pages=run.pages, guests=tally.total, actions=sum(tally.actions.values())
    )
    return tally, run


async def _enumerate(
    run: DailyRun,
    reads: GuestReads,
    runs: SweepRuns,
    policy: SweepPolicy,
    records: dict[str, GuestRecord],
    ends: Mapping[str, datetime],
    notices: dict[str, NoticeRecord],
    tally: PlanTally,
    page_size: int,
    now: Callable[[], datetime] | None,
) -> DailyRun:
    select = GUEST_SELECT if policy.sign_in_activity else GUEST_SELECT_WITHOUT_SIGN_IN
    states = None
    if tally.sponsors is not None:
        select = (*select, SPONSORS)
        if policy.sponsor_gone_anywhere and isinstance(reads, SponsorStates):
            states = reads.sponsor_states
    with progress.step(f"planning {run.run_id}", unit="guest", run_id=run.run_id) as examined:
        examined.done = tally.total  # a resumed run counts the pages planned before
        if isinstance(reads, ResumableGuestReads):
            async for page, next_link in reads.guest_pages(select, page_size, start=run.cursor):
                planned = await plan_page(run, page, policy, records, ends, tally, notices, states)
                if planned:
                    await runs.add_actions(run.run_id, planned)
                if next_link:
                    tally.apply_to(run)
                    run.cursor, run.pages = next_link, run.pages + 1
                    run.updated = now() if now else run.updated
                    run = await runs.save(run)
                examined.advance(len(page))
        else:
            async for page in reads.list_guests(select, page_size=page_size):
                planned = await plan_page(run, page, policy, records, ends, tally, notices, states)
                if planned:
                    await runs.add_actions(run.run_id, planned)
                run.pages += 1
                examined.advance(len(page))
    return run
