"""The on-call stop of a run under way: a halted sweep or reset run writes nothing more once its workers re-read
the run's status (within RUN_STATUS_TTL), its messages complete with `run-halted`, and a resume finishes it
without acting on any guest twice."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from adapters.memory import MemorySweepRuns
from app.cli.summaries import reset_summary, sweep_summary
from lifecycle.clock import FixedClock
from lifecycle.ledger.outcomes import Verdict
from lifecycle.ledger.settle import process
from lifecycle.ledger.status import status
from lifecycle.models import WorkStatus
from lifecycle.reset import runs as reset_runs
from lifecycle.reset.entry import halt_reset_run, resume_reset_run, run_reset_detection, show
from lifecycle.reset.items import planned_key
from lifecycle.reset.runs import ResetRunError
from lifecycle.runs.halt import RUN_HALTED, RUN_STATUS_TTL
from lifecycle.runs.model import DailyRun, RunStatus
from lifecycle.sweep import entry
from lifecycle.sweep.actions import RunGate
from lifecycle.sweep.ports import SweepPorts
from lifecycle.sweep.runner import SweepError
from tests.builders import NOW
from tests.builders.reset import redeemed, resets_sent, services_with
from tests.builders.sweep import QUEUE, RUN, add, audit_actions, run_worker, stack
from tests.fakes import FakeDirectory, FakeLookup

OPERATOR = "oncall@contoso.com"
PAST_TTL = RUN_STATUS_TTL + timedelta(seconds=1)


class CountingRuns(MemorySweepRuns):
    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    async def get(self, run_id: str) -> DailyRun | None:
        self.reads += 1
        await asyncio.sleep(0)  # a Table read gives the event loop to the other messages
        return await super().get(run_id)


async def _dispatched_run(runs: MemorySweepRuns, run_id: str = RUN) -> DailyRun:
    from lifecycle.plans import Mode

    return await runs.create(DailyRun(run_id, Mode.ENFORCE, RunStatus.DISPATCHED, started=NOW, updated=NOW))


async def test_the_gate_reads_a_released_run_once_per_ttl_not_once_per_message():
    """Within the TTL a released run costs no read however many messages arrive; past it the run is read again."""
    runs, clock = CountingRuns(), FixedClock(NOW)
    await _dispatched_run(runs)
    gate = RunGate(SweepPorts(runs=runs, guest_reads=FakeDirectory()), clock)
    assert all([await gate.released(RUN) for _ in range(50)])
    assert runs.reads == 1
    clock.advance(RUN_STATUS_TTL - timedelta(seconds=1))
    assert await gate.released(RUN) and runs.reads == 1
    clock.advance(timedelta(seconds=2))
    assert await gate.released(RUN) and runs.reads == 2


async def test_the_gate_sees_a_halt_within_the_ttl_and_a_resume_at_once():
    """A halt reaches a worker that cached the run as released once the TTL is past; a halted run is never cached,
    so the resume's messages are acted on at once, not refused by a stale halted status."""
    runs, clock = CountingRuns(), FixedClock(NOW)
    run = await _dispatched_run(runs)
    gate = RunGate(SweepPorts(runs=runs, guest_reads=FakeDirectory()), clock)
    assert await gate.status(RUN) is RunStatus.DISPATCHED
    run.status = RunStatus.HALTED
    run = await runs.save(run)
    assert await gate.status(RUN) is RunStatus.DISPATCHED  # still within the TTL
    clock.advance(PAST_TTL)
    assert await gate.status(RUN) is RunStatus.HALTED
    run.status = RunStatus.DISPATCHING
    await runs.save(run)
    assert await gate.status(RUN) is RunStatus.DISPATCHING  # no clock move: read again at once


async def _approved_sweep(directory: FakeDirectory, guests: int):
    clock = FixedClock(NOW)
    made = [add(directory, days_since_sign_in=120) for _ in range(guests)]
    services = stack(directory, clock, brake=True)
    summary = await entry.run_sweep(services, "enforce")
    assert summary["status"] == "braked"
    approved = await entry.approve(services, summary["runId"], OPERATOR)
    assert approved["status"] == "dispatched" and approved["dispatched"] == guests
    return services, clock, made


