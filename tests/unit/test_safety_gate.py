"""The one safety gate, rule by rule, on every path that writes to a guest (queue message in, fakes behind).

Each rule is checked against each path through that path's own entry point: an onboarding-queue ticket
(offboard, extend) and a guest-actions message of the sweep. The reset paths are covered with the reset
tests, which go through the same gate.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

import pytest

from config.desired_state import Exclusions, Safety
from lifecycle.errors import PermissionDeniedError
from lifecycle.ledger.outcomes import Verdict
from lifecycle.models import GuestState, ReceivedMessage
from lifecycle.onboarding.handler import handle_ticket
from lifecycle.safety import SafetyGate, Write
from lifecycle.sweep import entry
from lifecycle.sweep.model import Action, PlannedAction, Rule
from lifecycle.sweep.runner import action_message
from tests.builders import NOW, message
from tests.builders import onboard_ticket as onboard
from tests.builders.reset import redeemed, resets_sent, services_with, ticket_outcome
from tests.builders.sweep import QUEUE, add, run_worker, stack
from tests.fakes import FakeDirectory, FakeLookup

EMAIL = "ana.lopez@fabrikam.com"


def ticket(kind: str, ticket_id: str, **fields) -> dict:
    return {"schemaVersion": 1, "kind": kind, "ticketId": ticket_id, "email": EMAIL, **fields}


TICKETS = {
    "offboard": lambda: ticket("offboard", "RITM0020002"),
    "extend": lambda: ticket("extend", "RITM0020003", endDate="2027-01-31"),
}


async def _onboarded(directory: FakeDirectory):
    services = stack(directory)
    directory.add_member("megan.bowen@contoso.com")
    outcome = await handle_ticket(message(onboard()), services)
    assert outcome.verdict is Verdict.DONE
    [guest] = directory.guests_with_mail(EMAIL)
    return services, guest


def _exclude(services, *object_ids: str) -> None:
    exclusions = services.desired.exclusions.model_copy(update={"object_ids": object_ids})
    services.desired = services.desired.model_copy(
        update={"exclusions": Exclusions.model_validate(exclusions.model_dump())}
    )


# --- tickets: every kind against every protected category --------------------------------------------------


@pytest.mark.parametrize("kind", sorted(TICKETS))
async def test_a_ticket_never_touches_an_excluded_guest_whatever_the_case_of_its_listed_id(kind):
    directory = FakeDirectory()
    services, guest = await _onboarded(directory)
    _exclude(services, guest.id.upper())
    writes_before = list(directory.writes)
    outcome = await handle_ticket(message(TICKETS[kind]()), services)
    assert (outcome.verdict, outcome.code) == (Verdict.REJECTED, "guest-excluded")
    assert directory.writes == writes_before and directory.users[guest.id].account_enabled is not False


@pytest.mark.parametrize("kind", sorted(TICKETS))
async def test_a_ticket_never_touches_a_guest_in_the_protected_group(kind):
    directory = FakeDirectory()
    services, guest = await _onboarded(directory)
    directory.add_to_group(services.desired.exclusions.protected_group_id, guest.id)
    writes_before = list(directory.writes)
    outcome = await handle_ticket(message(TICKETS[kind]()), services)
    assert (outcome.verdict, outcome.code) == (Verdict.REJECTED, "guest-protected")
    assert directory.writes == writes_before


@pytest.mark.parametrize("kind", sorted(TICKETS))
async def test_a_ticket_never_touches_a_guest_this_product_did_not_onboard(kind):
    directory = FakeDirectory()
    directory.add_guest(EMAIL)
    services = stack(directory)
    outcome = await handle_ticket(message(TICKETS[kind]()), services)
    assert (outcome.verdict, outcome.code) == (Verdict.REJECTED, "guest-not-managed")
    assert directory.writes == []


@pytest.mark.parametrize("kind", sorted(TICKETS))
async def test_a_ticket_never_touches_a_member(kind):
    directory = FakeDirectory()
    directory.add_member(EMAIL)
    services = stack(directory)
    outcome = await handle_ticket(message(TICKETS[kind]()), services)
    assert (outcome.verdict, outcome.code) == (Verdict.REJECTED, "not-a-guest")
    assert directory.writes == []


@pytest.mark.parametrize("kind", sorted(TICKETS))
async def test_a_ticket_fails_replayably_when_protection_cannot_be_checked(kind):
    """A protected group is configured but memberships cannot be read: nobody is touched, the item can be
    replayed once the permission is there."""
    directory = FakeDirectory()
    services, _guest = await _onboarded(directory)
    directory.membership_error = PermissionDeniedError("Insufficient privileges", status=403)
    writes_before = list(directory.writes)
    outcome = await handle_ticket(message(TICKETS[kind]()), services)
    assert outcome.verdict is Verdict.FAILED and directory.writes == writes_before


async def test_an_offboard_may_adopt_an_unmanaged_guest_only_when_the_desired_state_says_so():
    directory = FakeDirectory()
    guest = directory.add_guest(EMAIL)
    services = stack(directory)
    services.desired = services.desired.model_copy(update={"safety": Safety(tickets_may_act_on_unmanaged_guests=True)})
    outcome = await handle_ticket(message(TICKETS["offboard"]()), services)
    assert outcome.verdict is Verdict.DONE and directory.users[guest.id].account_enabled is False


async def test_an_offboard_of_a_guest_disabled_elsewhere_does_not_claim_the_disable():
    """The sweep deletes only after a disable this product made: someone else's disable is not stamped."""
    directory = FakeDirectory()
    services, guest = await _onboarded(directory)
    directory.put(replace(directory.users[guest.id], account_enabled=False))
    outcome = await handle_ticket(message(TICKETS["offboard"]()), services)
    record = await services.guests.get(guest.id)
    assert outcome.verdict is Verdict.DONE
    assert (await services.work_items.get("ticket:RITM0020002")).result["disabledByThisProduct"] is False
    assert record.state is not GuestState.DISABLED and record.disabled is None
    assert "guest.offboarded" in [e.action async for e in services.audit.entries()]


