"""Plain data the core works with. No SDK types cross into the core; adapters build these."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


class UserType(enum.StrEnum):
    GUEST = "Guest"
    MEMBER = "Member"


class ExternalUserState(enum.StrEnum):
    PENDING = "PendingAcceptance"
    ACCEPTED = "Accepted"


@dataclass(frozen=True, slots=True)
class ObjectIdentity:
    sign_in_type: str
    issuer: str
    issuer_assigned_id: str | None = None


@dataclass(frozen=True, slots=True)
class SignInActivity:
    last_sign_in: datetime | None = None
    last_non_interactive_sign_in: datetime | None = None
    last_successful_sign_in: datetime | None = None


@dataclass(frozen=True, slots=True)
class SponsorRef:
    """One of a guest's sponsors as Graph lists it: a user (with what is known of its state) or a group."""

    id: str
    is_group: bool = False
    account_enabled: bool | None = None  # None: not read (the expansion left it out)
    user_type: str | None = None


@dataclass(frozen=True, slots=True)
class DirectoryUser:
    """A user object as the directory holds it (the fields the product reads)."""

    id: str
    user_type: str | None
    display_name: str | None = None
    mail: str | None = None
    user_principal_name: str | None = None
    account_enabled: bool | None = None
    external_user_state: str | None = None
    external_user_state_changed: datetime | None = None
    created: datetime | None = None
    identities: tuple[ObjectIdentity, ...] = ()
    other_mails: tuple[str, ...] = ()
    sign_in_activity: SignInActivity | None = None
    # The live sponsors, when the read expanded them ($expand=sponsors); None when it did not.
    sponsors: tuple[SponsorRef, ...] | None = None

    @property
    def is_guest(self) -> bool:
        return self.user_type == UserType.GUEST


@dataclass(frozen=True, slots=True)
class InvitationRequest:
    email: str
    redirect_url: str
    display_name: str | None = None
    send_invitation_message: bool = False
    message: str | None = None
    reset_redemption: bool = False
    invited_user_id: str | None = None
    sponsor_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class InvitationResult:
    user_id: str
    status: str | None
    redeem_url: str | None
    invitation_id: str | None = None


class WorkStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    REJECTED = "rejected"
    FAILED = "failed"
    DEAD_LETTERED = "dead-lettered"
    REPLAYED = "replayed"
    HELD = "held"  # waiting for its notBefore; released by the hold timer
    CANCELLED = "cancelled"  # a held item withdrawn before it ran (e.g. an offboard ticket)
    PURGED = "purged"  # an operator purged its dead letter: no longer a failure; a new submission runs again

    @property
    def is_final(self) -> bool:
        return self in (WorkStatus.DONE, WorkStatus.REJECTED, WorkStatus.CANCELLED)


@dataclass(slots=True)
class WorkItem:
    """One row of the job ledger: a unit of work with its idempotency key."""

    key: str
    kind: str
    status: WorkStatus
    attempts: int = 0
    run_id: str | None = None
    partner: str | None = None
    created: datetime | None = None
    updated: datetime | None = None
    last_error: dict[str, Any] | None = None
    result: dict[str, Any] = field(default_factory=dict)
    etag: str | None = None
    # What the item was begun for (tickets: lifecycle.tickets.ticket_hash); None on rows from before it existed.
    content_hash: str | None = None


class GuestState(enum.StrEnum):
    INVITED = "invited"
    ACTIVE = "active"
    DISABLED = "disabled"
    DELETED = "deleted"


@dataclass(slots=True)
class GuestRecord:
    """The product's ledger row for one guest, keyed by object id (never the #EXT# UPN)."""

    object_id: str
    email: str
    partner: str
    state: GuestState
    sponsor: str | None = None
    ticket_id: str | None = None
    end_date: datetime | None = None
    invited: datetime | None = None
    disabled: datetime | None = None
    updated: datetime | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    etag: str | None = None
    # Set by a restore (undo of a sweep run): the sweep leaves the guest alone until then, and judges it afresh
    # after, so a guest restored in the morning is not disabled again the same night.
    rearm_until: datetime | None = None
    # The last attestation ticket: when a sponsor confirmed the guest is still needed, and who (object id).
    attested: datetime | None = None
    attested_by: str | None = None
    # When the sweep first found every sponsor of the guest gone (deleted, disabled, no longer a member) and sent
    # the sponsor-reassign event: the sponsor-gone period counts from here. Cleared when a sponsor answers again
    # or a ticket extends or attests the guest.
    sponsor_gone_since: datetime | None = None


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """Who did what to which object, when, and why."""

    at: datetime
    action: str
    target: str
    reason: str
    actor: str = "guest-lifecycle"
    key: str | None = None
    run_id: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Rejection:
    """A message refused for good, with a machine-readable reason. Never retried, never lost."""

    key: str
    kind: str
    code: str
    message: str
    at: datetime
    details: dict[str, Any] = field(default_factory=dict)
    raw: str = ""


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """A message for a queue. ``message_id`` is the broker's id; ``key`` the business idempotency key."""

    body: bytes
    message_id: str
    key: str
    kind: str
    delay_seconds: float = 0.0
    properties: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ReceivedMessage:
    body: bytes
    message_id: str
    key: str | None
    kind: str | None
    delivery_count: int
    enqueued: datetime | None = None
    properties: dict[str, str] = field(default_factory=dict)
    dead_letter_reason: str | None = None
    dead_letter_description: str | None = None
    receipt: Any = None


@dataclass(frozen=True, slots=True)
class AccessPackageTarget:
    """An access package and the assignment policy through which the product assigns it."""

    package_id: str
    policy_id: str
    display_name: str = ""


# accessPackageRequestState members of a request that ended without an assignment.
FAILED_REQUEST_STATES = frozenset({"deliveryFailed", "denied", "canceled"})


@dataclass(frozen=True, slots=True)
class AssignmentRequestInfo:
    """An entitlement-management assignment request; processing is asynchronous in Graph."""

    id: str
    state: str  # submitted, pendingApproval, delivering, delivered, deliveryFailed, denied, ...
    status: str | None = None

    @property
    def settled(self) -> bool:
        return self.failed or self.state in ("delivered", "partiallyDelivered")

    @property
    def failed(self) -> bool:
        """Ended without an assignment: what a later request may replace."""
        return self.state in FAILED_REQUEST_STATES


@dataclass(frozen=True, slots=True)
class AssignmentInfo:
    id: str
    state: str  # delivering, delivered, expired, deliveryFailed, ...
    package_id: str
    expires: datetime | None = None
