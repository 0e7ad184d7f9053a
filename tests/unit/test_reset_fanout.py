"""A redemption-reset run fans out over `guest-actions`: the run answers once the messages are sent, and the
worker resets one guest per message, exactly once, only inside a released run's plan."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from lifecycle.clock import FixedClock
from lifecycle.errors import PermissionDeniedError
from lifecycle.ledger import operations
from lifecycle.ledger.operations import Selector
from lifecycle.ledger.outcomes import Verdict
from lifecycle.ledger.settle import process
from lifecycle.models import ReceivedMessage, WorkStatus
from lifecycle.reset.entry import approve_reset_run, run_reset_detection, show
from lifecycle.reset.guest import marker_key
from lifecycle.reset.items import KIND, MAX_PROBE_HOPS, planned_key, reset_message
from lifecycle.reset.local import run_locally
from lifecycle.sweep.entry import drain_actions, handle_guest_action
from tests.builders import NOW
from tests.builders.reset import redeemed, resets_sent, services_with
from tests.fakes import FakeDirectory, FakeLookup

QUEUE = "guest-actions"


async def _visible_ids(services) -> set[str]:
    """The broker ids of the messages waiting on guest-actions (received with no lock: they stay visible)."""
    queue = services.settings.queue_name(QUEUE)
    return {m.message_id for m in await services.transport.receive(queue, max_messages=32, lock_seconds=0)}


async def _queued(services) -> list[ReceivedMessage]:
    """Every message waiting on guest-actions, received (locked) as the trigger would."""
    return await services.transport.receive(services.settings.queue_name(QUEUE), max_messages=32)


def _copy(message: ReceivedMessage, message_id: str) -> ReceivedMessage:
    """The same message delivered again under another broker id (a rerun's, a replay's)."""
    return replace(message, message_id=message_id, receipt=None)


async def test_an_enforced_run_answers_once_its_messages_are_sent_and_the_worker_resets_them():
    """The run resets nobody itself: it hands its guests to guest-actions, one message first (the probe), keyed
    by its work item; the probe's worker sends the others once its guest is reset, and the run's progress says
    how far the worker got."""
    directory = FakeDirectory()
    guests = [redeemed(directory, f"p{n}@fabrikam.com", "google") for n in range(3)]
    services = services_with(directory, FakeLookup())
    summary = await run_reset_detection(services, "enforce", "reset-fan")
    assert summary["status"] == "dispatched" and summary["dispatched"] == 3
    assert resets_sent(directory) == [] and "sweep show reset-fan" in summary["reason"]
    [probe] = await _queued(services)
    assert probe.properties["probe"] == "true" and probe.key in {planned_key("reset-fan", g.id) for g in guests}
    await services.transport.abandon(services.settings.queue_name(QUEUE), probe)
    shown = await show(services, "reset-fan")
    assert shown is not None and shown["progress"]["waiting"] == 3

    assert await drain_actions(services) == {"done": 3}
    assert sorted(resets_sent(directory)) == sorted(g.id for g in guests)
    shown = await show(services, "reset-fan")
    assert shown is not None and shown["progress"] == {
        "planned": 3,
        "reset": 3,
        "skipped": 0,
        "failed": 0,
        "waiting": 0,
    }
    assert {row["status"] for row in shown["plan"]} == {"done"}
    assert shown["reason"] == ""  # the row's "under way" is stale once every item settled


async def test_a_duplicate_message_resets_the_guest_once():
    """The same guest's message delivered twice (a rerun's copy, a redelivery): the second finds the item done."""
    directory = FakeDirectory()
    guest = redeemed(directory, "ana@fabrikam.com", "google")
    services = services_with(directory, FakeLookup())
    await run_reset_detection(services, "enforce", "reset-dup")
    [first] = await _queued(services)
    assert first.key == planned_key("reset-dup", guest.id) and first.kind == KIND
    assert (await handle_guest_action(first, services)).verdict is Verdict.DONE
    again = await handle_guest_action(_copy(first, "another-id"), services)
    assert again.verdict is Verdict.DUPLICATE and resets_sent(directory) == [guest.id]


async def test_a_rerun_while_the_first_messages_wait_resets_each_guest_once():
    """Dispatching the same run id again before the worker ran sends the queued guests again under new broker
    ids (duplicate detection would drop the old ones); the worker resets each guest once."""
    directory = FakeDirectory()
    guests = [redeemed(directory, f"p{n}@fabrikam.com", "otp") for n in range(2)]
    clock = FixedClock(NOW)
    services = services_with(directory, FakeLookup(), clock)
    await run_reset_detection(services, "enforce", "reset-twice")
    first_ids = await _visible_ids(services)  # the round's probe
    clock.advance(timedelta(minutes=1))
    await run_reset_detection(services, "enforce", "reset-twice")
    all_ids = await _visible_ids(services)
    assert len(first_ids) == 1 and len(all_ids) == 2 and first_ids < all_ids
    worked = await drain_actions(services)
    assert worked["done"] == 2 and set(worked) == {"done", "duplicate"}
    assert sorted(resets_sent(directory)) == sorted(g.id for g in guests)


async def test_a_crash_between_the_reset_and_the_settle_is_not_reset_again():
    """The worker reset the guest and died before settling its item: the redelivery, once the claim's lease
    is over, finds the guest re-invited by this run (its reset marker) and settles the item as reset."""
    directory = FakeDirectory()
    guest = redeemed(directory, "ana@fabrikam.com", "google")
    clock = FixedClock(NOW)
    services = services_with(directory, FakeLookup(), clock)
    await run_reset_detection(services, "enforce", "reset-crash")
    [message] = await _queued(services)
    original = services.work_items.save

    async def crash_on_settle(item):
        if item.key == message.key and item.status is WorkStatus.DONE:
            raise RuntimeError("worker died")
        return await original(item)

    services.work_items.save = crash_on_settle  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="worker died"):
        await handle_guest_action(message, services)
    services.work_items.save = original  # type: ignore[method-assign]
    item = await services.work_items.get(message.key)
    assert item is not None and item.status is WorkStatus.RUNNING and resets_sent(directory) == [guest.id]
    clock.advance(timedelta(minutes=5))
    directory.now = clock.now()
    outcome = await handle_guest_action(_copy(message, "redelivered"), services)
    assert outcome.verdict is Verdict.DONE and outcome.detail["recovered"] is True
    assert resets_sent(directory) == [guest.id]


async def test_a_message_outside_a_released_plan_resets_nobody():
    """A message naming a guest the run did not plan, or a run still braked, is rejected under its own key; the
    planned item stays queued for the real dispatch."""
    directory = FakeDirectory()
    for n in range(3):
        redeemed(directory, f"p{n}@fabrikam.com", "otp")
    outsider = redeemed(directory, "eve@adatum.com", "google")
    services = services_with(directory, FakeLookup(), brake_count=2)
    braked = await run_reset_detection(services, "enforce", "reset-held")
    assert braked["status"] == "braked"
    items = [i async for i in services.work_items.query(kind=KIND) if i.run_id == "reset-held"]
    forged = reset_message(items[0], "forged")
    received = ReceivedMessage(forged.body, "forged-1", forged.key, KIND, 1)
    refused = await handle_guest_action(received, services)
    assert refused.verdict is Verdict.REJECTED and refused.code == "run-not-released"
    stranger = ReceivedMessage(
        b'{"runId":"reset-held","objectId":"%s"}' % outsider.id.encode(), "forged-2", None, KIND, 1
    )
    assert (await handle_guest_action(stranger, services)).code == "not-in-plan"
    assert (
        await handle_guest_action(ReceivedMessage(b"{", "forged-3", None, KIND, 1), services)
    ).code == "malformed-reset"
    assert directory.invitations == []
    after = [i async for i in services.work_items.query(kind=KIND) if i.run_id == "reset-held"]
    assert len(after) == 3 and {i.status for i in after} == {WorkStatus.QUEUED}


async def test_an_approved_run_answers_before_any_guest_is_reset():
    """Approving a braked run records the approver and sends the messages; the worker resets the guests."""
    directory = FakeDirectory()
    guests = [redeemed(directory, f"p{n}@fabrikam.com", "otp") for n in range(3)]
    services = services_with(directory, FakeLookup(), brake_count=2)
    braked = await run_reset_detection(services, "enforce")
    approved = await approve_reset_run(services, braked["runId"], "oncall@contoso.com")
    assert approved["status"] == "dispatched" and approved["dispatched"] == 3 and directory.invitations == []
    assert approved["brake"]["approvedBy"] == "oncall@contoso.com"
    assert (await drain_actions(services)) == {"done": 3}
    assert sorted(resets_sent(directory)) == sorted(g.id for g in guests)


async def test_a_failed_reset_replayed_from_its_dead_letter_goes_through_the_worker_and_the_gate():
    """A reset Graph refused (400) is dead-lettered; the on-call replay sends it back through the same worker.
    Meanwhile the guest joined the exclusions: the gate refuses, and the item settles as left alone."""
    from lifecycle.errors import BadRequestError

    directory = FakeDirectory()
    guest = redeemed(directory, "ana@fabrikam.com", "google")
    services = services_with(directory, FakeLookup())
    original = directory.invite_guest

    async def refused(request):
        raise BadRequestError("Invalid request", status=400, code="BadRequest")

    directory.invite_guest = refused  # type: ignore[method-assign]
    summary = await run_locally(services, "enforce", "reset-replay")
    assert summary["progress"]["failed"] == 1 and summary["worker"] == {"failed": 1}
    key = planned_key("reset-replay", guest.id)
    assert (await services.work_items.get(key)).status is WorkStatus.DEAD_LETTERED  # type: ignore[union-attr]
    directory.invite_guest = original  # type: ignore[method-assign]
    exclusions = services.desired.exclusions.model_copy(update={"object_ids": (guest.id,)})
    services.desired = services.desired.model_copy(update={"exclusions": exclusions})

    replayed = await operations.replay(services, QUEUE, Selector(kind=KIND), dry_run=False, operator="oncall")
    assert [r["action"] for r in replayed] == ["replayed"]
    [message] = await _queued(services)
    outcome = await process(services.settings.queue_name(QUEUE), message, handle_guest_action, services)
    assert outcome.verdict is Verdict.DONE and outcome.detail["skipped"] == "guest-excluded"
    assert resets_sent(directory) == []
    assert (await services.work_items.get(key)).result["skipped"] == "guest-excluded"  # type: ignore[union-attr]


async def test_a_guest_reset_by_a_ticket_meanwhile_is_not_invited_again():
    """The run planned the guest, a ticket reset it before the worker came: the re-read finds it no longer
    redeemed, and the worker leaves it alone."""
    directory = FakeDirectory()
    guest = redeemed(directory, "ana@fabrikam.com", "google")
    services = services_with(directory, FakeLookup())
    await run_reset_detection(services, "enforce", "reset-late")
    directory.put(replace(guest, external_user_state="PendingAcceptance", external_user_state_changed=NOW))
    assert await drain_actions(services) == {"done": 1}
    item = await services.work_items.get(planned_key("reset-late", guest.id))
    assert item is not None and item.result["skipped"] == "not-redeemed-any-more"
    assert directory.invitations == [] and await services.work_items.get(marker_key(guest.id)) is None


async def test_a_permission_withdrawn_after_the_probe_stops_the_run_at_the_next_refusal():
    """The probe's reset proved the permission and the rest went out; the grant is then taken away: the first
    worker to meet the 403 stops the run, and the messages after it leave their guests queued, sending nothing."""
    directory = FakeDirectory()
    for n in range(4):
        redeemed(directory, f"p{n}@fabrikam.com", "otp")
    services = services_with(directory, FakeLookup())
    await run_reset_detection(services, "enforce", "reset-revoked")
    [probe] = await _queued(services)
    assert (await process(services.settings.queue_name(QUEUE), probe, handle_guest_action, services)).verdict is (
        Verdict.DONE
    )
    refused: list[str] = []

    async def denied(request):
        refused.append(request.invited_user_id or "")
        raise PermissionDeniedError("Insufficient privileges.", status=403, code="Authorization_RequestDenied")

    directory.invite_guest = denied  # type: ignore[method-assign]
    assert await drain_actions(services) == {"failed": 1, "held": 2}
    assert len(refused) == 1 and len(resets_sent(directory)) == 1
    shown = await show(services, "reset-revoked")
    assert shown is not None and shown["reason"].startswith("stopped:") and "User.ReadWrite.All" in shown["reason"]
    assert shown["progress"] == {"planned": 4, "reset": 1, "skipped": 0, "failed": 1, "waiting": 2}


async def test_a_probe_whose_guest_is_left_alone_hands_the_probe_on():
    """The probe's guest was reset by a ticket meanwhile: that proves nothing, so the next guest becomes the
    probe, and its reset sends the rest."""
    directory = FakeDirectory()
    guests = [redeemed(directory, f"p{n}@fabrikam.com", "otp") for n in range(3)]
    services = services_with(directory, FakeLookup())
    await run_reset_detection(services, "enforce", "reset-handed")
    [probe] = await _queued(services)
    [first] = [g for g in guests if planned_key("reset-handed", g.id) == probe.key]
    directory.put(replace(first, external_user_state="PendingAcceptance", external_user_state_changed=NOW))
    outcome = await process(services.settings.queue_name(QUEUE), probe, handle_guest_action, services)
    assert outcome.detail["skipped"] == "not-redeemed-any-more"
    [handed] = await _queued(services)
    assert handed.properties["probe"] == "true" and handed.key != probe.key
    await services.transport.abandon(services.settings.queue_name(QUEUE), handed)
    assert await drain_actions(services) == {"done": 2}
    assert sorted(resets_sent(directory)) == sorted(g.id for g in guests if g.id != first.id)


async def test_a_probe_handed_on_too_often_sends_the_rest_of_the_run():
    """Every planned guest was reset elsewhere meanwhile: nothing can prove the permission, so after
    MAX_PROBE_HOPS probes the rest goes out at once instead of one guest per message hop."""
    directory = FakeDirectory()
    guests = [redeemed(directory, f"p{n}@fabrikam.com", "otp") for n in range(MAX_PROBE_HOPS + 2)]
    services = services_with(directory, FakeLookup())
    await run_reset_detection(services, "enforce", "reset-hops")
    for guest in guests:
        directory.put(replace(guest, external_user_state="PendingAcceptance", external_user_state_changed=NOW))
    probes = plain = 0
    while batch := await _queued(services):
        for message in batch:
            probes, plain = (probes + 1, plain) if message.properties["probe"] == "true" else (probes, plain + 1)
            await process(services.settings.queue_name(QUEUE), message, handle_guest_action, services)
    assert (probes, plain) == (MAX_PROBE_HOPS, 2)
    assert directory.invitations == []
    shown = await show(services, "reset-hops")
    assert shown is not None and shown["progress"]["skipped"] == len(guests)


async def test_a_deployment_switched_off_after_the_dispatch_resets_nobody_and_the_same_run_id_resumes():
    """LIFECYCLE_RESET_ENABLED is the switch that stops a released run: the messages already on the queue leave
    their guests queued; switched on again, the same run id sends them. The mode is the run's (an operator's
    --mode enforce), as the sweep's worker takes it, not LIFECYCLE_RESET_MODE at the message's instant."""
    directory = FakeDirectory()
    guests = [redeemed(directory, f"p{n}@fabrikam.com", "google") for n in range(2)]
    services = services_with(directory, FakeLookup(), mode="plan")
    await run_reset_detection(services, "enforce", "reset-switched")
    services.settings = services.settings.model_copy(update={"reset_enabled": False})
    [probe] = await _queued(services)
    held = await process(services.settings.queue_name(QUEUE), probe, handle_guest_action, services)
    assert held.verdict is Verdict.HELD and held.code == "reset-not-enabled"
    assert resets_sent(directory) == []
    shown = await show(services, "reset-switched")
    assert shown is not None and shown["progress"]["waiting"] == 2

    services.settings = services.settings.model_copy(update={"reset_enabled": True})
    await run_reset_detection(services, "enforce", "reset-switched")
    assert await drain_actions(services) == {"done": 2}
    assert sorted(resets_sent(directory)) == sorted(g.id for g in guests)
