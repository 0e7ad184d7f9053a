"""The QueueTransport contract against the in-memory fake and Storage queues on Azurite."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from config.settings import load_settings
from lifecycle.adapters.memory import MemoryQueueTransport
from lifecycle.adapters.storage_queue import StorageQueueTransport
from lifecycle.clock import FixedClock
from tests.integration.queue_contract import QueueBench, QueueContract


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
