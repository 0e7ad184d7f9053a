"""The Graph budget: request costs, pacing, feedback from Graph's headers, Retry-After pauses."""

from __future__ import annotations

import asyncio

import pytest

from graph.budget import BudgetClass, BudgetWaitTooLong, ClassBudget, GraphBudget, Quota, request_costs
from tests.fakes import MonotonicClock


def test_costs_follow_graphs_identity_rules() -> None:
    """GET /users costs 2 RU (1 with $select), a write 1 RU + 1 write; an invitation only its own limit's unit."""
    assert request_costs("GET", "/users", {}) == {BudgetClass.RESOURCE_UNITS: 2}
    assert request_costs("GET", "/users", {"$select": "id"}) == {BudgetClass.RESOURCE_UNITS: 1}
    assert request_costs("PATCH", "/users/1") == {BudgetClass.RESOURCE_UNITS: 1, BudgetClass.WRITES: 1}
    assert request_costs("POST", "/invitations") == {BudgetClass.INVITATIONS: 1}


def test_identity_governance_calls_draw_on_none_of_the_identity_buckets() -> None:
    """Entitlement management is outside the identity-and-access quotas: an onboarding's assignment request must
    not be paced at the write refill rate (20/s) below the invitation limit (30/s)."""
    requests = "/identityGovernance/entitlementManagement/assignmentRequests"
    assert request_costs("POST", requests) == {}
    assert request_costs("GET", f"{requests}/1", {"$select": "state"}) == {}
    assert request_costs("PATCH", "/identityGovernanceX/1") == {BudgetClass.RESOURCE_UNITS: 1, BudgetClass.WRITES: 1}


def test_group_member_reads_cost_what_the_cost_table_says() -> None:
    """A group's members cost 3 RU and its transitive members 5 (the cast segment included); one user 1."""
    group = "/groups/7d3e9f1a-2b4c-4d6e-8f0a-1b2c3d4e5f6a"
    assert request_costs("GET", f"{group}/members") == {BudgetClass.RESOURCE_UNITS: 3}
    transitive = f"{group}/transitiveMembers/microsoft.graph.user"
    assert request_costs("GET", transitive, {"$count": "true"}) == {BudgetClass.RESOURCE_UNITS: 5}
    assert request_costs("GET", transitive, {"$select": "id", "$top": "999"}) == {BudgetClass.RESOURCE_UNITS: 4}
    assert request_costs("GET", "/users/1") == {BudgetClass.RESOURCE_UNITS: 1}


def _writes(clock: MonotonicClock, **kwargs: object) -> ClassBudget:
    return ClassBudget(BudgetClass.WRITES, Quota(3000, 150.0), clock, jitter=lambda: 0.0, **kwargs)  # type: ignore[arg-type]


def test_a_fresh_budget_bursts_to_target_then_paces_at_the_refill_rate() -> None:
    """A bucket starts full: the first 90 % goes at once, then bookings are spaced by 1 / refill rate."""
    clock = MonotonicClock()
    budget = _writes(clock)
    assert [budget.book(1) for _ in range(2700)] == [0.0] * 2700
    waits = [budget.book(1) for _ in range(3)]
    assert waits == pytest.approx([0.05, 0.10, 0.15])


def test_pacing_starts_before_graph_reports_a_level() -> None:
    """With no x-ms-throttle-limit-percentage at all (a small bucket answers late), the pace past the
    burst is still the refill: 150 invitations per 5 s never get more than 135 out at once."""
    clock = MonotonicClock()
    budget = ClassBudget(BudgetClass.INVITATIONS, Quota(150, 5.0), clock)
    sent_at_once = 0
    while budget.book(1) == 0.0:
        sent_at_once += 1
        budget.observe(None)
    assert sent_at_once == 135
    clock.now += 1.0
    # The refill of one second (30) goes at once, less the one booked past the burst.
    assert [budget.book(1) for _ in range(40)].count(0.0) == 29


def test_a_share_of_the_bucket_bursts_and_paces_at_that_share() -> None:
    """One of four instances sends a quarter of the burst at once and paces at a quarter of the refill."""
    clock = MonotonicClock()
    budget = _writes(clock, share=0.25)
    assert [budget.book(1) for _ in range(675)] == [0.0] * 675
    assert budget.book(1) == pytest.approx(1 / 5.0)
    assert budget.rate == pytest.approx(5.0)


def test_a_process_joining_a_spent_bucket_does_not_burst() -> None:
    """Held at target from the start, the first booking already waits for the refill."""
    clock = MonotonicClock()
    budget = _writes(clock, share=0.5)
    budget.hold_at_target()
    assert budget.book(1) == pytest.approx(0.1)


def test_a_reported_level_above_the_model_holds_the_process_back() -> None:
    """Graph says 97 % used (someone else spends too): the next booking waits until the refill brings 97 % to 90 %."""
    clock = MonotonicClock()
    budget = _writes(clock)
    budget.book(10)
    budget.observe(0.97)
    assert budget.wait_needed() == pytest.approx((0.97 - 0.9) * 150.0 + 1 / 20.0)


def test_a_rising_level_above_target_slows_the_pace() -> None:
    """A level above target that keeps rising (others drain the bucket too) makes this process slow down."""
    clock = MonotonicClock()
    budget = _writes(clock)
    for level in (0.94, 0.96, 0.98):
        budget.book(1)
        clock.now += budget.adjust_every
        budget.observe(level)
    assert budget.rate_factor < 1.0
    assert budget.rate < 20.0


def test_answers_without_a_header_past_the_report_level_speed_the_pace_up() -> None:
    """Requests booked after the model passed target come back without Graph's header (under 80 %) while the
    process waits: the bucket has more room than the share assumes (fewer instances spend it), so the pace rises."""
    clock = MonotonicClock()
    budget = _writes(clock, share=0.5)
    for _ in range(1350):
        budget.book(1)
    for _ in range(1350):
        budget.observe(None)
    assert budget.rate_factor == 1.0  # answers to the burst itself prove nothing
    budget.book(1)
    budget.observe(None)
    assert budget.rate_factor > 1.0


def test_a_429_pauses_the_class_until_retry_after_and_cuts_the_pace() -> None:
    """After a 429 nothing is booked before its Retry-After, and the pace is cut."""
    clock = MonotonicClock()
    budget = _writes(clock)
    budget.throttle(2.5)
    assert budget.wait_needed() >= 2.5
    assert budget.rate_factor == pytest.approx(0.7)


def test_one_batch_of_refusals_cuts_the_pace_once() -> None:
    """Twenty items refused by the same 429 wave cut the pace once, not twenty times."""
    clock = MonotonicClock()
    budget = _writes(clock)
    for _ in range(20):
        budget.throttle(0.5)
    assert budget.rate_factor == pytest.approx(0.7)


def test_acquire_refuses_at_once_when_the_wait_exceeds_max_wait() -> None:
    """A queue worker asks with max_wait: a paused class raises BudgetWaitTooLong instead of sleeping."""
    clock = MonotonicClock()
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
    budget = GraphBudget(clock=MonotonicClock())
    budget.throttle("tenant-a", "app", BudgetClass.WRITES, 30.0)
    assert budget.budget("tenant-b", "app", BudgetClass.WRITES).wait_needed() == 0.0
