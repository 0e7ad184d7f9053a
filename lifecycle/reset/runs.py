"""A detection run: claim the day's run id, detect, brake, then fan the planned resets out.

Runs live in the sweep's run store (run header, status and brake approval in one row; the same
``runs`` listing). Planned resets are work items of kind ``redemption-reset`` keyed by run and guest
(lifecycle.reset.items). An enforced run, or a braked one once approved, hands its planned guests to the
`guest-actions` queue and returns at once: one message first (the probe), the rest once the probe's worker
has proven the permission; the queue's worker (lifecycle.reset.worker) resets each guest. Dispatching the
same run id again sends what is still queued or failed, and a guest is never reset twice (the work item's
state under its ETag, and the guest's reset marker). A domain ticket's run resets its
guests inline instead: it already runs in a queue message of its own, for one partner domain.

Resetting needs settings.reset_enabled (and User.ReadWrite.All granted): without it a run only plans. A 403
from Graph stops the run: the worker that meets it (the probe's, as a rule) fails that guest naming the
permission and marks the run stopped; the other guests stay queued, and running the same run id again once
the permission is granted dispatches them all again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from config.desired_state import DeletionBrake
from config.settings import DEFAULT_SCHEDULES, schedule_hour
from lifecycle import progress
from lifecycle.errors import GraphError, LifecycleError, StateConflictError, TransientGraphError
from lifecycle.ledger import work
from lifecycle.models import AuditEntry, WorkItem, WorkStatus
from lifecycle.plans import Mode
from lifecycle.reset.items import (
    KIND,
    PENDING,
    PERMISSION_MISSING,
    items_of,
    pending_of,
    planned_key,
    progress_of,
    reset_claimed,
    send,
)
from lifecycle.reset.planner import Detection, detect
from lifecycle.reset.ports import ProviderLookup, ResetPorts
from lifecycle.runs import brake
from lifecycle.runs.claim import claim_run
from lifecycle.runs.model import STOPPED, DailyRun, RunStatus
from lifecycle.services import Services
from lifecycle.sweep.ports import SweepRuns
from lifecycle.sweep.runner import GUEST_ACTIONS_QUEUE, SweepError, build_policy

log = structlog.get_logger(__name__)

SCHEDULE_HOUR_UTC = schedule_hour(DEFAULT_SCHEDULES["LIFECYCLE_RESET_SCHEDULE"])
STALE_PLANNING = timedelta(hours=2)
NOT_ENABLED = (
    "redemption reset is not enabled: set LIFECYCLE_RESET_ENABLED=true and grant User.ReadWrite.All "
    "(infra/grant-graph-permissions --redemption-reset), which Graph requires to reset a redemption"
)


class ResetRunError(LifecycleError):
    """An operator asked for something the run's state does not allow."""


def require_enabled(services: Services) -> None:
    if not services.settings.reset_enabled:
        raise ResetRunError(NOT_ENABLED)


def occurrence_run_id(now: datetime, hour: int | None = None) -> str:
    """The daily occurrence ``now`` belongs to: a late or repeated timer fire lands on the same run."""
    day = (now.astimezone(UTC) - timedelta(hours=SCHEDULE_HOUR_UTC if hour is None else hour)).date()
    return f"reset-{day.isoformat()}"


async def run_detection(
    services: Services,
    ports: ResetPorts,
    lookup: ProviderLookup,
    mode: Mode,
    run_id: str | None = None,
    *,
    domains: Sequence[str] | None = None,
    force: bool = False,
    inline: bool = False,
) -> DailyRun:
    """``lookup`` is ``ports.lookup``, which the caller has checked is there. ``inline``: reset the planned
    guests here, one after another, instead of fanning them out (a domain ticket's run)."""
    if mode is Mode.ENFORCE:
        require_enabled(services)
    runs = ports.runs
    run_id = run_id or occurrence_run_id(services.clock.now(), schedule_hour(services.settings.reset_schedule))
    structlog.contextvars.bind_contextvars(run_id=run_id)
    run, must_plan = await claim_run(services, runs, run_id, mode, stale=STALE_PLANNING)
    if must_plan:
        run = await _plan(services, ports, run, lookup, domains, force)
    elif run.status is RunStatus.PLANNING:
        return run
    if run.status is RunStatus.FAILED:
        return run
    if mode is Mode.PLAN or run.status is RunStatus.BRAKED:
        return run
    if run.status is RunStatus.PLANNED:
        limits = DeletionBrake(max_count=services.desired.redemption_reset.brake_count, max_percent=100)
        run.brake, run.mode = brake.evaluate(run.affected, run.total_guests, limits), Mode.ENFORCE
        if run.brake.tripped:
            return await _braked(services, runs, run)
    return await (execute(services, runs, run) if inline else dispatch(services, runs, run))


