"""The ports the core talks to. Each has one real adapter and one in-memory twin (adapters.memory)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Protocol

from lifecycle.models import (
    AccessPackageTarget,
    AssignmentInfo,
    AssignmentRequestInfo,
    AuditEntry,
    DirectoryUser,
    GuestRecord,
    InvitationRequest,
    InvitationResult,
    OutboundMessage,
    ReceivedMessage,
    Rejection,
    WorkItem,
    WorkStatus,
)


class Clock(Protocol):
    def now(self) -> datetime: ...


class ProtectedGroupCheck(Protocol):
    """Whether one object is, right now, a transitive member of some groups (Graph's checkMemberGroups).

    The safety gate asks it before every write to a guest, whatever job or ticket asked for the write."""

    async def groups_containing(self, object_id: str, group_ids: list[str]) -> set[str]: ...


class Directory(Protocol):
    """Microsoft Graph, as far as the core needs it. Raises lifecycle.errors.GraphError subclasses."""

    async def find_user_by_mail(self, email: str) -> DirectoryUser | None:
        """The user whose ``mail`` (or an ``otherMails`` entry) is ``email``, guest or member."""
        ...

    async def get_user(self, user_id: str) -> DirectoryUser | None: ...

    async def find_sponsor(self, user_id: str) -> DirectoryUser | None:
        """The user a ticket names as its sponsor (object id or UPN), as ``get_user`` reads it. A member may be
        answered from a read up to a few minutes old (a bulk request's tickets name one sponsor); a guest or
        an unknown user is read each time."""
        ...

    async def invite_guest(self, request: InvitationRequest) -> InvitationResult: ...

    async def sponsor_ids(self, user_id: str) -> set[str]:
        """The object ids of the user's sponsors (users or groups)."""
        ...

    async def add_sponsor(self, user_id: str, sponsor_id: str) -> bool:
        """Make the user ``sponsor_id`` a sponsor of ``user_id``; False when it already was one."""
        ...

    def list_guests(self, select: Sequence[str], page_size: int = 999) -> AsyncIterator[list[DirectoryUser]]:
        """Guests page by page, as Graph returns them (``signInActivity`` only when selected)."""
        ...

    async def set_account_enabled(self, user_id: str, enabled: bool) -> None: ...

    async def delete_user(self, user_id: str) -> None:
        """Soft delete: the object stays restorable in deletedItems for 30 days."""
        ...

    async def revoke_sessions(self, user_id: str) -> None: ...

    async def update_user(
        self, user_id: str, *, mail: str | None = None, other_mails: Sequence[str] | None = None
    ) -> None:
        """PATCH the given address properties (None leaves a property as it is)."""
        ...


class AccessPackages(Protocol):
    """Entitlement management, as far as onboarding and offboarding need it."""

    async def resolve(self, catalog: str, package: str, policy: str | None = None) -> AccessPackageTarget | None:
        """The package named ``package`` in ``catalog`` and the assignment policy to assign it through."""
        ...

    async def find_assignment(self, user_id: str, package_id: str) -> AssignmentInfo | None:
        """The user's live (not expired) assignment of the package, if any."""
        ...

    async def request_assignment(
        self, user_id: str, target: AccessPackageTarget, end: datetime, justification: str
    ) -> AssignmentRequestInfo: ...

    async def get_request(self, request_id: str) -> AssignmentRequestInfo | None: ...

    async def find_request(self, package_id: str, justification: str, since: datetime) -> AssignmentRequestInfo | None:
        """The newest add request of the package made after ``since`` with exactly this justification that has
        not failed, if any."""
        ...

    async def request_removal(self, assignment_id: str, justification: str) -> AssignmentRequestInfo: ...


class WorkItems(Protocol):
    """The job ledger: one row per work item, keyed by its idempotency key."""

    async def get(self, key: str) -> WorkItem | None: ...

    async def create(self, item: WorkItem) -> WorkItem:
        """Insert; raises StateConflictError if the key already exists."""
        ...

    async def save(self, item: WorkItem) -> WorkItem:
        """Replace, guarded by ``item.etag``; raises StateConflictError when another writer won."""
        ...

    def query(self, status: WorkStatus | None = None, kind: str | None = None) -> AsyncIterator[WorkItem]: ...


class GuestLedger(Protocol):
    async def get(self, object_id: str) -> GuestRecord | None: ...

    async def save(self, record: GuestRecord) -> GuestRecord:
        """Insert when ``record.etag`` is None, else replace guarded by the etag."""
        ...

    def all(self) -> AsyncIterator[GuestRecord]: ...


class AuditLog(Protocol):
    async def record(self, entry: AuditEntry) -> None: ...

    def entries(self, since: datetime | None = None) -> AsyncIterator[AuditEntry]: ...


class Rejections(Protocol):
    async def record(self, rejection: Rejection) -> None:
        """Idempotent per (kind, key): recording the same rejection twice keeps one row."""
        ...

    def all(self) -> AsyncIterator[Rejection]: ...


class QueueTransport(Protocol):
    """Service Bus in Azure; Storage queues (with a poison queue as the dead-letter queue) locally.

    ``queue`` is always the queue's full name, the one the triggers bind to: callers name it with
    ``settings.queue_name(logical)``, which adds the deployment's queue prefix; a transport adds nothing."""

    async def send(self, queue: str, messages: Sequence[OutboundMessage]) -> None: ...

    async def receive(self, queue: str, max_messages: int = 16, lock_seconds: int = 60) -> list[ReceivedMessage]: ...

    async def complete(self, queue: str, message: ReceivedMessage) -> None: ...

    async def abandon(self, queue: str, message: ReceivedMessage) -> None: ...

    async def dead_letter(self, queue: str, message: ReceivedMessage, reason: str, description: str) -> None: ...

    async def peek_dead_letters(self, queue: str, max_messages: int = 100) -> list[ReceivedMessage]: ...

    async def receive_dead_letters(
        self, queue: str, max_messages: int = 16, lock_seconds: int = 60
    ) -> list[ReceivedMessage]: ...

    async def release_dead_letter(self, queue: str, message: ReceivedMessage) -> None:
        """Give back the lock on a dead letter received but not acted on, so it is visible again at once."""
        ...

    async def complete_dead_letter(self, queue: str, message: ReceivedMessage) -> None: ...

    async def depth(self, queue: str) -> tuple[int, int]:
        """(active messages, dead letters), approximate."""
        ...

    async def close(self) -> None: ...
