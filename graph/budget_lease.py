"""The shared lease: how the instances spending one Graph bucket split it between them.

Every process keeps one heartbeat row per (tenant, app, budget class) it spends, in a BudgetLedger
(graph.budget_ledger; Table Storage in Azure), rewritten every ``heartbeat_seconds``. At each heartbeat it
reads the scope's rows and counts the live ones: a row is live while its version keeps changing within
``lease_seconds`` *as this process observes it*, so no two machines' clocks are ever compared. A process
then takes a 1/n share of the bucket (ClassBudget.share). A row first seen counts as live (the safe side),
and a row unchanged for three lease periods is deleted as left behind by a crashed process.

The 1/n share is what a process gets while every instance has work. Each row also says how many units
waited for their turn at once since the last heartbeat (``waiting``): a process with requests waiting takes
the parts of the idle instances (nothing booked since their last heartbeat), shared with the others that have
requests waiting (``divide``). Functions hands queue messages to instances unevenly, and an instance still
holding a queue used to pace it at 1/n while the instances that had run out of messages left theirs unspent.
Because an idle row has to cover a whole heartbeat, a process whose held requests are all gone beats at once
and again after a short quiet, and a process with requests waiting beats twice as often, so a part left idle
at the end of a queue is taken within about a heartbeat rather than two or three.

A process joining a bucket that others already spend starts at their level instead of bursting. One that comes
back to work after a heartbeat that showed it idle while others spent starts from the level it left its part at
(they may have spent its refill, never its burst: a process that has booked nothing since it joined keeps its
first burst, as instances started together before a queue fills do). Any
ledger failure (storage down, a conflict, a timeout) is logged and never stops work: after a lease period
without a successful heartbeat the share goes back to 1.0 and pacing relies on Graph's headers alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog

from graph.budget import BudgetKey, ClassBudget, GraphBudget
from graph.budget_ledger import BudgetLedger, LedgerRow

log = structlog.get_logger(__name__)

HEARTBEAT_SECONDS = 2.0
LEASE_HEARTBEATS = 3
IDLE_SECONDS = 60.0  # a scope this process has not spent for this long is left (its row deleted)
JOIN_TIMEOUT_SECONDS = 2.0
QUIET_MIN_SECONDS = 0.25  # the shortest wait after a drain before a heartbeat may say this instance is idle


def default_member() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def scope_name(key: BudgetKey) -> str:
    tenant, app, budget_class = key
    return f"{tenant}|{app}|{budget_class.value}"


@dataclass(slots=True)
class _Seen:
    version: str
    changed_at: float
    first_seen: float


@dataclass(slots=True)
class _Scope:
    key: BudgetKey
    budget: ClassBudget
    joined_at: float
    last_ok: float = float("-inf")
    last_spent_at: float = 0.0
    due: float = 0.0
    failing: bool = False
    instances: int = 0  # live instances counted at the last heartbeat, this one included
    hungry: bool = False  # requests waited here while other instances were live, at the last heartbeat
    recheck: bool = False  # the queue just drained: the heartbeat after the next comes soon
    seen: dict[str, _Seen] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return scope_name(self.key)


class BudgetLease:
    def __init__(
        self,
        ledger: BudgetLedger,
        *,
        member: str | None = None,
        heartbeat_seconds: float = HEARTBEAT_SECONDS,
        lease_seconds: float | None = None,
        idle_seconds: float = IDLE_SECONDS,
        join_timeout: float = JOIN_TIMEOUT_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ledger = ledger
        self.member = member or default_member()
        self.heartbeat_seconds = heartbeat_seconds
        self.lease_seconds = lease_seconds if lease_seconds is not None else LEASE_HEARTBEATS * heartbeat_seconds
        self.idle_seconds = idle_seconds
        self.join_timeout = join_timeout
        self.clock = clock
        self._scopes: dict[BudgetKey, _Scope] = {}
        self._budget: GraphBudget | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._join_lock: asyncio.Lock | None = None
        self._woken: asyncio.Event | None = None

    def attach(self, budget: GraphBudget) -> BudgetLease:
        """Make this lease set the shares of ``budget``'s classes (replacing any lease attached before)."""
        budget.coordinator = self
        self._budget = budget
        return self

    def knows(self, key: BudgetKey) -> bool:
        # The ledger's async clients belong to one event loop: on another loop, pace from headers alone.
        return key in self._scopes or (self._loop is not None and self._loop is not asyncio.get_running_loop())

    def shares(self) -> dict[BudgetKey, float]:
        return {key: scope.budget.share for key, scope in self._scopes.items()}

    async def join(self, key: BudgetKey, budget: ClassBudget) -> None:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
            self._join_lock = asyncio.Lock()
            self._woken = asyncio.Event()
        assert self._join_lock is not None
        async with self._join_lock:
            if key in self._scopes:
                return
            now = self.clock()
            scope = _Scope(key, budget, joined_at=now, last_spent_at=now)
            try:
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for drops a cancellation that meets the answer.
                async with asyncio.timeout(self.join_timeout):
                    others_spending = await self._exchange(scope)
            except TimeoutError:
                self._failed(scope, now, TimeoutError(f"no answer within {self.join_timeout}s"))
                others_spending = False
            if others_spending:
                budget.hold_at_target()
            # Instances started together learn of each other at their next heartbeat: make it soon.
            scope.due = now + self.heartbeat_seconds / 4
            budget.on_rejoin = lambda: self._beat_now(scope)
            budget.on_drain = lambda: self._drained(scope)
            self._scopes[key] = scope
            log.info("graph.budget.lease.joined", scope=scope.name, share=budget.share, member=self.member)
            if self._task is None or self._task.done():
                self._task = asyncio.get_running_loop().create_task(self._run())

    async def refresh(self) -> None:
        """A heartbeat for every scope now (after a barrier where all instances have joined)."""
        for scope in list(self._scopes.values()):
            await self._exchange(scope)

    async def close(self) -> None:
        """Stop the heartbeats and delete this process's rows, so the others take its share at once."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise  # close() itself is being cancelled, not only the loop it stopped
            self._task = None
        for scope in self._scopes.values():
            scope.budget.share, scope.budget.on_rejoin, scope.budget.on_drain = 1.0, None, None
            with contextlib.suppress(Exception):
                async with asyncio.timeout(self.join_timeout):
                    await self.ledger.remove(scope.name, self.member)
        self._scopes.clear()
        if self._budget is not None and self._budget.coordinator is self:
            self._budget.coordinator = None

    async def _run(self) -> None:
        while True:
            now = self.clock()
            for key, scope in list(self._scopes.items()):
                if now < scope.due:
                    continue
                scope.due, scope.recheck = now + self._next_beat_in(scope), False
                if now - scope.last_spent_at > self.idle_seconds and scope.budget.spent == 0:
                    await self._leave(key, scope)
                    continue
                try:
                    await self._exchange(scope)
                except Exception as error:  # the lease must never take the worker down
                    self._failed(scope, now, error)
            next_due = min((s.due for s in self._scopes.values()), default=now + self.heartbeat_seconds)
            await self._until_woken(min(max(next_due - self.clock(), 0.05), self.heartbeat_seconds))

    async def _until_woken(self, seconds: float) -> None:
        """Wait until _beat_now wakes the loop or ``seconds`` pass. Not asyncio.wait_for: on Python 3.11 it
        swallows a cancellation that meets the wake-up, and close() then waited for this loop forever."""
        assert self._woken is not None
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._woken.wait()
        self._woken.clear()

    def _next_beat_in(self, scope: _Scope) -> float:
        """Seconds to this scope's next heartbeat after the one about to be made.

        After a drain the next comes as soon as a request kept to this process's pace would have been booked twice
        over: if none was, that row says idle and the others take this part. An instance with requests waiting
        beside other live ones reads the rows twice as often, so it takes a part left idle sooner."""
        if scope.recheck:
            return min(self.heartbeat_seconds, max(QUIET_MIN_SECONDS, 2 / max(scope.budget.rate, 1e-9)))
        interval = self.heartbeat_seconds / 2 if scope.hungry else self.heartbeat_seconds
        return interval * (0.9 + 0.2 * random.random())

    def _drained(self, scope: _Scope) -> None:
        """The requests held to this process's pace are gone: with other instances live, beat now (what was
        booked so far) and again shortly (see _next_beat_in), rather than idle for two heartbeats unseen."""
        if scope.instances > 1:
            scope.recheck = True
            self._beat_now(scope)

    def _beat_now(self, scope: _Scope) -> None:
        """Work came back to this process after a heartbeat that showed it idle while others spent: the others
        may be spending its part, so tell them now rather than at the next heartbeat."""
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:  # asked outside any loop: the next heartbeat will do
            return
        if self._woken is None or self._loop is not running:
            return
        scope.due = self.clock()
        self._woken.set()

    async def _exchange(self, scope: _Scope) -> bool:
        """Beat, read the scope's rows, set the share; True when other live instances spend the bucket."""
        now = self.clock()
        spent, waiting = scope.budget.take_spent(), scope.budget.take_peak_queued()
        if spent > 0:
            scope.last_spent_at = now
        try:
            await self.ledger.beat(scope.name, self.member, spent, waiting)
            rows = await self.ledger.rows(scope.name)
        except Exception as error:
            self._failed(scope, now, error)
            return False
        if scope.failing:
            log.info("graph.budget.lease.recovered", scope=scope.name)
        scope.failing, scope.last_ok = False, now
        live, others_spending, stale = self._count(scope, rows, now)
        if len(live) + 1 != scope.instances:
            scope.instances = len(live) + 1
            log.info("graph.budget.lease.share", scope=scope.name, instances=scope.instances)
        scope.budget.share = divide(waiting, [(self._idle(scope, r, now), r.waiting > 0) for r in live])
        scope.hungry = waiting > 0 and bool(live)
        # Idle now, so the others may take this part's refill: work that arrives before the next heartbeat starts
        # from the level this process left its part at (ClassBudget.rejoining).
        scope.budget.rejoining = spent <= 0 and waiting <= 0 and others_spending
        for member in stale:
            with contextlib.suppress(Exception):
                await self.ledger.remove(scope.name, member)
        return others_spending

    def _idle(self, scope: _Scope, row: LedgerRow, now: float) -> bool:
        seen = scope.seen[row.member]
        return row.spent <= 0 and row.waiting <= 0 and now - seen.first_seen >= self.lease_seconds

    def _count(self, scope: _Scope, rows: list[LedgerRow], now: float) -> tuple[list[LedgerRow], bool, list[str]]:
        """The other members' live rows, whether any of them spends, and the rows left behind."""
        live: list[LedgerRow] = []
        others_spending, stale = False, []
        seen: dict[str, _Seen] = {}
        for row in rows:
            if row.member == self.member:
                continue
            previous = scope.seen.get(row.member)
            if previous is not None and previous.version == row.version:
                current = previous
            else:
                current = _Seen(row.version, now, previous.first_seen if previous is not None else now)
            seen[row.member] = current
            unchanged = now - current.changed_at
            if unchanged <= self.lease_seconds:
                live.append(row)
                others_spending |= row.spent > 0
            elif unchanged > LEASE_HEARTBEATS * self.lease_seconds:
                stale.append(row.member)
        scope.seen = seen
        return live, others_spending, stale

    def _failed(self, scope: _Scope, now: float, error: BaseException) -> None:
        if not scope.failing:
            log.warning("graph.budget.lease.failed", scope=scope.name, error=repr(error))
        scope.failing = True
        if now - max(scope.last_ok, scope.joined_at - self.lease_seconds) >= self.lease_seconds:
            # Nobody can tell how many instances share the bucket: Graph's headers alone pace it.
            scope.budget.share = 1.0

    async def _leave(self, key: BudgetKey, scope: _Scope) -> None:
        del self._scopes[key]
        scope.budget.share, scope.budget.on_rejoin, scope.budget.on_drain = 1.0, None, None
        with contextlib.suppress(Exception):
            await self.ledger.remove(scope.name, self.member)
        log.info("graph.budget.lease.left", scope=scope.name)


def divide(waiting: float, others: list[tuple[bool, bool]]) -> float:
    """This process's share of a bucket: 1/n of it, or more while it has requests waiting for their turn.

    ``others`` holds, for each other live instance, whether it is idle (it booked nothing since its last
    heartbeat and has been live for a lease period: not one starting up) and whether it has requests waiting.
    The idle instances' parts go to the instances with requests waiting, in equal parts; every other instance
    keeps its 1/n, and so does this process while nothing waits here (what it may spend at once when work
    arrives, before the others hear of it).
    """
    even = 1.0 / (1 + len(others))
    if waiting <= 0:
        return even
    idle = sum(1 for is_idle, _ in others if is_idle)
    hungry = 1 + sum(1 for is_idle, has_waiting in others if has_waiting and not is_idle)
    return even * (1 + idle / hungry)
