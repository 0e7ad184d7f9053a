"""Sponsor notices before a disable: when the planner asks for one, how it holds the disable back, and the
worker that puts the event on the ticketing system's queue exactly once per guest and due date."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import jsonschema

from adapters.memory import MemorySweepRuns
from app.schemas import SCHEMAS
from config.desired_state import DeletionBrake, PartnerRules, SponsorNotice, SponsorNoticeOverride, load_desired_state
from config.settings import SAMPLE_DESIRED_STATE
from lifecycle.clock import FixedClock
from lifecycle.ledger.outcomes import Verdict
from lifecycle.ledger.worker import drain
from lifecycle.models import DirectoryUser, GuestRecord, GuestState, SignInActivity, WorkStatus
from lifecycle.sweep import entry
from lifecycle.sweep.model import Action, NoticeRecord, PlannedAction, Rule, Skip
from lifecycle.sweep.rules import Decision, SweepPolicy, decide
from lifecycle.sweep.runner import action_message
from tests.builders import NOW, memory_services
from tests.fakes import FakeDirectory

LEAD = 14
NOTICES = "sponsor-notices"
QUEUE = "guest-actions"
SPONSOR = "5f0c6a2e-8d7b-4c1e-9a3f-2b4d6e8f0a1c"


def with_notices(desired, *, enabled: bool = True, lead_days: int = LEAD):
    lifecycle = desired.lifecycle.model_copy(
        update={
            "sponsor_notice": SponsorNotice(enabled=enabled, lead_days=lead_days, queue=NOTICES),
            "deletion_brake": DeletionBrake(max_count=10_000, max_percent=100.0),
        }
    )
    return desired.model_copy(update={"lifecycle": lifecycle})


DESIRED = load_desired_state(SAMPLE_DESIRED_STATE)
POLICY = SweepPolicy(with_notices(DESIRED))


def guest(*, last_sign_in: datetime, domain: str = "fabrikam.com") -> DirectoryUser:
    return DirectoryUser(
        id=str(uuid.uuid4()),
        user_type="Guest",
        display_name="Pat Doe",
        mail=f"pat.doe@{domain}",
        account_enabled=True,
        external_user_state="Accepted",
        external_user_state_changed=NOW - timedelta(days=400),
        created=NOW - timedelta(days=401),
        sign_in_activity=SignInActivity(last_successful_sign_in=last_sign_in),
    )


def due_in(days: float, **fields) -> tuple[DirectoryUser, datetime]:
    """A guest whose 90-day inactivity rule fires ``days`` from NOW, and that instant."""
    last = NOW - timedelta(days=90) + timedelta(days=days)
    return guest(last_sign_in=last, **fields), last + timedelta(days=90)


# --- planning: the decision per guest ----------------------------------------------------------------------


def test_the_notice_is_due_exactly_lead_days_before_the_due_date():
    """A second before the lead window nothing happens; from its first instant the sponsor is told."""
    user, due = due_in(LEAD)
    verdict = decide(user, None, POLICY, due - timedelta(days=LEAD))
    assert isinstance(verdict, Decision) and verdict.action is Action.NOTIFY_SPONSOR
    assert verdict.due == due and verdict.rule is Rule.INACTIVE
    assert verdict.evidence["dueDate"] == due.isoformat() and verdict.evidence["leadDays"] == LEAD
    assert decide(user, None, POLICY, due - timedelta(days=LEAD, seconds=1)) is None


def test_a_notified_guest_is_disabled_on_its_due_date_and_not_a_second_earlier():
    """Told on time: nothing more until the due date, then the disable, with the notice in its evidence."""
    user, due = due_in(LEAD)
    told = NoticeRecord(user.id, due, notified=due - timedelta(days=LEAD))
    assert decide(user, None, POLICY, due - timedelta(seconds=1), notice=told) is None
    verdict = decide(user, None, POLICY, due, notice=told)
    assert isinstance(verdict, Decision) and verdict.action is Action.DISABLE and verdict.rule is Rule.INACTIVE
    assert verdict.evidence["sponsorNotifiedAt"] == told.notified.isoformat()


def test_a_late_notice_holds_the_disable_until_it_is_lead_days_old():
    """Told three days before the due date: the disable waits for the full lead time, and says why meanwhile."""
    user, due = due_in(3)
    told = NoticeRecord(user.id, due, notified=due - timedelta(days=3))
    ready = told.notified + timedelta(days=LEAD)
    assert decide(user, None, POLICY, due, notice=told) is Skip.AWAITING_NOTICE_LEAD
    assert decide(user, None, POLICY, ready - timedelta(seconds=1), notice=told) is Skip.AWAITING_NOTICE_LEAD
    verdict = decide(user, None, POLICY, ready, notice=told)
    assert isinstance(verdict, Decision) and verdict.action is Action.DISABLE


def test_a_guest_already_overdue_when_notices_are_switched_on_is_told_first_and_disabled_lead_days_later():
    """Due 200 days ago, never told: the first run tells the sponsor; the disable comes lead days after that."""
    user, due = due_in(-200)
    first = decide(user, None, POLICY, NOW)
    assert isinstance(first, Decision) and first.action is Action.NOTIFY_SPONSOR and first.due == due
    told = NoticeRecord(user.id, due, notified=NOW)
    assert decide(user, None, POLICY, NOW + timedelta(days=LEAD, seconds=-1), notice=told) is Skip.AWAITING_NOTICE_LEAD
    later = decide(user, None, POLICY, NOW + timedelta(days=LEAD), notice=told)
    assert isinstance(later, Decision) and later.action is Action.DISABLE


def test_a_notice_for_an_earlier_due_date_does_not_count_for_a_new_one():
    """The guest signed in after its sponsor was told: the new due date gets its own notice."""
    user, due = due_in(5)
    old = NoticeRecord(user.id, due - timedelta(days=60), notified=NOW - timedelta(days=70))
    verdict = decide(user, None, POLICY, NOW, notice=old)
    assert isinstance(verdict, Decision) and verdict.action is Action.NOTIFY_SPONSOR and verdict.due == due


def test_with_notices_off_the_guest_is_disabled_on_its_due_date_without_a_notice():
    """The default: no notice, the disable as soon as a rule holds."""
    user, due = due_in(0)
    policy = SweepPolicy(with_notices(DESIRED, enabled=False))
    assert decide(user, None, policy, due - timedelta(days=1)) is None
    verdict = decide(user, None, policy, due)
    assert isinstance(verdict, Decision) and verdict.action is Action.DISABLE


def test_the_earliest_rule_names_the_due_date():
    """An end date that comes before the inactivity window is the due date the sponsor hears about."""
    user, inactive_due = due_in(30)
    end = NOW + timedelta(days=10)
    record = GuestRecord(user.id, user.mail or "", "fabrikam", GuestState.ACTIVE, end_date=end)
    verdict = decide(user, record, POLICY, NOW)
    assert isinstance(verdict, Decision) and verdict.action is Action.NOTIFY_SPONSOR
    assert verdict.rule is Rule.PAST_END_DATE and verdict.due == end < inactive_due


def test_a_partner_can_switch_notices_on_with_its_own_lead_time():
    """Notices off tenant-wide, on for Fabrikam with 30 days: only Fabrikam's guests are noticed, 30 days ahead."""
    partners = dict(DESIRED.partners)
    fabrikam = partners["fabrikam"]
    own = PartnerRules(
        inactive_days=fabrikam.lifecycle.inactive_days,
        sponsor_notice=SponsorNoticeOverride(enabled=True, lead_days=30),
    )
    partners["fabrikam"] = fabrikam.model_copy(update={"lifecycle": own})
    desired = with_notices(DESIRED, enabled=False).model_copy(update={"partners": partners})
    policy = SweepPolicy(desired)
    assert policy.rules_for("fabrikam").notice.lead_days == 30 and policy.rules_for("fabrikam").notice.queue == NOTICES
    assert not policy.rules_for("adatum").notice.enabled
    user, due = due_in(30)
    verdict = decide(user, None, policy, NOW)
    assert isinstance(verdict, Decision) and verdict.action is Action.NOTIFY_SPONSOR and verdict.due == due
    other, _ = due_in(0, domain="adatum.com")
    verdict = decide(other, None, policy, NOW)
    assert isinstance(verdict, Decision) and verdict.action is Action.DISABLE


