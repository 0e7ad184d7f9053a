"""A sweep run from start to fan-out: claim the run id, plan, brake, dispatch; and operator approval.

A run id names one scheduled occurrence, so a timer that fires twice (or late) finds its run and never
plans twice. Each step is a status change guarded by the run row's ETag, and each step can be resumed:
re-dispatching a run re-sends messages whose work-item keys deduplicate.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import structlog

from config.settings import DEFAULT_SCHEDULES, schedule_hour
from lifecycle import progress
from lifecycle.errors import GraphError, LifecycleError, StateConflictError, TransientGraphError, UntrustedLinkError
from lifecycle.models import OutboundMessage
from lifecycle.plans import Mode
from lifecycle.runs import brake
from lifecycle.runs.audit import audit_run
from lifecycle.runs.claim import INTERRUPTED, claim_run
from lifecycle.runs.halt import HaltableJob, halt_run, resume_run
from lifecycle.runs.model import DailyRun, RunStatus
from lifecycle.services import Services
from lifecycle.sweep.model import PlannedAction
from lifecycle.sweep.planner import plan_run
from lifecycle.sweep.ports import GroupMembership, SignInActivityUnavailable, SweepPorts, SweepRuns
from lifecycle.sweep.rules import SweepPolicy

log = structlog.get_logger(__name__)

GUEST_ACTIONS_QUEUE = "guest-actions"
ACTION_KIND = "guest-action"
# The nightly occurrence fires at 02:00 UTC; a run fired until 02:00 the next day belongs to it.
SCHEDULE_HOUR_UTC = schedule_hour(DEFAULT_SCHEDULES["LIFECYCLE_SWEEP_SCHEDULE"])
# Planning renews the run row after every page; a run silent this long was abandoned by a crashed
# instance and may be taken over (resuming from its last page when the reads give page links).
STALE_PLANNING = timedelta(minutes=15)
SEND_BATCH = 100
# The reason of a run whose planning a transient Graph error stopped; it resumes from its last page.


class SweepError(LifecycleError):
    """An operator asked for something the run's state does not allow."""


SWEEP_JOB = HaltableJob("sweep", "sweep-", SweepError)


def occurrence_run_id(now: datetime, hour: int = SCHEDULE_HOUR_UTC) -> str:
    """The run id of the scheduled occurrence ``now`` belongs to (late and repeated fires share it); ``hour``
    is the hour of the deployed schedule (LIFECYCLE_SWEEP_SCHEDULE), so a moved schedule moves the day's start."""
    day = (now.astimezone(UTC) - timedelta(hours=hour)).date()
    return f"sweep-{day.isoformat()}"


async def build_policy(services: Services, membership: GroupMembership | None) -> SweepPolicy:
    """The rules plus the protected group's members, listed through ``membership``. Refuses to go on when
    the group cannot be read (no ``membership``, or Graph refuses)."""
    group_id = services.desired.exclusions.protected_group_id
    if not group_id:
        return SweepPolicy(services.desired)
    if membership is None:
        raise SweepError(
            f"the protected group {group_id} is configured but this directory cannot list group members; "
            "refusing to plan rather than risk touching a protected guest"
        )
    try:
        members = await membership.group_member_ids(group_id)
    except TransientGraphError:
        raise
    except GraphError as error:
        raise SweepError(f"the protected group {group_id} cannot be read ({error}); refusing to plan") from error
    return SweepPolicy(services.desired, frozenset(members))


async def run_sweep(
    services: Services,
    ports: SweepPorts,
    mode: Mode,
    run_id: str | None = None,
) -> DailyRun:
    runs = ports.runs
    run_id = run_id or occurrence_run_id(services.clock.now(), schedule_hour(services.settings.sweep_schedule))
    structlog.contextvars.bind_contextvars(run_id=run_id)
    run, must_plan = await claim_run(services, runs, run_id, mode, stale=STALE_PLANNING)
    if must_plan:
        run = await _plan(services, ports, run)
        if run.status is RunStatus.FAILED:
            return run
    elif run.status is RunStatus.PLANNING:
        log.info("sweep.already-planning", status=run.status.value)
        return run

    if mode is Mode.PLAN:
        return run
    if run.status is RunStatus.PLANNED:
        run = await _brake_or_dispatch(services, runs, run)
    elif run.status is RunStatus.DISPATCHING:
        run = await dispatch(services, runs, run)
    return run


