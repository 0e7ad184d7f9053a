"""Delayed work: tickets with a future notBefore wait in the job ledger, not in the broker.

Brokers cap how far ahead a message can be scheduled (Storage queues: 7 days) and cannot withdraw a
scheduled message by business key, so a hold lives on its work item (status ``held``, ``releaseAt``).
A timer releases due holds back onto the queue; an offboard ticket cancels a hold before it fires.
"""

from __future__ import annotations

from datetime import datetime

import structlog

from lifecycle.errors import StateConflictError
from lifecycle.ledger.outcomes import Outcome, Verdict
from lifecycle.models import AuditEntry, OutboundMessage, WorkItem, WorkStatus
from lifecycle.services import Services

log = structlog.get_logger(__name__)


async def hold(services: Services, item: WorkItem, raw: bytes, release_at: datetime, email: str) -> Outcome:
    now = services.clock.now()
    item.status, item.updated = WorkStatus.HELD, now
    item.result = {"releaseAt": release_at.isoformat(), "email": email.lower(), "ticket": raw.decode("utf-8")}
    await services.work_items.save(item)
    await services.audit.record(
        AuditEntry(now, "ticket.held", item.key, f"notBefore {release_at.isoformat()}", key=item.key)
    )
    return Outcome(item.key, Verdict.HELD, code="not-before", message=f"held until {release_at.isoformat()}")


async def release_due(services: Services, queue: str = "onboarding") -> list[str]:
    """Send every hold that is due back to ``queue``. Safe to run twice, or concurrently."""
    now = services.clock.now()
    released: list[str] = []
    async for item in services.work_items.query(status=WorkStatus.HELD):
        if datetime.fromisoformat(item.result["releaseAt"]) > now:
            continue
        message = OutboundMessage(
            body=item.result["ticket"].encode("utf-8"),
            message_id=f"{item.key}|release"[:128],
            key=item.key,
            kind="ticket",
        )
        # Send first, then mark: a crash between the two re-sends the same message id next time, which
        # the broker's duplicate detection drops and the handler's work-item key deduplicates anyway.
        await services.transport.send(services.settings.queue_name(queue), [message])
        item.status, item.updated = WorkStatus.QUEUED, now
        try:
            await services.work_items.save(item)
        except StateConflictError:
            continue
        released.append(item.key)
        log.info("hold.released", key=item.key)
    return released


async def cancel_holds_for(services: Services, email: str, because: str) -> list[str]:
    """Withdraw every held ticket for ``email`` (an offboard ticket arrived before they fired)."""
    now = services.clock.now()
    cancelled: list[str] = []
    async for item in services.work_items.query(status=WorkStatus.HELD):
        if item.result.get("email") != email.lower():
            continue
        item.status, item.updated = WorkStatus.CANCELLED, now
        item.result = {**item.result, "cancelledBy": because}
        try:
            await services.work_items.save(item)
        except StateConflictError:
            continue
        await services.audit.record(AuditEntry(now, "ticket.cancelled", item.key, because, key=item.key))
        cancelled.append(item.key)
    return cancelled
