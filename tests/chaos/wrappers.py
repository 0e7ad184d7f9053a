"""Fault wrappers around the product's ports, put in through bootstrap's door (no product code changes).

* ``KillingGraph``: after a Graph write returns, SIGKILL this process with some probability, or for certain
  at the process's Nth write (the crash between a Graph call and the state write), or stall past the queue
  lock (the lost lock); after an
  invitation, a probe read shows whether the tenant's replication delay hid the new guest.
* ``ConflictCounting``: counts the ETag conflicts (412) the product's state writes run into.
* ``LockWatching``: counts settlements refused because the message's lock was lost.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
from typing import Any

from lifecycle.errors import StateConflictError
from tests.chaos.events import EventLog

GRAPH_WRITES = frozenset(
    {"invite_guest", "set_account_enabled", "delete_user", "revoke_sessions", "update_user", "request_assignment"}
)


class _Passthrough:
    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class WriteCount:
    """The Graph writes one worker process has made, shared by the wrappers around its ports."""

    def __init__(self) -> None:
        self.value = 0


class KillingGraph(_Passthrough):
    def __init__(
        self,
        inner: Any,
        events: EventLog,
        rng: random.Random,
        *,
        kill_rate: float,
        stall_rate: float,
        stall_seconds: float,
        probe_rate: float = 0.0,
        kill_at: int = 0,
        stall_at: int = 0,
        writes: WriteCount | None = None,
    ) -> None:
        super().__init__(inner)
        self._events, self._rng = events, rng
        self._kill_rate, self._stall_rate, self._stall_seconds = kill_rate, stall_rate, stall_seconds
        self._probe_rate = probe_rate
        self._kill_at, self._stall_at = kill_at, stall_at
        self._writes = writes if writes is not None else WriteCount()

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._inner, name)
        if name not in GRAPH_WRITES:
            return target

        async def write(*args: Any, **kwargs: Any) -> Any:
            result = await target(*args, **kwargs)
            if name == "invite_guest" and self._rng.random() < self._probe_rate:
                await self._probe(result.user_id)
            self._writes.value += 1
            draw = self._rng.random()
            if draw < self._kill_rate or self._writes.value == self._kill_at:
                self._events.record("kill-after-graph-write", call=name)
                os.kill(os.getpid(), signal.SIGKILL)
            elif draw < self._kill_rate + self._stall_rate or self._writes.value == self._stall_at:
                self._events.record("stall-past-lock", call=name, seconds=self._stall_seconds)
                await asyncio.sleep(self._stall_seconds)
            return result

        return write

    async def _probe(self, user_id: str) -> None:
        try:
            found = await self._inner.get_user(user_id)
        except Exception:  # a fault on the probe says nothing about replication
            return
        if found is None:
            self._events.record("replication-delay-observed", user=user_id)


class ConflictCounting(_Passthrough):
    def __init__(self, inner: Any, events: EventLog, store: str) -> None:
        super().__init__(inner)
        self._events, self._store = events, store

    async def save(self, value: Any) -> Any:
        try:
            return await self._inner.save(value)
        except StateConflictError:
            self._events.record("etag-conflict-seen", store=self._store)
            raise


class LockWatching(_Passthrough):
    def __init__(self, inner: Any, events: EventLog) -> None:
        super().__init__(inner)
        self._events = events

    async def complete(self, queue: str, message: Any) -> None:
        try:
            await self._inner.complete(queue, message)
        except StateConflictError:
            self._events.record("lock-lost", queue=queue, key=message.key)
            raise

    async def abandon(self, queue: str, message: Any) -> None:
        try:
            await self._inner.abandon(queue, message)
        except StateConflictError:
            self._events.record("lock-lost", queue=queue, key=message.key)
            raise


class KillingReplay(_Passthrough):
    """A transport whose replay dies right after sending the copy, before removing the dead letter."""

    def __init__(self, inner: Any, events: EventLog, after: int) -> None:
        super().__init__(inner)
        self._events, self._left, self._sent = events, after, False

    async def send(self, queue: str, messages: Any) -> None:
        await self._inner.send(queue, messages)
        self._sent = True

    async def complete_dead_letter(self, queue: str, message: Any) -> None:
        sent, self._sent = self._sent, False
        self._left -= int(sent)
        if sent and self._left <= 0:
            self._events.record("replay-killed-after-send", queue=queue, key=message.key)
            os.kill(os.getpid(), signal.SIGKILL)
        await self._inner.complete_dead_letter(queue, message)
