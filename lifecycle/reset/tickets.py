"""Tickets of kind ``reset-redemption``: one guest (object id or email, optionally a new email) or a domain.

Only where redemption reset is switched on (settings.reset_enabled, with User.ReadWrite.All granted);
otherwise the ticket is rejected ``kind-not-available``. A 403 from Graph on the way (the address update or
the reset) is a failed outcome ``permission-missing`` naming the permission: replay the ticket once granted.
"""

from __future__ import annotations

from dataclasses import replace

import structlog

from lifecycle import work
from lifecycle.errors import (
    BadRequestError,
    ConflictError,
    GraphError,
    PermissionDeniedError,
    StateConflictError,
    TransientGraphError,
)
from lifecycle.models import DirectoryUser, WorkItem, WorkStatus
from lifecycle.outcomes import Outcome
from lifecycle.reset.guest import ResetNotConfirmed, ResetPermissionMissing, reset_guest
from lifecycle.reset.planner import partner_domains
from lifecycle.reset.ports import ProviderLookup
from lifecycle.reset.runs import KIND as RUN_ITEM_KIND
from lifecycle.reset.runs import NOT_ENABLED, run_detection
from lifecycle.reset.runs import PERMISSION_MISSING as PERMISSION
from lifecycle.services import Services
from lifecycle.sweep.model import Mode
from lifecycle.sweep.ports import SweepRuns
from lifecycle.tickets import ResetRedemptionTicket, email_problem

log = structlog.get_logger(__name__)

KIND = "reset-redemption"


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
    runs: SweepRuns,
    lookup: ProviderLookup | None,
) -> Outcome:
    """``lookup`` is needed for a domain ticket only (it plans like a detection run)."""
    try:
        if not services.settings.reset_enabled:
            raise _Refused("kind-not-available", NOT_ENABLED)
        _check_shape(ticket)
        if ticket.domain:
            if lookup is None:
                raise _Refused("kind-not-available", "no identity-provider lookup is configured for domain resets")
            return await _reset_domain(ticket, item, services, runs, lookup)
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
        result = await reset_guest(services, guest, email=email, origin=origin, evidence=evidence)
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
    ticket: ResetRedemptionTicket, item: WorkItem, services: Services, runs: SweepRuns, lookup: ProviderLookup
) -> Outcome:
    domain = (ticket.domain or "").lower()
    if domain not in partner_domains(services.desired):
        raise _Refused("unknown-partner-domain", f"{domain} is not a domain of any partner in the desired state")
    run = await run_detection(
        services, runs, lookup, Mode.ENFORCE, f"reset-ticket-{ticket.ticket_id}", domains=[domain], force=True
    )
    summary = {"domain": domain, **run.summary()}
    refused = [
        i.last_error
        async for i in services.work_items.query(kind=RUN_ITEM_KIND)
        if i.run_id == run.run_id and i.status is WorkStatus.FAILED and (i.last_error or {}).get("type") == PERMISSION
    ]
    if refused:  # a replay of the ticket resumes the same run: done guests stay done, the rest are reset
        return await work.fail_with(services, item, PERMISSION, str(refused[0]["message"]), summary)
    return await work.finish(services, item, summary)
