"""The shared lease over the in-memory ledger: shares from live rows, liveness by observed change,
no burst into a bucket others spend, and a failing ledger that never stops work."""

from __future__ import annotations

import asyncio

import pytest

from graph.budget import BudgetClass, GraphBudget
from graph.budget_lease import BudgetLease, divide, scope_name
from graph.budget_ledger import MemoryBudgetLedger
from tests.fakes import MonotonicClock

KEY = ("tenant", "app", BudgetClass.WRITES)
COSTS = {BudgetClass.WRITES: 1}


async def _no_sleep(seconds: float) -> None:
    return None


def _instance(ledger: MemoryBudgetLedger, clock: MonotonicClock, name: str) -> tuple[GraphBudget, BudgetLease]:
    budget = GraphBudget(clock=clock, sleep=_no_sleep)
    lease = BudgetLease(ledger, member=name, heartbeat_seconds=2.0, clock=clock).attach(budget)
    return budget, lease


def _share(budget: GraphBudget) -> float:
    return budget.budget(*KEY).share


def test_instances_on_one_ledger_take_a_share_each() -> None:
    """Three instances spending one bucket each pace at a third of it once they have seen each other."""

    async def run() -> list[float]:
        ledger, clock = MemoryBudgetLedger(), MonotonicClock()
        instances = [_instance(ledger, clock, f"i{n}") for n in range(3)]
        for budget, _ in instances:
            await budget.prepare("tenant", "app", COSTS)
        for _, lease in instances:
            await lease.refresh()
        shares = [_share(budget) for budget, _ in instances]
        for _, lease in instances:
            await lease.close()
        return shares

    assert asyncio.run(run()) == pytest.approx([1 / 3] * 3)


def test_a_row_that_stops_changing_stops_counting_after_the_lease_period() -> None:
    """Liveness is judged by seeing a row's version change: a crashed instance's row, never rewritten,
    counts until a lease period has passed without change, then its share goes to the live ones."""

    async def run() -> tuple[float, float, float]:
        ledger, clock = MemoryBudgetLedger(), MonotonicClock()
        budget, lease = _instance(ledger, clock, "live")
        await ledger.beat(scope_name(KEY), "crashed", 5.0)
        await budget.prepare("tenant", "app", COSTS)
        first = _share(budget)
        clock.now += lease.lease_seconds - 0.5
        await lease.refresh()
        within = _share(budget)
        clock.now += 1.0
        await lease.refresh()
        after = _share(budget)
        await lease.close()
        return first, within, after

    assert asyncio.run(run()) == pytest.approx((0.5, 0.5, 1.0))


def test_a_row_left_behind_for_three_lease_periods_is_deleted() -> None:
    async def run() -> list[str]:
        ledger, clock = MemoryBudgetLedger(), MonotonicClock()
        budget, lease = _instance(ledger, clock, "live")
        await ledger.beat(scope_name(KEY), "crashed", 0.0)
        await budget.prepare("tenant", "app", COSTS)
        clock.now += 3 * lease.lease_seconds + 1
        await lease.refresh()
        members = sorted(row.member for row in await ledger.rows(scope_name(KEY)))
        await lease.close()
        return members

    assert asyncio.run(run()) == ["live"]


def test_an_instance_that_closes_hands_its_share_back_at_the_next_heartbeat() -> None:
    async def run() -> tuple[float, float]:
        ledger, clock = MemoryBudgetLedger(), MonotonicClock()
        (first, first_lease), (second, second_lease) = (_instance(ledger, clock, n) for n in ("a", "b"))
        await first.prepare("tenant", "app", COSTS)
        await second.prepare("tenant", "app", COSTS)
        await first_lease.refresh()
        before = _share(first)
        await second_lease.close()
        await first_lease.refresh()
        after = _share(first)
        await first_lease.close()
        return before, after

    assert asyncio.run(run()) == pytest.approx((0.5, 1.0))


def test_joining_a_bucket_others_spend_starts_without_a_burst() -> None:
    """A new instance whose peers spent the bucket in their last heartbeat starts at their level (target):
    its first request already waits for the refill instead of bursting into a bucket held at 90 %."""

    async def run() -> tuple[float, float]:
        ledger, clock = MemoryBudgetLedger(), MonotonicClock()
        await ledger.beat(scope_name(KEY), "busy-peer", 120.0)
        joiner, lease = _instance(ledger, clock, "joiner")
        await joiner.prepare("tenant", "app", COSTS)
        wait = joiner.budget(*KEY).book(1)
        await lease.close()
        ledger2 = MemoryBudgetLedger()
        await ledger2.beat(scope_name(KEY), "idle-peer", 0.0)
        fresh, lease2 = _instance(ledger2, clock, "fresh")
        await fresh.prepare("tenant", "app", COSTS)
        fresh_wait = fresh.budget(*KEY).book(1)
        await lease2.close()
        return wait, fresh_wait

    wait, fresh_wait = asyncio.run(run())
    assert wait > 0
    assert fresh_wait == 0.0


