"""Hostile tickets and forged guest-actions messages aimed at the safety gate, through the Service Bus triggers.

Tickets: every kind that writes to a guest (offboard, extend, reset-redemption by email or object id, with or
without a new address) against every protected category (a member, an excluded id written in any letter case,
a protected-group member, a guest this product never onboarded, several at once), with the address in any
letter case. Each must be rejected with the gate's code and write nothing.

Guest actions: messages a sender with Service Bus access could forge for a released sweep run (any guest, any
action, any rule and evidence, the real run id or another). Only an action the stored plan holds, for a guest
the gate still lets through, may be carried out; everything else writes nothing.
"""

from __future__ import annotations

import json

import azure.functions.servicebus as sb
from hypothesis import given, settings
from hypothesis import strategies as st

import function_app
from adapters.memory import MemorySweepRuns
from app.bootstrap import use_services
from config.desired_state import Exclusions
from lifecycle.models import GuestRecord, GuestState
from lifecycle.sweep import entry
from lifecycle.sweep.model import Action, PlannedAction, Rule
from tests.builders import memory_services
from tests.builders.sweep import add, relaxed
from tests.fakes import FakeDirectory, FakeLookup
from tests.fuzz.profile import FUZZ, examples

EMAIL = "ana.lopez@fabrikam.com"
CATEGORIES = ("member", "excluded", "protected", "unmanaged")
EXPECTED = {"member": "not-a-guest", "excluded": "guest-excluded", "protected": "guest-protected"}


def _case_variants(text: str) -> st.SearchStrategy[str]:
    return st.lists(st.booleans(), min_size=len(text), max_size=len(text)).map(
        lambda flips: "".join(c.upper() if f else c for c, f in zip(text, flips, strict=True))
    )


@st.composite
def gate_cases(draw) -> tuple[dict, frozenset[str]]:
    kind = draw(st.sampled_from(["offboard", "extend", "reset-by-email", "reset-by-id", "reset-new-address"]))
    categories = frozenset(draw(st.sets(st.sampled_from(CATEGORIES), min_size=1, max_size=3)))
    address = draw(_case_variants(EMAIL))
    ticket: dict = {"schemaVersion": 1, "ticketId": f"GATE-{draw(st.integers(0, 10**6))}"}
    if kind == "offboard":
        ticket |= {"kind": "offboard", "email": address}
    elif kind == "extend":
        ticket |= {"kind": "extend", "email": address, "endDate": "2027-01-31"}
    else:
        ticket |= {"kind": "reset-redemption", **({"email": address} if kind == "reset-by-email" else {})}
        if kind == "reset-new-address":
            ticket["newEmail"] = "ana.lopez@fabrikam.co.uk"
    return ticket, categories


async def _tenant(categories: frozenset[str], id_case: str):
    directory = FakeDirectory()
    directory.add_member("megan.bowen@contoso.com")
    guest = directory.add_member(EMAIL) if "member" in categories else directory.add_guest(EMAIL)
    services = memory_services(directory, sweep_runs=MemorySweepRuns(), provider_lookup=FakeLookup())
    services.settings = services.settings.model_copy(update={"reset_enabled": True, "reset_mode": "enforce"})
    if "unmanaged" not in categories:
        await services.guests.save(GuestRecord(guest.id, EMAIL, "fabrikam", GuestState.ACTIVE))
    if "excluded" in categories:
        listed = guest.id.upper() if id_case == "upper" else guest.id
        services.desired = services.desired.model_copy(update={"exclusions": Exclusions(object_ids=(listed,))})
    if "protected" in categories:
        directory.add_to_group(services.desired.exclusions.protected_group_id, guest.id)
    return services, directory, guest


def _message(body: bytes, message_id: str, kind: str) -> sb.ServiceBusMessage:
    return sb.ServiceBusMessage(
        body=body, message_id=message_id, delivery_count=1, application_properties={"kind": kind}, user_properties={}
    )


@settings(FUZZ, max_examples=examples(300))
@given(case=gate_cases(), id_case=st.sampled_from(["lower", "upper"]))
async def test_a_ticket_aimed_at_a_protected_category_is_refused_and_writes_nothing(case, id_case):
    ticket, categories = case
    services, directory, guest = await _tenant(categories, id_case)
    if ticket["kind"] == "reset-redemption" and "email" not in ticket:
        ticket["objectId"] = guest.id
    records_before = [r async for r in services.guests.all()]
    with use_services(services):
        await function_app.onboarding_worker(_message(json.dumps(ticket).encode(), ticket["ticketId"], "ticket"))
    [rejection] = [r async for r in services.rejections.all()]
    possible = {EXPECTED[c] for c in categories if c in EXPECTED}
    if not possible:  # only "unmanaged"
        possible = {"guest-not-managed"}
    assert rejection.code in possible, (ticket, categories, rejection.code, rejection.message)
    assert directory.writes == [] and directory.invitations == [], (ticket, categories, directory.writes)
    assert [r async for r in services.guests.all()] == records_before


@st.composite
def forged_actions(draw, run_id: str, object_ids: list[str]) -> PlannedAction:
    action = draw(st.sampled_from([Action.DISABLE, Action.DELETE]))
    return PlannedAction(
        run_id=draw(st.sampled_from([run_id, run_id.upper(), "sweep-2026-01-01", run_id + " "])),
        object_id=draw(st.sampled_from(object_ids) | st.uuids().map(str)),
        action=action,
        rule=draw(st.sampled_from(list(Rule))),
        partner=draw(st.none() | st.sampled_from(["fabrikam", "northwind", "x"])),
        evidence=draw(st.dictionaries(st.sampled_from(["inactiveDays", "forged"]), st.integers(), max_size=2)),
    )


@settings(FUZZ, max_examples=examples(150))
@given(data=st.data())
async def test_a_forged_guest_action_writes_only_what_the_approved_plan_holds(data):
    directory = FakeDirectory()
    planned = add(directory, days_since_sign_in=400)
    bystanders = [add(directory, days_since_sign_in=400 - n, domain="fabrikam.com") for n in range(1, 3)]
    member = directory.add_member("someone@contoso.com")
    services = relaxed(memory_services(directory, sweep_runs=MemorySweepRuns()))
    directory.add_to_group(services.desired.exclusions.protected_group_id, *(b.id for b in bystanders))
    summary = await entry.run_sweep(services, "enforce", run_id="sweep-fuzz")
    plan = {(a["objectId"], a["action"]) for a in (await entry.show(services, "sweep-fuzz", limit=100))["plan"]}
    assert plan == {(planned.id, "disable")}
    assert summary["status"] == "dispatched"
    await services.transport.receive(services.settings.queue_name("guest-actions"), max_messages=100)  # drop fan-out
    forged = data.draw(forged_actions("sweep-fuzz", [planned.id, member.id, *(b.id for b in bystanders)]))
    with use_services(services):
        await function_app.guest_actions_worker(
            _message(json.dumps(forged.to_json()).encode(), "forged", "guest-action")
        )
    touched = {w[1] for w in directory.writes}
    allowed = (
        {planned.id}
        if (forged.run_id, forged.object_id, forged.action.value)
        == (
            "sweep-fuzz",
            planned.id,
            "disable",
        )
        else set()
    )
    assert touched <= allowed, (forged, directory.writes)
    assert not any(w[0] == "delete" for w in directory.writes), (forged, directory.writes)
