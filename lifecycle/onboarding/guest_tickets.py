"""Tickets about an existing guest: extend moves the end date, offboard ends access now, attest records that a
sponsor confirmed the guest is still needed."""

from __future__ import annotations

from datetime import UTC, timedelta

import structlog

from lifecycle.dates import end_of, latest_last_day, shown_end
from lifecycle.ledger import work
from lifecycle.ledger.outcomes import Outcome
from lifecycle.models import AuditEntry, DirectoryUser, GuestRecord, GuestState, WorkItem
from lifecycle.onboarding import holds
from lifecycle.safety import Refusal, Write, gate_of
from lifecycle.services import Services
from lifecycle.tickets import AttestTicket, ExtendTicket, OffboardTicket

log = structlog.get_logger(__name__)

STAGE = "stage"


async def extend(ticket: ExtendTicket, item: WorkItem, services: Services, raw: bytes, fingerprint: str) -> Outcome:
    now = services.clock.now()
    guest, record = await _guest_and_record(ticket.email, services)
    refusal = await gate_of(services).refusal(guest, record, Write.EXTEND, managed_only=True)
    if refusal is None and record is None:
        refusal = Refusal(
            "guest-not-managed", "no ledger row: an end date can only move for a guest this product onboarded"
        )
    if refusal is not None:
        return await _reject(
            services, item, raw, fingerprint, "extend", refusal.code, f"{ticket.email}: {refusal.message}"
        )
    assert record is not None
    partner = services.desired.partners.get(record.partner)
    end = end_of(ticket.end_date)
    if partner is None:
        return await _reject(services, item, raw, fingerprint, "extend", "unknown-partner", f"{record.partner}?")
    latest = now + partner.max_engagement
    if end <= now or end > latest:
        return await _reject(
            services,
            item,
            raw,
            fingerprint,
            "extend",
            "end-date-out-of-range",
            f"endDate {shown_end(end)} must be today or later and no later than {latest_last_day(latest)}",
        )
    previous = record.end_date
    record.end_date, record.updated = end, now
    # Someone acted for the guest: a sponsor-gone period it was in ends (the sweep starts a new one if still gone).
    record.sponsor_gone_since = None
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


# A ticketing system's clock may run a little ahead of ours; an attestation further in the future is refused.
ATTESTED_AT_SKEW = timedelta(minutes=5)


async def attest(ticket: AttestTicket, item: WorkItem, services: Services, raw: bytes, fingerprint: str) -> Outcome:
    """Keep the attestation as evidence: who (a sponsor of the guest, an enabled member) and when.

    The attester must be one of the guest's sponsors in Graph or the sponsor the ledger recorded at onboarding;
    anyone else's word is refused. An attestation older than the one kept is recorded in the history only.
    """
    now = services.clock.now()
    guest, record = await _guest_and_record(ticket.email, services)
    refusal = await gate_of(services).refusal(guest, record, Write.ATTEST, managed_only=True)
    if refusal is None and record is None:
        refusal = Refusal("guest-not-managed", "no ledger row: only a guest this product onboarded keeps attestations")
    if refusal is not None:
        return await _reject(
            services, item, raw, fingerprint, "attest", refusal.code, f"{ticket.email}: {refusal.message}"
        )
    assert guest is not None and record is not None
    when = ticket.attested_at or now
    when = (when if when.tzinfo else when.replace(tzinfo=UTC)).astimezone(UTC)  # a date-time without offset: UTC
    if when > now + ATTESTED_AT_SKEW:
        return await _reject(
            services, item, raw, fingerprint, "attest", "attested-at-future", f"attestedAt {when.isoformat()} is ahead"
        )
    attester = await services.directory.get_user(ticket.attested_by)
    if attester is None or attester.is_guest or attester.account_enabled is False:
        return await _reject(
            services,
            item,
            raw,
            fingerprint,
            "attest",
            "attester-not-member",
            f"{ticket.attested_by} is not an enabled member of the tenant",
        )
    sponsors = await services.directory.sponsor_ids(guest.id)
    if attester.id not in sponsors and attester.id != record.sponsor:
        return await _reject(
            services,
            item,
            raw,
            fingerprint,
            "attest",
            "attester-not-sponsor",
            f"{ticket.attested_by} is not a sponsor of {ticket.email}",
        )
    if record.attested is None or when >= record.attested:
        record.attested, record.attested_by = when, attester.id
    record.updated, record.sponsor_gone_since = now, None  # a sponsor-gone period ends, as for an extension
    record.history.append(
        {
            "at": now.isoformat(),
            "event": "attested",
            "ticket": ticket.ticket_id,
            "by": attester.id,
            "attestedAt": when.isoformat(),
        }
    )
    await services.guests.save(record)
    await services.audit.record(
        AuditEntry(
            now,
            "guest.attested",
            record.object_id,
            f"attest ticket {ticket.ticket_id}: still needed, says {attester.user_principal_name or attester.id}",
            key=item.key,
            details={"attestedBy": attester.id, "attestedAt": when.isoformat(), "note": ticket.note},
        )
    )
    return await work.finish(
        services, item, {"objectId": record.object_id, "attestedBy": attester.id, "attestedAt": when.isoformat()}
    )