async def test_an_offboard_retried_after_a_crash_mid_disable_still_knows_the_disable_was_its_own():
    directory = FakeDirectory()
    services, guest = await _onboarded(directory)
    directory.crash_after_disable = True
    with pytest.raises(RuntimeError):
        await handle_ticket(message(TICKETS["offboard"]()), services)
    assert directory.users[guest.id].account_enabled is False
    services.clock.advance(timedelta(hours=1))  # the dead attempt's claim has lapsed; the broker redelivers
    outcome = await handle_ticket(message(TICKETS["offboard"]()), services)
    record = await services.guests.get(guest.id)
    assert outcome.verdict is Verdict.DONE and record.state is GuestState.DISABLED
    assert record.disabled == NOW + timedelta(hours=1)


# --- the sweep's worker ---------------------------------------------------------------------------------


async def _dispatched(directory: FakeDirectory, **fields):
    guest = add(directory, days_since_sign_in=400, **fields)
    services = stack(directory)
    summary = await entry.run_sweep(services, "enforce")
    assert summary["status"] == "dispatched", summary
    return services, guest, summary["runId"]


async def test_a_guest_added_to_the_protected_group_after_planning_is_not_disabled():
    directory = FakeDirectory()
    services, guest, run_id = await _dispatched(directory)
    await entry._gate(entry.sweep_ports(services)).policy(services, run_id)  # the run's first message read the group
    directory.add_to_group(services.desired.exclusions.protected_group_id, guest.id)
    report = await run_worker(services)
    assert directory.users[guest.id].account_enabled is not False
    assert [o.code for o in report.outcomes] == ["dropped:guest-protected"]


async def test_a_guest_excluded_after_planning_is_not_disabled():
    directory = FakeDirectory()
    services, guest, _run = await _dispatched(directory)
    _exclude(services, guest.id.upper())
    await run_worker(services)
    assert directory.users[guest.id].account_enabled is not False


async def test_a_forged_action_of_a_released_run_for_a_guest_not_in_its_plan_is_refused():
    directory = FakeDirectory()
    services, _planned, run_id = await _dispatched(directory)
    await run_worker(services)
    bystander = add(directory, days_since_sign_in=1)
    forged = PlannedAction(run_id, bystander.id, Action.DISABLE, Rule.INACTIVE, evidence={"forged": True})
    await services.transport.send(QUEUE, [action_message(forged)])
    report = await run_worker(services)
    assert [o.code for o in report.outcomes] == ["not-in-plan"]
    assert directory.users[bystander.id].account_enabled is not False


async def test_a_forged_action_cannot_change_what_a_planned_action_does():
    """The message says delete; the plan holds a disable for that guest: nothing is deleted."""
    directory = FakeDirectory()
    services, guest, run_id = await _dispatched(directory)
    forged = PlannedAction(run_id, guest.id, Action.DELETE, Rule.DISABLED_PAST_GRACE)
    body = json.dumps(forged.to_json()).encode()
    received = ReceivedMessage(body=body, message_id="forged-1", key=forged.key, kind="guest-action", delivery_count=1)
    outcome = await entry.handle_guest_action(received, services)
    assert outcome.code == "not-in-plan" and guest.id in directory.users


