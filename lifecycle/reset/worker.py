"""The worker of a fanned-out reset run: one message on `guest-actions` (kind ``redemption-reset``), one guest.

The message names a run and a guest, nothing more: the worker acts on the run's work item for that guest (what
the plan holds) and only while the run is released (dispatched, in enforce mode). It claims the item under its
ETag, so a duplicate message, a redelivery or a rerun's second message finds it done or claimed and resets
nobody twice; a crash between the reset and the item's settle is caught by the guest's re-read and its reset
marker (lifecycle.reset.guest).

A 403 for want of User.ReadWrite.All fails that guest naming the permission and stops the run; the messages
after it leave their guests queued and are completed (no 403 and no retry for each of them). Dispatching the
run again (rerun, or the CLI's ``run --run-id``) sends what is queued or failed. A dead letter replayed by an
operator is acted on even while the run is stopped: the operator asked for that one guest.
"""

from __future__ import annotations

import json

import structlog

from lifecycle.errors import StateConflictError
from lifecycle.ledger import work
from lifecycle.ledger.outcomes import Outcome, Verdict
from lifecycle.models import ReceivedMessage, WorkStatus
from lifecycle.plans import Mode
from lifecycle.reset.items import KIND, PERMISSION_MISSING, planned_key, reset_claimed
from lifecycle.reset.runs import NOT_ENABLED, stop
from lifecycle.runs.model import RunStatus
from lifecycle.services import Services
from lifecycle.sweep.ports import SweepRuns

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
    if item.status is WorkStatus.DONE:
        return Outcome(key, Verdict.DUPLICATE, message="reset already carried out")
    if PERMISSION_MISSING in run.warnings and item.status is not WorkStatus.REPLAYED:
        return Outcome(key, Verdict.HELD, code="run-stopped", message=f"left queued: {run.reason}")
    if not services.settings.reset_enabled:
        return Outcome(key, Verdict.HELD, code="reset-not-enabled", message=f"left queued: {NOT_ENABLED}")
    try:
        claimed = await work.begin(services, key, kind=KIND, partner=item.partner)
    except work.WorkInProgress as busy:
        return Outcome(key, Verdict.RETRY, code="in-progress", message=str(busy), retry_after=busy.retry_after)
    except StateConflictError as error:
        return Outcome(key, Verdict.RETRY, code="transient", message=str(error), retry_after=work.BUSY_RECHECK_SECONDS)
    if claimed is None:
        return Outcome(key, Verdict.DUPLICATE, message="reset already carried out")
    outcome = await reset_claimed(services, claimed)
    if outcome.code == PERMISSION_MISSING:
        await stop(services, runs, run_id, outcome.message)
    log.info("reset.worked", verdict=outcome.verdict.value, code=outcome.code)
    return outcome
