"""On-call operations on in-memory fakes: failures, dead letters, safe replay, purge, status."""

from __future__ import annotations

import json

import pytest

from lifecycle.errors import PermissionDeniedError
from lifecycle.ledger import operations
from lifecycle.ledger import status as ledger_status
from lifecycle.ledger.operations import Selector
from lifecycle.ledger.outcomes import Verdict
from lifecycle.ledger.settle import process
from lifecycle.models import OutboundMessage, WorkStatus
from lifecycle.onboarding.handler import handle_ticket
from tests.builders import memory_services, onboard_ticket
from tests.fakes import FakeDirectory

DENIED = PermissionDeniedError(
    "Insufficient privileges", status=403, code="Authorization_RequestDenied", request_id="r-1"
)


@pytest.fixture(name="directory")
def _directory() -> FakeDirectory:
    directory = FakeDirectory()
    directory.add_member("megan.bowen@contoso.com")
    return directory


async def _submit(services, **fields) -> None:
    body = json.dumps(onboard_ticket(**fields)).encode()
    key = f"ticket:{fields.get('ticketId', 'RITM0010001')}"
    await services.transport.send("onboarding", [OutboundMessage(body, f"{key}|m", key, "ticket")])


async def _drain(services) -> list:
    outcomes = []
    while batch := await services.transport.receive("onboarding"):
        for message in batch:
            outcomes.append(await process("onboarding", message, handle_ticket, services))
    return outcomes


async def _dead_lettered_ticket(directory):
    services = memory_services(directory)
    directory.fail_next.append(DENIED)
    await _submit(services)
    [outcome] = await _drain(services)
    assert outcome.verdict is Verdict.FAILED
    return services


async def test_a_permanent_failure_lands_in_the_dead_letter_queue_and_the_ledger_says_so(directory):
    """A 403 dead-letters the message with its reason; the work item is dead-lettered with the request id."""
    services = await _dead_lettered_ticket(directory)
    [dead] = await services.transport.peek_dead_letters("onboarding")
    assert dead.dead_letter_reason == "authorization_requestdenied"
    [item] = await operations.list_failed(services, Selector())
    assert item.status is WorkStatus.DEAD_LETTERED and item.last_error["requestId"] == "r-1"


async def test_failed_lists_by_kind_reason_and_partner(directory):
    """Filters narrow the list; a filter that matches nothing returns nothing."""
    services = await _dead_lettered_ticket(directory)
    assert len(await operations.list_failed(services, Selector(kind="onboard", partner="fabrikam"))) == 1
    assert len(await operations.list_failed(services, Selector(reason="RequestDenied"))) == 1
    assert await operations.list_failed(services, Selector(partner="northwind")) == []


async def test_show_gives_the_full_story_of_a_key(directory):
    """show returns status, attempts, the last error and the audit history of the key."""
    services = await _dead_lettered_ticket(directory)
    story = await operations.show(services, "ticket:RITM0010001")
    assert story["status"] == "dead-lettered" and story["lastError"]["code"] == "Authorization_RequestDenied"
    assert await operations.show(services, "ticket:nope") is None


async def test_a_dry_run_replay_changes_nothing(directory):
    """--dry-run lists what would be sent and leaves the dead letter where it is."""
    services = await _dead_lettered_ticket(directory)
    preview = await operations.replay(services, "onboarding", Selector(), dry_run=True, operator="oncall")
    assert [p["key"] for p in preview] == ["ticket:RITM0010001"]
    assert len(await services.transport.peek_dead_letters("onboarding")) == 1


async def test_a_replay_after_the_fix_completes_the_work_once(directory):
    """Once the permission is granted, replaying the dead letter invites the guest; the DLQ is empty."""
    services = await _dead_lettered_ticket(directory)
    [result] = await operations.replay(services, "onboarding", Selector(), dry_run=False, operator="oncall")
    assert result["action"] == "replayed" and result["messageId"] != "ticket:RITM0010001|m"
    [outcome] = await _drain(services)
    assert outcome.verdict is Verdict.DONE
    assert await services.transport.peek_dead_letters("onboarding") == []
    assert len(directory.guests_with_mail("ana.lopez@fabrikam.com")) == 1
    assert "job.replayed" in [e.action async for e in services.audit.entries()]