async def test_a_refused_forgery_leaves_no_work_item_under_the_real_actions_key():
    """Refusals are recorded under the message's own key, so the planned action still runs afterwards."""
    directory = FakeDirectory()
    services, guest, run_id = await _dispatched(directory)
    impostor = PlannedAction("sweep-1999-01-01", guest.id, Action.DISABLE, Rule.INACTIVE)
    received = ReceivedMessage(
        body=json.dumps(replace(impostor, run_id=run_id).to_json() | {"runId": "sweep-unknown"}).encode(),
        message_id="forged-2",
        key=f"sweep:{run_id}:{guest.id}:disable",
        kind="guest-action",
        delivery_count=1,
    )
    outcome = await entry.handle_guest_action(received, services)
    assert outcome.code == "run-not-released"
    assert await services.work_items.get(f"sweep:{run_id}:{guest.id}:disable") is None
    await run_worker(services)
    assert directory.users[guest.id].account_enabled is False


# --- the gate on its own ---------------------------------------------------------------------------------


async def test_the_gate_writes_nothing_in_plan_mode():
    directory = FakeDirectory()
    guest = directory.add_guest(EMAIL)
    services = stack(directory)
    gate = SafetyGate(services.desired, directory)
    refusal = await gate.refusal(guest, None, Write.DISABLE, managed_only=False, enforce=False)
    assert refusal is not None and refusal.code == "plan-mode"


async def test_an_undo_passes_the_gate_re_enabling_checks_protection_restoring_cannot_and_skips_it():
    """A re-enable (restore of a disable) is refused for a protected guest like any write; a restore from deleted
    items skips the membership check (a deleted object's memberships cannot be read) but keeps every other rule."""
    directory = FakeDirectory()
    guest = directory.add_guest(EMAIL)
    services = stack(directory)
    directory.add_to_group(services.desired.exclusions.protected_group_id, guest.id)
    gate = SafetyGate(services.desired, directory)
    enable = await gate.refusal(guest, None, Write.ENABLE, managed_only=False)
    assert enable is not None and enable.code == "guest-protected"
    assert await gate.refusal(guest, None, Write.RESTORE, managed_only=False) is None
    member = replace(guest, user_type="Member")
    refused = await gate.refusal(member, None, Write.RESTORE, managed_only=False)
    assert refused is not None and refused.code == "not-a-guest"


def test_exclusion_ids_must_be_object_ids_and_are_kept_in_lower_case():
    assert Exclusions(object_ids=("3F2A9C1E-4B7D-4E8A-9C0F-1A2B3C4D5E6F",)).object_ids == (
        "3f2a9c1e-4b7d-4e8a-9c0f-1a2b3c4d5e6f",
    )
    with pytest.raises(ValueError, match="GUID"):
        Exclusions(object_ids=("ana.lopez@fabrikam.com",))
    with pytest.raises(ValueError, match="GUID"):
        Exclusions(protected_group_id="exclusions")


# --- redemption reset: tickets (one guest, a new address, a domain) and the daily run ---------------------


def _reset_stack(directory: FakeDirectory, *, unmanaged: bool = False, mode: str = "enforce"):

    return services_with(directory, FakeLookup(), mode=mode, unmanaged_tickets=unmanaged)


async def _reset_ticket(services, **fields):

    return await ticket_outcome(services, ticketId=f"R-{len(services.directory.invitations)}", **fields)


def _managed(services, guest, partner: str = "fabrikam"):
    from lifecycle.models import GuestRecord

    return services.guests.save(GuestRecord(guest.id, guest.mail or "", partner=partner, state=GuestState.ACTIVE))