def test_a_failing_ledger_never_stops_requests_and_falls_back_to_headers_alone() -> None:
    """Storage down at join: the request goes ahead at once with the whole bucket (header-driven pacing).
    Storage down later: the last share holds for a lease period, then it goes back to 1.0."""

    async def run() -> tuple[float, float, float, float]:
        ledger, clock = MemoryBudgetLedger(), MonotonicClock()
        ledger.fail = ConnectionError("storage unreachable")
        budget, lease = _instance(ledger, clock, "alone")
        await budget.acquire("tenant", "app", COSTS)
        at_join = _share(budget)
        ledger.fail = None
        await ledger.beat(scope_name(KEY), "peer", 1.0)
        await lease.refresh()
        recovered = _share(budget)
        ledger.fail = ConnectionError("storage unreachable")
        clock.now += 1.0
        await lease.refresh()
        held = _share(budget)
        clock.now += lease.lease_seconds
        await lease.refresh()
        fallen_back = _share(budget)
        ledger.fail = None
        await lease.close()
        return at_join, recovered, held, fallen_back

    assert asyncio.run(run()) == pytest.approx((1.0, 0.5, 0.5, 1.0))


def test_a_ledger_that_hangs_delays_the_first_request_by_the_join_timeout_at_most() -> None:
    class HangingLedger(MemoryBudgetLedger):
        async def beat(self, scope: str, member: str, spent: float, waiting: float = 0.0) -> None:
            await asyncio.sleep(60)

    async def run() -> float:
        budget = GraphBudget()
        lease = BudgetLease(HangingLedger(), member="m", join_timeout=0.2).attach(budget)
        loop = asyncio.get_running_loop()
        started = loop.time()
        await budget.acquire("tenant", "app", COSTS)
        elapsed = loop.time() - started
        await lease.close()
        return elapsed

    assert asyncio.run(run()) < 1.0


def test_an_idle_scope_is_left_so_it_holds_no_share() -> None:
    """An instance that stopped spending a bucket deletes its row; the others no longer count it."""

    async def run() -> list[str]:
        ledger, clock = MemoryBudgetLedger(), MonotonicClock()
        budget, lease = _instance(ledger, clock, "idle")
        lease.idle_seconds = 10.0
        await budget.prepare("tenant", "app", COSTS)
        clock.now += 11.0
        task = asyncio.get_running_loop().create_task(lease._run())
        await asyncio.sleep(0.01)
        task.cancel()
        members = [row.member for row in await ledger.rows(scope_name(KEY))]
        assert not lease.knows(KEY)
        await lease.close()
        return members

    assert asyncio.run(run()) == []


def test_close_deletes_this_instances_rows_and_detaches_from_the_budget() -> None:
    async def run() -> tuple[list, object]:
        ledger, clock = MemoryBudgetLedger(), MonotonicClock()
        budget, lease = _instance(ledger, clock, "leaving")
        await budget.prepare("tenant", "app", COSTS)
        await lease.close()
        return await ledger.rows(scope_name(KEY)), budget.coordinator

    rows, coordinator = asyncio.run(run())
    assert rows == [] and coordinator is None


def test_bootstrap_wires_a_lease_on_the_shared_budget_through_the_same_door_as_other_ports() -> None:
    """bootstrap takes ``budget_ledger`` like any other port; the lease it builds paces the process-wide
    budget every Graph client uses, and closing the services deletes the rows and detaches it."""
    from adapters.memory import MemoryDriftReports, MemorySweepRuns
    from app.bootstrap import bootstrap
    from graph.budget import shared_budget
    from tests.builders import memory_services

    async def run() -> tuple[object, list, object]:
        fakes = memory_services()
        ports = ("directory", "access_packages", "work_items", "guests", "audit", "rejections", "transport")
        ledger = MemoryBudgetLedger()
        services = await bootstrap(
            fakes.settings,
            desired=fakes.desired,
            clock=fakes.clock,
            sweep_runs=MemorySweepRuns(),
            drift_reports=MemoryDriftReports(),
            budget_ledger=ledger,
            **{name: getattr(fakes, name) for name in ports},
        )
        coordinator = shared_budget().coordinator
        await shared_budget().prepare("tenant", "app", COSTS)
        rows = await ledger.rows(scope_name(KEY))
        await services.close()
        return coordinator, rows, shared_budget().coordinator

    coordinator, rows, after = asyncio.run(run())
    assert isinstance(coordinator, BudgetLease)
    assert len(rows) == 1
    assert after is None


