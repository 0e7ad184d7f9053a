"""Ticket identity through the onboarding trigger: a ticket id names one ticket.

The same id with the same ticket is a duplicate (however the JSON is written); the same id with another
ticket, of another kind or saying something else, is rejected as ``ticket-id-conflict`` and recorded like
every rejection (rejections table, job ledger, audit), never dropped and never run under the earlier
ticket's work item. Rows written before content hashes were stored keep working.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

import function_app
from app.bootstrap import use_services
from lifecycle.models import WorkItem, WorkStatus
from lifecycle.services import Services
from tests.builders import NOW, memory_services, onboard_ticket
from tests.fakes import FakeDirectory
from tests.functions.test_onboarding_function import service_bus_message

EMAIL = "ana.lopez@fabrikam.com"


def offboard(ticket_id: str = "RITM0010001") -> dict[str, Any]:
    return {"schemaVersion": 1, "kind": "offboard", "ticketId": ticket_id, "email": EMAIL, "reason": "left"}


@pytest.fixture(name="directory")
def _directory() -> FakeDirectory:
    directory = FakeDirectory()
    directory.add_member("megan.bowen@contoso.com")
    return directory


async def _deliver(services: Services, body: dict[str, Any] | bytes, message_id: str) -> None:
    with use_services(services):
        await function_app.onboarding_worker(service_bus_message(body, message_id=message_id))


async def _rejections(services: Services) -> list[tuple[str, str]]:
    return [(r.key, r.code) async for r in services.rejections.all()]


async def test_an_offboard_reusing_the_onboard_ticket_id_is_rejected_as_a_conflict_not_dropped(directory):
    """The offboard under the onboard's id is not a duplicate: it is rejected with ticket-id-conflict in the
    rejections table, the job ledger and the audit trail; the onboard's item stays done, the guest is
    untouched, and delivering the offboard again adds no second rejection."""
    services = memory_services(directory)
    await _deliver(services, onboard_ticket(), "sb-1")
    [guest] = directory.guests_with_mail(EMAIL)
    writes_before = list(directory.writes)

    await _deliver(services, offboard(), "sb-2")
    await _deliver(services, offboard(), "sb-3")

    [(key, code)] = await _rejections(services)
    assert code == "ticket-id-conflict" and key.startswith("ticket-conflict:RITM0010001:")
    conflict = await services.work_items.get(key)
    assert conflict is not None and conflict.status is WorkStatus.REJECTED
    assert conflict.result["code"] == "ticket-id-conflict"
    original = await services.work_items.get("ticket:RITM0010001")
    assert original is not None and original.status is WorkStatus.DONE and original.kind == "onboard"
    audit = [e async for e in services.audit.entries() if e.action == "ticket.rejected"]
    assert [e.reason.split(":")[0] for e in audit] == ["ticket-id-conflict"]
    assert audit[0].details["existingKind"] == "onboard" and audit[0].details["kind"] == "offboard"
    assert directory.writes == writes_before and directory.users[guest.id].account_enabled is not False


async def test_the_same_ticket_written_differently_is_a_duplicate(directory):
    """Key order, whitespace, a default spelled out and the domain's case do not make another ticket."""
    services = memory_services(directory)
    await _deliver(services, onboard_ticket(), "sb-1")
    ticket = onboard_ticket(email="ana.lopez@FABRIKAM.com")
    rewritten = json.dumps(dict(reversed(list(ticket.items()))), indent=2).encode()
    await _deliver(services, rewritten, "sb-2")
    assert await _rejections(services) == []
    assert len(directory.invitations) == 1


async def test_the_same_kind_saying_something_else_under_the_same_id_is_a_conflict(directory):
    """A second onboard under the id with another end date is refused, not taken for the first one."""
    services = memory_services(directory)
    await _deliver(services, onboard_ticket(), "sb-1")
    await _deliver(services, onboard_ticket(endDate="2027-06-30"), "sb-2")
    assert [code for _, code in await _rejections(services)] == ["ticket-id-conflict"]
    assert len(directory.invitations) == 1


async def test_a_corrected_ticket_after_a_rejection_still_gets_its_attempt(directory):
    """A ticket rejected by policy, corrected and sent again under its id, is processed (not a conflict)."""
    services = memory_services(directory)
    await _deliver(services, onboard_ticket(partner="nobody"), "sb-1")
    await _deliver(services, onboard_ticket(), "sb-2")
    assert [code for _, code in await _rejections(services)] == ["unknown-partner"]
    assert len(directory.invitations) == 1


async def test_a_row_stored_before_content_hashes_keeps_working(directory):
    """A done item without a hash: the same kind again is a duplicate as before, another kind a conflict."""
    services = memory_services(directory)
    legacy = WorkItem("ticket:RITM0010001", "onboard", WorkStatus.DONE, attempts=1, created=NOW, updated=NOW)
    await services.work_items.create(legacy)
    await _deliver(services, onboard_ticket(), "sb-1")
    assert directory.invitations == [] and await _rejections(services) == []
    await _deliver(services, offboard(), "sb-2")
    assert [code for _, code in await _rejections(services)] == ["ticket-id-conflict"]


async def test_a_ticket_with_a_repeated_field_name_is_rejected_not_read_last_wins(directory):
    """{"kind": "onboard", ..., "kind": "offboard"}: JSON readers disagree on which one counts, so neither."""
    services = memory_services(directory)
    body = json.dumps(onboard_ticket())[:-1] + ', "email": "mallory@fabrikam.com"}'
    await _deliver(services, body.encode(), "sb-1")
    [(_, code)] = await _rejections(services)
    assert code == "duplicate-key" and directory.invitations == []
