"""Graph's throttling budget, shared by every job in a process: pacing per (tenant, app, budget class).

Graph meters identity requests in token buckets (graph-contract.md section 12): resource units per 10 s,
writes per 150 s per app and tenant, invitations per 5 s per tenant. A bucket starts full, so a job may
burst until Graph reports ``x-ms-throttle-limit-percentage`` (sent once 80 % of a bucket is used). From
then on each process paces its requests so the bucket level settles at ``target`` (90 % used): every
process sees the same header, estimates from its movement how fast *all* callers together are draining
the bucket, and scales its own rate by the same factor. That is how several Functions instances share one
budget without talking to each other. A 429 closes the class until its ``Retry-After`` and halves the rate.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum

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


class BudgetWaitTooLong(Exception):
    """The budget would make this request wait longer than the caller allows (a queue worker reschedules)."""

    def __init__(self, budget_class: BudgetClass, wait_seconds: float) -> None:
        super().__init__(f"the {budget_class} budget needs {wait_seconds:.2f}s before the next request")
        self.budget_class = budget_class
        self.wait_seconds = wait_seconds


def request_costs(method: str, path: str, query: dict[str, str] | None = None) -> dict[BudgetClass, int]:
    """What one request costs in each budget class; ``path`` is below the version segment (``/users/1``)."""
    method, query = method.upper(), query or {}
    if path.rstrip("/").lower() == "/invitations":
        # The invitation manager has its own limit (150 per 5 s per tenant, any operation); /invitations is
        # not among the identity-and-access resources the write and resource-unit quotas cover. Charging
        # writes here capped invitations at the write refill rate (20/s) below their own limit (30/s).
        return {BudgetClass.INVITATIONS: 1}
    if method != "GET":
        return {BudgetClass.RESOURCE_UNITS: 1, BudgetClass.WRITES: 1}
    base = 2 if path.lower().rstrip("/") == "/users" else 1
    base += ("$expand" in query) - ("$select" in query)
    top = query.get("$top", "")
    if top.isdigit() and int(top) < 20:
        base -= 1
    return {BudgetClass.RESOURCE_UNITS: max(base, 1)}


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


@dataclass(slots=True)
class _Interval:
    started: float
    granted: float = 0.0
    latest_percentage: float | None = None
    responses: int = 0


@dataclass(slots=True)
class ClassBudget:
    """Pacing for one (tenant, app, class) in this process.

    ``rate`` (units per second) starts at the documented refill rate and doubles every step while Graph
    reports no level (a full bucket may be spent fast); once Graph reports the level, an estimator keeps it
    at the pace that holds the level at ``target``.
    """

    budget_class: BudgetClass
    quota: Quota
    clock: Clock
    target: float = 0.9
    jitter: Callable[[], float] = random.random
    rate: float = 0.0
    paused_until: float = 0.0
    next_slot: float = 0.0
    throttled: int = 0
    _interval: _Interval = field(init=False)
    _previous_level: tuple[float, float] | None = field(default=None, init=False)
    _drain_estimate: float | None = field(default=None, init=False)
    _last_cut: float = field(default=float("-inf"), init=False)

    def __post_init__(self) -> None:
        self._interval = _Interval(self.clock())
        if not self.rate:
            self.rate = self.quota.refill_per_second

    @property
    def adjust_every(self) -> float:
        return max(0.1, self.quota.window_seconds / 50)

    @property
    def settle_within(self) -> float:
        return self.quota.window_seconds / 10

    def wait_needed(self) -> float:
        """Seconds until this class may send again, without booking anything."""
        now = self.clock()
        return max(now, self.paused_until, self.next_slot) - now

    def book(self, units: float) -> float:
        """Book ``units`` at the next free slot; returns how long to wait before sending."""
        now = self.clock()
        start = max(now, self.paused_until, self.next_slot)
        self.next_slot = start + units / self.rate
        self._interval.granted += units
        return start - now

    def observe(self, limit_percentage: float | None) -> None:
        """Feed back one successful answer and its ``x-ms-throttle-limit-percentage`` (None when absent)."""
        now = self.clock()
        interval = self._interval
        interval.responses += 1
        if limit_percentage is not None:
            interval.latest_percentage = limit_percentage
            self._track_level(now, limit_percentage)
        if now - interval.started >= self.adjust_every:
            self._adjust(now)

    def throttle(self, retry_after: float) -> None:
        """Graph refused a request: stop until ``retry_after``; halve the pace (once per adjustment step, since
        the items of one batch or one burst are refused together for the same reason)."""
        now = self.clock()
        self.throttled += 1
        # Spread the restart: every instance got the same Retry-After and would otherwise return at once.
        self.paused_until = max(self.paused_until, now + retry_after * (1.0 + 0.5 * self.jitter()))
        self.next_slot = max(self.next_slot, self.paused_until)
        if now - self._last_cut < max(self.adjust_every, retry_after):
            return
        self._last_cut = now
        observed = self._observed_rate(now)
        base = min(self.rate, observed) if observed else self.rate
        self.rate = max(base / 2, self._floor)

    @property
    def _floor(self) -> float:
        return self.quota.refill_per_second / 50

    def _observed_rate(self, now: float) -> float:
        elapsed = now - self._interval.started
        return self._interval.granted / elapsed if elapsed > 0 else 0.0

    def _track_level(self, now: float, level: float) -> None:
        if self._previous_level is not None:
            then, previous = self._previous_level
            if now - then >= self.adjust_every / 2:
                # Level rises by (all callers' rate - refill) / capacity per second.
                drain = self.quota.refill_per_second + self.quota.capacity * (level - previous) / (now - then)
                self._drain_estimate = (
                    drain if self._drain_estimate is None else 0.5 * self._drain_estimate + 0.5 * drain
                )
                self._previous_level = (now, level)
        else:
            self._previous_level = (now, level)

    def _adjust(self, now: float) -> None:
        interval, observed = self._interval, self._observed_rate(now)
        self._interval = _Interval(now)
        if interval.latest_percentage is None:
            # Below the reporting threshold the bucket has room: slow start, doubling while the pace is used.
            if interval.responses and observed >= 0.5 * self.rate:
                self.rate *= 2.0
            self._previous_level = None
            return
        refill = self.quota.refill_per_second
        # The pace that brings the level back to target within settle_within, for all callers together.
        wanted = refill + self.quota.capacity * (self.target - interval.latest_percentage) / self.settle_within
        wanted = max(refill * 0.05, wanted)
        drain = self._drain_estimate if self._drain_estimate and self._drain_estimate > 0 else None
        basis = observed if observed > 0 else self.rate
        # Every process applies the same factor, so the sum of their rates moves to ``wanted``.
        factor = 1.0 if drain is None else min(2.0, max(0.5, wanted / drain))
        self.rate = max(min(self.rate, basis) * factor if drain is None else basis * factor, self._floor)


@dataclass(slots=True)
class AdaptiveConcurrency:
    """A cap on requests in flight: shrinks when Graph nears or hits its limit, grows back one by one."""

    limit: float = 16.0
    ceiling: float = 64.0
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


class GraphBudget:
    """Every budget of this process, keyed by (tenant, app, class); one instance is shared by all clients."""

    def __init__(
        self,
        *,
        quotas: dict[BudgetClass, Quota] | None = None,
        target: float = 0.9,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        max_in_flight: int = 16,
    ) -> None:
        self.quotas = dict(quotas or DOCUMENTED_QUOTAS)
        self.target = target
        self.clock = clock
        self.sleep = sleep
        self.max_in_flight = max_in_flight
        self._budgets: dict[tuple[str, str, BudgetClass], ClassBudget] = {}
        self._concurrency: dict[tuple[str, str, int], AdaptiveConcurrency] = {}

    @classmethod
    def time_compressed(cls, factor: float, **kwargs: object) -> GraphBudget:
        """Documented quotas with windows ``factor`` times shorter (matches tenantsim's timeCompression)."""
        quotas = {k: q.compressed(factor) for k, q in DOCUMENTED_QUOTAS.items()}
        return cls(quotas=quotas, **kwargs)  # type: ignore[arg-type]

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
                limit=float(self.max_in_flight), ceiling=self.max_in_flight * 4
            )
        return self._concurrency[key]

    async def acquire(
        self, tenant: str, app: str, costs: dict[BudgetClass, int], max_wait: float | None = None
    ) -> None:
        """Wait until every class this request costs has room; raise BudgetWaitTooLong past ``max_wait``."""
        budgets = [(self.budget(tenant, app, c), units) for c, units in costs.items()]
        if max_wait is not None:
            for budget, _ in budgets:
                needed = budget.wait_needed()
                if needed > max_wait:
                    raise BudgetWaitTooLong(budget.budget_class, needed)
        wait = max((budget.book(units) for budget, units in budgets), default=0.0)
        if wait > 0:
            await self.sleep(wait)

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
