"""A local queue worker: what the Functions host does for a Service Bus trigger, for local stacks."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field

from lifecycle import progress
from lifecycle.ledger.outcomes import Outcome
from lifecycle.ledger.settle import Handler, process
from lifecycle.services import Services

RECEIVE_AT_MOST = 32  # Storage queues hand out at most 32 messages per receive
IN_FLIGHT_POLL_SECONDS = 0.2


@dataclass
class DrainReport:
    outcomes: list[Outcome] = field(default_factory=list)
    crashed: int = 0

    @property
    def by_verdict(self) -> Counter[str]:
        return Counter(o.verdict.value for o in self.outcomes)


async def drain(
    services: Services,
    logical_queue: str,
    handler: Handler,
    *,
    concurrency: int = 8,
    idle_rounds: int = 2,
    lock_seconds: int = 120,
    include_delayed_up_to: float = 0.0,
    wait_for_delayed_seconds: float = 0.0,
) -> DrainReport:
    """Process messages until the queue stays empty for ``idle_rounds`` receives in a row.

    Up to ``concurrency`` messages are handled at once, and a freed slot is refilled without waiting for
    the rest of the messages received with it, as the Functions host keeps ``maxConcurrentCalls`` busy: one
    slow message (a Graph call waiting on the budget) must not hold back the next receive. A receive is
    made once an eighth of the slots are free, so a busy worker does not poll the queue per message. (At a
    quarter, the last messages of a burst went in chunks of 16 to whichever instance polled first, which then
    worked them alone at its share of the budget: eight instances ended a second apart instead of together.)

    With ``wait_for_delayed_seconds`` it keeps polling, up to that long, while the queue still holds
    messages that are not visible yet (retries scheduled for later), as a local stand-in for the host.
    """
    queue = services.settings.queue_name(logical_queue)
    report = DrainReport()
    idle = 0
    in_flight: set[asyncio.Task[None]] = set()
    refill_at = max(1, concurrency // 8)
    # The queue's depth sizes the bar an operator watches; the host's workers (nobody watching) skip the call.
    waiting_at_start = (await services.transport.depth(queue))[0] if progress.watched() else None

    with progress.step(f"working {logical_queue}", total=waiting_at_start, unit="message") as worked:

        async def one(message) -> None:
            try:
                report.outcomes.append(await process(queue, message, handler, services))
            except Exception:
                report.crashed += 1
            worked.advance()

        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_for_delayed_seconds
        try:
            while True:
                room = concurrency - len(in_flight)
                if room < refill_at:
                    await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
                    continue
                batch = await services.transport.receive(
                    queue, max_messages=min(room, RECEIVE_AT_MOST), lock_seconds=lock_seconds
                )
                if not batch:
                    if in_flight:
                        # Work in hand may still put messages on the queue (a retry, a next step): not idle until it
                        # ends, and polled again meanwhile, as the host keeps listening while its calls run.
                        await asyncio.wait(
                            in_flight, timeout=IN_FLIGHT_POLL_SECONDS, return_when=asyncio.FIRST_COMPLETED
                        )
                        continue
                    idle += 1
                    if idle >= idle_rounds:
                        waiting, _ = await services.transport.depth(queue)
                        if not waiting or loop.time() >= deadline:
                            break
                    await asyncio.sleep(min(0.2 * idle, 1.0) + include_delayed_up_to)
                    continue
                idle = 0
                for message in batch:
                    task = asyncio.ensure_future(one(message))
                    in_flight.add(task)
                    task.add_done_callback(in_flight.discard)
        finally:
            if in_flight:
                await asyncio.gather(*in_flight, return_exceptions=True)
    return report
