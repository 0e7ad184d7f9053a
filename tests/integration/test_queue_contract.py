"""The QueueTransport contract against the in-memory fake and Storage queues on Azurite."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from adapters.memory import MemoryQueueTransport
from adapters.storage_queue import StorageQueueTransport
from config.settings import load_settings
from lifecycle.clock import FixedClock
from tenantsim.stack import LocalStack
from tests.integration.queue_contract import QueueBench, QueueContract, outbound


@pytest.fixture(params=["memory", "storage"])
async def bench(request: pytest.FixtureRequest) -> AsyncIterator[QueueBench]:
    queue = f"q{uuid.uuid4().hex[:10]}"
    if request.param == "memory":
        clock = FixedClock(datetime(2026, 3, 1, tzinfo=UTC))

        async def advance_clock(seconds: float) -> None:
            clock.advance(timedelta(seconds=seconds))

        yield QueueBench(MemoryQueueTransport(clock), queue, advance_clock)
        return
    stack = request.getfixturevalue("azurite")
    transport = StorageQueueTransport.from_settings(load_settings(stack.env | {"LIFECYCLE_QUEUE_PREFIX": "it-"}))
    try:
        yield QueueBench(transport, queue, asyncio.sleep)
    finally:
        await transport.close()


class TestQueueTransport(QueueContract):
    pass


async def test_storage_refuses_a_message_over_its_size_limit_before_sending(azurite: LocalStack) -> None:
    """A message too big for a Storage queue is refused with a ValueError naming it, and nothing is sent."""
    transport = StorageQueueTransport.from_settings(load_settings(azurite.env))
    queue = f"q{uuid.uuid4().hex[:10]}"
    try:
        with pytest.raises(ValueError, match="msg-big"):
            await transport.send(queue, [replace(outbound(body=b"x" * 70_000), message_id="msg-big")])
        assert await transport.depth(queue) == (0, 0)
    finally:
        await transport.close()