@pytest.mark.parametrize("new_email", [None, "ana@fabrikam.co.uk"], ids=["reset", "reset-to-new-address"])
@pytest.mark.parametrize("category", ["excluded", "protected", "unmanaged", "member"])
async def test_a_reset_ticket_obeys_every_rule_of_the_gate(category, new_email):

    directory = FakeDirectory()
    guest = redeemed(directory, "ana@fabrikam.com", "google")
    services = _reset_stack(directory)
    if category != "unmanaged":
        await _managed(services, guest)
    if category == "excluded":
        _exclude(services, guest.id.upper())
    elif category == "protected":
        directory.add_to_group(services.desired.exclusions.protected_group_id, guest.id)
    elif category == "member":
        directory.put(replace(guest, user_type="Member"))
    services.desired = services.desired.model_copy(update={"safety": Safety()})
    fields = {"objectId": guest.id} | ({"newEmail": new_email} if new_email else {})
    outcome = await _reset_ticket(services, **fields)
    expected = {
        "excluded": "guest-excluded",
        "protected": "guest-protected",
        "unmanaged": "guest-not-managed",
        "member": "not-a-guest",
    }
    assert (outcome.verdict, outcome.code) == (Verdict.REJECTED, expected[category])
    assert directory.invitations == [] and directory.writes == []


async def test_a_reset_ticket_cannot_move_a_guest_to_an_address_outside_its_partner():
    """The takeover: a ticket moving a Fabrikam guest to an address the sender controls is refused."""

    directory = FakeDirectory()
    guest = redeemed(directory, "ana@fabrikam.com", "google")
    services = _reset_stack(directory)
    await _managed(services, guest)
    for address in ("attacker@northwindtraders.com", "attacker@evil.example"):
        outcome = await _reset_ticket(services, objectId=guest.id, newEmail=address)
        assert (outcome.verdict, outcome.code) == (Verdict.REJECTED, "new-email-not-partner-domain")
    assert directory.invitations == [] and directory.writes == []
    assert directory.users[guest.id].mail == "ana@fabrikam.com"


async def test_a_reset_ticket_cannot_move_a_guest_to_a_domain_the_invitation_list_refuses():
    from config.desired_state import DomainList

    directory = FakeDirectory()
    guest = redeemed(directory, "ana@fabrikam.com", "google")
    services = _reset_stack(directory)
    await _managed(services, guest)
    invitations = services.desired.invitations.model_copy(
        update={"domains": DomainList(mode="allowlist", domains=("fabrikam.com",))}
    )
    services.desired = services.desired.model_copy(update={"invitations": invitations})
    outcome = await _reset_ticket(services, objectId=guest.id, newEmail="ana@fabrikam.co.uk")
    assert (outcome.verdict, outcome.code) == (Verdict.REJECTED, "domain-not-allowed")
    assert directory.writes == []


async def test_a_reset_ticket_in_plan_mode_writes_nothing_and_stays_replayable():

    directory = FakeDirectory()
    guest = redeemed(directory, "ana@fabrikam.com", "google")
    services = _reset_stack(directory, mode="plan")
    await _managed(services, guest)
    outcome = await _reset_ticket(services, objectId=guest.id)
    assert (outcome.verdict, outcome.code) == (Verdict.FAILED, "plan-mode")
    assert directory.invitations == [] and directory.writes == []


async def test_a_domain_ticket_in_plan_mode_only_plans():

    directory = FakeDirectory()
    for n in range(2):
        redeemed(directory, f"p{n}@fabrikam.com", "google")
    services = _reset_stack(directory, unmanaged=True, mode="plan")
    outcome = await _reset_ticket(services, domain="fabrikam.com")
    assert outcome.verdict is Verdict.FAILED and outcome.code == "planned"
    assert outcome.detail["actions"] and resets_sent(directory) == []


async def test_a_domain_ticket_resets_only_the_guests_this_product_manages():

    directory = FakeDirectory()
    managed, unmanaged = (redeemed(directory, f"p{n}@fabrikam.com", "google") for n in range(2))
    services = _reset_stack(directory)
    await _managed(services, managed)
    outcome = await _reset_ticket(services, domain="fabrikam.com")
    assert outcome.verdict is Verdict.DONE
    assert resets_sent(directory) == [managed.id] and unmanaged.id not in resets_sent(directory)


async def test_the_daily_run_never_resets_a_guest_excluded_after_planning():
    from lifecycle.reset.entry import run_reset_detection
    from lifecycle.reset.local import run_locally

    directory = FakeDirectory()
    guest = redeemed(directory, "ana@fabrikam.com", "google")
    services = _reset_stack(directory)
    planned = await run_reset_detection(services, "plan")
    assert planned["actions"] == {"reset/google->entra": 1}
    _exclude(services, guest.id.upper())
    enforced = await run_locally(services, "enforce")  # fanned out, then the guest-actions worker's gate refuses
    assert enforced["worker"] == {"done": 1} and enforced["progress"]["skipped"] == 1
    assert resets_sent(directory) == [] and directory.writes == []
