"""Sweep runs end to end on fakes: plan, brake, approval, fan-out and the re-checking worker."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from adapters.memory import MemorySweepRuns
from app.cli.summaries import sweep_exit_code, sweep_summary
from app.demo import sweep_demo
from lifecycle.clock import FixedClock
from lifecycle.errors import ThrottledError, TransientGraphError
from lifecycle.ledger.outcomes import Verdict
from lifecycle.models import DirectoryUser, GuestRecord, GuestState, ReceivedMessage, SignInActivity
from lifecycle.plans import Mode
from lifecycle.runs.model import RunStatus
from lifecycle.sweep import entry
from lifecycle.sweep.model import Action, PlannedAction, Rule
from lifecycle.sweep.runner import SweepError, action_message, occurrence_run_id
from tests.builders import NOW, memory_services
from tests.builders.sweep import QUEUE, RUN, add, audit_actions, relaxed, run_worker, stack
from tests.fakes import FakeDirectory

# --- run ids ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (datetime(2026, 11, 24, 1, 59, 59, tzinfo=UTC), "sweep-2026-11-23"),
        (datetime(2026, 11, 24, 2, 0, tzinfo=UTC), "sweep-2026-11-24"),
        (datetime.fromisoformat("2026-11-24T10:30:00+09:00"), "sweep-2026-11-23"),
        (datetime.fromisoformat("2026-11-23T18:30:00-08:00"), "sweep-2026-11-24"),
    ],
)
def test_a_run_id_names_the_nightly_occurrence_a_fire_belongs_to(moment, expected):
    """A late fire before 02:00 UTC the next day, in any time zone, belongs to the same nightly occurrence."""
    assert occurrence_run_id(moment) == expected


# --- plan, enforce, double fire ------------------------------------------------------------------------


async def test_plan_mode_stores_the_plan_with_evidence_and_sends_nothing():
    """A plan-mode run records per guest the action, rule and evidence, counts them, and fans nothing out."""
    directory = FakeDirectory()
    stale = add(directory, days_since_sign_in=120)
    add(directory, days_since_sign_in=3)
    services = stack(directory)
    summary = await entry.run_sweep(services, "plan")
    assert summary["status"] == "planned" and summary["totalGuests"] == 2
    assert summary["actions"] == {"disable/inactive": 1}
    assert await services.transport.depth(QUEUE) == (0, 0)
    shown = await entry.show(services, summary["runId"])
    assert shown is not None
    [action] = shown["plan"]
    assert action["objectId"] == stale.id and action["rule"] == "inactive"
    assert action["evidence"]["inactiveDays"] == 90
    assert "sweep.planned" in await audit_actions(services)


async def test_enforce_mode_disables_and_revokes_and_records_everything():
    """Enforce fans out; the worker disables, revokes sessions, marks the ledger and writes the audit trail."""
    directory = FakeDirectory()
    stale = add(directory, days_since_sign_in=120)
    services = stack(directory)
    summary = await entry.run_sweep(services, "enforce")
    assert summary["status"] == "dispatched" and summary["dispatched"] == 1
    report = await run_worker(services)
    assert report.by_verdict == {"done": 1}
    assert directory.writes == [("accountEnabled", stale.id, False), ("revokeSignInSessions", stale.id, None)]
    record = await services.guests.get(stale.id)
    assert record is not None and record.state is GuestState.DISABLED and record.disabled == NOW
    assert {"guest.disabled", "sweep.dispatched"} <= set(await audit_actions(services))


async def test_a_double_fired_timer_reuses_the_run_and_never_plans_twice():
    """The second fire of the same occurrence finds the run: no second enumeration, no second fan-out."""
    directory = FakeDirectory()
    add(directory, days_since_sign_in=120)
    services = stack(directory)
    first = await entry.on_timer(relaxed_enforce(services), past_due=False)
    second = await entry.on_timer(services, past_due=True)
    assert first["runId"] == second["runId"] == RUN
    assert directory.page_starts == [0]  # one enumeration
    assert await services.transport.depth(QUEUE) == (1, 0)


def relaxed_enforce(services):
    lifecycle = services.desired.lifecycle.model_copy(update={"scheduled_mode": "enforce"})
    services.desired = services.desired.model_copy(update={"lifecycle": lifecycle})
    return services


async def test_enforce_after_plan_acts_on_the_stored_plan():
    """Plan, then enforce the same run id: the stored plan is fanned out without enumerating again."""
    directory = FakeDirectory()
    add(directory, days_since_sign_in=120)
    services = stack(directory)
    await entry.run_sweep(services, "plan")
    directory.users.clear()  # a second enumeration would now find nobody
    summary = await entry.run_sweep(services, "enforce")
    assert summary["status"] == "dispatched" and summary["dispatched"] == 1


async def test_a_replayed_fan_out_deduplicates_on_the_work_item_key():
    """The same action delivered twice is carried out once."""
    directory = FakeDirectory()
    stale = add(directory, days_since_sign_in=120)
    services = stack(directory)
    await entry.run_sweep(services, "enforce")
    planned = PlannedAction(RUN, stale.id, Action.DISABLE, Rule.INACTIVE, "fabrikam")
    await services.transport.send(QUEUE, [action_message(planned)])
    report = await run_worker(services)
    assert sorted(report.by_verdict.elements()) == ["done", "duplicate"]
    assert [w for w in directory.writes if w[0] == "accountEnabled"] == [("accountEnabled", stale.id, False)]


async def test_plans_stream_to_the_store_one_page_at_a_time():
    """The planner writes each page's actions as the page arrives, never the whole plan at once."""
    directory = FakeDirectory()
    for _ in range(1_100):
        add(directory, days_since_sign_in=120)
    services = stack(directory)
    store = entry.sweep_ports(services).runs
    batches: list[int] = []
    original = store.add_actions

    async def spy(run_id, actions):
        batches.append(len(actions))
        await original(run_id, actions)

    store.add_actions = spy
    summary = await entry.run_sweep(services, "plan")
    assert summary["disable"] == 1_100
    assert batches == [500, 500, 100]


