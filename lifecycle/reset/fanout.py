"""A reset run's hand-over to the worker: dispatching it on `guest-actions` (the probe first), stopping it on a
missing permission, where its resets stand, and the inline execution of a domain ticket's run.

The run row is written by the dispatch and by workers (a stop), so every write reads the latest row and tries
again when another writer won (``update``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC
from typing import Any

import structlog

from lifecycle import progress
from lifecycle.errors import LifecycleError, StateConflictError
from lifecycle.ledger import work
from lifecycle.models import WorkStatus
from lifecycle.reset.items import (
    KIND,
    PENDING,
    PERMISSION_MISSING,
    RERUN,
    items_of,
    pending_of,
    progress_of,
    reset_claimed,
    send,
)
from lifecycle.runs.audit import audit_run
from lifecycle.runs.model import STOPPED, DailyRun, RunStatus
from lifecycle.services import Services
from lifecycle.sweep.ports import SweepRuns
from lifecycle.sweep.runner import GUEST_ACTIONS_QUEUE

log = structlog.get_logger(__name__)


async def dispatch(services: Services, runs: SweepRuns, run: DailyRun, *, claimed: bool = False) -> DailyRun:
    """Hand the run's guests still queued or failed to the `guest-actions` worker; the rest already happened.

    One message goes out here, the probe (lifecycle.reset.items): its worker sends the others once the
    permission is proven. The run is ``dispatched`` with the number handed over as soon as the probe is on the
    queue; the work items say how far the resets got (``progress``).
    """
    now = services.clock.now()
    run.warnings.pop(PERMISSION_MISSING, None)  # dispatched again: a stop is lifted (the permission was granted)
    run.status, run.updated, run.dispatched_at = RunStatus.DISPATCHING, now, now
    run = await runs.save(run)
    items = await items_of(services, run.run_id)
    pending = pending_of(items)
    queue = services.settings.queue_name(GUEST_ACTIONS_QUEUE)
    dispatch_round = f"{now.astimezone(UTC):%Y%m%dT%H%M%S%f}"
    await send(services, queue, pending[:1], dispatch_round, probe=True)
    if claimed:
        # Claimed before the halt, their messages met it: no redelivery will finish them. The worker takes each
        # claim over once its lease is past, as after a crash.
        running = [i for i in items if i.status is WorkStatus.RUNNING]
        await send(services, queue, running, dispatch_round)
        pending = [*pending, *running]

    def dispatched(latest: DailyRun) -> None:
        if latest.status is RunStatus.HALTED:  # an operator halted it meanwhile: it stays halted
            return
        latest.status, latest.dispatched, latest.updated = RunStatus.DISPATCHED, len(pending), services.clock.now()
        if PERMISSION_MISSING not in latest.warnings:  # a worker may have stopped the run meanwhile
            latest.reason = (
                f"{len(pending)} reset(s) under way on the {GUEST_ACTIONS_QUEUE} queue; follow them with: "
                f"python -m lifecycle status, python -m lifecycle sweep show {latest.run_id}"
                if pending
                else "nothing left to reset"
            )

    run = await update(runs, run.run_id, dispatched)
    await audit_run(services, run, "redemption-reset.dispatched", f"{len(pending)} reset(s) handed to {queue}")
    log.info("reset.dispatched", handed=len(pending), queue=queue)
    return run


async def stop(services: Services, runs: SweepRuns, run_id: str, why: str) -> None:
    """Graph refused a reset for want of the permission: the run's other guests would meet the same 403, so the
    workers leave them queued until the run is dispatched again. Marked once, audited once."""

    def stopped(latest: DailyRun) -> None:
        latest.warnings[PERMISSION_MISSING] = why
        latest.reason = f"{STOPPED}: {why}"  # the worker's message names the permission and the rerun
        latest.updated = services.clock.now()

    current = await runs.get(run_id)
    if current is None or PERMISSION_MISSING in current.warnings:
        return
    run = await update(runs, run_id, stopped)
    await audit_run(services, run, "redemption-reset.stopped", why)
    log.error("reset.stopped", reason=why)


async def settle(services: Services, runs: SweepRuns, run_id: str) -> dict[str, Any]:
    """Once the worker has worked the queue (local runs): the run's reason from its items, audited as today's
    inline runs were; returns the run's summary with its ``progress``."""
    counts = progress_of(await items_of(services, run_id))

    def settled(latest: DailyRun) -> None:
        if PERMISSION_MISSING in latest.warnings or latest.status is not RunStatus.DISPATCHED:
            return
        latest.updated, latest.reason = services.clock.now(), _settled_reason(counts, run_id)

    run = await update(runs, run_id, settled)
    await audit_run(
        services, run, "redemption-reset.executed", f"{counts['reset']} reset(s) done, {counts['failed']} failed"
    )
    return {**run.summary(), "progress": counts}