async def _plan(services: Services, ports: SweepPorts, run: DailyRun) -> DailyRun:
    runs = ports.runs
    try:
        policy = await build_policy(services, ports.membership)
        tally, run = await plan_run(
            run,
            ports.guest_reads,
            services.guests,
            runs,
            policy,
            expiries=ports.expiries,
            now=services.clock.now,
            # The sponsor-gone rule reads the same expansion: switching coverage off does not switch the rule off.
            sponsor_coverage=services.settings.sweep_sponsor_coverage or policy.sponsor_gone_anywhere,
        )
    except SweepError as error:
        run.status, run.reason, run.updated = RunStatus.FAILED, str(error), services.clock.now()
        run = await runs.save(run)
        await audit_run(services, run, "sweep.refused", str(error))
        log.error("sweep.refused", reason=str(error))
        return run
    except UntrustedLinkError as error:
        return await _refused_link(services, runs, run, error)
    except TransientGraphError as error:
        # Left 'planning', the run would turn every fire in the next 15 minutes into a no-op; failed, the
        # next fire (or an operator's run) takes it over at once.
        await _interrupted(services, runs, run.run_id, error)
        raise
    except asyncio.CancelledError:
        # An operator's Ctrl-C (or the host stopping): the same, so running it again resumes from the saved page.
        await _interrupted(services, runs, run.run_id, "stopped before planning finished", by_operator=True)
        raise
    except SignInActivityUnavailable as error:
        # The licence went away after pages were planned with the inactivity rule: start over next time.
        return await _licence_lost(services, runs, run.run_id, error)
    tally.apply_to(run)
    run.status, run.planned, run.updated = RunStatus.PLANNED, services.clock.now(), services.clock.now()
    run = await runs.save(run)
    planned = f"{run.affected} action(s) planned over {run.total_guests} guests"
    await audit_run(services, run, "sweep.planned", "; ".join([planned, *run.warnings.values()]))
    return run


async def _licence_lost(services: Services, runs: SweepRuns, run_id: str, error: SignInActivityUnavailable) -> DailyRun:
    run = await runs.get(run_id)
    assert run is not None
    reason = f"signInActivity became unavailable while planning ({error}); the next run plans without it"
    run.status, run.reason, run.updated = RunStatus.FAILED, reason, services.clock.now()
    run = await runs.save(run)
    await audit_run(services, run, "sweep.refused", reason)
    log.error("sweep.sign-in-activity-lost", reason=reason)
    return run


async def _refused_link(services: Services, runs: SweepRuns, run: DailyRun, error: UntrustedLinkError) -> DailyRun:
    """A page link (the stored cursor, or one Graph handed back) is not under the Graph base URL: nothing was
    sent to it. The run fails with the reason, audited, and forgets the link, so the next fire starts over."""
    latest = await runs.get(run.run_id) or run  # planning may have saved the row since it was claimed
    latest.status, latest.reason, latest.updated = RunStatus.FAILED, str(error), services.clock.now()
    latest.cursor = None
    try:
        latest = await runs.save(latest)
    except StateConflictError:
        return latest  # another instance took the run over meanwhile
    await audit_run(services, latest, "sweep.refused", str(error), code=error.code)
    log.error("sweep.refused", reason=str(error), code=error.code)
    return latest


async def _interrupted(
    services: Services, runs: SweepRuns, run_id: str, error: object, *, by_operator: bool = False
) -> None:
    run = await runs.get(run_id)  # planning saved the row after every page: this is its latest version
    if run is None or run.status is not RunStatus.PLANNING:
        return
    run.status, run.reason, run.updated = RunStatus.FAILED, f"{INTERRUPTED}: {error}", services.clock.now()
    try:
        run = await runs.save(run)
    except StateConflictError:
        return  # another instance took the run over meanwhile
    await audit_run(services, run, "sweep.interrupted", run.reason)
    # The operator who pressed Ctrl-C is told by the command; a warning is for stops nobody asked for.
    (log.info if by_operator else log.warning)("sweep.interrupted", reason=run.reason)


async def _brake_or_dispatch(services: Services, runs: SweepRuns, run: DailyRun) -> DailyRun:
    state = brake.evaluate(run.affected, run.total_guests, services.desired.lifecycle.deletion_brake)
    run.brake, run.mode, run.updated = state, Mode.ENFORCE, services.clock.now()
    if state.tripped:
        run.status = RunStatus.BRAKED
        run.reason = f"deletion brake: {state.reason}; approve with: python -m lifecycle approve {run.run_id}"
        run = await runs.save(run)
        await audit_run(services, run, "sweep.braked", state.reason)
        log.warning("sweep.braked", reason=state.reason)
        return run
    return await dispatch(services, runs, run)