async def approve(services: Services, runs: SweepRuns, run_id: str, approver: str) -> DailyRun:
    """An operator releases a braked run: recorded with who and when, then its resets are fanned out."""
    require_enabled(services)
    run = await runs.get(run_id)
    if run is None or not run_id.startswith("reset-"):
        raise ResetRunError(f"no redemption-reset run {run_id}")
    if run.status is not RunStatus.BRAKED:
        raise ResetRunError(f"run {run_id} is {run.status.value}, not braked: nothing to approve")
    run.brake.approved_by, run.brake.approved_at = approver, services.clock.now()
    run.reason = f"approved by {approver}"
    await _audit(services, run, "redemption-reset.approved", f"reset brake released by {approver}")
    return await dispatch(services, runs, run)


async def dispatch(services: Services, runs: SweepRuns, run: DailyRun) -> DailyRun:
    """Hand the run's guests still queued or failed to the `guest-actions` worker; the rest already happened.

    One message goes out here, the probe (lifecycle.reset.items): its worker sends the others once the
    permission is proven. The run is ``dispatched`` with the number handed over as soon as the probe is on the
    queue; the work items say how far the resets got (``progress``).
    """
    now = services.clock.now()
    run.warnings.pop(PERMISSION_MISSING, None)  # dispatched again: a stop is lifted (the permission was granted)
    run.status, run.updated, run.dispatched_at = RunStatus.DISPATCHING, now, now
    run = await runs.save(run)
    pending = pending_of(await items_of(services, run.run_id))
    queue = services.settings.queue_name(GUEST_ACTIONS_QUEUE)
    await send(services, queue, pending[:1], f"{now.astimezone(UTC):%Y%m%dT%H%M%S%f}", probe=True)

    def dispatched(latest: DailyRun) -> None:
        latest.status, latest.dispatched, latest.updated = RunStatus.DISPATCHED, len(pending), services.clock.now()
        if PERMISSION_MISSING not in latest.warnings:  # a worker may have stopped the run meanwhile
            latest.reason = (
                f"{len(pending)} reset(s) under way on the {GUEST_ACTIONS_QUEUE} queue; follow them with: "
                f"python -m lifecycle status, python -m lifecycle sweep show {latest.run_id}"
                if pending
                else "nothing left to reset"
            )

    run = await _update(runs, run.run_id, dispatched)
    await _audit(services, run, "redemption-reset.dispatched", f"{len(pending)} reset(s) handed to {queue}")
    log.info("reset.dispatched", handed=len(pending), queue=queue)
    return run


async def stop(services: Services, runs: SweepRuns, run_id: str, why: str) -> None:
    """Graph refused a reset for want of the permission: the run's other guests would meet the same 403, so the
    workers leave them queued until the run is dispatched again. Marked once, audited once."""

    def stopped(latest: DailyRun) -> None:
        latest.warnings[PERMISSION_MISSING] = why
        latest.reason = f"{STOPPED}: {why}; run again with the same run id to reset the rest"
        latest.updated = services.clock.now()

    current = await runs.get(run_id)
    if current is None or PERMISSION_MISSING in current.warnings:
        return
    run = await _update(runs, run_id, stopped)
    await _audit(services, run, "redemption-reset.stopped", why)
    log.error("reset.stopped", reason=why)


async def settle(services: Services, runs: SweepRuns, run_id: str) -> dict[str, Any]:
    """Once the worker has worked the queue (local runs): the run's reason from its items, audited as today's
    inline runs were; returns the run's summary with its ``progress``."""
    counts = progress_of(await items_of(services, run_id))

    def settled(latest: DailyRun) -> None:
        if PERMISSION_MISSING in latest.warnings or latest.status is not RunStatus.DISPATCHED:
            return
        latest.updated = services.clock.now()
        failed, waiting = counts["failed"], counts["waiting"]
        latest.reason = (
            f"{failed} reset(s) failed; run again with the same run id to retry them"
            if failed
            else f"{waiting} reset(s) still waiting for the worker"
            if waiting
            else ""
        )

    run = await _update(runs, run_id, settled)
    await _audit(
        services, run, "redemption-reset.executed", f"{counts['reset']} reset(s) done, {counts['failed']} failed"
    )
    return {**run.summary(), "progress": counts}


