"""Onboarding tickets: validate against policy, invite (never a duplicate guest), record the ledger."""

from __future__ import annotations

import structlog

from lifecycle.admission import Slot
from lifecycle.errors import (
    BadRequestError,
    ConflictError,
    GraphError,
    PermissionDeniedError,
    StateConflictError,
    TransientGraphError,
)
from lifecycle.ledger import work
from lifecycle.ledger.outcomes import Outcome, Verdict
from lifecycle.models import InvitationRequest, ReceivedMessage, WorkItem
from lifecycle.onboarding import access, guest_tickets, holds
from lifecycle.onboarding.policy import ApprovedOnboarding, check_onboard
from lifecycle.onboarding.records import record_invitation
from lifecycle.onboarding.sponsor import SPONSOR_PERMISSION, SponsorResult, ensure_sponsor
from lifecycle.reset.entry import handle_reset_ticket
from lifecycle.services import Services
from lifecycle.tickets import (
    AttestTicket,
    ExtendTicket,
    OffboardTicket,
    OnboardTicket,
    TicketRejection,
    parse_ticket,
    ticket_hash,
)
from lifecycle.together import together

log = structlog.get_logger(__name__)

# Checkpointed on the work item right before the invitation is sent.
INVITING = "inviting"


async def handle_ticket(message: ReceivedMessage, services: Services) -> Outcome:
    # An onboard ticket reads among the instance's first ``READ_SLOTS`` until it invites (lifecycle.admission);
    # the other kinds give their slot back once their work item is claimed.
    async with services.admission.reading() as slot:
        return await _handle(message, services, slot)


async def _handle(message: ReceivedMessage, services: Services, slot: Slot) -> Outcome:
    ticket = parse_ticket(message.body, message_id=message.message_id)
    if isinstance(ticket, TicketRejection):
        if await work.already_rejected(services, ticket.key, work.fingerprint_of(message.body)):
            return Outcome(ticket.key, Verdict.DUPLICATE, message="ticket already rejected")
        return await work.reject(
            services,
            key=ticket.key,
            kind="ticket",
            code=ticket.code,
            message=ticket.message,
            details={"errors": ticket.errors},
            raw=message.body,
            fingerprint=work.fingerprint_of(message.body),
        )
    key = f"ticket:{ticket.ticket_id}"
    fingerprint = work.fingerprint_of(message.body)
    partner = getattr(ticket, "partner", None)
    content = ticket_hash(ticket)
    try:
        item = await work.begin(
            services,
            key,
            kind=ticket.kind,
            partner=partner,
            fingerprint=fingerprint,
            expect_new=True,
            content_hash=content,
        )
    except work.ContentConflict as conflict:
        return await _id_conflict(services, ticket.ticket_id, ticket.kind, content, conflict.item, message.body)
    except work.WorkInProgress as busy:
        return Outcome(key, Verdict.RETRY, code="in-progress", message=str(busy), retry_after=busy.retry_after)
    if item is None:
        return Outcome(key, Verdict.DUPLICATE, message="ticket already processed")
    try:
        if isinstance(ticket, OnboardTicket):
            return await _onboard(ticket, item, services, message.body, fingerprint, slot)
        slot.release()
        if isinstance(ticket, ExtendTicket):
            return await guest_tickets.extend(ticket, item, services, message.body, fingerprint)
        if isinstance(ticket, OffboardTicket):
            return await guest_tickets.offboard(ticket, item, services, message.body, fingerprint)
        if isinstance(ticket, AttestTicket):
            return await guest_tickets.attest(ticket, item, services, message.body, fingerprint)
        return await handle_reset_ticket(ticket, item, services, message.body, fingerprint)
    except StateConflictError as exc:
        # Someone else wrote the work item meanwhile: leave it to them, look again shortly.
        log.warning("onboarding.state-conflict", key=key, error=str(exc))
        return Outcome(key, Verdict.RETRY, code="state-conflict", message=str(exc), retry_after=5.0)
    except TransientGraphError as exc:
        log.warning("onboarding.transient", key=key, error=str(exc), attempts=item.attempts)
        return await work.retry_later(services, item, exc)
    except GraphError as exc:
        log.error("onboarding.failed", key=key, error=exc.describe())
        return await work.fail(services, item, exc)


async def _id_conflict(
    services: Services, ticket_id: str, kind: str, content: str, existing: WorkItem, raw: bytes
) -> Outcome:
    """A ticket id already taken by another ticket (another kind, or the same kind saying something else).

    Never a duplicate (an offboard reusing an onboard's id would leave the guest enabled) and never run
    under the earlier ticket's work item: rejected as ``ticket-id-conflict`` under a key of its own
    (the id and this content's hash), so the earlier ticket's item is left as it is, and the same
    conflicting message delivered again is a duplicate of that rejection.
    """
    key = f"ticket-conflict:{ticket_id}:{content}"
    fingerprint = work.fingerprint_of(raw)
    if await work.already_rejected(services, key, fingerprint):
        return Outcome(key, Verdict.DUPLICATE, message="ticket id conflict already rejected")
    return await work.reject(
        services,
        key=key,
        kind="ticket",
        code="ticket-id-conflict",
        message=(
            f"ticket id {ticket_id} was already used for another {existing.kind} ticket "
            f"({existing.status.value}); a new ticket needs a new ticketId"
        ),
        details={
            "ticketId": ticket_id,
            "kind": kind,
            "existingKey": existing.key,
            "existingKind": existing.kind,
            "existingStatus": existing.status.value,
        },
        raw=raw,
        fingerprint=fingerprint,
    )


