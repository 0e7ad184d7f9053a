"""How many of an instance's messages make their reads before their first write at once.

A burst hands each instance as many messages as the host runs at a time (host.json ``maxConcurrentCalls``,
64). Each reads the tenant and the ledger before it writes: an onboarding ticket its work item, the guest by
address and an invitation checkpoint; a sweep action the plan, the guest and its ledger row. Started all at
once, those reads take turns on the CPU and every message reaches its write at about the same time, late: the
budget's first bucket waits while 64 messages per instance (512 at eight instances on two cores) read. With
``READ_SLOTS`` of them reading at a time, the first ones reach Graph's budget while the others read, and the
budget keeps a queue of messages ready to write.

A slot is given back at the message's first write, or when it ends: the budget's wait is not the admission's.
One instance alone needs its invitations' pace times a ticket's reads (30 a second x about 0.3 s, 9 slots);
``READ_SLOTS`` leaves room for reads twice as slow. Measured with the deployed handlers
(bench.graph_budget_bench, invitations at 1 / 8 processes): 8 slots 0.87 / 0.95 of the budget, 16 slots
0.97 / 0.95, 32 slots 0.97 / 0.94, all 64 at once 0.96 / 0.93.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

READ_SLOTS = 16


class Slot:
    """One message's place among the readers; ``release`` at its first write (again is a no-op)."""

    def __init__(self, give_back: Callable[[], None]) -> None:
        self._give_back: Callable[[], None] | None = give_back

    def release(self) -> None:
        give_back, self._give_back = self._give_back, None
        if give_back is not None:
            give_back()


class Admission:
    def __init__(self, slots: int = READ_SLOTS) -> None:
        if slots < 1:
            raise ValueError("an admission needs one slot at least")
        self.slots = slots
        self._free: asyncio.Semaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[Slot]:
        """A slot for the body's reads, given back at its ``release`` or when the body ends."""
        free = self._semaphore()
        await free.acquire()
        slot = Slot(free.release)
        try:
            yield slot
        finally:
            slot.release()

    def _semaphore(self) -> asyncio.Semaphore:
        # A semaphore belongs to the loop it first waited in; services reused under a new loop (a test, a
        # second asyncio.run) get a fresh one instead of an error.
        loop = asyncio.get_running_loop()
        if self._free is None or self._loop is not loop:
            self._free, self._loop = asyncio.Semaphore(self.slots), loop
        return self._free