async def progress_summary(services: Services, run: DailyRun) -> dict[str, Any]:
    """The run's summary and where its planned resets stand (``progress``), read from their work items. Once
    the worker has settled every item the row's "under way" reason is stale: the items' own is shown."""
    counts = progress_of(await items_of(services, run.run_id))
    summary = {**run.summary(), "progress": counts}
    if run.status is RunStatus.DISPATCHED and PERMISSION_MISSING not in run.warnings and not counts["waiting"]:
        summary["reason"] = _settled_reason(counts, run.run_id)
    return summary


def _settled_reason(counts: dict[str, int], run_id: str) -> str:
    failed, waiting = counts["failed"], counts["waiting"]
    if failed:
        shown = f"python -m lifecycle sweep show {run_id}"
        return f"{failed} reset(s) failed (see {shown}); retry them with: {RERUN.format(run_id)}"
    return f"{waiting} reset(s) still waiting for the worker" if waiting else ""


async def update(runs: SweepRuns, run_id: str, change: Callable[[DailyRun], None]) -> DailyRun:
    """Apply ``change`` to the latest run row; workers write it too (a stop), so a lost race reads it again."""
    for _ in range(5):
        latest = await runs.get(run_id)
        if latest is None:
            raise LifecycleError(f"no redemption-reset run {run_id}")
        change(latest)
        try:
            return await runs.save(latest)
        except StateConflictError:
            continue
    raise StateConflictError(f"run {run_id} kept changing under us")


async def execute(services: Services, runs: SweepRuns, run: DailyRun) -> DailyRun:
    """Inline (a domain ticket's run): reset every guest still queued or failed here, stopping at a 403."""
    run.warnings.pop(PERMISSION_MISSING, None)
    run.status, run.updated = RunStatus.DISPATCHING, services.clock.now()
    run = await runs.save(run)
    pending = [i for i in await items_of(services, run.run_id) if i.status in PENDING]
    missing: str | None = None
    with progress.step(f"resetting {run.run_id}", total=len(pending), unit="guest", run_id=run.run_id) as reset:
        for item in pending:
            try:
                claimed = await work.begin(services, item.key, kind=KIND, partner=item.partner)
            except (work.WorkInProgress, StateConflictError):
                claimed = None  # another execution of this run took it
            if claimed is not None:
                outcome = await reset_claimed(services, claimed)
                if outcome.code == PERMISSION_MISSING:
                    missing = outcome.message
                    break  # every other guest would get the same 403: leave them queued for the rerun
            reset.advance()
    counts = progress_of(await items_of(services, run.run_id))

    def executed(latest: DailyRun) -> None:
        now = services.clock.now()
        latest.dispatched, latest.dispatched_at, latest.updated = counts["reset"], now, now
        latest.status = RunStatus.DISPATCHED
        failed = counts["failed"]
        latest.reason = _settled_reason(counts, latest.run_id) if failed else ""
        if missing is not None:
            latest.reason = f"{STOPPED}: {missing}"  # names the permission and the rerun (reset_claimed)

    run = await update(runs, run.run_id, executed)
    await audit_run(
        services, run, "redemption-reset.executed", f"{counts['reset']} reset(s) done, {counts['failed']} failed"
    )
    return run