# --- the brake ------------------------------------------------------------------------------------------


async def test_the_brake_stops_a_large_run_until_an_operator_approves_it():
    """Too many disables: the run stops before acting, says why; approval records who and fans out."""
    directory = FakeDirectory()
    guests = [add(directory, days_since_sign_in=120) for _ in range(3)]
    services = stack(directory, brake=True)
    summary = await entry.run_sweep(services, "enforce")
    assert summary["status"] == "braked" and summary["brake"]["tripped"]
    assert "exceed" in summary["brake"]["reason"] and "approve" in summary["reason"]
    assert await services.transport.depth(QUEUE) == (0, 0)

    approved = await entry.approve(services, summary["runId"], "oncall@contoso.com")
    assert approved["status"] == "dispatched" and approved["dispatched"] == 3
    assert approved["brake"]["approvedBy"] == "oncall@contoso.com"
    await run_worker(services)
    assert {w[1] for w in directory.writes if w[0] == "accountEnabled"} == {g.id for g in guests}
    assert {"sweep.braked", "sweep.approved"} <= set(await audit_actions(services))
    with pytest.raises(SweepError, match="not braked"):
        await entry.approve(services, summary["runId"], "oncall@contoso.com")


async def test_the_worker_refuses_actions_of_a_run_that_was_never_released():
    """A message for a braked run (or a plan-only run) is rejected, and the guest is not touched."""
    directory = FakeDirectory()
    stale = add(directory, days_since_sign_in=120)
    services = stack(directory, brake=True)
    await entry.run_sweep(services, "enforce")
    planned = PlannedAction(RUN, stale.id, Action.DISABLE, Rule.INACTIVE)
    await services.transport.send(QUEUE, [action_message(planned)])
    report = await run_worker(services)
    assert [o.code for o in report.outcomes] == ["run-not-released"]
    assert directory.writes == []


# --- re-checks right before acting -------------------------------------------------------------------------


async def enforce_then(services, change) -> list:
    await entry.run_sweep(services, "enforce")
    await change()
    return (await run_worker(services)).outcomes