async def test_a_crash_between_the_replay_send_and_the_removal_never_duplicates_work(directory):
    """The second replay re-sends the same message id; the handler processes the ticket once."""
    services = await _dead_lettered_ticket(directory)
    real_complete = services.transport.complete_dead_letter
    crashed = {"done": False}

    async def crash_once(queue, message):
        if not crashed["done"]:
            crashed["done"] = True
            raise RuntimeError("killed between send and removal")
        await real_complete(queue, message)

    services.transport.complete_dead_letter = crash_once
    with pytest.raises(RuntimeError):
        await operations.replay(services, "onboarding", Selector(), dry_run=False, operator="oncall")
    services.clock.advance(__import__("datetime").timedelta(seconds=31))  # the dead letter's lock lapses
    [second] = await operations.replay(services, "onboarding", Selector(), dry_run=False, operator="oncall")

    outcomes = await _drain(services)
    assert sorted(o.verdict.value for o in outcomes) == ["done", "duplicate"]
    assert len(directory.guests_with_mail("ana.lopez@fabrikam.com")) == 1
    assert len(directory.invitations) == 1 and second["messageId"].endswith("|replay|1")


async def test_purge_removes_dead_letters_and_audits_each(directory):
    """purge takes the selected dead letters away for good and leaves an audit row per message."""
    services = await _dead_lettered_ticket(directory)
    assert await operations.purge(services, "onboarding", Selector(), operator="oncall") == ["ticket:RITM0010001"]
    assert await services.transport.peek_dead_letters("onboarding") == []
    assert "job.purged" in [e.action async for e in services.audit.entries()]


async def test_reconcile_marks_items_the_broker_dead_lettered_on_its_own(directory):
    """Service Bus dead-letters after max deliveries without telling the app; status catches up."""
    services = memory_services(directory)
    directory.fail_next.append(DENIED)
    await _submit(services)
    [message] = await services.transport.receive("onboarding")
    await handle_ticket(message, services)  # the Functions path: raised, the broker gives up later
    await services.transport.dead_letter("onboarding", message, "MaxDeliveryCountExceeded", "5 deliveries")
    assert await operations.reconcile_dead_letters(services) == 1
    assert (await services.work_items.get("ticket:RITM0010001")).status is WorkStatus.DEAD_LETTERED


async def test_status_shows_queue_depths_work_item_counts_and_last_runs(directory):
    """status reports each queue's depth and dead letters, items by status and each job's last run."""
    services = await _dead_lettered_ticket(directory)
    await ledger_status.record_run(services, "onboarding", {"done": 0, "failed": 1})
    report = await ledger_status.status(services)
    assert report["queues"]["onboarding"] == {"active": 0, "deadLetters": 1}
    assert report["workItems"] == {"dead-lettered": 1}
    assert report["lastRuns"]["onboarding"]["failed"] == 1


async def test_a_message_that_keeps_crashing_the_handler_is_dead_lettered_after_five_deliveries(directory):
    """The local worker mirrors maxDeliveryCount: an unhandled error is retried, then parked, never looped."""
    from datetime import timedelta

    services = memory_services(directory)
    await _submit(services)

    async def broken(message, services):
        raise RuntimeError("bug")

    for _ in range(5):
        services.clock.advance(timedelta(seconds=61))
        [message] = await services.transport.receive("onboarding")
        with pytest.raises(RuntimeError):
            await process("onboarding", message, broken, services)
    [dead] = await services.transport.peek_dead_letters("onboarding")
    assert dead.dead_letter_reason == "MaxDeliveryCountExceeded" and "bug" in dead.dead_letter_description


async def test_a_replay_that_meets_a_concurrent_write_leaves_the_dead_letter_for_the_next_replay(directory):
    """A worker writes the work item between the replay's read and its write: the replay neither fails nor loses
    the dead letter; the next replay reads the item afresh and replays it once."""
    services = await _dead_lettered_ticket(directory)
    items = services.work_items
    real_get = items.get

    async def raced_get(key):
        item = await real_get(key)
        if item is not None and not getattr(raced_get, "done", False):
            raced_get.done = True  # type: ignore[attr-defined]
            fresher = await real_get(key)
            fresher.updated = services.clock.now()
            await items.save(fresher)  # a worker's write lands first
        return item

    items.get = raced_get  # type: ignore[method-assign]
    [first] = await operations.replay(services, "onboarding", Selector(), dry_run=False, operator="oncall")
    assert first["action"].startswith("left in place")
    assert len(await services.transport.peek_dead_letters("onboarding")) == 1
    [second] = await operations.replay(services, "onboarding", Selector(), dry_run=False, operator="oncall")
    assert second["action"] == "replayed"
    [outcome] = await _drain(services)
    assert outcome.verdict is Verdict.DONE and len(directory.invitations) == 1


