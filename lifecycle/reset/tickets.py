"""Tickets of kind ``reset-redemption``: one guest (object id or email, optionally a new email) or a domain.

Only where redemption reset is switched on (settings.reset_enabled, with User.ReadWrite.All granted);
otherwise the ticket is rejected ``kind-not-available``. A 403 from Graph on the way (the address update or
the reset) is a failed outcome ``permission-missing`` naming the permission: replay the ticket once granted.
"""

from __future__ import annotations

from dataclasses import replace

import structlog

from lifecycle.errors import (
    BadRequestError,
    ConflictError,
    GraphError,
    PermissionDeniedError,
    StateConflictError,
    TransientGraphError,
)
from lifecycle.ledger import work
from lifecycle.ledger.outcomes import Outcome
from lifecycle.models import DirectoryUser, GuestRecord, WorkItem, WorkStatus
from lifecycle.onboarding.policy import invitation_domain_violation
from lifecycle.plans import Mode
from lifecycle.reset.guest import ResetNotConfirmed, ResetPermissionMissing, ResetRefused, reset_guest
from lifecycle.reset.items import KIND as RUN_ITEM_KIND
from lifecycle.reset.items import PERMISSION_MISSING as PERMISSION
from lifecycle.reset.items import TICKET_RUN_PREFIX
from lifecycle.reset.planner import partner_domains
from lifecycle.reset.ports import ProviderLookup, ResetPorts
from lifecycle.reset.runs import NOT_ENABLED, run_detection
from lifecycle.runs.model import RunStatus
from lifecycle.safety import Write, gate_of
from lifecycle.services import Services
from lifecycle.tickets import ResetRedemptionTicket, email_problem

log = structlog.get_logger(__name__)

KIND = "reset-redemption"
PLAN_MODE = (
    "redemption reset runs in plan mode (LIFECYCLE_RESET_MODE=plan): nothing was written; replay this ticket "
    "once the reset is switched to enforce"
)


