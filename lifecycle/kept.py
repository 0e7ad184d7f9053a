"""Answers kept for a while, and asked for once while they are being read.

A read that gives every caller of a process the same answer for minutes (a partner's access package, the
sponsor a bulk request names on each of its tickets) is kept for ``ttl`` seconds, and callers that ask while
it is under way wait for that read instead of starting their own: a worker's first 64 messages would
otherwise make 64 identical reads before any answer is kept. Only answers ``keep`` accepts are kept; a
failed or cancelled read is not. At most ``limit`` answers are kept: past it, the aged ones are dropped, and
all of them if none has aged.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class KeptAnswers(Generic[K, V]):
    def __init__(
        self,
        ttl: float,
        keep: Callable[[V], bool] = lambda answer: answer is not None,
        clock: Callable[[], float] = time.monotonic,
        limit: int = 256,
    ) -> None:
        self._ttl, self._keep, self._clock, self._limit = ttl, keep, clock, limit
        self._kept: dict[K, tuple[float, V]] = {}
        self._reading: dict[K, asyncio.Future[V]] = {}

    async def get(self, key: K, read: Callable[[], Awaitable[V]]) -> V:
        kept = self._kept.get(key)
        if kept is not None and kept[0] > self._clock():
            return kept[1]
        running = self._reading.get(key)
        if running is None or running.get_loop() is not asyncio.get_running_loop():
            running = asyncio.ensure_future(read())
            self._reading[key] = running
            running.add_done_callback(lambda done: self._settled(key, done))
        # Shielded: one waiting caller cancelled (its message's lock lost) does not cancel the others' answer.
        return await asyncio.shield(running)

    def _settled(self, key: K, done: asyncio.Future[V]) -> None:
        if self._reading.get(key) is done:
            del self._reading[key]
        if not done.cancelled() and done.exception() is None and self._keep(answer := done.result()):
            now = self._clock()
            if len(self._kept) >= self._limit:
                self._kept = {k: v for k, v in self._kept.items() if v[0] > now}
                if len(self._kept) >= self._limit:
                    self._kept.clear()
            self._kept[key] = (now + self._ttl, answer)
