"""Tickets about an existing guest: extend moves the end date, offboard ends access now."""

from __future__ import annotations

from datetime import timedelta

import structlog

from lifecycle import holds, work
from lifecycle.models import AuditEntry, DirectoryUser, GuestRecord, GuestState, WorkItem
from lifecycle.onboarding_policy import end_of
from lifecycle.outcomes import Outcome
from lifecycle.services import Services
from lifecycle.tickets import ExtendTicket, OffboardTicket

log = structlog.get_logger(__name__)


async def extend(ticket: ExtendTicket, item: WorkItem, services: Services, raw: bytes, fingerprint: str) -> Outcome:
    now = services.clock.now()
    guest, record = await _guest_and_record(ticket.email, services)
    problem = _not_ours(ticket.email, guest, record)
    if problem:
        return await _reject(services, item, raw, fingerprint, "extend", *problem)
    partner = services.desired.partners.get(record.partner)
    end = end_of(ticket.end_date)
    if partner is None:
        return await _reject(services, item, raw, fingerprint, "extend", "unknown-partner", f"{record.partner}?")
    latest = now + timedelta(days=partner.max_engagement_days)
    if end <= now or end > latest:
        return await _reject(
            services,
            item,
            raw,
            fingerprint,
            "extend",
            "end-date-out-of-range",
            f"endDate {end.date().isoformat()} must be after today and no later than {latest.date().isoformat()}",
        )
    previous = record.end_date
    record.end_date, record.updated = end, now
    record.history.append({"at": now.isoformat(), "event": "extended", "ticket": ticket.ticket_id})
    await services.guests.save(record)
    await services.audit.record(
        AuditEntry(
            now,
            "guest.extended",
            record.object_id,
            f"extend ticket {ticket.ticket_id}",
            key=item.key,
            details={"from": previous.isoformat() if previous else None, "to": end.isoformat()},
        )
    )
    return await work.finish(services, item, {"objectId": record.object_id, "endDate": end.isoformat()})


async def offboard(ticket: OffboardTicket, item: WorkItem, services: Services, raw: bytes, fingerprint: str) -> Outcome:
    now = services.clock.now()
    cancelled = await holds.cancel_holds_for(services, ticket.email, f"offboard ticket {ticket.ticket_id}")
    guest, record = await _guest_and_record(ticket.email, services)
    if guest is None and cancelled:
        return await work.finish(services, item, {"cancelledHolds": cancelled})
    if guest is None or not guest.is_guest:
        code, why = (
            ("guest-not-found", "no guest has this address")
            if guest is None
            else (
                "not-a-guest",
                "the address belongs to a member; members are never touched",
            )
        )
        return await _reject(services, item, raw, fingerprint, "offboard", code, f"{ticket.email}: {why}")

    if guest.account_enabled is not False:
        await services.directory.set_account_enabled(guest.id, False)
    await services.directory.revoke_sessions(guest.id)
    if record is None:
        record = GuestRecord(guest.id, ticket.email, partner="(unmanaged)", state=GuestState.DISABLED)
    if record.state is not GuestState.DISABLED or record.disabled is None:
        record.state, record.disabled = GuestState.DISABLED, now
    record.end_date, record.updated = min(record.end_date or now, now), now
    record.history.append({"at": now.isoformat(), "event": "offboarded", "ticket": ticket.ticket_id})
    await services.guests.save(record)
    await services.audit.record(
        AuditEntry(
            now,
            "guest.disabled",
            guest.id,
            f"offboard ticket {ticket.ticket_id}: {ticket.reason or 'no reason given'}",
            key=item.key,
            details={"revokedSessions": True, "cancelledHolds": cancelled},
        )
    )
    log.info("offboarding.done", key=item.key, object_id=guest.id)
    return await work.finish(services, item, {"objectId": guest.id, "disabled": True, "cancelledHolds": cancelled})


async def _guest_and_record(email: str, services: Services) -> tuple[DirectoryUser | None, GuestRecord | None]:
    guest = await services.directory.find_user_by_mail(email)
    record = await services.guests.get(guest.id) if guest is not None else None
    return guest, record


def _not_ours(email: str, guest: DirectoryUser | None, record: GuestRecord | None) -> tuple[str, str] | None:
    if guest is None:
        return "guest-not-found", f"no guest has the address {email}"
    if not guest.is_guest:
        return "not-a-guest", f"{email} belongs to a member; members are never touched"
    if record is None:
        return "guest-not-managed", f"{email} is a guest this product did not onboard (no ledger row)"
    return None


async def _reject(
    services: Services, item: WorkItem, raw: bytes, fingerprint: str, kind: str, code: str, message: str
) -> Outcome:
    return await work.reject(
        services, key=item.key, kind=kind, code=code, message=message, raw=raw, item=item, fingerprint=fingerprint
    )