def test_an_instance_with_requests_waiting_takes_what_idle_instances_leave() -> None:
    """Functions hands messages out unevenly: an instance still holding a queue takes the parts of the instances
    that have none (once they have been live for a lease period: one starting up is not idle), shares them with
    the others that have requests waiting, and keeps 1/n once its own queue is gone."""

    async def run() -> tuple[float, float, float, float]:
        ledger, clock = MemoryBudgetLedger(), MonotonicClock()
        budget, lease = _instance(ledger, clock, "busy")
        writes = budget.budget(*KEY)

        async def beat(waiting: float = 0.0) -> float:
            for idle in ("idle-1", "idle-2"):
                await ledger.beat(scope_name(KEY), idle, 0.0)
            await ledger.beat(scope_name(KEY), "other", 3.0, waiting=waiting)
            writes.held()
            await lease.refresh()
            clock.now += lease.heartbeat_seconds
            return _share(budget)

        await budget.prepare("tenant", "app", COSTS)
        writes.queued = 16
        starting = await beat()
        clock.now += lease.lease_seconds
        others_satisfied = await beat()
        both_waiting = await beat(waiting=8.0)
        writes.queued = 0
        drained = await beat(waiting=8.0)
        await lease.close()
        return starting, others_satisfied, both_waiting, drained

    assert asyncio.run(run()) == pytest.approx((0.25, 0.75, 0.5, 0.25))


@pytest.mark.parametrize(
    ("waiting", "others", "share"),
    [
        (0.0, [(True, False)] * 3, 0.25),  # nothing waiting here: 1/n, whatever the others do
        (4.0, [(False, True)] * 3, 0.25),  # every instance has work: 1/n each
        (4.0, [(True, False)] * 3, 1.0),  # the others are idle: all of it
        (4.0, [(True, False), (False, False), (False, True)], 0.375),  # one idle part, split between two
        (4.0, [(False, False)], 0.5),  # an instance spending what it needs keeps its part
    ],
)
def test_divide_gives_idle_instances_parts_to_those_with_requests_waiting(waiting, others, share) -> None:
    assert divide(waiting, others) == pytest.approx(share)


def test_an_instance_back_from_idle_while_others_spent_starts_where_it_left_its_part() -> None:
    """Its heartbeat showed it idle while another instance spent: that instance may have spent this part's refill
    meanwhile, so the work that arrives next starts from the level the part was left at and is announced at once.
    After a paced run that is the target (no burst); an instance that has booked nothing since it joined keeps its
    first burst (a larger share paces the others faster, it never spends another part's burst: the row starts in
    the bench began 16 to 25 invitations short and never caught up); one idle beside idle ones keeps its burst."""

    async def back_from_idle(booked_first: bool) -> tuple[float, float]:
        ledger, clock = MemoryBudgetLedger(), MonotonicClock()
        budget, lease = _instance(ledger, clock, "back")
        await budget.prepare("tenant", "app", COSTS)
        writes = budget.budget(*KEY)
        part = writes.share * writes.quota.capacity  # alone at the join: the whole bucket
        if booked_first:
            writes.book(part * writes.target)  # a paced run: its part at target
            await lease.refresh()
            clock.now += 300  # then idle long enough for its own model to refill completely
        await ledger.beat(scope_name(KEY), "busy", 40.0, waiting=16.0)
        await lease.refresh()
        clock.now += 0.5
        burst = 0.8 * writes.target * writes.share * writes.quota.capacity
        wait = writes.book(burst)
        # and it beats at once, so the others hear of it at their next heartbeat, not one later
        assert lease._scopes[KEY].due == clock.now
        await ledger.beat(scope_name(KEY), "busy", 0.0)
        await lease.refresh()
        writes.level = 0.0
        after_all_idle = writes.wait_needed()
        await lease.close()
        return wait, after_all_idle

    paced, free = asyncio.run(back_from_idle(booked_first=True))
    assert paced > 0 and free == 0.0
    kept_burst, free = asyncio.run(back_from_idle(booked_first=False))
    assert kept_burst == 0.0 and free == 0.0