# --- runs and the worker ---------------------------------------------------------------------------------


def noticed_stack(directory: FakeDirectory, clock: FixedClock | None = None):
    services = memory_services(directory, clock=clock, sweep_runs=MemorySweepRuns(page_size=2))
    services.desired = with_notices(services.desired)
    return services


def add(directory: FakeDirectory, *, days_since_sign_in: int) -> DirectoryUser:
    user = directory.add_guest(f"g{len(directory.users)}@fabrikam.com")
    return directory.put(
        replace(
            user,
            display_name="Pat Doe",
            sign_in_activity=SignInActivity(last_successful_sign_in=NOW - timedelta(days=days_since_sign_in)),
            external_user_state_changed=NOW - timedelta(days=500),
            created=NOW - timedelta(days=501),
        )
    )


async def sponsored(services, user: DirectoryUser) -> None:
    await services.guests.save(GuestRecord(user.id, user.mail or "", "fabrikam", GuestState.ACTIVE, sponsor=SPONSOR))


async def work(services):
    return await drain(services, QUEUE, entry.handle_guest_action, idle_rounds=1, concurrency=4)


async def events(services) -> list[dict]:
    received = await services.transport.receive(NOTICES, max_messages=100)
    return [json.loads(m.body) for m in received]


async def test_an_enforced_run_sends_one_schema_valid_event_per_guest_and_disables_nobody():
    """The run plans a notice (not a disable, and the brake does not count it); the worker puts the event
    on the notice queue, records the notice and audits it; Graph sees no write."""
    directory = FakeDirectory()
    user = add(directory, days_since_sign_in=120)
    services = noticed_stack(directory)
    await sponsored(services, user)
    summary = await entry.run_sweep(services, "enforce")
    assert summary["actions"] == {"notify-sponsor/inactive": 1} and summary["notifySponsor"] == 1
    assert summary["disable"] == 0 and summary["brake"]["affected"] == 0
    report = await work(services)
    assert report.by_verdict == {"done": 1}
    assert directory.writes == []
    [event] = await events(services)
    jsonschema.validate(event, SCHEMAS["sponsor-notice"]())
    due = (NOW - timedelta(days=120) + timedelta(days=90)).astimezone(UTC)
    assert event["schemaVersion"] == 1 and event["kind"] == "sponsor-notice"
    assert (event["guestId"], event["mail"], event["displayName"]) == (user.id, user.mail, "Pat Doe")
    assert event["partner"] == "fabrikam" and event["sponsorIds"] == [SPONSOR] and event["rule"] == "inactive"
    assert datetime.fromisoformat(event["dueDate"]) == due and event["runId"] == summary["runId"]
    assert datetime.fromisoformat(event["disableNotBefore"]) == NOW + timedelta(days=LEAD)
    notice = await entry.sweep_ports(services).runs.notice(user.id)
    assert notice is not None and notice.due == due and notice.notified == NOW
    assert "guest.sponsor-notified" in [e.action async for e in services.audit.entries()]


