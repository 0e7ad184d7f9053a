"""Planning: enumerate guests page by page, decide each one, store the page's actions, keep counts.

Memory stays flat: a page of guests (and their ledger rows) is the most the planner holds at once.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import structlog

from lifecycle.models import DirectoryUser, GuestRecord
from lifecycle.ports import Directory, GuestLedger
from lifecycle.sweep.model import PlannedAction, Skip, SweepRun
from lifecycle.sweep.ports import AssignmentExpiries, SweepRuns
from lifecycle.sweep.rules import Decision, SweepPolicy, decide

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
# Graph caps pages with signInActivity selected at 500 (older documentation: 120); nextLink does the rest.
PAGE_SIZE = 500
LEDGER_CONCURRENCY = 32


@dataclass
class PlanTally:
    total: int = 0
    actions: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)

    def apply_to(self, run: SweepRun) -> None:
        run.total_guests = self.total
        run.actions = dict(self.actions)
        run.skipped = dict(self.skipped)


async def ledger_rows(ledger: GuestLedger, object_ids: Sequence[str], concurrency: int) -> dict[str, GuestRecord]:
    semaphore = asyncio.Semaphore(concurrency)

    async def one(object_id: str) -> GuestRecord | None:
        async with semaphore:
            return await ledger.get(object_id)

    found = await asyncio.gather(*(one(i) for i in object_ids))
    return {record.object_id: record for record in found if record is not None}


async def plan_page(
    run: SweepRun,
    page: Sequence[DirectoryUser],
    policy: SweepPolicy,
    ledger: GuestLedger,
    expiries: AssignmentExpiries | None,
    tally: PlanTally,
    *,
    ledger_concurrency: int = LEDGER_CONCURRENCY,
) -> list[PlannedAction]:
    ids = [user.id for user in page]
    records = await ledger_rows(ledger, ids, ledger_concurrency)
    ends = await expiries.assignment_end_dates(ids) if expiries is not None else {}
    now = run.started
    planned: list[PlannedAction] = []
    for user in page:
        tally.total += 1
        verdict = decide(user, records.get(user.id), policy, now, ends.get(user.id))
        if isinstance(verdict, Skip):
            tally.skipped[verdict.value] += 1
        elif isinstance(verdict, Decision):
            tally.actions[f"{verdict.action.value}/{verdict.rule.value}"] += 1
            planned.append(
                PlannedAction(run.run_id, user.id, verdict.action, verdict.rule, verdict.partner, verdict.evidence)
            )
    return planned


async def plan_run(
    run: SweepRun,
    directory: Directory,
    ledger: GuestLedger,
    runs: SweepRuns,
    policy: SweepPolicy,
    *,
    expiries: AssignmentExpiries | None = None,
    page_size: int = PAGE_SIZE,
    ledger_concurrency: int = LEDGER_CONCURRENCY,
) -> PlanTally:
    """Decide every guest as of ``run.started`` and store the actions under the run id, page by page.

    The decision instant is the run's start, not the wall clock while paging: every guest of a run is
    judged at the same moment, and a re-plan of the same run decides the same way.
    """
    tally = PlanTally()
    pages = 0
    async for page in directory.list_guests(GUEST_SELECT, page_size=page_size):
        planned = await plan_page(run, page, policy, ledger, expiries, tally, ledger_concurrency=ledger_concurrency)
        if planned:
            await runs.add_actions(run.run_id, planned)
        pages += 1
    log.info("sweep.planned", run_id=run.run_id, pages=pages, guests=tally.total, actions=sum(tally.actions.values()))
    return tally
