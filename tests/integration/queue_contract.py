"""The QueueTransport contract. A test module supplies a ``bench`` fixture and subclasses QueueContract.

Run against the in-memory fake and Storage queues on Azurite (test_queue_contract.py), and against a
real Service Bus namespace when one is configured (test_servicebus_live.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from lifecycle.errors import StateConflictError
from lifecycle.models import OutboundMessage


@dataclass
class QueueBench:
    transport: Any
    queue: str
    advance: Callable[[float], Awaitable[None]]
    # The shortest lock the transport can hold (Service Bus locks are a queue property, 5 s at least).
    lock_seconds: int = 1


def outbound(number: int = 1, body: bytes | None = None, delay_seconds: float = 0.0) -> OutboundMessage:
    return OutboundMessage(
        body=body if body is not None else f'{{"ticket": {number}}}'.encode(),
        message_id=f"msg-{number}-{uuid.uuid4().hex[:8]}",
        key=f"onboarding:ticket-{number}",
        kind="onboarding",
        delay_seconds=delay_seconds,
        properties={"partner": "contoso", "schemaVersion": "1"},
    )


class QueueContract:
    async def test_sent_message_arrives_with_its_identity_and_properties(self, bench: QueueBench) -> None:
        """A received message carries the sent body, message id, key, kind and properties, first delivery 1."""
        sent = outbound()
        await bench.transport.send(bench.queue, [sent])
        (received,) = await bench.transport.receive(bench.queue, max_messages=5)
        assert (received.body, received.message_id, received.key, received.kind) == (
            sent.body,
            sent.message_id,
            sent.key,
            sent.kind,
        )
        assert received.properties == sent.properties
        assert received.delivery_count == 1
        assert received.enqueued is not None

    async def test_binary_body_survives_the_round_trip(self, bench: QueueBench) -> None:
        """A body that is not UTF-8 text arrives byte for byte."""
        body = bytes(range(256))
        await bench.transport.send(bench.queue, [outbound(body=body)])
        (received,) = await bench.transport.receive(bench.queue)
        assert received.body == body

    async def test_completed_message_is_gone(self, bench: QueueBench) -> None:
        """After complete, the message is not delivered again, not even once its lock would have expired."""
        await bench.transport.send(bench.queue, [outbound()])
        (received,) = await bench.transport.receive(bench.queue, lock_seconds=bench.lock_seconds)
        await bench.transport.complete(bench.queue, received)
        await bench.advance(bench.lock_seconds + 1)
        assert await bench.transport.receive(bench.queue) == []
        assert await bench.transport.depth(bench.queue) == (0, 0)

    async def test_abandoned_message_comes_back_with_a_higher_delivery_count(self, bench: QueueBench) -> None:
        """Abandon makes the message available again at once and counts the failed delivery."""
        await bench.transport.send(bench.queue, [outbound()])
        (first,) = await bench.transport.receive(bench.queue)
        await bench.transport.abandon(bench.queue, first)
        (second,) = await bench.transport.receive(bench.queue)
        assert second.message_id == first.message_id
        assert second.delivery_count == 2

    async def test_expired_lock_redelivers_and_the_late_complete_conflicts(self, bench: QueueBench) -> None:
        """When a lock runs out the message is redelivered, and the first holder can no longer complete it."""
        await bench.transport.send(bench.queue, [outbound()])
        (first,) = await bench.transport.receive(bench.queue, lock_seconds=bench.lock_seconds)
        await bench.advance(bench.lock_seconds + 1)
        (second,) = await bench.transport.receive(bench.queue, lock_seconds=60)
        assert second.message_id == first.message_id and second.delivery_count == 2
        with pytest.raises(StateConflictError):
            await bench.transport.complete(bench.queue, first)
        await bench.transport.complete(bench.queue, second)

    async def test_delayed_message_waits_for_its_delay(self, bench: QueueBench) -> None:
        """A message sent with a delay is not delivered before the delay has passed, and is after."""
        await bench.transport.send(bench.queue, [outbound(delay_seconds=2)])
        assert await bench.transport.receive(bench.queue) == []
        await bench.advance(3)
        assert len(await bench.transport.receive(bench.queue)) == 1

    async def test_receive_returns_at_most_max_messages(self, bench: QueueBench) -> None:
        """receive never hands out more than max_messages; the rest stay for the next call."""
        await bench.transport.send(bench.queue, [outbound(n) for n in range(5)])
        first = await bench.transport.receive(bench.queue, max_messages=3)
        rest = await bench.transport.receive(bench.queue, max_messages=10)
        assert len(first) == 3
        assert {m.message_id for m in first}.isdisjoint({m.message_id for m in rest}) and len(rest) == 2

    async def test_dead_letter_moves_the_message_with_its_reason(self, bench: QueueBench) -> None:
        """A dead-lettered message leaves the queue and sits in the dead-letter queue with reason and text."""
        sent = outbound()
        await bench.transport.send(bench.queue, [sent, outbound(2)])
        received = await bench.transport.receive(bench.queue, max_messages=2)
        target = next(m for m in received if m.message_id == sent.message_id)
        await bench.transport.dead_letter(bench.queue, target, "PolicyViolation", "domain blocked")
        assert await bench.transport.depth(bench.queue) == (1, 1)
        (peeked,) = await bench.transport.peek_dead_letters(bench.queue)
        assert (peeked.message_id, peeked.key, peeked.kind, peeked.body) == (
            sent.message_id,
            sent.key,
            sent.kind,
            sent.body,
        )
        assert (peeked.dead_letter_reason, peeked.dead_letter_description) == ("PolicyViolation", "domain blocked")
        assert peeked.properties == sent.properties

    async def test_dead_letters_can_be_received_and_completed(self, bench: QueueBench) -> None:
        """Receiving and completing a dead letter empties the dead-letter queue."""
        await bench.transport.send(bench.queue, [outbound()])
        (received,) = await bench.transport.receive(bench.queue)
        await bench.transport.dead_letter(bench.queue, received, "Poison", "bad json")
        (dead,) = await bench.transport.receive_dead_letters(bench.queue)
        assert dead.message_id == received.message_id and dead.dead_letter_reason == "Poison"
        await bench.transport.complete_dead_letter(bench.queue, dead)
        assert await bench.transport.peek_dead_letters(bench.queue) == []
        assert await bench.transport.depth(bench.queue) == (0, 0)

    async def test_a_released_dead_letter_is_visible_again_at_once(self, bench: QueueBench) -> None:
        """Releasing a received dead letter gives its lock back: the next receive gets it without waiting."""
        await bench.transport.send(bench.queue, [outbound()])
        (received,) = await bench.transport.receive(bench.queue)
        await bench.transport.dead_letter(bench.queue, received, "Poison", "bad json")
        (dead,) = await bench.transport.receive_dead_letters(bench.queue, lock_seconds=60)
        await bench.transport.release_dead_letter(bench.queue, dead)
        (again,) = await bench.transport.receive_dead_letters(bench.queue)
        assert again.message_id == received.message_id

    async def test_unknown_queue_is_empty(self, bench: QueueBench) -> None:
        """A queue nothing was sent to reads as empty with depth (0, 0)."""
        assert await bench.transport.receive(bench.queue) == []
        assert await bench.transport.peek_dead_letters(bench.queue) == []
        assert await bench.transport.depth(bench.queue) == (0, 0)