async def _onboard(
    ticket: OnboardTicket, item: WorkItem, services: Services, raw: bytes, fingerprint: str, slot: Slot
) -> Outcome:
    async def refuse(code: str, message: str, details: dict | None = None) -> Outcome:
        return await work.reject(
            services,
            key=item.key,
            kind="onboard",
            code=code,
            message=message,
            details=details,
            raw=raw,
            item=item,
            fingerprint=fingerprint,
        )

    now = services.clock.now()
    decision = check_onboard(ticket, services.desired, now)
    if isinstance(decision, list):
        return await refuse(
            decision[0].code if len(decision) == 1 else "policy-violations",
            "; ".join(v.message for v in decision),
            {"violations": [{"code": v.code, "message": v.message} for v in decision]},
        )
    if decision.not_before and decision.not_before > now:
        return await holds.hold(services, item, raw, decision.not_before, ticket.email)

    # Step 1, invitation. Checkpointed: a retry (e.g. while the assignment is delivered) resumes after it.
    assignment: access.Lookup = access.NOT_LOOKED_UP
    if "objectId" not in item.result:
        # Three independent reads side by side (the package is resolved once per process and partner, which
        # takes several requests on a cold instance); judged in the same order as one after the other.
        package, sponsor, existing = await together(
            access.resolve_package(services, item, decision),
            services.directory.find_sponsor(ticket.sponsor),
            services.directory.find_user_by_mail(ticket.email),
        )
        if isinstance(package, access.PackageMissing) and ticket.access_package:
            return await refuse("access-package-not-found", package.message, package.details)
        if isinstance(package, access.PackageMissing):  # the partner's default: not created yet; replayable
            return await work.fail_with(services, item, "access-package-not-found", package.message, package.details)
        if sponsor is None:
            return await refuse("sponsor-not-found", f"sponsor {ticket.sponsor} does not exist")
        if sponsor.user_type != "Member":
            return await refuse("sponsor-not-member", f"sponsor {ticket.sponsor} is a guest; sponsors are employees")
        if existing is not None and not existing.is_guest:
            return await refuse(
                "email-belongs-to-member",
                f"{ticket.email} belongs to a member of this tenant ({existing.id}); members are never invited",
            )
        if existing is not None:
            slot.release()
            # An attempt of this ticket that got as far as inviting created this guest and died before
            # recording it: the tenant changed because of this ticket, so it is an invitation, not a reuse.
            object_id, reused, redeem_url = existing.id, not item.result.get(INVITING), None
        else:
            item = await work.checkpoint(services, item, **{INVITING: True})
            slot.release()
            try:
                invitation = await services.directory.invite_guest(_invitation(ticket, decision, sponsor.id))
            except (ConflictError, BadRequestError) as exc:
                return await refuse("invitation-refused", f"Graph refused the invitation: {exc}", exc.describe())
            except PermissionDeniedError as exc:
                raise PermissionDeniedError(
                    f"{exc}. An app-only invitation needs User.Invite.All and, where the tenant's allowInvitesFrom "
                    "is adminsAndGuestInviters, the Guest Inviter directory role on this app's identity "
                    "(infra/grant-graph-permissions assigns it); replay the ticket once fixed",
                    status=exc.status,
                    code=exc.code,
                    request_id=exc.request_id,
                ) from exc
            object_id, reused, redeem_url = invitation.user_id, False, invitation.redeem_url
        sponsored: dict[str, str] = {}
        if reused:
            item, result = await ensure_sponsor(services, item, object_id, sponsor.id)
            sponsored["sponsor"] = result.value
            if result is SponsorResult.NOT_PERMITTED:
                sponsored["sponsorReason"] = f"adding a sponsor needs {SPONSOR_PERMISSION}, which is not granted"
        # The ledger row, its audit rows and the checkpoint go in that order (a crash between two of them redoes
        # step 1 and writes each exactly once); the assignment lookup step 2 starts with is read meanwhile.
        _, assignment = await together(
            record_invitation(services, ticket, decision, item, object_id, sponsor.id, reused, sponsored),
            access.existing_assignment(services, item, decision, object_id),
        )
        item = await work.checkpoint(
            services,
            item,
            objectId=object_id,
            reused=reused,
            redeemUrl=redeem_url,
            endDate=decision.end.isoformat(),
            **sponsored,
            **({} if reused else {access.INVITED_AT: services.clock.now().isoformat()}),
            **access.step_two(services, item),
        )

    # Step 2, the partner's access package with the ticket's end date.
    slot.release()
    item, stop = await access.ensure_assignment(
        services, item, decision, item.result["objectId"], ticket.ticket_id, known=assignment
    )
    if stop is not None:
        return stop
    log.info("onboarding.done", key=item.key, object_id=item.result["objectId"], partner=decision.partner_key)
    return await work.finish(services, item, dict(item.result))


def _invitation(ticket: OnboardTicket, decision: ApprovedOnboarding, sponsor_id: str) -> InvitationRequest:
    return InvitationRequest(
        sponsor_ids=(sponsor_id,),
        email=ticket.email,
        redirect_url=decision.redirect_url,
        display_name=ticket.display_name,
        send_invitation_message=ticket.send_invitation,
        message=ticket.message,
    )