class _Refused(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


async def handle(
    ticket: ResetRedemptionTicket,
    item: WorkItem,
    services: Services,
    raw: bytes,
    fingerprint: str,
    ports: ResetPorts,
) -> Outcome:
    """``ports.lookup`` is needed for a domain ticket only (it plans like a detection run)."""
    try:
        if not services.settings.reset_enabled:
            raise _Refused("kind-not-available", NOT_ENABLED)
        _check_shape(ticket)
        if ticket.domain:
            if ports.lookup is None:
                raise _Refused("kind-not-available", "no identity-provider lookup is configured for domain resets")
            return await _reset_domain(ticket, item, services, ports, ports.lookup)
        return await _reset_one(ticket, item, services)
    except _Refused as refusal:
        return await work.reject(
            services,
            key=item.key,
            kind=KIND,
            code=refusal.code,
            message=str(refusal),
            raw=raw,
            item=item,
            fingerprint=fingerprint,
        )
    except ResetPermissionMissing as error:
        log.error("reset.permission-missing", key=item.key, detail=error.detail)
        return await work.fail_with(services, item, PERMISSION, str(error), error.detail)
    except ResetNotConfirmed as error:
        log.error("reset.unconfirmed", key=item.key, detail=error.detail)
        return await work.fail_with(services, item, "reset-not-confirmed", str(error), error.detail)
    except (TransientGraphError, StateConflictError) as error:
        return await work.retry_later(services, item, error)
    except GraphError as error:
        return await work.fail(services, item, error)


def _check_shape(ticket: ResetRedemptionTicket) -> None:
    targets = [name for name in ("email", "object_id", "domain") if getattr(ticket, name)]
    if len(targets) != 1:
        raise _Refused("invalid-target", "name exactly one of email, objectId or domain")
    for field, value in (("email", ticket.email), ("newEmail", ticket.new_email)):
        if value and email_problem(value):
            raise _Refused("invalid-email", f"{field}: {email_problem(value)}")
    if ticket.new_email and ticket.domain:
        raise _Refused("invalid-target", "newEmail applies to one guest, not to a whole domain")


async def _reset_one(ticket: ResetRedemptionTicket, item: WorkItem, services: Services) -> Outcome:
    guest = await _find_guest(ticket, services, item.result.get("objectId"))
    record = await services.guests.get(guest.id)
    write = Write.CHANGE_ADDRESS if ticket.new_email else Write.RESET_REDEMPTION
    refusal = await gate_of(services).refusal(guest, record, write)
    if refusal is not None:
        raise _Refused(refusal.code, f"{ticket.object_id or ticket.email}: {refusal.message}")
    if ticket.new_email and "emailUpdated" not in item.result:
        _check_new_address(ticket.new_email, guest, record, services)
    if services.settings.reset_mode != Mode.ENFORCE:
        detail = {"objectId": guest.id, "newEmail": ticket.new_email, "replayable": True}
        return await work.fail_with(services, item, "plan-mode", PLAN_MODE, detail)
    if ticket.new_email and "emailUpdated" not in item.result:
        guest = await _add_address(services, guest, ticket.new_email)
        item = await work.checkpoint(services, item, objectId=guest.id, emailUpdated=ticket.new_email)
    elif ticket.new_email:
        guest = replace(guest, mail=ticket.new_email)
    email = ticket.new_email or guest.mail or next(iter(guest.other_mails), None)
    if not email or email.lower() not in {a.lower() for a in (guest.mail, *guest.other_mails) if a}:
        raise _Refused("no-invitation-address", f"guest {guest.id} has no mail or otherMails address to invite")
    origin = f"ticket {ticket.ticket_id}"
    try:
        evidence = {"ticket": ticket.ticket_id, "requestedBy": ticket.requested_by}
        result = await reset_guest(services, guest, email=email, origin=origin, evidence=evidence, managed_only=True)
    except ResetRefused as refusal:
        raise _Refused(refusal.code, str(refusal)) from refusal
    except (BadRequestError, ConflictError) as error:
        raise _Refused("reset-refused", f"Graph refused the reset: {error}") from error
    return await work.finish(services, item, {**item.result, **result.to_json()})


async def _find_guest(ticket: ResetRedemptionTicket, services: Services, known_id: str | None) -> DirectoryUser:
    """By object id; by email on a first attempt only (a retry may follow an address change)."""
    target = ticket.object_id or ticket.email or ""
    object_id = ticket.object_id or known_id
    if object_id:
        guest = await services.directory.get_user(object_id)
    else:
        guest = await services.directory.find_user_by_mail(target)
    if guest is None:
        raise _Refused("guest-not-found", f"no guest is {target}")
    if not guest.is_guest:
        raise _Refused("not-a-guest", f"{target} is a member; members are never reset")
    return guest


def _check_new_address(new_email: str, guest: DirectoryUser, record: GuestRecord | None, services: Services) -> None:
    """A ticket may move a guest only to an address of the guest's own partner that the invitation domain
    list allows: whoever redeems the reset invitation becomes this object, with all its access."""
    desired = services.desired
    partner = record.partner if record is not None and record.partner in desired.partners else None
    if partner is None:
        for address in (guest.mail, *guest.other_mails):
            found = desired.partner_for_domain(address.rsplit("@", 1)[-1]) if address and "@" in address else None
            if found:
                partner = found[0]
                break
    domain = new_email.rsplit("@", 1)[-1].lower()
    if partner is None or domain not in desired.partners[partner].domains:
        owner = f"partner {partner}" if partner else "no partner of the desired state"
        raise _Refused(
            "new-email-not-partner-domain",
            f"newEmail {new_email}: the guest belongs to {owner}; a reset may only move it to one of that "
            "partner's domains",
        )
    violation = invitation_domain_violation(domain, desired)
    if violation is not None:
        raise _Refused(violation.code, f"newEmail {new_email}: {violation.message}")


async def _add_address(services: Services, guest: DirectoryUser, new_email: str) -> DirectoryUser:
    """Add ``new_email`` to the guest's otherMails (Graph resets only to an address already on the object) and
    make it the mail, as Microsoft recommends so the guest can also sign in without the redemption link.

    Graph does not move mail itself on a reset. The update needs User-Mail.ReadWrite.All or higher (the
    reset's User.ReadWrite.All covers it); a 403 fails the ticket before any invitation, replayable.
    """
    owner = await services.directory.find_user_by_mail(new_email)
    if owner is not None and owner.id != guest.id:
        raise _Refused("email-in-use", f"{new_email} already belongs to {owner.id}")
    other_mails = [*guest.other_mails, *([] if new_email.lower() in map(str.lower, guest.other_mails) else [new_email])]
    try:
        await services.directory.update_user(guest.id, mail=new_email, other_mails=other_mails)
    except PermissionDeniedError as error:
        raise ResetPermissionMissing("the address update (PATCH otherMails and mail)", guest.id, error) from error
    except ConflictError as error:
        # Another object (a group, a contact, a user's alias) holds the address as a proxy address.
        raise _Refused("email-in-use", f"{new_email} is already another directory object's address: {error}") from error
    return replace(guest, mail=new_email, other_mails=tuple(other_mails))


async def _reset_domain(
    ticket: ResetRedemptionTicket, item: WorkItem, services: Services, ports: ResetPorts, lookup: ProviderLookup
) -> Outcome:
    domain = (ticket.domain or "").lower()
    if domain not in partner_domains(services.desired):
        raise _Refused("unknown-partner-domain", f"{domain} is not a domain of any partner in the desired state")
    mode = Mode(services.settings.reset_mode)
    run = await run_detection(
        services,
        ports,
        lookup,
        mode,
        f"{TICKET_RUN_PREFIX}{ticket.ticket_id}",
        domains=[domain],
        force=True,
        inline=True,  # this ticket's own message resets the domain's guests, and reports a missing permission
    )
    summary = {"domain": domain, **run.summary()}
    if mode is not Mode.ENFORCE or run.status is RunStatus.BRAKED:
        # Planned (plan mode) or held at the brake: nothing was reset. The item stays replayable; the run can
        # also be approved or run again in enforce mode under its id.
        why = PLAN_MODE if mode is not Mode.ENFORCE else f"the run is braked: {run.reason}"
        return await work.fail_with(services, item, run.status.value, why, {**summary, "replayable": True})
    refused = [
        i.last_error
        async for i in services.work_items.query(kind=RUN_ITEM_KIND)
        if i.run_id == run.run_id and i.status is WorkStatus.FAILED and (i.last_error or {}).get("type") == PERMISSION
    ]
    if refused:  # a replay of the ticket resumes the same run: done guests stay done, the rest are reset
        return await work.fail_with(services, item, PERMISSION, str(refused[0]["message"]), summary)
    return await work.finish(services, item, summary)