async def test_a_dead_letter_without_a_work_item_is_replayed_and_finished_once(directory):
    """A message the broker dead-lettered before any attempt recorded it: the replay records it under the
    message's kind, and the replayed ticket is then carried out, not taken for another ticket under its id."""
    services = memory_services(directory)
    await _submit(services)
    [message] = await services.transport.receive("onboarding")
    await services.transport.dead_letter("onboarding", message, "MaxDeliveryCountExceeded", "parked by the broker")
    assert await services.work_items.get("ticket:RITM0010001") is None
    [replayed] = await operations.replay(services, "onboarding", Selector(), dry_run=False, operator="oncall")
    assert replayed["action"] == "replayed"
    [outcome] = await _drain(services)
    assert outcome.verdict is Verdict.DONE, outcome
    assert (await services.work_items.get("ticket:RITM0010001")).status is WorkStatus.DONE
    assert [r async for r in services.rejections.all()] == []


async def test_status_flags_a_braked_run_with_the_command_that_approves_it(directory):
    """A run the deletion brake holds waits for a person: status names it and how to approve it."""
    from adapters.memory import MemorySweepRuns
    from lifecycle.plans import Mode
    from lifecycle.runs.model import DailyRun, RunStatus

    services = memory_services(directory)
    runs = MemorySweepRuns()
    now = services.clock.now()
    await runs.create(DailyRun("sweep-2026-12-01", Mode.ENFORCE, RunStatus.BRAKED, now, reason="deletion brake: 40%"))
    await runs.create(DailyRun("sweep-2026-11-30", Mode.ENFORCE, RunStatus.DISPATCHED, now))
    report = await ledger_status.status(services, runs)
    [flag] = report["attention"]
    assert flag["kind"] == "braked" and flag["runId"] == "sweep-2026-12-01"
    assert flag["next"] == "python -m lifecycle approve sweep-2026-12-01"


async def test_status_flags_a_run_whose_planning_stopped_and_an_interrupted_run(directory):
    """Planning that stopped touching its row, and a run marked interrupted, wait for the next fire: both shown."""
    from datetime import timedelta

    from adapters.memory import MemorySweepRuns
    from lifecycle.plans import Mode
    from lifecycle.runs.claim import INTERRUPTED
    from lifecycle.runs.model import DailyRun, RunStatus

    services = memory_services(directory)
    runs = MemorySweepRuns()
    started = services.clock.now()
    await runs.create(DailyRun("sweep-2026-12-02", Mode.ENFORCE, RunStatus.PLANNING, started, updated=started))
    await runs.create(DailyRun("reset-2026-12-02", Mode.ENFORCE, RunStatus.FAILED, started, reason=f"{INTERRUPTED}: x"))
    assert [f["kind"] for f in (await ledger_status.status(services, runs))["attention"]] == ["interrupted"]
    services.clock.advance(ledger_status.STALLED_PLANNING + timedelta(minutes=1))
    kinds = {f["runId"]: f["kind"] for f in (await ledger_status.status(services, runs))["attention"]}
    assert kinds == {"reset-2026-12-02": "interrupted", "sweep-2026-12-02": "stalled"}


async def test_status_flags_work_an_attempt_claimed_and_never_finished(directory):
    """A work item left running past its lease (the worker died mid-way) is named; a fresh one is not."""
    from datetime import timedelta

    from lifecycle.ledger import work

    services = memory_services(directory)
    await work.begin(services, "ticket:RITM0010009", "onboarding")
    assert (await ledger_status.status(services))["attention"] == []
    services.clock.advance(timedelta(seconds=work.LEASE_SECONDS + 1))
    [flag] = (await ledger_status.status(services))["attention"]
    assert flag["kind"] == "interrupted-work" and flag["keys"] == ["ticket:RITM0010009"] and flag["count"] == 1
