"""The Graph budget: request costs, pacing, feedback from Graph's headers, Retry-After pauses."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from graph.budget import (
    BudgetClass,
    BudgetWaitTooLong,
    ClassBudget,
    GraphBudget,
    Quota,
    WaitLimit,
    request_costs,
)
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


def test_a_pace_cut_by_a_429_comes_back_at_a_small_share_while_requests_wait() -> None:
    """One of four instances on the invitation bucket (7.5/s), cut to 0.7 by a 429: its bookings are further
    apart than an adjustment step, but requests wait their turn and the answers come back without Graph's header,
    so the bucket has room and the pace returns to the share's full rate."""
    clock = MonotonicClock()
    budget = ClassBudget(BudgetClass.INVITATIONS, Quota(150, 5.0), clock, jitter=lambda: 0.0, share=0.25)
    budget.hold_at_target()
    budget.throttle(1.0)
    assert budget.rate_factor == pytest.approx(0.7)
    budget.queued = 4.0  # requests waiting their turn (GraphBudget.acquire)
    booked = []
    for _ in range(40):
        clock.now += max(0.0, budget.wait_needed() - 0.25)  # a turn is taken within 0.25 s of its instant
        clock.now += budget.book(1)
        booked.append(clock.now)
        clock.now += 0.2  # the answer, without a header
        budget.observe(None)
    assert booked[1] - booked[0] > budget.adjust_every
    assert budget.rate_factor >= 1.0


def test_answers_without_a_header_speed_an_instance_up_to_the_whole_bucket_and_no_further() -> None:
    """Answers without Graph's header say the bucket had room when they were served; one of four instances
    speeds up on them, but never past the bucket's own refill, whatever the others are spending meanwhile."""
    clock = MonotonicClock()
    budget = ClassBudget(BudgetClass.INVITATIONS, Quota(150, 5.0), clock, jitter=lambda: 0.0, share=0.25)
    budget.queued = 4.0
    for _ in range(2000):  # requests always waiting: each books when its turn comes, answered at once
        clock.now += max(0.0, budget.wait_needed() - 0.25)
        clock.now += budget.book(1)
        budget.observe(None)
    assert budget.rate == pytest.approx(budget.quota.refill_per_second)


def _an_eighth_with_a_full_queue(clock: MonotonicClock) -> ClassBudget:
    """One of eight instances (2.5 writes/s) with 64 writes booked past target: the last goes out at 25.6 s."""
    budget = _writes(clock, share=1 / 8)
    budget.hold_at_target()
    waits = [budget.book(1) for _ in range(64)]
    assert waits[-1] == pytest.approx(25.6)
    return budget


def test_a_rising_level_cuts_the_pace_once_until_what_was_booked_before_has_gone_out() -> None:
    """Graph's level keeps rising while the writes booked before a cut go out at their booked instants: that
    says nothing new about the cut pace, so the pace is cut once, and again only once those writes are out."""
    clock = MonotonicClock()
    budget = _an_eighth_with_a_full_queue(clock)
    for step in range(8):  # 24 s of ever higher levels, one report per adjustment step (3 s)
        clock.now += budget.adjust_every
        budget.observe(0.94 + 0.001 * step)
    assert budget.rate_factor == pytest.approx(0.85)
    clock.now += 2.0  # past the last write booked before the cut
    budget.observe(0.98)
    clock.now += budget.adjust_every
    budget.observe(0.99)
    assert budget.rate_factor == pytest.approx(0.85 * 0.85)


def test_429s_to_requests_booked_before_a_cut_do_not_cut_the_pace_again() -> None:
    """Each 429 pauses the class, but refusals of writes booked before the first cut cut the pace once."""
    clock = MonotonicClock()
    budget = _an_eighth_with_a_full_queue(clock)
    for _ in range(20):  # a refusal a second for 20 s, each past the adjustment step of 3 s
        budget.throttle(0.05)
        clock.now += 1.0
    assert budget.rate_factor == pytest.approx(0.7)
    assert budget.throttled == 20


def _sleeping(meanwhile: Callable[[GraphBudget, list[float]], None]) -> tuple[GraphBudget, list[float]]:
    """A budget whose sleeps move its clock on, record their length and let ``meanwhile`` happen."""
    clock = MonotonicClock()
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.now += seconds
        meanwhile(budget, slept)

    budget = GraphBudget(clock=clock, sleep=sleep)
    return budget, slept


def test_a_request_already_waiting_its_turn_also_waits_out_a_429_that_came_meanwhile() -> None:
    """Booked before Graph refused another request, a waiting request would go out into the same refusal: when
    its turn comes it waits until the pause ends instead."""

    def answered_429_once(budget: GraphBudget, slept: list[float]) -> None:
        if len(slept) == 1:  # while it waits its turn, another request is answered 429 with Retry-After 3
            budget.throttle("t", "a", BudgetClass.WRITES, 3.0)

    budget, slept = _sleeping(answered_429_once)
    writes = budget.budget("t", "a", BudgetClass.WRITES)
    writes.jitter = lambda: 0.0
    writes.hold_at_target()
    asyncio.run(budget.acquire("t", "a", {BudgetClass.WRITES: 1}))
    assert slept == pytest.approx([0.05, 3.0])


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