async def progress_summary(services: Services, run: DailyRun) -> dict[str, Any]:
    """The run's summary and where its planned resets stand (``progress``), read from their work items."""
    return {**run.summary(), "progress": progress_of(await items_of(services, run.run_id))}


async def _update(runs: SweepRuns, run_id: str, change: Callable[[DailyRun], None]) -> DailyRun:
    """Apply ``change`` to the latest run row; workers write it too (a stop), so a lost race reads it again."""
    for _ in range(5):
        latest = await runs.get(run_id)
        if latest is None:
            raise ResetRunError(f"no redemption-reset run {run_id}")
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
        latest.reason = f"{failed} reset(s) failed; run again with the same run id to retry them" if failed else ""
        if missing is not None:
            latest.reason = f"{STOPPED}: {missing}; run again with the same run id to reset the rest"

    run = await _update(runs, run.run_id, executed)
    await _audit(
        services, run, "redemption-reset.executed", f"{counts['reset']} reset(s) done, {counts['failed']} failed"
    )
    return run


async def _plan(
    services: Services,
    ports: ResetPorts,
    run: DailyRun,
    lookup: ProviderLookup,
    domains: Sequence[str] | None,
    force: bool,
) -> DailyRun:
    runs = ports.runs
    try:
        protected = (await build_policy(services, ports.membership)).protected_members
        detection = await detect(
            services.directory, lookup, services.desired, domains, force=force, protected=protected
        )
    except SweepError as error:  # the protected group cannot be read: plan nothing rather than risk a member
        run.status, run.reason, run.updated = RunStatus.FAILED, str(error), services.clock.now()
        run = await runs.save(run)
        await _audit(services, run, "redemption-reset.refused", run.reason)
        return run
    except GraphError as error:
        run.status, run.reason, run.updated = RunStatus.FAILED, f"detection failed: {error}", services.clock.now()
        run = await runs.save(run)
        await _audit(services, run, "redemption-reset.failed", run.reason)
        if isinstance(error, TransientGraphError):
            raise
        return run
    await _queue(services, run.run_id, detection)
    run.total_guests, run.actions, run.skipped = detection.examined, detection.counts(), dict(detection.skipped)
    run.status, run.planned, run.updated = RunStatus.PLANNED, services.clock.now(), services.clock.now()
    run.reason = "; ".join(f"{domain} {why}" for domain, why in sorted(detection.blocked.items()))
    for domain, why in sorted(detection.blocked.items()):
        log.warning("reset.provider-tenant-blocked", domain=domain, detail=why)
    run = await runs.save(run)
    await _audit(
        services,
        run,
        "redemption-reset.planned",
        f"{run.affected} reset(s) planned over {run.total_guests} partner guests",
        plan=_brief_plan(detection),
        providers={d: e.to_json() for d, e in detection.expected.items()},
        blocked=detection.blocked,
    )
    return run


def _brief_plan(detection: Detection, limit: int = 100) -> dict[str, Any]:
    """The plan for the audit row: the first ``limit`` actions (the work items hold all of them)."""
    plan = detection.to_plan().as_dict()
    plan["listed"], plan["actions"] = min(limit, len(plan["actions"])), plan["actions"][:limit]
    return plan


async def _queue(services: Services, run_id: str, detection: Detection) -> None:
    now = services.clock.now()
    for reset in detection.resets:
        item = WorkItem(planned_key(run_id, reset.object_id), KIND, WorkStatus.QUEUED, run_id=run_id, created=now)
        item.partner, item.updated, item.result = reset.partner, now, {"planned": reset.to_json()}
        try:
            await services.work_items.create(item)
        except StateConflictError:
            continue  # planned by an earlier attempt of this run


async def _braked(services: Services, runs: SweepRuns, run: DailyRun) -> DailyRun:
    run.status, run.updated = RunStatus.BRAKED, services.clock.now()
    run.reason = f"reset brake: {run.brake.reason}; approve with: python -m lifecycle approve {run.run_id}"
    run = await runs.save(run)
    await _audit(services, run, "redemption-reset.braked", run.brake.reason)
    log.warning("reset.braked", reason=run.brake.reason)
    return run


async def _audit(services: Services, run: DailyRun, action: str, reason: str, **details: Any) -> None:
    await services.audit.record(
        AuditEntry(
            at=services.clock.now(),
            action=action,
            target=run.run_id,
            reason=reason,
            run_id=run.run_id,
            details={**run.summary(), **details},
        )
    )
