"""What an onboard ticket's invitation step records: the guest's ledger row, then its audit rows."""

from __future__ import annotations

from datetime import datetime

from lifecycle.errors import StateConflictError
from lifecycle.models import AuditEntry, GuestRecord, GuestState, WorkItem
from lifecycle.onboarding.policy import ApprovedOnboarding
from lifecycle.onboarding.sponsor import SponsorResult
from lifecycle.services import Services
from lifecycle.tickets import OnboardTicket


async def record_invitation(
    services: Services,
    ticket: OnboardTicket,
    decision: ApprovedOnboarding,
    item: WorkItem,
    object_id: str,
    sponsor_id: str,
    reused: bool,
    sponsored: dict[str, str],
) -> None:
    """The guest's ledger row, then the audit rows of the invitation (and of a sponsor added).

    In that order: the retry after a crash between them finds the ledger row and writes the audit rows once.
    """
    reason = f"onboard ticket {ticket.ticket_id} for partner {decision.partner_key}"
    contact = {"email": ticket.email, "sponsor": sponsor_id}
    actions = [("guest.reused" if reused else "guest.invited", {**contact, "endDate": decision.end.isoformat()})]
    if sponsored.get("sponsor") == SponsorResult.ADDED:
        actions.append(("guest.sponsor-added", contact))
    entries = [
        AuditEntry(services.clock.now(), action, object_id, reason, key=item.key, details=d) for action, d in actions
    ]
    await _record_guest(services, ticket, decision, object_id, sponsor_id, reused)
    for entry in entries:
        await services.audit.record(entry)


async def _record_guest(
    services: Services,
    ticket: OnboardTicket,
    decision: ApprovedOnboarding,
    object_id: str,
    sponsor_id: str,
    reused: bool,
) -> None:
    now = services.clock.now()
    event = {"at": now.isoformat(), "event": "reused" if reused else "invited", "ticket": ticket.ticket_id}
    fresh = GuestRecord(
        object_id=object_id,
        email=ticket.email,
        partner=decision.partner_key,
        state=GuestState.INVITED,
        invited=now,
    )
    if not reused:
        # A guest just invited usually has no ledger row: insert it in one round trip. Graph may still have
        # handed back an object the ledger knows (an address another ticket onboarded): then update that row.
        _update(fresh, ticket, decision, sponsor_id, now, event)
        try:
            await services.guests.save(fresh)
            return
        except StateConflictError:
            pass
    record = await services.guests.get(object_id) or fresh
    _update(record, ticket, decision, sponsor_id, now, event)
    await services.guests.save(record)


def _update(
    record: GuestRecord,
    ticket: OnboardTicket,
    decision: ApprovedOnboarding,
    sponsor_id: str,
    now: datetime,
    event: dict[str, str],
) -> None:
    record.sponsor, record.ticket_id, record.end_date, record.updated = sponsor_id, ticket.ticket_id, decision.end, now
    if not any(h.get("ticket") == ticket.ticket_id for h in record.history):
        record.history.append(event)
