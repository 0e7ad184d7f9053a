"""The QueueTransport contract against a real Service Bus namespace.

Set SERVICEBUS_LIVE_CONNECTION to a namespace connection string with Manage rights; each run creates
a throwaway queue and deletes it afterwards. There is no local Service Bus here (its emulator needs
Docker), so without that variable the suite is skipped, with that reason shown by ``-ra``.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from azure.servicebus.aio.management import ServiceBusAdministrationClient

from adapters.servicebus import ServiceBusTransport
from config.settings import load_settings
from tests.integration.queue_contract import QueueBench, QueueContract

CONNECTION = os.environ.get("SERVICEBUS_LIVE_CONNECTION")
LOCK_SECONDS = 5  # the shortest LockDuration Service Bus accepts

pytestmark = [
    pytest.mark.servicebus_live,
    pytest.mark.skipif(
        not CONNECTION,
        reason="SERVICEBUS_LIVE_CONNECTION is not set: no Service Bus namespace to test against "
        "(the emulator needs Docker, which is not available here)",
    ),
]


@pytest.fixture
async def bench() -> AsyncIterator[QueueBench]:
    assert CONNECTION is not None
    queue = f"lifecycle-contract-{uuid.uuid4().hex[:10]}"
    async with ServiceBusAdministrationClient.from_connection_string(CONNECTION) as admin:
        await admin.create_queue(queue, lock_duration=timedelta(seconds=LOCK_SECONDS), max_delivery_count=10)
        settings = load_settings(
            {
                "LIFECYCLE_TENANT_ID": "3f2d6a1e-8c4b-4e7a-9b1d-2c5e7f9a0b13",
                "LIFECYCLE_TABLES_CONNECTION_STRING": "UseDevelopmentStorage=true",
                "ServiceBusConnection": CONNECTION,
            }
        )
        transport = ServiceBusTransport.from_settings(settings)
        try:
            yield QueueBench(transport, queue, asyncio.sleep, lock_seconds=LOCK_SECONDS)
        finally:
            await transport.close()
            await admin.delete_queue(queue)


class TestServiceBusTransport(QueueContract):
    pass