async def offboard(ticket: OffboardTicket, item: WorkItem, services: Services, raw: bytes, fingerprint: str) -> Outcome:
    """Disable the guest now and stamp the ledger so the sweep deletes it after the grace period.

    Only a disable this product makes starts that grace period: a guest someone else disabled is recorded
    as offboarded but not as disabled by this product, so the sweep leaves its deletion to a person. The
    work item records the step before the disable, so a redelivery after a crash still knows whose disable
    it was.
    """
    now = services.clock.now()
    cancelled = await holds.cancel_holds_for(services, ticket.email, f"offboard ticket {ticket.ticket_id}")
    guest, record = await _guest_and_record(ticket.email, services)
    if guest is None and cancelled:
        return await work.finish(services, item, {"cancelledHolds": cancelled})
    refusal = await gate_of(services).refusal(guest, record, Write.DISABLE)
    if refusal is not None:
        return await _reject(
            services, item, raw, fingerprint, "offboard", refusal.code, f"{ticket.email}: {refusal.message}"
        )
    assert guest is not None
    ours = guest.account_enabled is not False or item.result.get(STAGE) == "disabling"
    if guest.account_enabled is not False:
        item = await work.checkpoint(services, item, **{STAGE: "disabling"})
        await services.directory.set_account_enabled(guest.id, False)
    await services.directory.revoke_sessions(guest.id)
    if record is None:  # only when the desired state lets tickets act on unmanaged guests
        record = GuestRecord(guest.id, ticket.email, partner="(unmanaged)", state=GuestState.ACTIVE)
    if ours and (record.state is not GuestState.DISABLED or record.disabled is None):
        record.state, record.disabled = GuestState.DISABLED, now
    record.end_date, record.updated = min(record.end_date or now, now), now
    event = "offboarded" if ours else "offboarded-already-disabled"
    record.history.append({"at": now.isoformat(), "event": event, "ticket": ticket.ticket_id})
    await services.guests.save(record)
    await services.audit.record(
        AuditEntry(
            now,
            "guest.disabled" if ours else "guest.offboarded",
            guest.id,
            f"offboard ticket {ticket.ticket_id}: {ticket.reason or 'no reason given'}",
            key=item.key,
            details={"revokedSessions": True, "cancelledHolds": cancelled, "disabledByThisProduct": ours},
        )
    )
    log.info("offboarding.done", key=item.key, object_id=guest.id, disabled_by_this_product=ours)
    return await work.finish(
        services,
        item,
        {"objectId": guest.id, "disabled": True, "disabledByThisProduct": ours, "cancelledHolds": cancelled},
    )


async def _guest_and_record(email: str, services: Services) -> tuple[DirectoryUser | None, GuestRecord | None]:
    guest = await services.directory.find_user_by_mail(email)
    record = await services.guests.get(guest.id) if guest is not None else None
    return guest, record


async def _reject(
    services: Services, item: WorkItem, raw: bytes, fingerprint: str, kind: str, code: str, message: str
) -> Outcome:
    return await work.reject(
        services, key=item.key, kind=kind, code=code, message=message, raw=raw, item=item, fingerprint=fingerprint
    )
