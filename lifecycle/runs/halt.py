"""The on-call stop of a run already under way: halt a dispatched run, resume it after a fix.

The brake stops a run before it is dispatched; once it is, its actions are messages on `guest-actions`. A halt
marks the run row ``halted`` (who, when, why); the workers re-read the run's status at least every
``RUN_STATUS_TTL`` and complete a halted run's messages with ``run-halted``, writing nothing and leaving the
work where a dispatch finds it again. A resume lifts the mark; the job (sweep or reset) then dispatches the run
again, which sends what is not done yet under the same idempotency keys.

Shared by the sweep and the redemption reset, so it only changes the run row; dispatching is the job's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog

from lifecycle.errors import LifecycleError, StateConflictError
from lifecycle.runs.audit import audit_run
from lifecycle.runs.model import DailyRun, HaltState, RunStatus
from lifecycle.runs.ports import RunStore
from lifecycle.services import Services

log = structlog.get_logger(__name__)

# The outcome code of a message of a halted run: completed, nothing written, the work left for the resume.
RUN_HALTED = "run-halted"
# How long a worker may act on a run's status it read earlier: a halt stops every write within this much.
RUN_STATUS_TTL = timedelta(seconds=10)
HALTABLE = (RunStatus.DISPATCHING, RunStatus.DISPATCHED)
RESUME = "python -m lifecycle resume {}"


class HaltError(LifecycleError):
    """The run's state does not allow the halt or resume asked for."""


def halted_reason(run: DailyRun) -> str:
    """The run's reason while halted: who, why, and the command that resumes it."""
    halt = run.halt or HaltState()
    return f"halted by {halt.halted_by}: {halt.reason}; resume with: {RESUME.format(run.run_id)}"


def halt_detail(run: DailyRun) -> str:
    """Who halted the run, when and why (``status``, ``sweep show``)."""
    halt = run.halt or HaltState()
    at = halt.halted_at.isoformat() if halt.halted_at else "an unknown time"
    return f"halted by {halt.halted_by or 'an unknown operator'} at {at}: {halt.reason or run.reason}"


async def mark_halted(
    runs: RunStore, run_id: str, who: str, why: str, now: Callable[[], datetime]
) -> tuple[DailyRun, bool]:
    """Mark a dispatched run halted; returns the run and whether this call halted it (False: it already was).

    Raises HaltError for an unknown run or one not under way (planned, braked, failed: nothing is on the queue)."""

    def change(run: DailyRun) -> bool:
        if run.status is RunStatus.HALTED:
            return False
        if run.status not in HALTABLE:
            raise HaltError(
                f"run {run_id} is {run.status.value}, not dispatched: nothing of it is under way to halt"
                + (" (a braked run waits for its approval anyway)" if run.status is RunStatus.BRAKED else "")
            )
        at = now()
        previous = run.halt or HaltState()
        run.halt = HaltState(halted_by=who, halted_at=at, reason=why)
        if previous.resumed_by:  # keep the last resume on record beside the new halt
            run.halt.resumed_by, run.halt.resumed_at = previous.resumed_by, previous.resumed_at
        run.status, run.updated = RunStatus.HALTED, at
        run.reason = halted_reason(run)
        return True

    return await _update(runs, run_id, change)


async def mark_resumed(runs: RunStore, run_id: str, who: str, now: Callable[[], datetime]) -> tuple[DailyRun, bool]:
    """Lift the halt: the run is ``dispatching`` again, for its job to re-send what is not done. Returns the run
    and whether it was halted (False: not halted, nothing lifted; a dispatched run needs no resume)."""

    def change(run: DailyRun) -> bool:
        if run.status is not RunStatus.HALTED:
            if run.status in HALTABLE:
                return False
            raise HaltError(f"run {run_id} is {run.status.value}, not halted: nothing to resume")
        at = now()
        halt = run.halt or HaltState()
        halt.resumed_by, halt.resumed_at = who, at
        run.halt = halt
        run.status, run.updated = RunStatus.DISPATCHING, at
        run.reason = f"resumed by {who} after a halt ({halt.reason})"
        return True

    return await _update(runs, run_id, change)


async def _update(runs: RunStore, run_id: str, change: Callable[[DailyRun], bool]) -> tuple[DailyRun, bool]:
    """Apply ``change`` to the latest row under its ETag; a dispatch or a worker writes it too, so a lost race
    reads it again."""
    for _ in range(5):
        run = await runs.get(run_id)
        if run is None:
            raise HaltError(f"no run {run_id}")
        if not change(run):
            return run, False
        try:
            return await runs.save(run), True
        except StateConflictError:
            continue
    raise StateConflictError(f"run {run_id} kept changing under us")


@dataclass(frozen=True, slots=True)
class HaltableJob:
    """What differs between the jobs whose runs can be halted: the run ids' prefix, the audit actions' prefix,
    and the job's own error for a refusal."""

    job: str  # "sweep" or "redemption-reset": audit actions are "<job>.halted" and "<job>.resumed"
    prefix: str  # "sweep-" or "reset-"
    error: type[LifecycleError]


async def halt_run(
    services: Services, runs: RunStore, job: HaltableJob, run_id: str, operator: str, why: str
) -> DailyRun:
    """Mark ``run_id`` halted, audited in the operator's name; halting a halted run changes nothing."""
    if not run_id.startswith(job.prefix):
        raise job.error(f"no {job.job} run {run_id}")
    try:
        run, changed = await mark_halted(runs, run_id, operator, why, services.clock.now)
    except HaltError as error:
        raise job.error(str(error)) from None
    if changed:
        await audit_run(services, run, f"{job.job}.halted", f"halted by {operator}: {why}", operator=operator)
        log.warning(f"{job.job}.halted", operator=operator, reason=why)
    return run


async def resume_run(
    services: Services, runs: RunStore, job: HaltableJob, run_id: str, operator: str
) -> tuple[DailyRun, bool]:
    """Lift the halt, audited; True when it was halted (the job then dispatches the run again)."""
    if not run_id.startswith(job.prefix):
        raise job.error(f"no {job.job} run {run_id}")
    try:
        run, changed = await mark_resumed(runs, run_id, operator, services.clock.now)
    except HaltError as error:
        raise job.error(str(error)) from None
    if changed:
        await audit_run(services, run, f"{job.job}.resumed", f"resumed by {operator}", operator=operator)
    return run, changed