async def test_a_replayed_notice_never_sends_a_second_event():
    """The same notice delivered again, and the same notice planned by another run, are duplicates."""
    directory = FakeDirectory()
    user = add(directory, days_since_sign_in=120)
    services = noticed_stack(directory)
    summary = await entry.run_sweep(services, "enforce")
    await work(services)
    assert len(await events(services)) == 1
    shown = await entry.show(services, summary["runId"])
    assert shown is not None
    planned = PlannedAction.from_json(shown["plan"][0])
    again = replace(planned, run_id="sweep-replayed")
    await entry.sweep_ports(services).runs.create(
        replace(await entry.sweep_ports(services).runs.get(summary["runId"]), run_id="sweep-replayed")
    )
    await entry.sweep_ports(services).runs.add_actions("sweep-replayed", [again])  # a later run that planned it too
    await services.transport.send(QUEUE, [action_message(planned), action_message(again)])
    report = await work(services)
    assert sorted(report.by_verdict.elements()) == ["duplicate", "duplicate"]
    assert await events(services) == []
    assert planned.key == again.key == f"sweep-notice:{user.id}:{planned.due:%Y%m%dT%H%M%SZ}"


async def test_a_notice_whose_send_finished_before_a_crash_is_not_sent_again_on_redelivery():
    """Sent and recorded, then the attempt died before finishing: the redelivery finishes without sending."""
    directory = FakeDirectory()
    user = add(directory, days_since_sign_in=120)
    clock = FixedClock(NOW)
    services = noticed_stack(directory, clock)
    summary = await entry.run_sweep(services, "enforce")
    [message] = await services.transport.receive(QUEUE)
    planned = PlannedAction.from_json(json.loads(message.body))
    assert planned.due is not None
    # What a crashed attempt leaves: the item running at its 'notifying' step, the notice recorded.
    from lifecycle.ledger import work as work_items

    item = await work_items.begin(services, planned.key, kind="guest-action")
    assert item is not None
    await work_items.checkpoint(services, item, stage="notifying")
    await entry.sweep_ports(services).runs.record_notice(
        NoticeRecord(user.id, planned.due, NOW, summary["runId"], planned.key)
    )
    clock.advance(timedelta(minutes=5))  # the crashed attempt's lease and the message lock have run out
    report = await work(services)
    assert [(o.verdict, o.detail.get("applied")) for o in report.outcomes] == [(Verdict.DONE, True)]
    assert await events(services) == []
    done = await services.work_items.get(planned.key)
    assert done is not None and done.status is WorkStatus.DONE and "dropped" not in done.result


