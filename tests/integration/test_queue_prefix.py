"""A deployment's queue prefix names each queue once: what the product sends lands on the queue its trigger
binds to (the app setting infra derives from the same prefix), on Storage queues in Azurite."""

from __future__ import annotations

import uuid

from azure.storage.queue.aio import QueueServiceClient

from app.bootstrap import bootstrap
from config.settings import load_settings
from lifecycle.jobs import queue_setting, trigger_settings
from lifecycle.onboarding.submission import submit_documents
from tenantsim.stack import LocalStack
from tests.builders import onboard_ticket


async def test_a_ticket_sent_under_a_prefix_waits_on_the_queue_the_trigger_binds_to(local_stack: LocalStack):
    """With LIFECYCLE_QUEUE_PREFIX=<p>, a submitted ticket is on <p>onboarding (the trigger's
    %LIFECYCLE_ONBOARDING_QUEUE%), the worker drains it from there, and no queue carries the prefix twice."""
    prefix = f"p{uuid.uuid4().hex[:6]}-"
    env = local_stack.env | {"LIFECYCLE_QUEUE_PREFIX": prefix, "LIFECYCLE_TABLE_PREFIX": f"p{uuid.uuid4().hex[:8]}"}
    settings = load_settings(env)
    bound = trigger_settings(settings)[queue_setting("onboarding")]
    services = await bootstrap(settings)
    try:
        await submit_documents(services, "onboarding", [onboard_ticket()])
        assert await services.transport.depth(bound) == (1, 0)
    finally:
        await services.close()
    async with QueueServiceClient.from_connection_string(env["LIFECYCLE_QUEUES_CONNECTION_STRING"]) as service:
        names = [q.name async for q in service.list_queues(name_starts_with=prefix)]
    assert bound == f"{prefix}onboarding" and bound in names
    assert not [n for n in names if n.startswith(prefix * 2)]
