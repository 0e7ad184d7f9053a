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


async def test_a_busy_worker_takes_more_messages_once_an_eighth_of_its_slots_are_free():
    """64 slots, eight messages end while 56 still run: the worker takes the six left on the queue without waiting
    for more slots. A worker waiting for a quarter of its slots left the last messages of a burst to whichever
    instance polled first, and that one finished seconds after the others."""
    services = memory_services()
    queue = services.settings.queue_name(QUEUE)
    started: list[str] = []
    finish = {f"k{n}": asyncio.Event() for n in range(70)}
    reached = {64: asyncio.Event(), 70: asyncio.Event()}

    async def handler(message, services):
        started.append(message.key)
        if len(started) in reached:
            reached[len(started)].set()
        await finish[message.key].wait()
        return Outcome(message.key or "", Verdict.DONE)

    await services.transport.send(
        queue, [OutboundMessage(body=b"x", message_id=f"m{n}", key=f"k{n}", kind="ticket") for n in range(70)]
    )
    worker = asyncio.ensure_future(drain(services, QUEUE, handler, concurrency=64, idle_rounds=1))
    await asyncio.wait_for(reached[64].wait(), timeout=5)
    for key in started[:8]:
        finish[key].set()
    await asyncio.wait_for(reached[70].wait(), timeout=5)
    for event in finish.values():
        event.set()
    report = await asyncio.wait_for(worker, timeout=10)
    assert len(report.outcomes) == 70 and report.crashed == 0