async def test_a_guest_that_signed_in_after_planning_is_not_disabled():
    """The decision went stale: it is dropped with a reason and audited, and no write reaches Graph."""
    directory = FakeDirectory()
    stale = add(directory, days_since_sign_in=120)
    services = stack(directory)

    async def signs_in():
        directory.put(replace(directory.users[stale.id], sign_in_activity=SignInActivity(last_successful_sign_in=NOW)))

    [outcome] = await enforce_then(services, signs_in)
    assert outcome.verdict is Verdict.DONE and outcome.code == "dropped:no-longer-eligible"
    assert directory.writes == []
    assert "guest.disable.dropped" in await audit_actions(services)


async def test_a_guest_whose_end_date_was_extended_after_planning_is_not_disabled():
    """A new end date written to the ledger between plan and action keeps the guest."""
    directory = FakeDirectory()
    user = add(directory, days_since_sign_in=1)
    services = stack(directory)
    await services.guests.save(
        GuestRecord(user.id, user.mail or "", "fabrikam", GuestState.ACTIVE, end_date=NOW - timedelta(days=1))
    )

    async def extended():
        record = await services.guests.get(user.id)
        assert record is not None
        record.end_date = NOW + timedelta(days=90)
        await services.guests.save(record)

    [outcome] = await enforce_then(services, extended)
    assert outcome.code == "dropped:no-longer-eligible"
    assert directory.writes == []


async def test_a_guest_promoted_to_member_after_planning_is_not_touched():
    """Members are never touched, even when a planned action for them is delivered."""
    directory = FakeDirectory()
    stale = add(directory, days_since_sign_in=120)
    services = stack(directory)

    async def promoted():
        directory.put(replace(directory.users[stale.id], user_type="Member"))

    [outcome] = await enforce_then(services, promoted)
    assert outcome.code == "dropped:no-longer-a-guest"
    assert directory.writes == []


async def disabled_by_us(services, directory: FakeDirectory, days_ago: int) -> DirectoryUser:
    user = add(directory, days_since_sign_in=300, account_enabled=False)
    record = GuestRecord(
        user.id, user.mail or "", "fabrikam", GuestState.DISABLED, disabled=NOW - timedelta(days=days_ago)
    )
    await services.guests.save(record)
    return user


async def test_a_guest_disabled_past_the_grace_period_is_soft_deleted():
    """Disabled by this product 30+ days ago and still eligible: deleted, ledger and audit say so."""
    directory = FakeDirectory()
    services = stack(directory)
    user = await disabled_by_us(services, directory, days_ago=31)
    summary = await entry.run_sweep(services, "enforce")
    assert summary["actions"] == {"delete/disabled-past-grace": 1}
    await run_worker(services)
    assert user.id in directory.deleted
    record = await services.guests.get(user.id)
    assert record is not None and record.state is GuestState.DELETED
    assert "guest.deleted" in await audit_actions(services)


async def test_a_guest_re_enabled_between_plan_and_delete_is_not_deleted():
    """Somebody re-enabled the guest after the plan: the deletion is dropped."""
    directory = FakeDirectory()
    services = stack(directory)
    user = await disabled_by_us(services, directory, days_ago=31)

    async def re_enabled():
        directory.put(replace(directory.users[user.id], account_enabled=True))

    [outcome] = await enforce_then(services, re_enabled)
    assert outcome.code == "dropped:re-enabled"
    assert user.id not in directory.deleted


# --- failures -----------------------------------------------------------------------------------------------


class RevokeFailsOnce(FakeDirectory):
    def __init__(self) -> None:
        super().__init__()
        self.failed = False

    async def revoke_sessions(self, user_id: str) -> None:
        if not self.failed:
            self.failed = True
            raise TransientGraphError("connection reset", status=None)
        await super().revoke_sessions(user_id)


