"""The worker of a fanned-out reset run: one message on `guest-actions` (kind ``redemption-reset``), one guest.

The message names a run and a guest, nothing more: the worker acts on the run's work item for that guest (what
the plan holds) and only while the run is released (dispatched, in enforce mode). It claims the item under its
ETag, so a duplicate message, a redelivery or a rerun's second message finds it done or claimed and resets
nobody twice; a crash between the reset and the item's settle is caught by the guest's re-read and its reset
marker (lifecycle.reset.guest).

A dispatch sends one message, the probe; its worker sends the rest of the round once a guest was reset
(lifecycle.reset.items). A 403 for want of User.ReadWrite.All fails that guest naming the permission and stops
the run, so the probe's 403 is the run's only one and the other guests stay queued, never sent. Should the
permission go away after the probe, the messages already out that see the stop complete and leave their
guests queued (no 403 and no retry for each). Dispatching the run again (rerun, or the CLI's
``run --run-id``) sends what is queued or failed. A deployment switched off (LIFECYCLE_RESET_ENABLED) after the
run was released resets nobody: the messages leave their guests queued. The mode is the run's, as the sweep's
worker takes it: an operator's ``run --mode enforce`` is enforced whatever LIFECYCLE_RESET_MODE says. A dead
letter replayed by an operator is acted on even while the run is stopped: the operator asked for that one guest.
"""

from __future__ import annotations

import json

import structlog

from lifecycle.errors import StateConflictError
from lifecycle.ledger import work
from lifecycle.ledger.outcomes import Outcome, Verdict
from lifecycle.models import ReceivedMessage, WorkStatus
from lifecycle.plans import Mode
from lifecycle.reset.fanout import stop
from lifecycle.reset.items import (
    HOPS,
    KIND,
    MAX_PROBE_HOPS,
    PERMISSION_MISSING,
    PROBE,
    ROUND,
    items_of,
    pending_of,
    planned_key,
    reset_claimed,
    send,
)
from lifecycle.reset.runs import NOT_ENABLED
from lifecycle.runs.halt import RUN_HALTED
from lifecycle.runs.model import RunStatus
from lifecycle.services import Services
from lifecycle.sweep.ports import SweepRuns
from lifecycle.sweep.runner import GUEST_ACTIONS_QUEUE

log = structlog.get_logger(__name__)

RELEASED = (RunStatus.DISPATCHING, RunStatus.DISPATCHED)


async def handle_reset_message(message: ReceivedMessage, services: Services, runs: SweepRuns) -> Outcome:
    # A refused message is recorded under its own key, never under the item's: a forged message must not
    # settle the work item of a real planned reset.
    refused_key = f"{KIND}-refused:{message.message_id}"
    try:
        document = json.loads(message.body)
        run_id, object_id = str(document["runId"]), str(document["objectId"])
    except (ValueError, KeyError, TypeError) as error:
        return await work.reject(
            services, key=refused_key, kind=KIND, code="malformed-reset", message=str(error), raw=message.body
        )
    structlog.contextvars.bind_contextvars(run_id=run_id, object_id=object_id)
    key = planned_key(run_id, object_id)
    item = await services.work_items.get(key)
    if item is None or item.kind != KIND or item.run_id != run_id:
        return await work.reject(
            services,
            key=refused_key,
            kind=KIND,
            code="not-in-plan",
            message=f"run {run_id} planned no reset of {object_id}: a message only points into a run's plan",
            raw=message.body,
        )
    run = await runs.get(run_id)
    if run is not None and run.status is RunStatus.HALTED:
        # Nothing written, nothing dead-lettered: the guest stays queued (or its claim stays as a crash leaves
        # it) until the resume dispatches the run again.
        return Outcome(key, Verdict.HELD, code=RUN_HALTED, message=f"left queued: {run.reason}")
    if run is None or run.mode is not Mode.ENFORCE or run.status not in RELEASED:
        state = f"{run.mode.value}, {run.status.value}" if run else "unknown"
        return await work.reject(
            services,
            key=refused_key,
            kind=KIND,
            code="run-not-released",
            message=f"run {run_id} is not dispatched in enforce mode ({state}): not resetting",
            raw=message.body,
        )
    if PERMISSION_MISSING in run.warnings and item.status not in (WorkStatus.DONE, WorkStatus.REPLAYED):
        return Outcome(key, Verdict.HELD, code="run-stopped", message=f"left queued: {run.reason}")
    if not services.settings.reset_enabled:
        return Outcome(key, Verdict.HELD, code="reset-not-enabled", message=f"left queued: {NOT_ENABLED}")
    outcome = await _work(services, key, item.partner, item.status)
    if outcome.code == PERMISSION_MISSING:
        await stop(services, runs, run_id, outcome.message)
    elif message.properties.get(PROBE) == "true" and outcome.verdict is not Verdict.RETRY:
        raw_hops = message.properties.get(HOPS) or "0"
        hops = int(raw_hops) if raw_hops.isdigit() else 0
        await _after_probe(services, run_id, key, message.properties.get(ROUND) or message.message_id, hops)
    log.info("reset.worked", verdict=outcome.verdict.value, code=outcome.code)
    return outcome


async def _work(services: Services, key: str, partner: str | None, status: WorkStatus) -> Outcome:
    """Claim the item and reset its guest; a duplicate of finished work changes nothing."""
    if status is WorkStatus.DONE:
        return Outcome(key, Verdict.DUPLICATE, message="reset already carried out")
    try:
        claimed = await work.begin(services, key, kind=KIND, partner=partner)
    except work.WorkInProgress as busy:
        return Outcome(key, Verdict.RETRY, code="in-progress", message=str(busy), retry_after=busy.retry_after)
    except StateConflictError as error:
        return Outcome(key, Verdict.RETRY, code="transient", message=str(error), retry_after=work.BUSY_RECHECK_SECONDS)
    if claimed is None:
        return Outcome(key, Verdict.DUPLICATE, message="reset already carried out")
    return await reset_claimed(services, claimed)


async def _after_probe(services: Services, run_id: str, key: str, dispatch_round: str, hops: int) -> None:
    """The probe settled without a 403. Its guest reset: the permission is proven, the rest of the round goes
    out at once. Its guest left alone (gone, no longer redeemed, refused by the gate) or failed otherwise: the
    next guest never tried becomes the probe; once none is left, or after MAX_PROBE_HOPS, what remains goes out."""
    items = await items_of(services, run_id)
    probe = next((i for i in items if i.key == key), None)
    proven = probe is not None and probe.status is WorkStatus.DONE and "skipped" not in probe.result
    rest = pending_of(items, besides=key)
    untried = [i for i in rest if i.status is WorkStatus.QUEUED]
    queue = services.settings.queue_name(GUEST_ACTIONS_QUEUE)
    if proven or not untried or hops + 1 >= MAX_PROBE_HOPS:
        await send(services, queue, rest, dispatch_round)
        log.info("reset.probe.passed" if proven else "reset.probe.exhausted", sent=len(rest), hops=hops)
    else:
        await send(services, queue, untried[:1], dispatch_round, probe=True, hops=hops + 1)
        log.info("reset.probe.handed-on", to=untried[0].key)
