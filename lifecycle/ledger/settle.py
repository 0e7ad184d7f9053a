"""Turning a handler's Outcome into a queue settlement, the same way in Azure and on a local stack."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import structlog

from lifecycle.ledger.operations import mark_dead_lettered
from lifecycle.ledger.outcomes import Outcome, Verdict
from lifecycle.models import OutboundMessage, ReceivedMessage
from lifecycle.services import Services

log = structlog.get_logger(__name__)

# Service Bus queues dead-letter after this many deliveries (infra/queues.json); the local worker does the same.
MAX_DELIVERIES = 5

Handler = Callable[[ReceivedMessage, Services], Awaitable[Outcome]]


class DeadLetterRequested(Exception):
    """Raised from a Functions trigger so the broker redelivers and finally dead-letters the message."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__(f"{outcome.key}: {outcome.code}: {outcome.message}")
        self.outcome = outcome


def retry_copy(queue_kind: str, message: ReceivedMessage, outcome: Outcome, attempt: int) -> OutboundMessage:
    """A copy of ``message`` to send after ``retry_after``.

    It gets a new broker message id (duplicate detection would swallow a reused one) and keeps the business
    key, so the handler still deduplicates on it.
    """
    return OutboundMessage(
        body=message.body,
        message_id=f"{outcome.key}|retry|{attempt}"[:128],
        key=outcome.key,
        kind=message.kind or queue_kind,
        delay_seconds=outcome.retry_after or 0.0,
        properties={**message.properties, "retryOf": message.message_id, "retryCode": outcome.code},
    )


async def process(queue: str, message: ReceivedMessage, handler: Handler, services: Services) -> Outcome:
    """Run ``handler`` and settle ``message`` through the services' transport (local worker path)."""
    structlog.contextvars.bind_contextvars(queue=queue, message_id=message.message_id)
    try:
        outcome = await handler(message, services)
    except Exception as exc:
        log.exception("message.unhandled", error=str(exc), delivery_count=message.delivery_count)
        if message.delivery_count >= MAX_DELIVERIES:
            # What Service Bus does after maxDeliveryCount: park it for an operator instead of looping.
            reason, description = "MaxDeliveryCountExceeded", f"{type(exc).__name__}: {exc}"[:1000]
            await services.transport.dead_letter(queue, message, reason, description)
            await mark_dead_lettered(services, message.key, reason, description)
        else:
            await services.transport.abandon(queue, message)
        raise
    await settle(queue, message, outcome, services)
    return outcome


async def settle(queue: str, message: ReceivedMessage, outcome: Outcome, services: Services) -> None:
    log.info("message.settled", key=outcome.key, verdict=outcome.verdict.value, code=outcome.code)
    if outcome.verdict is Verdict.RETRY:
        attempt = await _attempt_number(outcome, services)
        await services.transport.send(queue, [retry_copy(queue, message, outcome, attempt)])
        await services.transport.complete(queue, message)
    elif outcome.verdict is Verdict.FAILED:
        reason, description = outcome.code or "failed", outcome.message[:1000]
        await services.transport.dead_letter(queue, message, reason, description)
        await mark_dead_lettered(services, outcome.key, reason, description)
    else:
        await services.transport.complete(queue, message)


async def settle_in_function(queue: str, message: ReceivedMessage, outcome: Outcome, services: Services) -> None:
    """The Functions trigger completes by returning; it cannot dead-letter itself, so it raises instead.

    A retry is sent as a scheduled copy first; if that send fails the exception makes the host abandon the
    message, which is redelivered and handled again (the work item key keeps that idempotent).
    """
    log.info("message.settled", key=outcome.key, verdict=outcome.verdict.value, code=outcome.code)
    if outcome.verdict is Verdict.RETRY:
        attempt = await _attempt_number(outcome, services)
        await services.transport.send(queue, [retry_copy(queue, message, outcome, attempt)])
    elif outcome.verdict is Verdict.FAILED:
        raise DeadLetterRequested(outcome)


async def _attempt_number(outcome: Outcome, services: Services) -> int:
    item = await services.work_items.get(outcome.key)
    return item.attempts if item else 0