async def test_a_crash_between_the_disable_and_the_ledger_write_resumes_without_a_second_disable():
    """The redelivered action sees its own recorded step, finishes the revoke and the ledger, and never drops."""
    directory = RevokeFailsOnce()
    stale = add(directory, days_since_sign_in=120)
    clock = FixedClock(NOW)
    services = stack(directory, clock=clock)
    await entry.run_sweep(services, "enforce")
    first = await run_worker(services)
    assert [o.verdict for o in first.outcomes] == [Verdict.RETRY]
    clock.advance(timedelta(minutes=5))
    second = await run_worker(services)
    assert [o.verdict for o in second.outcomes] == [Verdict.DONE] and second.outcomes[0].code == ""
    assert directory.writes == [("accountEnabled", stale.id, False), ("revokeSignInSessions", stale.id, None)]
    record = await services.guests.get(stale.id)
    assert record is not None and record.state is GuestState.DISABLED


class ThrottlesWrites(FakeDirectory):
    async def set_account_enabled(self, user_id: str, enabled: bool) -> None:
        raise ThrottledError("Please retry again later.", retry_after=7.5, status=429, code="TooManyRequests")


async def test_a_throttled_write_becomes_a_retry_after_graphs_retry_after():
    """A 429 is a retry outcome carrying Retry-After; the worker does not sleep and the copy is scheduled."""
    directory = ThrottlesWrites()
    add(directory, days_since_sign_in=120)
    services = stack(directory)
    await entry.run_sweep(services, "enforce")
    [outcome] = (await run_worker(services)).outcomes
    assert outcome.verdict is Verdict.RETRY and outcome.retry_after == 7.5
    assert directory.writes == []
    assert await services.transport.depth(QUEUE) == (1, 0)


async def test_a_protected_group_that_cannot_be_read_refuses_the_run():
    """Without a way to read the protected group the sweep plans nothing and records why."""
    directory = FakeDirectory()
    add(directory, days_since_sign_in=120)
    services = relaxed(memory_services(directory, sweep_runs=MemorySweepRuns(page_size=2), group_membership=None))
    summary = await entry.run_sweep(services, "enforce")
    assert summary["status"] == "failed" and "protected group" in summary["reason"]
    assert await services.transport.depth(QUEUE) == (0, 0)
    assert "sweep.refused" in await audit_actions(services)


async def test_protected_group_members_are_skipped_in_the_plan():
    """A guest in the protected group is counted as left alone, not planned."""
    directory = FakeDirectory()
    protected = add(directory, days_since_sign_in=400)
    services = stack(directory)
    directory.add_to_group(services.desired.exclusions.protected_group_id, protected.id)
    summary = await entry.run_sweep(services, "plan")
    assert summary["actions"] == {} and summary["skipped"] == {"protected-group": 1}


async def test_a_malformed_action_message_is_rejected_with_a_reason():
    """A body that is not a planned action is refused for good, not retried."""
    services = stack()
    message = ReceivedMessage(body=b"{not json", message_id="m-1", key="k-1", kind="guest-action", delivery_count=1)
    outcome = await entry.handle_guest_action(message, services)
    assert outcome.verdict is Verdict.REJECTED and outcome.code == "malformed-action"


def test_the_summary_prints_counts_per_rule_and_the_brake():
    """The printed summary names every rule's count and the brake's state."""
    run = {
        "runId": RUN,
        "mode": "enforce",
        "status": "braked",
        "totalGuests": 10,
        "disable": 3,
        "delete": 1,
        "dispatched": 0,
        "actions": {"disable/inactive": 3, "delete/disabled-past-grace": 1},
        "skipped": {"protected-group": 2},
        "brake": {
            "tripped": True,
            "reason": "4 of 10 guests",
            "approvedBy": None,
            "approvedAt": None,
            "affected": 4,
            "total": 10,
        },
        "reason": "",
        "started": NOW.isoformat(),
        "planned": None,
        "dispatchedAt": None,
    }
    text = sweep_summary(run)
    assert "disable/inactive" in text and "3" in text and "TRIPPED" in text and "protected-group" in text
    assert json.dumps(entry.summary_line(run))
    assert RunStatus.BRAKED.value in text and Mode.ENFORCE.value in text


