"""A detection run: claim the day's run id, detect, brake, then reset each planned guest.

Runs live in the sweep's run store (run header, status and brake approval in one row; the same
``runs`` listing). Planned resets are work items of kind ``redemption-reset`` keyed by run and guest,
so a run that stops half-way (crash, throttling, a braked run approved later) resumes with the guests
still queued or failed, and never resets one twice.

Resetting needs settings.reset_enabled (and User.ReadWrite.All granted): without it a run only plans. A 403
from Graph stops the run at the first guest it happens to; that guest is failed naming the permission, the
rest stay queued, and running the same run id again once the permission is granted resets them all.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from config.desired_state import DeletionBrake
from config.settings import DEFAULT_SCHEDULES, schedule_hour
from lifecycle import progress
from lifecycle.errors import GraphError, LifecycleError, StateConflictError, TransientGraphError
from lifecycle.models import AuditEntry, ExternalUserState, WorkItem, WorkStatus
from lifecycle.plans import Mode
from lifecycle.reset.guest import ResetNotConfirmed, ResetPermissionMissing, ResetRefused, reset_guest
from lifecycle.reset.planner import Detection, PlannedReset, detect
from lifecycle.reset.ports import ProviderLookup, ResetPorts
from lifecycle.runs import brake
from lifecycle.runs.claim import claim_run
from lifecycle.runs.model import DailyRun, RunStatus
from lifecycle.services import Services
from lifecycle.sweep.ports import SweepRuns
from lifecycle.sweep.runner import SweepError, build_policy

log = structlog.get_logger(__name__)

KIND = "redemption-reset"
SCHEDULE_HOUR_UTC = schedule_hour(DEFAULT_SCHEDULES["LIFECYCLE_RESET_SCHEDULE"])
STALE_PLANNING = timedelta(hours=2)
PENDING = (WorkStatus.QUEUED, WorkStatus.FAILED)
PERMISSION_MISSING = "permission-missing"
# Runs a domain ticket starts: what they reset was named by a ticketing system, so only managed guests.
TICKET_RUN_PREFIX = "reset-ticket-"
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


def planned_key(run_id: str, object_id: str) -> str:
    return f"reset:{run_id}:{object_id}"


async def run_detection(
    services: Services,
    ports: ResetPorts,
    lookup: ProviderLookup,
    mode: Mode,
    run_id: str | None = None,
    *,
    domains: Sequence[str] | None = None,
    force: bool = False,
) -> DailyRun:
    """``lookup`` is ``ports.lookup``, which the caller has checked is there."""
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
    return await execute(services, runs, run)


async def approve(services: Services, runs: SweepRuns, run_id: str, approver: str) -> DailyRun:
    """An operator releases a braked run: recorded with who and when, then its resets go out."""
    require_enabled(services)
    run = await runs.get(run_id)
    if run is None or not run_id.startswith("reset-"):
        raise ResetRunError(f"no redemption-reset run {run_id}")
    if run.status is not RunStatus.BRAKED:
        raise ResetRunError(f"run {run_id} is {run.status.value}, not braked: nothing to approve")
    run.brake.approved_by, run.brake.approved_at = approver, services.clock.now()
    run.reason = f"approved by {approver}"
    await _audit(services, run, "redemption-reset.approved", f"reset brake released by {approver}")
    return await execute(services, runs, run)


async def execute(services: Services, runs: SweepRuns, run: DailyRun) -> DailyRun:
    """Reset every guest of the run still queued or failed; the rest already happened."""
    run.status, run.updated = RunStatus.DISPATCHING, services.clock.now()
    run = await runs.save(run)
    pending = [i async for i in services.work_items.query(kind=KIND) if i.run_id == run.run_id and i.status in PENDING]
    missing: ResetPermissionMissing | None = None
    with progress.step(f"resetting {run.run_id}", total=len(pending), unit="guest", run_id=run.run_id) as reset:
        for item in pending:
            missing = await _reset_planned(services, item)
            if missing is not None:
                break  # every other guest would get the same 403: leave them queued for the rerun
            reset.advance()
    done = [i async for i in services.work_items.query(kind=KIND) if i.run_id == run.run_id]
    run = await runs.get(run.run_id) or run
    run.dispatched = sum(1 for i in done if i.status is WorkStatus.DONE)
    failed = sum(1 for i in done if i.status is WorkStatus.FAILED)
    run.status, run.dispatched_at, run.updated = RunStatus.DISPATCHED, services.clock.now(), services.clock.now()
    run.reason = f"{failed} reset(s) failed; run again with the same run id to retry them" if failed else ""
    if missing is not None:
        run.reason = f"stopped: {missing}; run again with the same run id to reset the rest"
    run = await runs.save(run)
    await _audit(services, run, "redemption-reset.executed", f"{run.dispatched} reset(s) done, {failed} failed")
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


async def _reset_planned(services: Services, item: WorkItem) -> ResetPermissionMissing | None:
    """Reset one planned guest; returns the permission error when Graph refused for want of a permission."""
    planned = PlannedReset.from_json(item.result["planned"])
    item.status, item.attempts, item.updated = WorkStatus.RUNNING, item.attempts + 1, services.clock.now()
    try:
        item = await services.work_items.save(item)
    except StateConflictError:
        return None  # another execution of this run took it
    try:
        outcome = await _reset_one(services, planned, item.run_id or "")
    except ResetPermissionMissing as error:
        item.status, item.updated = WorkStatus.FAILED, services.clock.now()
        item.last_error = {"type": PERMISSION_MISSING, "message": str(error), **error.detail}
        log.error("reset.permission-missing", object_id=planned.object_id, detail=error.detail)
        await services.work_items.save(item)
        return error
    except (GraphError, StateConflictError, ResetNotConfirmed) as error:
        item.status, item.updated = WorkStatus.FAILED, services.clock.now()
        item.last_error = error.describe() if isinstance(error, GraphError) else {"type": type(error).__name__}
        item.last_error["message"] = str(error)
        log.warning("reset.planned.failed", object_id=planned.object_id, error=str(error))
    else:
        item.status, item.updated, item.last_error = WorkStatus.DONE, services.clock.now(), None
        item.result = {**item.result, **outcome}
    await services.work_items.save(item)
    return None


async def _reset_one(services: Services, planned: PlannedReset, run_id: str) -> dict[str, Any]:
    guest = await services.directory.get_user(planned.object_id)
    if guest is None or not guest.is_guest:
        return {"skipped": "guest-gone"}
    if guest.external_user_state != ExternalUserState.ACCEPTED:
        return {"skipped": "not-redeemed-any-more"}
    try:
        result = await reset_guest(
            services,
            guest,
            email=planned.email,
            origin=run_id,
            evidence=planned.evidence,
            managed_only=run_id.startswith(TICKET_RUN_PREFIX),
        )
    except ResetRefused as refusal:
        log.info("reset.planned.refused", object_id=guest.id, code=refusal.code)
        return {"skipped": refusal.code, "why": str(refusal)}
    return result.to_json()


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
