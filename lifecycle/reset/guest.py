"""Reset one guest's redemption: re-invite the same object, confirm, revoke its sessions, record.

The reset goes first: Graph requires User.ReadWrite.All for it (invitation-post), and a tenant without that
grant answers 403. Revoking first would end the guest's sessions for nothing; so the sessions are revoked
only once Graph has accepted the reset, and a refused reset leaves the guest exactly as it was.

Each guest has a marker in the job ledger (``reset-guest:<object id>``) holding its last reset. A reset
within the re-invitation window is not repeated, so replays, duplicate tickets and a detection run that
overlaps a ticket send one invitation email, not several. The marker is claimed under its ETag before
Graph is called; a crash between the invitation and the marker's update is recognised on the next try by
the guest's externalUserStateChangeDateTime, which the invitation moved past the claim.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog

from lifecycle.errors import GraphError, LifecycleError, PermissionDeniedError, StateConflictError
from lifecycle.models import AuditEntry, DirectoryUser, ExternalUserState, InvitationRequest, WorkItem, WorkStatus
from lifecycle.safety import Write, gate_of
from lifecycle.services import Services

log = structlog.get_logger(__name__)

MARKER_KIND = "redemption-reset-guest"
# A claim younger than this belongs to a reset still in flight elsewhere; older ones were abandoned.
IN_FLIGHT = timedelta(minutes=10)


class ResetInProgress(StateConflictError):
    """Another worker is resetting this guest right now: try again later."""


# The application permission Graph requires to reset a redemption, and to update otherMails/mail on the way
# (granted by infra/grant-graph-permissions --redemption-reset).
RESET_PERMISSION = "User.ReadWrite.All"


class ResetPermissionMissing(LifecycleError):
    """Graph answered 403 to a step of the reset: the grant lacks the reset's permission. Replay once granted."""

    def __init__(self, step: str, object_id: str, error: PermissionDeniedError) -> None:
        # What happened and what to grant; the next step depends on the caller (a ticket is replayed, a run's guest
        # is sent again with the rest of its run: lifecycle.reset.items).
        self.cause = (
            f"Graph refused {step} for guest {object_id} with 403 {error.code}: the app needs the "
            f"{RESET_PERMISSION} application permission (infra/grant-graph-permissions --redemption-reset)"
        )
        super().__init__(f"{self.cause}; replay once it is granted")
        self.step, self.object_id, self.error = step, object_id, error

    @property
    def detail(self) -> dict[str, Any]:
        return {
            "permission": RESET_PERMISSION,
            "step": self.step,
            "objectId": self.object_id,
            "replayable": True,
            "graph": self.error.describe(),
        }


