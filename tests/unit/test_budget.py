"""The Graph budget: request costs, pacing, feedback from Graph's headers, Retry-After pauses."""

from __future__ import annotations

import asyncio

import pytest

from graph.budget import BudgetClass, BudgetWaitTooLong, ClassBudget, GraphBudget, Quota, request_costs


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_costs_follow_graphs_identity_rules() -> None:
    """GET /users costs 2 RU (1 with $select), a write 1 RU + 1 write; an invitation only its own limit's unit."""
    assert request_costs("GET", "/users", {}) == {BudgetClass.RESOURCE_UNITS: 2}
    assert request_costs("GET", "/users", {"$select": "id"}) == {BudgetClass.RESOURCE_UNITS: 1}
    assert request_costs("PATCH", "/users/1") == {BudgetClass.RESOURCE_UNITS: 1, BudgetClass.WRITES: 1}
    assert request_costs("POST", "/invitations") == {BudgetClass.INVITATIONS: 1}


def test_a_fresh_budget_paces_at_the_documented_refill_rate() -> None:
    """Before Graph reports anything, consecutive bookings are spaced by 1 / refill rate."""
    clock = FakeClock()
    budget = ClassBudget(BudgetClass.WRITES, Quota(3000, 150.0), clock)
    waits = [budget.book(1) for _ in range(3)]
    assert waits == pytest.approx([0.0, 0.05, 0.10])


def test_no_level_reported_doubles_the_pace() -> None:
    """While Graph sends no x-ms-throttle-limit-percentage the bucket has room, so the pace doubles per step."""
    clock = FakeClock()
    budget = ClassBudget(BudgetClass.WRITES, Quota(3000, 150.0), clock)
    start = budget.rate
    for _ in range(int(budget.adjust_every * start) + 1):
        budget.book(1)
    clock.now += budget.adjust_every
    budget.observe(None)
    assert budget.rate == pytest.approx(2 * start)


def test_a_rising_level_above_target_slows_the_pace() -> None:
    """A level above target that keeps rising (others drain the bucket too) makes this process slow down."""
    clock = FakeClock()
    budget = ClassBudget(BudgetClass.WRITES, Quota(3000, 150.0), clock, target=0.9)
    budget.rate = 100.0
    for level in (0.92, 0.95, 0.98):
        for _ in range(int(budget.adjust_every * 100)):
            budget.book(1)
        clock.now += budget.adjust_every
        budget.observe(level)
    assert budget.rate < 100.0


def test_a_429_pauses_the_class_until_retry_after_and_halves_the_pace() -> None:
    """After a 429 nothing is booked before its Retry-After, and the pace is at most half what it was."""
    clock = FakeClock()
    budget = ClassBudget(BudgetClass.WRITES, Quota(3000, 150.0), clock, jitter=lambda: 0.0)
    budget.rate = 100.0
    budget.throttle(2.5)
    assert budget.wait_needed() == pytest.approx(2.5)
    assert budget.rate <= 50.0


def test_one_batch_of_refusals_cuts_the_pace_once() -> None:
    """Twenty items refused by the same 429 wave halve the pace once, not twenty times."""
    clock = FakeClock()
    budget = ClassBudget(BudgetClass.WRITES, Quota(3000, 150.0), clock, jitter=lambda: 0.0)
    budget.rate = 100.0
    for _ in range(20):
        budget.throttle(0.5)
    assert budget.rate == pytest.approx(50.0)


def test_acquire_refuses_at_once_when_the_wait_exceeds_max_wait() -> None:
    """A queue worker asks with max_wait: a paused class raises BudgetWaitTooLong instead of sleeping."""
    clock = FakeClock()
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    budget = GraphBudget(clock=clock, sleep=sleep)
    budget.budget("t", "a", BudgetClass.WRITES).jitter = lambda: 0.0
    budget.throttle("t", "a", BudgetClass.WRITES, 30.0)
    with pytest.raises(BudgetWaitTooLong) as refused:
        asyncio.run(budget.acquire("t", "a", {BudgetClass.WRITES: 1}, max_wait=5.0))
    assert refused.value.wait_seconds == pytest.approx(30.0)
    assert refused.value.budget_class is BudgetClass.WRITES
    assert slept == []


def test_budgets_are_kept_per_tenant_and_app() -> None:
    """A pause for one tenant's writes does not hold back another tenant's."""
    budget = GraphBudget(clock=FakeClock())
    budget.throttle("tenant-a", "app", BudgetClass.WRITES, 30.0)
    assert budget.budget("tenant-b", "app", BudgetClass.WRITES).wait_needed() == 0.0
