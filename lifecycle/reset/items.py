"""One planned reset of a run: its work item, the queue message that carries it, and carrying it out.

A run's planned resets are work items of kind ``redemption-reset`` keyed ``reset:<run id>:<object id>``, the
idempotency key of everything that follows. A run fans them out as messages on the `guest-actions` queue (kind
``redemption-reset``, beside the sweep's actions); the worker claims the item under its ETag, resets the guest
through ``reset_guest`` (the safety gate and the guest's reset marker) and settles the item. A domain ticket's
run does the same for each item inline, in its own onboarding message.

A dispatch sends one message first, the probe: the reset needs User.ReadWrite.All, and a tenant without it
would answer 403 to every message sent at once. The probe's worker sends the rest once its guest was reset
(the permission proven); a guest it left alone hands the probe on to the next guest; a 403 stops the run with
one refused call (lifecycle.reset.worker).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import structlog

from lifecycle.errors import GraphError, StateConflictError, TransientGraphError
from lifecycle.ledger import work
from lifecycle.ledger.outcomes import Outcome
from lifecycle.models import ExternalUserState, OutboundMessage, WorkItem, WorkStatus
from lifecycle.reset.guest import ResetNotConfirmed, ResetPermissionMissing, ResetRefused, marker_key, reset_guest
from lifecycle.reset.planner import PlannedReset
from lifecycle.services import Services

log = structlog.get_logger(__name__)

KIND = "redemption-reset"
# Still to do when a run is dispatched again: never claimed, or failed (dead-lettered included).
PENDING = (WorkStatus.QUEUED, WorkStatus.FAILED, WorkStatus.DEAD_LETTERED)
PERMISSION_MISSING = "permission-missing"
# Runs a domain ticket starts: what they reset was named by a ticketing system, so only managed guests.
TICKET_RUN_PREFIX = "reset-ticket-"
MAX_MESSAGE_ID = 128  # Service Bus
SEND_BATCH = 100
# Message properties: the dispatch round a message belongs to, whether it is the round's probe (below), and how
# many guests the probe has been handed on from.
ROUND, PROBE, HOPS = "round", "probe", "probeHops"
# A probe handed on this often without a reset to prove the permission sends the rest anyway: a run whose
# guests were mostly reset meanwhile must not crawl through them one message (and one ledger query) at a time.
MAX_PROBE_HOPS = 5
# What sends a run's queued and failed resets again (the same run id: nobody is reset twice).
RERUN = "python -m lifecycle run redemption-reset --mode enforce --run-id {}"


def planned_key(run_id: str, object_id: str) -> str:
    return f"reset:{run_id}:{object_id}"


def reset_message(item: WorkItem, dispatch_round: str, *, probe: bool = False, hops: int = 0) -> OutboundMessage:
    """The message of one planned reset: its run and guest only (the worker acts on the work item, never on
    what a message says the plan held), keyed by the work item.

    The broker id carries the dispatch round as well as the key: the queues drop a message id seen in the last
    ten minutes (duplicate detection, infra/queues.json), and a run dispatched again after a stop must reach the
    worker. Within one round a re-sent message keeps its id, and the broker drops it.
    """
    planned = item.result.get("planned", {})
    object_id = str(planned.get("objectId") or item.key.rsplit(":", 1)[-1])
    body = json.dumps({"runId": item.run_id, "objectId": object_id}, separators=(",", ":")).encode()
    message_id = f"{item.key}|{dispatch_round}"
    if len(message_id) > MAX_MESSAGE_ID:  # a long ticket run id: never cut a guest's id off
        message_id = f"reset|{dispatch_round}|{hashlib.sha256(item.key.encode()).hexdigest()[:64]}"
    return OutboundMessage(
        body=body,
        message_id=message_id,
        key=item.key,
        kind=KIND,
        properties={
            "runId": item.run_id or "",
            "action": "reset-redemption",
            ROUND: dispatch_round,
            PROBE: "true" if probe else "false",
            HOPS: str(hops),
        },
    )


def pending_of(items: list[WorkItem], *, besides: str = "") -> list[WorkItem]:
    """The items a dispatch hands over, never tried first (the probe is one of them), then those that failed."""
    left = [i for i in items if i.status in PENDING and i.key != besides]
    return sorted(left, key=lambda i: (i.status is not WorkStatus.QUEUED, i.key))


async def send(
    services: Services, queue: str, items: list[WorkItem], dispatch_round: str, *, probe: bool = False, hops: int = 0
) -> None:
    for start in range(0, len(items), SEND_BATCH):
        chunk = items[start : start + SEND_BATCH]
        messages = [reset_message(item, dispatch_round, probe=probe, hops=hops) for item in chunk]
        await services.transport.send(queue, messages)


async def reset_claimed(services: Services, item: WorkItem) -> Outcome:
    """Reset the guest of a claimed (running) item and settle the item: done (reset or skipped with the reason),
    failed (dead-letter; ``PERMISSION_MISSING`` when Graph refused for want of User.ReadWrite.All), or retried
    later (throttling, a reset of the same guest in flight elsewhere)."""
    planned = PlannedReset.from_json(item.result["planned"])
    try:
        done = await _reset_one(services, planned, item.run_id or "")
    except ResetPermissionMissing as error:
        log.error("reset.permission-missing", object_id=planned.object_id, detail=error.detail)
        if not item.run_id:
            return await work.fail_with(services, item, PERMISSION_MISSING, str(error), error.detail)
        # A replay of this one dead letter resets this guest only; the run's rerun resets it and the rest.
        rerun = f"once granted, reset this guest and the rest of the run with: {RERUN.format(item.run_id)}"
        detail = {**error.detail, "next": rerun}
        return await work.fail_with(services, item, PERMISSION_MISSING, f"{error.cause}; {rerun}", detail)
    except ResetNotConfirmed as error:
        log.error("reset.unconfirmed", object_id=planned.object_id, detail=error.detail)
        return await work.fail_with(services, item, "reset-not-confirmed", str(error), error.detail)
    except (TransientGraphError, StateConflictError) as error:
        log.warning("reset.planned.transient", object_id=planned.object_id, error=str(error))
        return await work.retry_later(services, item, error)
    except GraphError as error:
        log.warning("reset.planned.failed", object_id=planned.object_id, error=str(error))
        return await work.fail(services, item, error)
    return await work.finish(services, item, {**item.result, **done})


async def _reset_one(services: Services, planned: PlannedReset, run_id: str) -> dict[str, Any]:
    """Re-read the guest right before acting: a guest gone, or no longer redeemed, is left alone."""
    guest = await services.directory.get_user(planned.object_id)
    if guest is None or not guest.is_guest:
        return {"skipped": "guest-gone"}
    if guest.external_user_state != ExternalUserState.ACCEPTED:
        # An earlier attempt of this item may have reset it and stopped before settling: say so, not "skipped".
        marker = await services.work_items.get(marker_key(guest.id))
        if marker is not None and marker.status is WorkStatus.DONE and marker.result.get("origin") == run_id:
            return {**{k: v for k, v in marker.result.items() if k != "origin"}, "recovered": True}
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


def progress_of(items: list[WorkItem]) -> dict[str, int]:
    """Where a run's planned resets stand, from their work items: reset, left alone on the re-check (skipped),
    failed, and still waiting for the worker (queued, claimed, replayed)."""
    counts = {"planned": len(items), "reset": 0, "skipped": 0, "failed": 0, "waiting": 0}
    for item in items:
        if item.status is WorkStatus.DONE:
            counts["skipped" if "skipped" in item.result else "reset"] += 1
        elif item.status in (WorkStatus.FAILED, WorkStatus.DEAD_LETTERED):
            counts["failed"] += 1
        else:
            counts["waiting"] += 1
    return counts


async def items_of(services: Services, run_id: str) -> list[WorkItem]:
    """The run's planned resets (a query over the job ledger: for runs and operators, not per message)."""
    return [i async for i in services.work_items.query(kind=KIND) if i.run_id == run_id]