async def test_the_local_demo_plans_enforces_and_approves_a_braked_run():
    """make run's sequence: a plan, an enforce stopped by the brake, an approval that the local worker carries out."""
    directory = FakeDirectory()
    guests = [add(directory, days_since_sign_in=120) for _ in range(3)]
    services = stack(directory, brake=True)
    planned, braked, approved = await sweep_demo(services, approver="make run")
    assert (planned["status"], braked["status"], approved["status"]) == ("planned", "braked", "dispatched")
    assert sweep_exit_code(braked) == 2 and sweep_exit_code(approved) == 0
    assert approved["worker"] == {"done": 3}
    assert {w[1] for w in directory.writes if w[0] == "accountEnabled"} == {g.id for g in guests}


def test_graph_json_becomes_a_directory_user_with_never_for_the_empty_sign_in():
    """The lean reader maps camelCase JSON, reads 'Z' times as UTC and Graph's 0001-01-01 as no sign-in."""
    from graph.users import user_from_json

    user = user_from_json(
        {
            "id": "u1",
            "userType": "Guest",
            "accountEnabled": False,
            "createdDateTime": "2026-01-02T03:04:05Z",
            "externalUserState": "Accepted",
            "externalUserStateChangeDateTime": "2026-01-03T00:00:00Z",
            "signInActivity": {
                "lastSignInDateTime": "0001-01-01T00:00:00Z",
                "lastNonInteractiveSignInDateTime": None,
                "lastSuccessfulSignInDateTime": "2026-02-01T10:00:00Z",
            },
        }
    )
    assert user.is_guest and user.account_enabled is False
    assert user.created == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert user.sign_in_activity is not None and user.sign_in_activity.last_sign_in is None
    assert user.sign_in_activity.last_successful_sign_in == datetime(2026, 2, 1, 10, tzinfo=UTC)
    assert user_from_json({"id": "u2", "userType": "Guest", "signInActivity": None}).sign_in_activity is None


async def test_a_planner_that_died_mid_enumeration_is_resumed_from_its_last_page_not_restarted():
    """The run row keeps the next page's link and the tally; the takeover continues there, same verdicts."""
    from datetime import timedelta

    from lifecycle.plans import Mode
    from lifecycle.runs.model import RunStatus
    from lifecycle.sweep import runner

    directory = FakeDirectory()
    for _ in range(5):
        add(directory, days_since_sign_in=120)
    for _ in range(5):
        add(directory, days_since_sign_in=3)
    directory.page_size, directory.fail_on_page = 3, 2
    services = stack(directory)
    ports = entry.sweep_ports(services)
    runs = ports.runs
    with pytest.raises(RuntimeError):
        await runner.run_sweep(services, ports, Mode.PLAN, RUN)
    stuck = await runs.get(RUN)
    assert stuck.status is RunStatus.PLANNING and stuck.cursor == "fake-page:6" and stuck.pages == 2

    services.clock.advance(runner.STALE_PLANNING + timedelta(seconds=1))
    resumed = await runner.run_sweep(services, ports, Mode.PLAN, RUN)
    assert directory.page_starts == [0, 6]  # resumed at the third page, not from the start
    assert resumed.status is RunStatus.PLANNED and resumed.cursor is None
    assert resumed.total_guests == 10 and resumed.actions == {"disable/inactive": 5}
    assert resumed.started == stuck.started  # every guest judged at the same instant


class ListingThrottledOnce(FakeDirectory):
    """The guest listing answers 429 once, the way Graph does under load, then works."""

    def __init__(self) -> None:
        super().__init__()
        self.throttled = False

    async def guest_pages(self, select, page_size: int, start: str | None = None):
        if not self.throttled:
            self.throttled = True
            raise ThrottledError("Please retry again later.", retry_after=2.0, status=429, code="TooManyRequests")
        async for page in super().guest_pages(select, page_size, start):
            yield page


