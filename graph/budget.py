"""Graph's throttling budget, shared by every job in a process: pacing per (tenant, app, budget class).

Graph meters identity requests in token buckets (graph-contract.md section 12): resource units per 10 s,
writes per 150 s per app and tenant, invitations per 5 s per tenant. Each process models its part of each
bucket (ClassBudget): a bucket starts full, so the first ``target`` (90 %) of the part goes out at once,
then requests are paced at the part's refill so the bucket stays at target. Several Functions instances
share a bucket through a lease (graph.budget_lease): each keeps a heartbeat row in Table Storage, counts
the live rows and takes a 1/n part, more while it has requests waiting and other instances are idle.
Graph's ``x-ms-throttle-limit-percentage`` header and ``Retry-After`` stay the safety net, and are all
there is when the lease is unavailable.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

HEADER_LIMIT_PERCENTAGE = "x-ms-throttle-limit-percentage"
HEADER_THROTTLE_INFORMATION = "x-ms-throttle-information"
HEADER_THROTTLE_SCOPE = "x-ms-throttle-scope"


class BudgetClass(StrEnum):
    RESOURCE_UNITS = "resource-units"
    WRITES = "writes"
    INVITATIONS = "invitations"


@dataclass(frozen=True, slots=True)
class Quota:
    capacity: float
    window_seconds: float

    @property
    def refill_per_second(self) -> float:
        return self.capacity / self.window_seconds

    def compressed(self, factor: float) -> Quota:
        """The same quota with every window ``factor`` times shorter (tenantsim's time compression)."""
        return Quota(self.capacity, self.window_seconds / factor)


# Resource units use the small-tenant quota: under-estimating only costs pacing headroom, never 429s.
DOCUMENTED_QUOTAS: dict[BudgetClass, Quota] = {
    BudgetClass.RESOURCE_UNITS: Quota(3500, 10.0),
    BudgetClass.WRITES: Quota(3000, 150.0),
    BudgetClass.INVITATIONS: Quota(150, 5.0),
}


BudgetKey = tuple[str, str, BudgetClass]  # (tenant, app, class)


class Coordinator(Protocol):
    """Sets each ClassBudget's share from the instances spending the same bucket (graph.budget_lease)."""

    def knows(self, key: BudgetKey) -> bool: ...

    async def join(self, key: BudgetKey, budget: ClassBudget) -> None:
        """Publish this process and set ``budget.share``; must not raise (pacing then uses headers alone)."""
        ...


class BudgetWaitTooLong(Exception):
    """The budget would make this request wait longer than the caller allows (a queue worker reschedules)."""

    def __init__(self, budget_class: BudgetClass, wait_seconds: float) -> None:
        super().__init__(f"the {budget_class} budget needs {wait_seconds:.2f}s before the next request")
        self.budget_class = budget_class
        self.wait_seconds = wait_seconds


@dataclass(frozen=True, slots=True)
class WaitLimit:
    """How long a request may wait for its budget before it is refused at once (a queue worker reschedules it).

    A worker handling ``slots`` messages at once has at most ``slots`` requests queued in a class (a message
    makes its calls one after the other), and they drain at this process's ``rate``: its share of the refill
    (graph.budget_lease), slowed by what Graph answered. A fixed 10 s limit rescheduled work that was only
    waiting its turn whenever the share was small (eight instances share 20 writes/s: 16 queued writes need
    6.4 s, more than 10 s once a 429 slowed the rate), and each rescheduled message repeats its reads and
    Table calls. The limit is that drain time with a margin, at least ``floor`` and at most ``ceiling`` (far
    inside the host's lock renewal and function timeout of 30 min): a wait longer than a full queue explains
    (a long Retry-After, a collapsed rate, another caller in the process) is still handed back to the queue.
    """

    slots: int
    floor: float = 10.0
    ceiling: float = 120.0
    margin: float = 1.5

    def seconds(self, budget: ClassBudget, units: float = 1.0) -> float:
        drain = self.margin * self.slots * units / max(budget.rate, 1e-9)
        return min(self.ceiling, max(self.floor, drain))


def request_costs(method: str, path: str, query: dict[str, str] | None = None) -> dict[BudgetClass, int]:
    """What one request costs in each budget class; ``path`` is below the version segment (``/users/1``)."""
    method, query = method.upper(), query or {}
    if path.rstrip("/").lower() == "/invitations":
        # The invitation manager has its own limit (150 per 5 s per tenant, any operation); /invitations is
        # not among the identity-and-access resources the write and resource-unit quotas cover. Charging
        # writes here capped invitations at the write refill rate (20/s) below their own limit (30/s).
        return {BudgetClass.INVITATIONS: 1}
    if path.lower().startswith(OUTSIDE_IDENTITY_QUOTAS):
        # Identity governance (entitlement management, access reviews) is not among the identity-and-access
        # resources whose resource-unit and write quotas these buckets model
        # (https://learn.microsoft.com/en-us/graph/throttling-limits#identity-and-access-service-limits): charging
        # an assignment request to the write bucket paced onboarding at the write refill (20/s) below the
        # invitation limit (30/s). A 429 from such a service still pauses through Graph's Retry-After.
        return {}
    if method != "GET":
        return {BudgetClass.RESOURCE_UNITS: 1, BudgetClass.WRITES: 1}
    base = _base_read_cost(path)
    base += ("$expand" in query) - ("$select" in query)
    top = query.get("$top", "")
    if top.isdigit() and int(top) < 20:
        base -= 1
    return {BudgetClass.RESOURCE_UNITS: max(base, 1)}


OUTSIDE_IDENTITY_QUOTAS = ("/identitygovernance/", "/identitygovernance?")

# The GET paths of the identity cost table (concepts/throttling-limits.md) the product reads; any other is 1.
_READ_COSTS = (
    (re.compile(r"^/users$"), 2),
    (re.compile(r"^/groups/[^/]+/members(/[^/]+)?$"), 3),
    (re.compile(r"^/groups/[^/]+/transitivemembers(/[^/]+)?$"), 5),
)


def _base_read_cost(path: str) -> int:
    below = path.lower().rstrip("/")
    return next((cost for pattern, cost in _READ_COSTS if pattern.match(below)), 1)


def binding_class(costs: dict[BudgetClass, int]) -> BudgetClass:
    """The class whose bucket runs out first for this request, and so the one Graph's header speaks for."""
    for budget_class in (BudgetClass.INVITATIONS, BudgetClass.WRITES):
        if budget_class in costs:
            return budget_class
    return BudgetClass.RESOURCE_UNITS


def throttled_class(information: str | None, scope: str | None, fallback: BudgetClass) -> BudgetClass:
    """Which bucket a 429 came from, from ``x-ms-throttle-information`` / ``x-ms-throttle-scope``."""
    if information == "WriteLimitExceeded":
        return BudgetClass.WRITES
    if information == "ResourceUnitLimitExceeded":
        return BudgetClass.RESOURCE_UNITS
    if scope and scope.split("/")[0] == "Tenant" and fallback is BudgetClass.INVITATIONS:
        return BudgetClass.INVITATIONS
    return fallback


RISE_TOLERANCE = 0.03  # a reported level this far above target, and rising, means the share is overspent


@dataclass(slots=True)
class ClassBudget:
    """Pacing for one (tenant, app, class) in this process: a model of this process's part of Graph's bucket.

    ``share`` is that part (1/n with n live instances, kept by graph.budget_lease; 1.0 when alone or when no
    lease is available). ``level`` models how full the part is, as Graph counts it (0 untouched, 1 at the
    limit): a booking raises it by units / (share x capacity), the refill lowers it by ``rate_factor`` x
    refill / capacity per second, as Graph refills its bucket. A bucket starts full, so the first ``target``
    of it goes out at once; past ``target`` each booking waits for the refill, so every instance paces at its
    share of the refill *before* Graph's header (sent from 80 %) appears. The header is the safety net: the
    level is at least what Graph reports (other callers, a skewed share), a 429 fills it and pauses until
    ``Retry-After``, and ``rate_factor`` learns from a level that keeps rising past target (too fast) or
    from answers without a header while this process waits (the share's refill is larger than assumed).

    A change of ``rate_factor`` only paces what is booked after it: what was already booked goes out at the
    instants it was given, so Graph's level (and its 429s) go on saying the same for that long. ``rate_factor``
    is therefore not changed again until the requests booked before the last change have gone out
    (``_settles_at``); a 429 still pauses the class at once. Changed on every adjustment step instead, eight
    instances with 16 queued writes each cut their pace to a fifth within four seconds of one overshoot, and
    took 90 s for what the budget allows in 26 (bench.graph_budget_bench, the sweep at 8 processes).
    """

    budget_class: BudgetClass
    quota: Quota
    clock: Clock
    target: float = 0.9
    jitter: Callable[[], float] = random.random
    share: float = 1.0
    level: float = 0.0
    rate_factor: float = 1.0
    paused_until: float = 0.0
    throttled: int = 0
    spent: float = 0.0  # units booked since graph.budget_lease last published them
    queued: float = 0.0  # units of requests waiting for their turn to book (GraphBudget.acquire)
    peak_queued: float = 0.0  # the most units queued at once since graph.budget_lease last published it
    # Published idle while other instances spent the bucket (graph.budget_lease): they may have spent this part's
    # refill meanwhile, so its next booking starts from the level it left the part at (``_left_at``, at most
    # target) rather than from a part its model refilled. Only instances with requests held at target take a larger
    # share: it paces them faster, it gives them no burst, so a part nothing was booked in since the join still
    # holds its first burst.
    rejoining: bool = False
    # Called when such a booking comes: graph.budget_lease then beats at once, so the others hear of it sooner.
    on_rejoin: Callable[[], None] | None = None
    # Called when the requests held to this process's pace are all gone: graph.budget_lease then tells the others
    # soon, so an instance that still holds a queue takes this part without waiting for two heartbeats.
    on_drain: Callable[[], None] | None = None
    _updated: float = field(init=False)
    _left_at: float = field(default=0.0, init=False)  # the level right after the last booking (see rejoining)
    _booked: float = field(default=0.0, init=False)
    _answered: float = field(default=0.0, init=False)
    _report_mark: float | None = field(default=None, init=False)
    _last_wait: float = field(default=float("-inf"), init=False)
    _last_change: float = field(default=float("-inf"), init=False)
    _settles_at: float = field(default=float("-inf"), init=False)
    _scheduled_until: float = field(default=float("-inf"), init=False)  # when the last booked request goes out
    _previous_report: tuple[float, float] | None = field(default=None, init=False)
    _held_since_drain: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        self._updated = self.clock()

    @property
    def adjust_every(self) -> float:
        return max(0.1, self.quota.window_seconds / 50)

    @property
    def rate(self) -> float:
        """Units per second this process may send once its part of the bucket is at target."""
        return self.share * self.rate_factor * self.quota.refill_per_second

    def _refill(self, now: float) -> None:
        if now > self._updated:
            drop = self.rate_factor * self.quota.refill_per_second / self.quota.capacity * (now - self._updated)
            self.level = max(0.0, self.level - drop)
            self._updated = now

    def _seconds_above(self, level: float) -> float:
        """How long the refill takes to bring ``level`` down to target."""
        excess = level - self.target
        if excess <= 1e-9:
            return 0.0
        return excess * self.quota.capacity / (self.rate_factor * self.quota.refill_per_second)

    def _units(self, units: float) -> float:
        return units / (self.share * self.quota.capacity)

    def _rejoin(self) -> None:
        if self.rejoining:
            self.rejoining = False
            self._hold_at(min(self._left_at, self.target))
            if self.on_rejoin is not None:
                self.on_rejoin()

    def wait_needed(self) -> float:
        """Seconds until this class may send one more unit, without booking anything."""
        self._rejoin()
        now = self.clock()
        self._refill(now)
        return max(self.paused_until - now, self._seconds_above(self.level + self._units(1)), 0.0)

    def book(self, units: float) -> float:
        """Book ``units``; returns how long to wait before sending them."""
        self._rejoin()
        now = self.clock()
        self._refill(now)
        before = self.level
        self.level += self._units(units)
        self._left_at = self.level
        self.spent += units
        self._booked += units
        if before < self.target <= self.level:
            # Answers to requests booked from here on should carry Graph's header (sent from 80 %).
            self._report_mark = self._booked
        wait = max(self.paused_until - now, self._seconds_above(self.level), 0.0)
        if wait > 0:
            self._last_wait = now
        self._scheduled_until = max(self._scheduled_until, now + wait)
        return wait

    def take_spent(self) -> float:
        spent, self.spent = self.spent, 0.0
        return spent

    def take_peak_queued(self) -> float:
        """The most units that waited for their turn at once since the last call, counted while this process was
        held to its pace (what graph.budget_lease publishes as its demand beyond its share)."""
        peak, self.peak_queued = self.peak_queued, 0.0
        return peak

    def held(self) -> None:
        """A request's turn has come and it must still wait: what is queued is demand beyond the pace."""
        self.peak_queued = max(self.peak_queued, self.queued)
        self._held_since_drain = True

    def queue_emptied(self) -> None:
        """No request waits for its turn any more; the first time since requests were held to the pace, say so."""
        if self._held_since_drain:
            self._held_since_drain = False
            if self.on_drain is not None:
                self.on_drain()

    def hold_at_target(self) -> None:
        """Others already spend this bucket: start at the level they hold it at, without a first burst."""
        self._hold_at(self.target)

    def _hold_at(self, level: float) -> None:
        """The model's level now, but not below ``level``."""
        self._refill(self.clock())
        self.level = max(self.level, level)

    def observe(self, limit_percentage: float | None, units: float = 1.0) -> None:
        """Feed back one successful answer and its ``x-ms-throttle-limit-percentage`` (None when absent)."""
        now = self.clock()
        self._refill(now)
        self._answered += units
        if limit_percentage is None:
            self._unreported(now)
            return
        # Graph's level is the whole bucket's, and so every part's: the model may not be below it.
        self.level = max(self.level, limit_percentage)
        if self.level >= self.target:
            self._report_mark = self._booked
        previous = self._previous_report
        if previous is not None and now - previous[0] < self.adjust_every:
            return
        self._previous_report = (now, limit_percentage)
        rising = previous is not None and limit_percentage > previous[1]
        if now < self._settles_at:
            return  # Graph's level still shows what was booked before the last change
        if limit_percentage > self.target + RISE_TOLERANCE and rising:
            self._change_factor(now, 0.85)
        elif limit_percentage <= self.target and self.rate_factor < 1.0 and self._pace_bound(now):
            self._change_factor(now, 1.1, ceiling=1.0)

    def _unreported(self, now: float) -> None:
        """An answer without the header: Graph's level was under 80 % when it served the request. If that
        request was booked after the model passed target while this process waits, the refill is larger than
        the share assumes (fewer callers than counted, a larger quota): speed up."""
        mark = self._report_mark
        if mark is None or self._answered <= mark or not self._pace_bound(now):
            return
        if now < self._settles_at:
            return
        # Never past the whole bucket: at 2/share one of four instances could pace at twice Graph's refill while
        # the others still spent theirs, and four instances at 64 messages drew 5-15 answers 429 a minute.
        self._change_factor(now, 1.2, ceiling=1.0 / self.share)
        self._report_mark = self._booked

    def _pace_bound(self, now: float) -> bool:
        """Whether this process is held to its pace: requests wait their turn, or the last booking had to wait.

        The last wait alone would not do at a small share: at a quarter of the invitation bucket, paced at 0.7
        after a 429, bookings are 0.19 s apart, longer than an adjustment step, and the pace never came back.
        """
        return self.queued > 0 or now - self._last_wait < self.adjust_every

    def throttle(self, retry_after: float) -> None:
        """Graph refused a request: stop until ``retry_after``, count the part as full, slow down (once per
        adjustment step, since the items of one batch or one burst are refused together for the same reason)."""
        now = self.clock()
        self._refill(now)
        self.throttled += 1
        self._answered += 1
        # Spread the restart: every instance got the same Retry-After and would otherwise return at once.
        self.paused_until = max(self.paused_until, now + retry_after * (1.0 + 0.5 * self.jitter()))
        self.level = max(self.level, 1.0)
        if now - self._last_change >= max(self.adjust_every, retry_after) and now >= self._settles_at:
            self._change_factor(now, 0.7)

    def _change_factor(self, now: float, by: float, ceiling: float | None = None) -> None:
        factor = max(self.rate_factor * by, 0.02)
        self.rate_factor = min(factor, ceiling) if ceiling is not None and by > 1 else factor
        self._last_change = now
        self._settles_at = self._scheduled_until


# Requests one process may have in flight to Graph when nothing says otherwise: graph.pool's connections.
MAX_IN_FLIGHT = 128


@dataclass(slots=True)
class AdaptiveConcurrency:
    """A cap on requests in flight: shrinks when Graph nears or hits its limit, grows back one by one.

    It starts at its ceiling. The budget already paces every request, so the cap only has to take the load off
    Graph once Graph says it is at its limit. Started at a quarter of its ceiling and grown back by 1/limit per
    answer, it held 64 queued tickets to 16 requests for the first ~2,000 answers, which added a third to every
    call's latency (0.80 -> 0.88 of the invitation budget for one process, bench.graph_budget_bench).
    """

    limit: float = float(MAX_IN_FLIGHT)
    ceiling: float = float(MAX_IN_FLIGHT)
    in_flight: int = 0
    _changed: asyncio.Condition | None = None

    def _condition(self) -> asyncio.Condition:
        if self._changed is None:
            self._changed = asyncio.Condition()
        return self._changed

    async def enter(self) -> None:
        async with self._condition():
            await self._condition().wait_for(lambda: self.in_flight < max(1, int(self.limit)))
            self.in_flight += 1

    async def leave(self, *, pressure: bool) -> None:
        if pressure:
            self.limit = max(1.0, self.limit * 0.7)
        else:
            self.limit = min(self.ceiling, self.limit + 1.0 / max(self.limit, 1.0))
        async with self._condition():
            self.in_flight -= 1
            self._condition().notify_all()


# A request books its budget only when its turn is this close: what is booked cannot follow a change of share.
LOOKAHEAD_SECONDS = 0.25


class GraphBudget:
    """Every budget of this process, keyed by (tenant, app, class); one instance is shared by all clients.

    Requests take turns per (tenant, app, binding class), first come first served, and each books its units only
    when its turn is within ``LOOKAHEAD_SECONDS``. Booked at once, a queue of requests was given instants at the
    pace of the share it met: when graph.budget_lease then gave this process a larger share (other instances had
    run out of work), those requests still went out at the old pace and the budget went unspent.
    """

    def __init__(
        self,
        *,
        quotas: dict[BudgetClass, Quota] | None = None,
        target: float = 0.9,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        max_in_flight: int = MAX_IN_FLIGHT,
    ) -> None:
        self.quotas = dict(quotas or DOCUMENTED_QUOTAS)
        self.target = target
        self.clock = clock
        self.sleep = sleep
        self.max_in_flight = max_in_flight
        self._budgets: dict[BudgetKey, ClassBudget] = {}
        self._concurrency: dict[tuple[str, str, int], AdaptiveConcurrency] = {}
        self._turns: dict[tuple[str, str, BudgetClass, int], asyncio.Lock] = {}
        self.coordinator: Coordinator | None = None

    @classmethod
    def time_compressed(
        cls,
        factor: float,
        *,
        target: float = 0.9,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        max_in_flight: int = MAX_IN_FLIGHT,
    ) -> GraphBudget:
        """Documented quotas with windows ``factor`` times shorter (matches tenantsim's timeCompression)."""
        quotas = {k: q.compressed(factor) for k, q in DOCUMENTED_QUOTAS.items()}
        return cls(quotas=quotas, target=target, clock=clock, sleep=sleep, max_in_flight=max_in_flight)

    def budget(self, tenant: str, app: str, budget_class: BudgetClass) -> ClassBudget:
        key = (tenant, app, budget_class)
        if key not in self._budgets:
            self._budgets[key] = ClassBudget(budget_class, self.quotas[budget_class], self.clock, self.target)
        return self._budgets[key]

    def concurrency(self, tenant: str, app: str) -> AdaptiveConcurrency:
        """The in-flight cap for the running event loop (asyncio primitives belong to one loop)."""
        key = (tenant, app, id(asyncio.get_running_loop()))
        if key not in self._concurrency:
            self._concurrency[key] = AdaptiveConcurrency(
                limit=float(self.max_in_flight), ceiling=float(self.max_in_flight)
            )
        return self._concurrency[key]

    def _turn(self, tenant: str, app: str, budget_class: BudgetClass) -> asyncio.Lock:
        """The queue of requests whose binding class is ``budget_class`` (asyncio's Lock wakes waiters in order)."""
        key = (tenant, app, budget_class, id(asyncio.get_running_loop()))
        if key not in self._turns:
            self._turns[key] = asyncio.Lock()
        return self._turns[key]

    async def acquire(
        self, tenant: str, app: str, costs: dict[BudgetClass, int], max_wait: float | WaitLimit | None = None
    ) -> None:
        """Wait until every class this request costs has room; raise BudgetWaitTooLong past ``max_wait``
        (seconds, or a WaitLimit that follows each class's rate)."""
        if not costs:
            return
        await self.prepare(tenant, app, costs)
        budgets = [(self.budget(tenant, app, c), units) for c, units in costs.items()]
        binding = self.budget(tenant, app, binding_class(costs))
        if max_wait is not None:
            for budget, units in budgets:
                limit = max_wait.seconds(budget, units) if isinstance(max_wait, WaitLimit) else max_wait
                # The requests already queued go first, at this process's rate.
                needed = budget.wait_needed() + budget.queued / max(budget.rate, 1e-9)
                if needed > limit:
                    raise BudgetWaitTooLong(budget.budget_class, needed)
        queued = costs[binding.budget_class]
        binding.queued += queued
        try:
            async with self._turn(tenant, app, binding.budget_class):
                if max(budget.wait_needed() for budget, _ in budgets) > 0:
                    binding.held()
                # Looked at again after each short sleep: a larger share (or a pause) applies to this request.
                while (ahead := max(budget.wait_needed() for budget, _ in budgets)) > LOOKAHEAD_SECONDS + 1e-3:
                    await self.sleep(min(ahead - LOOKAHEAD_SECONDS, LOOKAHEAD_SECONDS))
                wait = max(budget.book(units) for budget, units in budgets)
        finally:
            binding.queued -= queued
            if binding.queued <= 0:
                binding.queue_emptied()
        if wait > 0:
            await self.sleep(wait)
            # Graph refused another request meanwhile: this one was booked before the refusal and would meet it
            # too. It waits out the pause (each instance's Retry-After is spread by the jitter of throttle()).
            paused = max(budget.paused_until for budget, _ in budgets) - self.clock()
            if paused > 0:
                await self.sleep(paused)

    async def prepare(self, tenant: str, app: str, classes: Iterable[BudgetClass]) -> None:
        """Join the shared lease for these classes (once per class; a no-op without a coordinator)."""
        coordinator = self.coordinator
        if coordinator is None:
            return
        for budget_class in classes:
            key = (tenant, app, budget_class)
            if not coordinator.knows(key):
                await coordinator.join(key, self.budget(*key))

    def observe(self, tenant: str, app: str, budget_class: BudgetClass, limit_percentage: float | None) -> None:
        self.budget(tenant, app, budget_class).observe(limit_percentage)

    def throttle(self, tenant: str, app: str, budget_class: BudgetClass, retry_after: float) -> None:
        self.budget(tenant, app, budget_class).throttle(retry_after)


_shared: GraphBudget | None = None


def shared_budget() -> GraphBudget:
    """The process-wide budget every Graph client built by graph.client uses unless told otherwise."""
    global _shared
    if _shared is None:
        _shared = GraphBudget()
    return _shared