def _eighth_of_the_writes_slowed() -> tuple[GraphBudget, list[float]]:
    """One of eight instances on the write budget (2.5 writes/s), its pace halved by Graph's answers: 1.25/s."""
    slept: list[float] = []

    clock = MonotonicClock()

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.now += seconds

    budget = GraphBudget(clock=clock, sleep=sleep)
    writes = budget.budget("t", "a", BudgetClass.WRITES)
    writes.share, writes.rate_factor, writes.jitter = 1 / 8, 0.5, lambda: 0.0
    writes.hold_at_target()
    return budget, slept


def test_a_wait_limit_that_follows_the_slots_lets_a_full_queue_wait_its_turn() -> None:
    """15 writes of other messages wait their turn ahead of this one at 1.25/s: it waits 12.8 s. A fixed 10 s
    limit hands it back to the queue (to repeat its reads later); WaitLimit(16) lets it wait, since a full
    queue explains the wait."""
    budget, slept = _eighth_of_the_writes_slowed()
    budget.budget("t", "a", BudgetClass.WRITES).queued = 15
    with pytest.raises(BudgetWaitTooLong) as refused:
        asyncio.run(budget.acquire("t", "a", {BudgetClass.WRITES: 1}, max_wait=10.0))
    assert refused.value.wait_seconds == pytest.approx(16 / 1.25)
    asyncio.run(budget.acquire("t", "a", {BudgetClass.WRITES: 1}, max_wait=WaitLimit(16)))
    assert sum(slept) == pytest.approx(1 / 1.25)  # its own turn; the fifteen ahead were only counted
    assert WaitLimit(16).seconds(budget.budget("t", "a", BudgetClass.WRITES)) == pytest.approx(1.5 * 16 / 1.25)


def test_a_request_waiting_its_turn_goes_out_at_the_share_it_has_when_its_turn_comes() -> None:
    """Requests book their units only when their turn is near: when the lease gives this process a larger share
    while one waits (the other instances ran out of work), it goes out at the larger share's pace, not at the
    eighth it met."""

    def others_ran_out_of_work(budget: GraphBudget, slept: list[float]) -> None:
        budget.budget("t", "a", BudgetClass.WRITES).share = 1.0

    budget, slept = _sleeping(others_ran_out_of_work)
    writes = budget.budget("t", "a", BudgetClass.WRITES)
    writes.share = 1 / 8
    writes.hold_at_target()
    at_an_eighth = writes.wait_needed()
    asyncio.run(budget.acquire("t", "a", {BudgetClass.WRITES: 1}))
    assert at_an_eighth == pytest.approx(8 / 20)
    assert sum(slept) < at_an_eighth / 2


def test_requests_take_their_turns_in_the_order_they_came_and_publish_how_many_wait() -> None:
    """First come, first served per binding class; the most that waited at once while the process was held to
    its pace is what the lease publishes."""
    clock = MonotonicClock()
    order: list[int] = []

    async def sleep(seconds: float) -> None:
        clock.now += seconds
        await asyncio.sleep(0)

    budget = GraphBudget(clock=clock, sleep=sleep)
    writes = budget.budget("t", "a", BudgetClass.WRITES)
    writes.share = 1 / 8
    writes.hold_at_target()

    async def request(n: int) -> None:
        await budget.acquire("t", "a", {BudgetClass.RESOURCE_UNITS: 1, BudgetClass.WRITES: 1})
        order.append(n)

    async def run() -> None:
        await asyncio.gather(*(request(n) for n in range(6)))

    asyncio.run(run())
    assert order == list(range(6))
    # The first was held before the other five came; the second found all five waiting.
    assert writes.queued == 0 and writes.take_peak_queued() == 5 and writes.take_peak_queued() == 0


def test_a_wait_limit_still_refuses_what_a_full_queue_does_not_explain() -> None:
    """A long Retry-After is handed back to the queue (the ceiling), and a process alone at the full rate keeps
    the 10 s floor rather than a limit of a second or two."""
    budget, slept = _eighth_of_the_writes_slowed()
    budget.throttle("t", "a", BudgetClass.WRITES, 300.0)
    with pytest.raises(BudgetWaitTooLong) as refused:
        asyncio.run(budget.acquire("t", "a", {BudgetClass.WRITES: 1}, max_wait=WaitLimit(16)))
    assert refused.value.wait_seconds == pytest.approx(300.0)
    assert slept == []
    alone = ClassBudget(BudgetClass.WRITES, Quota(3000, 150.0), MonotonicClock())
    assert WaitLimit(16).seconds(alone) == 10.0
    slowed_to_nothing = ClassBudget(
        BudgetClass.WRITES, Quota(3000, 150.0), MonotonicClock(), share=0.25, rate_factor=0.02
    )
    assert WaitLimit(16).seconds(slowed_to_nothing) == 120.0


def test_budgets_are_kept_per_tenant_and_app() -> None:
    """A pause for one tenant's writes does not hold back another tenant's."""
    budget = GraphBudget(clock=MonotonicClock())
    budget.throttle("tenant-a", "app", BudgetClass.WRITES, 30.0)
    assert budget.budget("tenant-b", "app", BudgetClass.WRITES).wait_needed() == 0.0