async def test_a_transient_graph_error_while_planning_fails_the_run_so_the_next_fire_plans_it():
    """A 429 during planning does not leave the run 'planning' (a no-op for 15 minutes): it is failed and retaken."""
    directory = ListingThrottledOnce()
    stale = add(directory, days_since_sign_in=120)
    services = stack(directory)
    with pytest.raises(ThrottledError):
        await entry.run_sweep(services, "enforce")
    [interrupted] = await entry.list_runs(services)
    assert interrupted["status"] == "failed" and "Please retry again later" in interrupted["reason"]
    assert "sweep.interrupted" in await audit_actions(services)

    again = await entry.run_sweep(services, "enforce")
    assert again["status"] == "dispatched" and again["disable"] == 1
    [outcome] = (await run_worker(services)).outcomes
    assert outcome.verdict is Verdict.DONE and directory.users[stale.id].account_enabled is False


class SecondPageThrottledOnce(FakeDirectory):
    """One guest per page; the second page answers 429 once. Records where each listing started."""

    def __init__(self) -> None:
        super().__init__()
        self.page_size, self.starts, self.throttled = 1, [], False

    async def guest_pages(self, select, page_size: int, start: str | None = None):
        self.starts.append(start)
        async for page, next_link in super().guest_pages(select, page_size, start):
            yield page, next_link
            if not self.throttled:
                self.throttled = True
                raise ThrottledError("Please retry again later.", retry_after=2.0, status=429, code="TooManyRequests")


async def test_an_interrupted_planning_resumes_from_its_last_page():
    """The run taken over after a transient error reads on from the page it reached, keeping its tally."""
    directory = SecondPageThrottledOnce()
    for _ in range(3):
        add(directory, days_since_sign_in=120)
    services = stack(directory)
    with pytest.raises(ThrottledError):
        await entry.run_sweep(services, "enforce")
    again = await entry.run_sweep(services, "enforce")
    assert directory.starts[0] is None and directory.starts[1] is not None
    assert again["status"] == "dispatched" and again["totalGuests"] == 3 and again["disable"] == 3


class SecondPageHangs(FakeDirectory):
    """One guest per page; the listing waits for ever before its second page, as a slow tenant would when the
    operator gives up and presses Ctrl-C. ``first_page`` is set once the first page was handed out."""

    def __init__(self) -> None:
        super().__init__()
        self.page_size, self.starts, self.hang = 1, [], True
        self.first_page = asyncio.Event()

    async def guest_pages(self, select, page_size: int, start: str | None = None):
        self.starts.append(start)
        async for page, next_link in super().guest_pages(select, page_size, start):
            yield page, next_link
            self.first_page.set()
            if self.hang:
                await asyncio.Event().wait()


async def test_planning_stopped_by_ctrl_c_is_marked_interrupted_and_resumes_at_once():
    """Ctrl-C cancels the command's task (asyncio.run does that on SIGINT): the run is not left 'planning' (a
    no-op for the next 15 minutes) but failed as interrupted, audited, and the resume command, run right away,
    goes on from the saved page; the progress watcher saw how far planning got."""
    from lifecycle import progress
    from lifecycle.runs.claim import INTERRUPTED

    class Steps:
        def __init__(self) -> None:
            self.seen: list[progress.Step] = []

        def started(self, step: progress.Step) -> None:
            self.seen.append(step)

        def updated(self, step: progress.Step) -> None:
            pass

        def ended(self, step: progress.Step) -> None:
            pass

    directory = SecondPageHangs()
    for _ in range(3):
        add(directory, days_since_sign_in=120)
    services = stack(directory)
    watcher = Steps()
    with progress.watching(watcher):
        running = asyncio.create_task(entry.run_sweep(services, "enforce"))
    await asyncio.wait_for(directory.first_page.wait(), 10)
    await asyncio.sleep(0.05)  # the page is planned and the run row saved
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    [stopped] = await entry.list_runs(services)
    assert stopped["status"] == "failed" and stopped["reason"].startswith(INTERRUPTED)
    assert "sweep.interrupted" in await audit_actions(services)
    [planning] = watcher.seen
    assert (planning.label, planning.done, planning.finished) == (f"planning {RUN}", 1, False)

    directory.hang = False
    again = await entry.run_sweep(services, "enforce", stopped["runId"])
    assert directory.starts[0] is None and directory.starts[1] is not None  # from the saved page
    assert again["status"] == "dispatched" and again["totalGuests"] == 3 and again["disable"] == 3
