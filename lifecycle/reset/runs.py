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

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from config.desired_state import DeletionBrake
from config.settings import DEFAULT_SCHEDULES, schedule_hour
from lifecycle.errors import GraphError, LifecycleError, StateConflictError, TransientGraphError
from lifecycle.models import WorkItem, WorkStatus
from lifecycle.plans import Mode
from lifecycle.reset.fanout import dispatch, execute
from lifecycle.reset.items import KIND, planned_key
from lifecycle.reset.planner import Detection, detect
from lifecycle.reset.ports import ProviderLookup, ResetPorts
from lifecycle.runs import brake
from lifecycle.runs.audit import audit_run
from lifecycle.runs.claim import claim_run
from lifecycle.runs.halt import HaltableJob, halt_run, resume_run
from lifecycle.runs.model import DailyRun, RunStatus
from lifecycle.services import Services
from lifecycle.sweep.ports import SweepRuns
from lifecycle.sweep.runner import SweepError, build_policy

log = structlog.get_logger(__name__)

SCHEDULE_HOUR_UTC = schedule_hour(DEFAULT_SCHEDULES["LIFECYCLE_RESET_SCHEDULE"])
STALE_PLANNING = timedelta(hours=2)
NOT_ENABLED = (
    "redemption reset is not enabled: set LIFECYCLE_RESET_ENABLED=true and grant User.ReadWrite.All "
    "(infra/grant-graph-permissions --redemption-reset), which Graph requires to reset a redemption"
)


class ResetRunError(LifecycleError):
    """An operator asked for something the run's state does not allow."""


RESET_JOB = HaltableJob("redemption-reset", "reset-", ResetRunError)


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
    if mode is Mode.PLAN or run.status in (RunStatus.BRAKED, RunStatus.HALTED):
        return run  # a halted run goes on by its resume only
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
    if run.status is RunStatus.HALTED:
        raise ResetRunError(f"run {run_id} is halted, not braked: approving does not resume it ({run.reason})")
    if run.status is not RunStatus.BRAKED:
        raise ResetRunError(f"run {run_id} is {run.status.value}, not braked: nothing to approve")
    run.brake.approved_by, run.brake.approved_at = approver, services.clock.now()
    run.reason = f"approved by {approver}"
    await audit_run(services, run, "redemption-reset.approved", f"reset brake released by {approver}")
    return await dispatch(services, runs, run)


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
        await audit_run(services, run, "redemption-reset.refused", run.reason)
        return run
    except GraphError as error:
        run.status, run.reason, run.updated = RunStatus.FAILED, f"detection failed: {error}", services.clock.now()
        run = await runs.save(run)
        await audit_run(services, run, "redemption-reset.failed", run.reason)
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
    await audit_run(
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
    await audit_run(services, run, "redemption-reset.braked", run.brake.reason)
    log.warning("reset.braked", reason=run.brake.reason)
    return run


async def halt(services: Services, runs: SweepRuns, run_id: str, operator: str, why: str) -> DailyRun:
    """An operator stops a dispatched reset run: its workers reset nobody from then on and leave their guests
    queued; recorded with who, when and why. Halting a halted run changes nothing."""
    return await halt_run(services, runs, RESET_JOB, run_id, operator, why)


async def resume(services: Services, runs: SweepRuns, run_id: str, operator: str) -> DailyRun:
    """An operator lets a halted reset run go on: recorded, then dispatched again as a rerun is (the guests
    still queued or failed, the probe first; nobody reset twice). Resuming a run not halted changes nothing."""
    run, changed = await resume_run(services, runs, RESET_JOB, run_id, operator)
    if not changed:
        return run
    return await dispatch(services, runs, run, claimed=True)