def test_the_others_take_the_part_of_an_instance_whose_queue_drained_within_a_heartbeat() -> None:
    """The last messages of a queue sit unevenly on the instances: one whose held requests are all gone says so at
    once and again after a short quiet, and one still holding requests reads the rows twice as often, so it takes
    the idle part within one heartbeat (it took two to three: the idle row had to cover a whole heartbeat and
    then be read at the next). The heartbeat loops run for real, on a clock the test moves no faster than time
    passes."""

    async def run() -> tuple[float, float]:
        ledger, clock = MemoryBudgetLedger(), MonotonicClock()

        async def sleep(seconds: float) -> None:
            clock.now += seconds

        drains = GraphBudget(clock=clock, sleep=sleep)
        drains_lease = BudgetLease(ledger, member="drains", heartbeat_seconds=2.0, clock=clock).attach(drains)
        busy, busy_lease = _instance(ledger, clock, "busy")
        for budget in (drains, busy):
            await budget.prepare("tenant", "app", COSTS)
        for _ in range(4):  # live together for longer than a lease period: neither is starting up any more
            clock.now += drains_lease.heartbeat_seconds
            drains.budget(*KEY).book(1)
            for lease in (drains_lease, busy_lease):
                await lease.refresh()
        busy_writes = busy.budget(*KEY)
        busy_writes.queued = 8
        busy_writes.held()
        await busy_lease.refresh()
        before = _share(busy)

        drains_writes = drains.budget(*KEY)
        drains_writes.level = drains_writes.target  # held to its pace: this request waits its turn, then none does
        await drains.acquire("tenant", "app", COSTS)
        drained_at = clock.now
        while _share(busy) < 1.0 and clock.now - drained_at < 3 * drains_lease.heartbeat_seconds:
            busy_writes.held()  # its requests keep waiting their turn
            clock.now += 0.05
            await asyncio.sleep(0.05)  # the heartbeat loops wait in real time: the clock moves at its pace
        taken_after = clock.now - drained_at
        for lease in (drains_lease, busy_lease):
            await lease.close()
        return before, taken_after

    before, taken_after = asyncio.run(run())
    assert before == pytest.approx(0.5)
    assert taken_after <= 2.0


def test_close_returns_while_the_heartbeat_loop_is_being_woken() -> None:
    """A wake-up (work back from idle, a drained queue) meeting the cancellation of the heartbeat loop must not
    swallow it: close() waited for that loop forever (asyncio.wait_for on Python 3.11)."""

    async def run() -> bool:
        budget = GraphBudget()
        lease = BudgetLease(MemoryBudgetLedger(), member="closing", heartbeat_seconds=0.002).attach(budget)
        await budget.prepare("tenant", "app", COSTS)
        scope = lease._scopes[KEY]

        async def wake_constantly() -> None:
            while True:
                lease._beat_now(scope)
                await asyncio.sleep(0)

        waking = asyncio.ensure_future(wake_constantly())
        await asyncio.sleep(0.01)
        closing = asyncio.ensure_future(lease.close())
        done, _ = await asyncio.wait((closing,), timeout=2.0)
        waking.cancel()
        return closing in done

    assert asyncio.run(run())


def test_a_cancellation_that_meets_the_joins_answer_is_not_swallowed() -> None:
    """A message's handler cancelled (its lock lost, the host stopping) while its first request joins the lease:
    the join's answer arriving in the same step must not drop the cancellation and let the handler go on
    (asyncio.wait_for on Python 3.11 returned the answer instead)."""

    class CancellingLedger(MemoryBudgetLedger):
        joiner: asyncio.Task[str] | None = None

        async def rows(self, scope: str):  # type: ignore[no-untyped-def]
            answer = await super().rows(scope)
            if self.joiner is not None:
                self.joiner.cancel()
                self.joiner = None
            return answer

    async def run() -> str:
        ledger = CancellingLedger()
        budget = GraphBudget()
        lease = BudgetLease(ledger, member="joining", heartbeat_seconds=60.0).attach(budget)

        async def join_then_go_on() -> str:
            await budget.prepare("tenant", "app", COSTS)
            await asyncio.sleep(0)
            return "went on"

        joining = asyncio.ensure_future(join_then_go_on())
        ledger.joiner = joining
        try:
            outcome = await joining
        except asyncio.CancelledError:
            outcome = "cancelled"
        await lease.close()
        return outcome

    assert asyncio.run(run()) == "cancelled"