async def test_a_guest_that_signed_in_before_the_notice_went_out_is_dropped_without_an_event():
    """The notice went stale between plan and worker: dropped with its reason, nothing sent, nothing recorded."""
    directory = FakeDirectory()
    user = add(directory, days_since_sign_in=120)
    services = noticed_stack(directory)
    await entry.run_sweep(services, "enforce")
    directory.put(replace(directory.users[user.id], sign_in_activity=SignInActivity(last_successful_sign_in=NOW)))
    [outcome] = (await work(services)).outcomes
    assert outcome.verdict is Verdict.DONE and outcome.code == "dropped:no-longer-eligible"
    assert await events(services) == []
    assert await entry.sweep_ports(services).runs.notice(user.id) is None


async def test_the_next_runs_hold_the_disable_until_the_notice_is_lead_days_old_then_disable():
    """Night 1 tells the sponsor; the nights in the lead time leave the guest alone (and say so); the night
    the notice is lead days old disables it, and the worker's re-check agrees because it sees the notice."""
    directory = FakeDirectory()
    user = add(directory, days_since_sign_in=120)
    clock = FixedClock(NOW)
    services = noticed_stack(directory, clock)
    await entry.run_sweep(services, "enforce")
    await work(services)
    clock.advance(timedelta(days=LEAD - 1))
    held = await entry.run_sweep(services, "enforce")
    assert held["actions"] == {} and held["skipped"].get(Skip.AWAITING_NOTICE_LEAD.value) == 1
    clock.advance(timedelta(days=1))
    due_run = await entry.run_sweep(services, "enforce")
    assert due_run["actions"] == {"disable/inactive": 1}
    report = await work(services)
    assert report.by_verdict == {"done": 1}
    assert directory.writes == [("accountEnabled", user.id, False), ("revokeSignInSessions", user.id, None)]
    assert len(await events(services)) == 1  # the first night's notice only


async def test_a_notice_action_without_its_due_date_is_rejected_as_malformed():
    """A notify-sponsor message missing its due date cannot be keyed per due date: refused, never acted on."""
    directory = FakeDirectory()
    add(directory, days_since_sign_in=120)
    services = noticed_stack(directory)
    summary = await entry.run_sweep(services, "enforce")
    [message] = await services.transport.receive(QUEUE)
    await services.transport.complete(QUEUE, message)
    body = json.loads(message.body)
    del body["dueDate"]
    planned = PlannedAction(summary["runId"], body["objectId"], Action.DISABLE, Rule.INACTIVE)
    broken = replace(action_message(planned), body=json.dumps(body).encode())
    await services.transport.send(QUEUE, [broken])
    [outcome] = (await work(services)).outcomes
    assert outcome.verdict is Verdict.REJECTED and outcome.code == "malformed-action"
    assert await events(services) == []
