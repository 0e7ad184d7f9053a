"""The local queue worker keeps its slots busy as the Functions host does: a slow message never holds back the
receive of the next one."""

from __future__ import annotations

import asyncio

from lifecycle.ledger.outcomes import Outcome, Verdict
from lifecycle.ledger.worker import drain
from lifecycle.models import OutboundMessage
from tests.builders import memory_services

QUEUE = "onboarding"


async def test_a_message_sent_while_another_is_in_flight_is_handled_before_that_one_ends():
    """The first message's handler puts a second on the queue and waits until the second has been handled.
    A worker that received again only once its whole batch had ended would wait for ever; this one has a
    free slot, receives the second message and both finish."""
    services = memory_services()
    queue = services.settings.queue_name(QUEUE)
    second_done = asyncio.Event()

    async def handler(message, services):
        if message.body == b"first":
            await services.transport.send(
                queue, [OutboundMessage(body=b"second", message_id="m2", key="k2", kind="ticket")]
            )
            await asyncio.wait_for(second_done.wait(), timeout=5)
        else:
            second_done.set()
        return Outcome(message.key or "", Verdict.DONE)

    await services.transport.send(queue, [OutboundMessage(body=b"first", message_id="m1", key="k1", kind="ticket")])
    report = await asyncio.wait_for(drain(services, QUEUE, handler, concurrency=4, idle_rounds=1), timeout=10)
    assert report.crashed == 0
    assert sorted(o.key for o in report.outcomes) == ["k1", "k2"]


async def test_no_more_messages_than_the_concurrency_are_in_flight_at_once():
    services = memory_services()
    queue = services.settings.queue_name(QUEUE)
    in_flight, peak = 0, 0

    async def handler(message, services):
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.01)
        in_flight -= 1
        return Outcome(message.key or "", Verdict.DONE)

    await services.transport.send(
        queue, [OutboundMessage(body=b"x", message_id=f"m{n}", key=f"k{n}", kind="ticket") for n in range(40)]
    )
    report = await drain(services, QUEUE, handler, concurrency=3, idle_rounds=1)
    assert len(report.outcomes) == 40 and report.crashed == 0
    assert peak == 3
