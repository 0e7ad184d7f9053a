"""A local queue worker: what the Functions host does for a Service Bus trigger, for local stacks."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field

from lifecycle import progress
from lifecycle.ledger.outcomes import Outcome
from lifecycle.ledger.settle import Handler, process
from lifecycle.services import Services


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

    With ``wait_for_delayed_seconds`` it keeps polling, up to that long, while the queue still holds
    messages that are not visible yet (retries scheduled for later), as a local stand-in for the host.
    """
    queue = services.settings.queue_name(logical_queue)
    report = DrainReport()
    idle = 0
    semaphore = asyncio.Semaphore(concurrency)

    # The queue's depth sizes the bar an operator watches; the host's workers (nobody watching) skip the call.
    waiting_at_start = (await services.transport.depth(queue))[0] if progress.watched() else None

    with progress.step(f"working {logical_queue}", total=waiting_at_start, unit="message") as worked:

        async def one(message) -> None:
            async with semaphore:
                try:
                    report.outcomes.append(await process(queue, message, handler, services))
                except Exception:
                    report.crashed += 1
                worked.advance()

        deadline = asyncio.get_running_loop().time() + wait_for_delayed_seconds
        while True:
            batch = await services.transport.receive(queue, max_messages=32, lock_seconds=lock_seconds)
            if not batch:
                idle += 1
                if idle >= idle_rounds:
                    waiting, _ = await services.transport.depth(queue)
                    if not waiting or asyncio.get_running_loop().time() >= deadline:
                        break
                await asyncio.sleep(min(0.2 * idle, 1.0) + include_delayed_up_to)
                continue
            idle = 0
            await asyncio.gather(*(one(m) for m in batch))
    return report