def _disabled(directory: FakeDirectory) -> list[str]:
    return [w[1] for w in directory.writes if w[0] == "accountEnabled"]


async def test_a_halted_sweep_writes_nothing_more_and_a_resume_finishes_it_without_acting_twice():
    """One disable lands, the run is halted: the remaining messages complete with run-halted (no dead letter,
    no retry), the guests are untouched and have no finished work item. The resume disables each of them once."""
    directory = FakeDirectory()
    services, clock, guests = await _approved_sweep(directory, 4)
    queue = services.settings.queue_name(QUEUE)
    [first] = await services.transport.receive(queue, max_messages=1)
    assert (await process(queue, first, entry.handle_guest_action, services)).verdict is Verdict.DONE
    halted = await entry.halt(services, RUN, OPERATOR, "partner sign-in data missing")
    assert halted["status"] == "halted" and halted["halt"]["haltedBy"] == OPERATOR
    assert f"python -m lifecycle resume {RUN}" in halted["reason"]
    clock.advance(PAST_TTL)
    report = await run_worker(services)
    assert [o.code for o in report.outcomes] == [RUN_HALTED] * 3
    assert {o.verdict for o in report.outcomes} == {Verdict.HELD}
    assert await services.transport.depth(queue) == (0, 0)
    assert len(_disabled(directory)) == 1
    for outcome in report.outcomes:
        item = await services.work_items.get(outcome.key)
        assert item is None or item.status is not WorkStatus.DONE

    resumed = await entry.resume(services, RUN, OPERATOR)
    assert resumed["status"] == "dispatched" and resumed["halt"]["resumedBy"] == OPERATOR
    report = await run_worker(services)
    assert sorted(_disabled(directory)) == sorted(g.id for g in guests)
    assert {"sweep.halted", "sweep.resumed"} <= set(await audit_actions(services))
    again = await entry.resume(services, RUN, OPERATOR)  # idempotent: nothing halted, nothing sent
    assert again["status"] == "dispatched" and await services.transport.depth(queue) == (0, 0)


async def test_a_halt_is_refused_for_a_run_not_under_way_and_approve_points_a_halted_run_to_resume():
    directory = FakeDirectory()
    add(directory, days_since_sign_in=120)
    services = stack(directory, brake=True)
    await entry.run_sweep(services, "enforce")
    with pytest.raises(SweepError, match="not dispatched"):
        await entry.halt(services, RUN, OPERATOR, "wrong rule")
    await entry.approve(services, RUN, OPERATOR)
    await entry.halt(services, RUN, OPERATOR, "wrong rule")
    again = await entry.halt(services, RUN, "someone-else", "second press")  # already halted: unchanged
    assert again["halt"]["haltedBy"] == OPERATOR
    with pytest.raises(SweepError, match=f"resume {RUN}"):
        await entry.approve(services, RUN, OPERATOR)
    assert (await audit_actions(services)).count("sweep.halted") == 1


async def test_status_and_the_summary_name_who_halted_a_run_why_and_the_resume_command():
    directory = FakeDirectory()
    services, _, _ = await _approved_sweep(directory, 2)
    await entry.halt(services, RUN, OPERATOR, "bad rule in the desired state")
    found = await status(services, entry.sweep_ports(services).runs)
    [flag] = [f for f in found["attention"] if f["runId"] == RUN]
    assert flag["kind"] == "halted" and OPERATOR in flag["detail"] and "bad rule" in flag["detail"]
    assert flag["next"].endswith(f"python -m lifecycle resume {RUN}")
    text = sweep_summary(await entry.show(services, RUN))
    assert f"HALTED by {OPERATOR}" in text and f"python -m lifecycle resume {RUN}" in text