async def approve(services: Services, runs: SweepRuns, run_id: str, approver: str) -> DailyRun:
    """An operator lets a braked run proceed: recorded with who and when, then fanned out."""
    run = await runs.get(run_id)
    if run is None:
        raise SweepError(f"no sweep run {run_id}")
    if run.status is RunStatus.HALTED:
        raise SweepError(f"sweep run {run_id} is halted, not braked: approving does not resume it ({run.reason})")
    if run.status is not RunStatus.BRAKED:
        raise SweepError(f"sweep run {run_id} is {run.status.value}, not braked: nothing to approve")
    run.brake.approved_by, run.brake.approved_at = approver, services.clock.now()
    run.reason = f"approved by {approver}"
    await audit_run(services, run, "sweep.approved", f"deletion brake released by {approver}", approver=approver)
    return await dispatch(services, runs, run)


def action_message(action: PlannedAction, dispatch_round: str | None = None) -> OutboundMessage:
    """The action's message. A resume sends it again under a message id of its own (``dispatch_round``): Service
    Bus drops a message id it saw within its duplicate-detection window (infra/queues.json), and the first send
    may be minutes old. The idempotency key is the action's either way."""
    body = json.dumps(action.to_json(), separators=(",", ":")).encode()
    message_id = action.key[:128] if dispatch_round is None else f"{action.key[:100]}@{dispatch_round}"
    return OutboundMessage(
        body=body,
        message_id=message_id,
        key=action.key,
        kind=ACTION_KIND,
        properties={"runId": action.run_id, "action": action.action.value},
    )


async def dispatch(services: Services, runs: SweepRuns, run: DailyRun, dispatch_round: str | None = None) -> DailyRun:
    """Fan the run's actions out as work items, streaming them from the store a page at a time.

    Every action is sent, done or not: a worker recognises an action already carried out by its work item's
    key. A run halted while it fans out stays halted: the messages sent so far wait for the resume (their
    workers see the halt), the rest are sent by it."""
    run.status, run.updated = RunStatus.DISPATCHING, services.clock.now()
    run = await runs.save(run)
    queue = services.settings.queue_name(GUEST_ACTIONS_QUEUE)
    sent = 0
    with progress.step(f"fanning out {run.run_id}", total=run.affected, unit="action", run_id=run.run_id) as fanned:
        async for page in runs.actions(run.run_id):
            for start in range(0, len(page), SEND_BATCH):
                chunk = page[start : start + SEND_BATCH]
                await services.transport.send(queue, [action_message(a, dispatch_round) for a in chunk])
                sent += len(chunk)
                fanned.advance(len(chunk))
    run.status, run.dispatched, run.dispatched_at = RunStatus.DISPATCHED, sent, services.clock.now()
    run.updated = run.dispatched_at
    try:
        run = await runs.save(run)
    except StateConflictError:
        latest = await runs.get(run.run_id)
        if latest is None or latest.status is not RunStatus.HALTED:
            raise
        log.warning("sweep.dispatch.halted", sent=sent)
        return latest
    await audit_run(services, run, "sweep.dispatched", f"{sent} work item(s) sent to {queue}")
    log.info("sweep.dispatched", sent=sent, queue=queue)
    return run


async def halt(services: Services, runs: SweepRuns, run_id: str, operator: str, why: str) -> DailyRun:
    """An operator stops a dispatched run: its workers write nothing from the next status read on (at most
    RUN_STATUS_TTL later); recorded with who, when and why. Halting a halted run changes nothing."""
    return await halt_run(services, runs, SWEEP_JOB, run_id, operator, why)


async def resume(services: Services, runs: SweepRuns, run_id: str, operator: str) -> DailyRun:
    """An operator lets a halted run go on: recorded, then fanned out again (what is done is recognised by its
    key and not done twice). Resuming a run that is not halted changes nothing."""
    run, changed = await resume_run(services, runs, SWEEP_JOB, run_id, operator)
    if not changed:
        return run
    return await dispatch(services, runs, run, f"{services.clock.now().astimezone(UTC):%Y%m%dT%H%M%S%f}")