class ResetRefused(LifecycleError):
    """The safety gate refused the reset (a member, an excluded or protected guest, an unmanaged guest named by
    a ticket): nothing was written. ``code`` is the gate's machine-readable reason."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class ResetNotConfirmed(LifecycleError):
    """Graph answered the reset, but not with the same object in PendingAcceptance."""

    def __init__(self, message: str, detail: dict[str, Any]) -> None:
        super().__init__(message)
        self.detail = detail


@dataclass(frozen=True, slots=True)
class ResetResult:
    object_id: str
    email: str
    sent: bool  # False: a reset within the window already covered it (no second email)
    reset_at: datetime
    invitation_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "objectId": self.object_id,
            "email": self.email,
            "invitationSent": self.sent,
            "resetAt": self.reset_at.isoformat(),
            "invitationId": self.invitation_id,
        }


def marker_key(object_id: str) -> str:
    return f"reset-guest:{object_id}"


async def reset_guest(
    services: Services,
    guest: DirectoryUser,
    *,
    email: str,
    origin: str,
    evidence: dict[str, Any],
    managed_only: bool,
) -> ResetResult:
    """Reset ``guest`` to re-redeem at ``email`` (its mail or one of its otherMails).

    Every path (a ticket, a domain ticket's run, the daily run) comes through here, so the safety gate is
    asked here, right before the first write: ``managed_only`` for what a ticket names, not for the daily
    detection, whose rules cover every guest of a partner domain by design.
    """
    refusal = await gate_of(services).refusal(
        guest, await services.guests.get(guest.id), Write.RESET_REDEMPTION, managed_only=managed_only
    )
    if refusal is not None:
        raise ResetRefused(refusal.code, refusal.message)
    now = services.clock.now()
    window = timedelta(hours=services.desired.redemption_reset.reinvite_window_hours)
    marker = await services.work_items.get(marker_key(guest.id))
    if marker is not None and marker.status is WorkStatus.DONE:
        prior = marker.result
        last = datetime.fromisoformat(prior["resetAt"])
        if now < last + window:
            log.info("reset.within-window", object_id=guest.id, last=last.isoformat(), origin=origin)
            return ResetResult(guest.id, prior.get("email", email), False, last, prior.get("invitationId"))
    if marker is not None and marker.status is not WorkStatus.DONE and "invitingAt" in marker.result:
        claimed = datetime.fromisoformat(marker.result["invitingAt"])
        if marker.status is WorkStatus.RUNNING and now < claimed + IN_FLIGHT:
            raise ResetInProgress(f"guest {guest.id} is being reset since {claimed.isoformat()}")
        if await _invitation_landed(services, guest.id, claimed):
            marker = await _claim(services, marker, guest.id, email, origin, inviting_at=claimed)
            await _revoke(services, marker, guest.id, origin)
            return await _settle(services, marker, guest, email, origin, claimed, None, evidence, recovered=True)
    marker = await _claim(services, marker, guest.id, email, origin)
    try:
        invitation = await services.directory.invite_guest(
            InvitationRequest(
                email=email,
                redirect_url=services.desired.invitations.default_redirect_url,
                display_name=guest.display_name,
                send_invitation_message=services.desired.redemption_reset.send_invitation_message,
                reset_redemption=True,
                invited_user_id=guest.id,
            )
        )
    except GraphError as error:
        # Released, not forgotten: the next attempt checks whether a timed-out invitation landed anyway.
        await _release(services, marker, error)
        await services.audit.record(
            AuditEntry(
                services.clock.now(),
                "guest.redemption-reset-failed",
                guest.id,
                f"{origin}: Graph did not accept the reset; the guest's sessions were left alone",
                key=marker.key,
                details={"sessionsRevoked": False, "error": error.describe()},
            )
        )
        if isinstance(error, PermissionDeniedError):
            raise ResetPermissionMissing("the redemption reset (POST /invitations)", guest.id, error) from error
        raise
    if invitation.user_id != guest.id or invitation.status != ExternalUserState.PENDING:
        detail = {"expectedObjectId": guest.id, "returnedObjectId": invitation.user_id, "status": invitation.status}
        await services.audit.record(
            AuditEntry(now, "guest.redemption-reset-unconfirmed", guest.id, origin, key=marker.key, details=detail)
        )
        raise ResetNotConfirmed(f"reset of {guest.id} came back as {invitation.user_id} ({invitation.status})", detail)
    await _revoke(services, marker, guest.id, origin)
    return await _settle(services, marker, guest, email, origin, now, invitation.invitation_id, evidence)


async def _release(services: Services, marker: WorkItem, error: GraphError) -> None:
    """Claimable again (queued, not failed): the failure is the ticket's or the run's work item to report, with
    its next step; a failed marker would show in ``failed`` and ``status`` a second time, with Graph's raw error
    and nothing to do about it (a purge of it would even lose the claim a retry checks for a landed invitation)."""
    marker.status, marker.updated, marker.last_error = WorkStatus.QUEUED, services.clock.now(), error.describe()
    with contextlib.suppress(StateConflictError):
        await services.work_items.save(marker)


async def _revoke(services: Services, marker: WorkItem, object_id: str, origin: str) -> None:
    """Revoke the sessions of a guest whose reset Graph accepted; a failure leaves the marker for a retry,
    which finds the invitation landed and revokes again (revoking twice is harmless)."""
    try:
        await services.directory.revoke_sessions(object_id)
    except GraphError as error:
        await _release(services, marker, error)
        await services.audit.record(
            AuditEntry(
                services.clock.now(),
                "guest.redemption-reset-sessions-not-revoked",
                object_id,
                f"{origin}: the reset went through but revoking the sessions failed; a retry revokes them",
                key=marker.key,
                details={"sessionsRevoked": False, "error": error.describe()},
            )
        )
        raise


async def _claim(
    services: Services,
    marker: WorkItem | None,
    object_id: str,
    email: str,
    origin: str,
    *,
    inviting_at: datetime | None = None,
) -> WorkItem:
    """``inviting_at``: keep the time of an earlier claim whose invitation landed (a retry after it)."""
    now = services.clock.now()
    progress = {"invitingAt": (inviting_at or now).isoformat(), "email": email, "origin": origin}
    if marker is None:
        fresh = WorkItem(marker_key(object_id), MARKER_KIND, WorkStatus.RUNNING, attempts=1, created=now, updated=now)
        fresh.result = progress
        try:
            return await services.work_items.create(fresh)
        except StateConflictError as error:
            raise ResetInProgress(f"guest {object_id} was claimed by another reset") from error
    marker.status, marker.attempts, marker.updated = WorkStatus.RUNNING, marker.attempts + 1, now
    marker.result = {**marker.result, **progress}
    try:
        return await services.work_items.save(marker)
    except StateConflictError as error:
        raise ResetInProgress(f"guest {object_id} was claimed by another reset") from error


async def _invitation_landed(services: Services, object_id: str, claimed: datetime) -> bool:
    current = await services.directory.get_user(object_id)
    changed = current.external_user_state_changed if current else None
    return bool(current and current.external_user_state == ExternalUserState.PENDING and changed and changed >= claimed)


async def _settle(
    services: Services,
    marker: WorkItem,
    guest: DirectoryUser,
    email: str,
    origin: str,
    reset_at: datetime,
    invitation_id: str | None,
    evidence: dict[str, Any],
    *,
    recovered: bool = False,
) -> ResetResult:
    now = services.clock.now()
    result = ResetResult(guest.id, email, True, reset_at, invitation_id)
    marker.status, marker.updated, marker.last_error = WorkStatus.DONE, now, None
    marker.result = {**result.to_json(), "origin": origin}
    with contextlib.suppress(StateConflictError):  # the reset happened; a lost marker write only widens a window
        await services.work_items.save(marker)
    await _record_in_ledger(services, guest.id, email, origin, now)
    await services.audit.record(
        AuditEntry(
            now,
            "guest.redemption-reset",
            guest.id,
            origin,
            key=marker.key,
            details={
                **result.to_json(),
                "previousState": guest.external_user_state,
                "sessionsRevoked": True,
                # revokeSignInSessions does not end a guest's session in its home tenant.
                "homeTenantSessionsUnaffected": True,
                "recoveredAfterCrash": recovered,
                "evidence": evidence,
            },
        )
    )
    log.info("reset.done", object_id=guest.id, origin=origin, recovered=recovered)
    return result


async def _record_in_ledger(services: Services, object_id: str, email: str, origin: str, now: datetime) -> None:
    record = await services.guests.get(object_id)
    if record is None:
        return
    record.email, record.updated = email, now
    record.history.append({"at": now.isoformat(), "event": "redemption-reset", "origin": origin, "email": email})
    await services.guests.save(record)