async def test_a_run_fired_again_while_halted_stays_halted():
    """The timer (or `run --run-id`) landing on a halted run neither plans nor dispatches it: only resume does."""
    directory = FakeDirectory()
    services, _, _ = await _approved_sweep(directory, 2)
    await entry.halt(services, RUN, OPERATOR, "stop")
    assert (await entry.run_sweep(services, "enforce", RUN))["status"] == "halted"


async def test_a_halted_reset_run_resets_nobody_more_and_its_resume_resets_each_guest_once():
    directory = FakeDirectory()
    guests = [redeemed(directory, f"p{n}@fabrikam.com", "google") for n in range(3)]
    services = services_with(directory, FakeLookup())
    queue = services.settings.queue_name(QUEUE)
    summary = await run_reset_detection(services, "enforce", "reset-halt")
    assert summary["status"] == "dispatched"
    halted = await halt_reset_run(services, "reset-halt", OPERATOR, "wrong provider mapping")
    assert halted["status"] == "halted"
    assert (await run_reset_detection(services, "enforce", "reset-halt"))["status"] == "halted"
    [probe] = await services.transport.receive(queue, max_messages=32)
    outcome = await process(queue, probe, entry.handle_guest_action, services)
    assert (outcome.verdict, outcome.code) == (Verdict.HELD, RUN_HALTED)
    assert resets_sent(directory) == [] and await services.transport.depth(queue) == (0, 0)
    for guest in guests:
        item = await services.work_items.get(planned_key("reset-halt", guest.id))
        assert item is not None and item.status is WorkStatus.QUEUED
    shown = await show(services, "reset-halt")
    assert shown is not None and "HALTED by" in reset_summary(shown)
    with pytest.raises(ResetRunError, match="resume reset-halt"):
        await reset_runs.approve(services, entry.sweep_ports(services).runs, "reset-halt", OPERATOR)

    resumed = await resume_reset_run(services, "reset-halt", OPERATOR)
    assert resumed["status"] == "dispatched"
    await run_worker(services)
    assert sorted(resets_sent(directory)) == sorted(g.id for g in guests)


@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("halt", {"runId": RUN}),  # no reason
        ("halt", {"runId": RUN, "reason": "  "}),
        ("halt", {"runId": "drift-2026-11-23", "reason": "x"}),
        ("resume", {"runId": RUN, "reason": "x"}),  # resume takes no reason
        ("resume", {}),
    ],
)
def test_the_endpoint_refuses_halt_and_resume_arguments_it_cannot_use(name, args):
    from app.admin import admin_commands
    from lifecycle.admin.ports import AdminInputError

    with pytest.raises(AdminInputError) as refused:
        admin_commands()[name].parse(args)
    assert refused.value.code == "invalid-args"


async def test_a_runs_first_messages_arriving_together_share_one_read_of_it():
    """The first messages of a run reach a worker at once (64 of them in Azure): one run read between them."""
    runs, clock = CountingRuns(), FixedClock(NOW)
    await _dispatched_run(runs)
    gate = RunGate(SweepPorts(runs=runs, guest_reads=FakeDirectory()), clock)
    assert all(await asyncio.gather(*(gate.released(RUN) for _ in range(64))))
    assert runs.reads == 1


async def test_a_runs_first_messages_read_the_protected_group_once_between_them():
    """The protected group's members are read once per run, however many of its messages arrive together."""
    directory = FakeDirectory()
    services = stack(directory)
    group_id = services.desired.exclusions.protected_group_id
    assert group_id
    directory.add_to_group(group_id, "protected-guest")
    reads = []

    class CountingMembers:
        async def group_member_ids(self, group: str) -> set[str]:
            reads.append(group)
            await asyncio.sleep(0)
            return await directory.group_member_ids(group)

    gate = RunGate(SweepPorts(runs=MemorySweepRuns(), guest_reads=directory, membership=CountingMembers()))
    policies = await asyncio.gather(*(gate.policy(services, RUN) for _ in range(64)))
    assert reads == [group_id]
    assert {frozenset(p.protected_members) for p in policies} == {frozenset({"protected-guest"})}
