"""In-memory twins of the ledger's state ports (work items, guests, audit, rejections) and the queue."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from adapters.table_codec import dump_history, dump_json, load_json, utc
from lifecycle.errors import StateConflictError
from lifecycle.models import (
    AuditEntry,
    GuestRecord,
    OutboundMessage,
    ReceivedMessage,
    Rejection,
    WorkItem,
    WorkStatus,
)
from lifecycle.ports import Clock

_etags = itertools.count(1)


def _new_etag() -> str:
    return f'W/"memory-{next(_etags)}"'


def _stored_work_item(item: WorkItem, etag: str) -> WorkItem:
    return replace(
        item,
        created=utc(item.created),
        updated=utc(item.updated),
        last_error=load_json(dump_json(item.last_error), None) if item.last_error is not None else None,
        result=load_json(dump_json(item.result), {}),
        etag=etag,
    )


def _stored_guest(record: GuestRecord, etag: str) -> GuestRecord:
    return replace(
        record,
        end_date=utc(record.end_date),
        invited=utc(record.invited),
        disabled=utc(record.disabled),
        updated=utc(record.updated),
        history=load_json(dump_history(record.history), []),
        etag=etag,
        rearm_until=utc(record.rearm_until),
        attested=utc(record.attested),
        sponsor_gone_since=utc(record.sponsor_gone_since),
    )


class MemoryWorkItems:
    def __init__(self) -> None:
        self._rows: dict[str, WorkItem] = {}

    async def get(self, key: str) -> WorkItem | None:
        row = self._rows.get(key)
        return replace(row) if row else None

    async def create(self, item: WorkItem) -> WorkItem:
        if not item.key:
            raise ValueError("a table key must not be empty")
        if item.key in self._rows:
            raise StateConflictError(f"work item {item.key!r} already exists")
        self._rows[item.key] = _stored_work_item(item, _new_etag())
        return replace(self._rows[item.key])

    async def save(self, item: WorkItem) -> WorkItem:
        if item.etag is None:
            raise ValueError("save needs the etag of the version it replaces (from get or create)")
        current = self._rows.get(item.key)
        if current is None or current.etag != item.etag:
            raise StateConflictError(f"work item {item.key!r} changed since it was read")
        self._rows[item.key] = _stored_work_item(item, _new_etag())
        return replace(self._rows[item.key])

    async def query(self, status: WorkStatus | None = None, kind: str | None = None) -> AsyncIterator[WorkItem]:
        for row in list(self._rows.values()):
            if (status is None or row.status == status) and (kind is None or row.kind == kind):
                yield replace(row)


class MemoryGuestLedger:
    def __init__(self) -> None:
        self._rows: dict[str, GuestRecord] = {}

    async def get(self, object_id: str) -> GuestRecord | None:
        row = self._rows.get(object_id)
        return replace(row, history=list(row.history)) if row else None

    async def save(self, record: GuestRecord) -> GuestRecord:
        current = self._rows.get(record.object_id)
        if record.etag is None and current is not None:
            raise StateConflictError(f"guest {record.object_id} is already in the ledger")
        if record.etag is not None and (current is None or current.etag != record.etag):
            raise StateConflictError(f"guest {record.object_id} changed since it was read")
        stored = self._rows[record.object_id] = _stored_guest(record, _new_etag())
        return replace(stored, history=list(stored.history))

    async def all(self) -> AsyncIterator[GuestRecord]:
        for object_id in sorted(self._rows):
            yield replace(self._rows[object_id], history=list(self._rows[object_id].history))


class MemoryAuditLog:
    def __init__(self) -> None:
        self._entries: list[AuditEntry] = []

    async def record(self, entry: AuditEntry) -> None:
        stored = replace(entry, at=utc(entry.at), details=load_json(dump_json(entry.details), {}))
        self._entries.append(stored)

    async def entries(self, since: datetime | None = None) -> AsyncIterator[AuditEntry]:
        floor = utc(since)
        for entry in sorted(self._entries, key=lambda e: e.at):
            if floor is None or entry.at >= floor:
                yield entry


class MemoryRejections:
    def __init__(self) -> None:
        self._rows: dict[tuple[str, str], Rejection] = {}

    async def record(self, rejection: Rejection) -> None:
        self._rows[(rejection.kind, rejection.key)] = replace(
            rejection,
            at=utc(rejection.at),
            details=load_json(dump_json(rejection.details), {}),
        )

    async def all(self) -> AsyncIterator[Rejection]:
        for kind_and_key in sorted(self._rows):
            yield self._rows[kind_and_key]


@dataclass
class _Queued:
    message: OutboundMessage
    enqueued: datetime
    visible_at: datetime
    delivery_count: int = 0
    lock_token: str | None = None
    dead_letter_reason: str | None = None
    dead_letter_description: str | None = None
    properties: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _Receipt:
    queue: str
    dead: bool
    message_id: str
    lock_token: str


class MemoryQueueTransport:
    """Queues with peek-lock, lock expiry, delivery counts, scheduled delivery and dead-letter queues.

    Time comes from the injected clock: a locked or delayed message becomes visible once the clock has
    moved past its lock or delay.
    """

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._active: dict[str, list[_Queued]] = {}
        self._dead: dict[str, list[_Queued]] = {}
        self.closed = False

    def _queue(self, queue: str, dead: bool) -> list[_Queued]:
        return (self._dead if dead else self._active).setdefault(queue, [])

    async def send(self, queue: str, messages: Sequence[OutboundMessage]) -> None:
        now = self._clock.now()
        for message in messages:
            visible_at = now + timedelta(seconds=max(0.0, message.delay_seconds))
            self._queue(queue, dead=False).append(_Queued(message, now, visible_at))

    def _take(self, queue: str, dead: bool, max_messages: int, lock_seconds: int) -> list[ReceivedMessage]:
        now = self._clock.now()
        taken: list[ReceivedMessage] = []
        for stored in self._queue(queue, dead):
            if len(taken) >= max_messages:
                break
            if stored.visible_at > now:
                continue
            stored.delivery_count += 1
            stored.lock_token = uuid.uuid4().hex
            stored.visible_at = now + timedelta(seconds=lock_seconds)
            receipt = _Receipt(queue, dead, stored.message.message_id, stored.lock_token)
            taken.append(self._view(stored, receipt))
        return taken

    @staticmethod
    def _view(stored: _Queued, receipt: _Receipt | None) -> ReceivedMessage:
        message = stored.message
        return ReceivedMessage(
            body=message.body,
            message_id=message.message_id,
            key=message.key,
            kind=message.kind,
            delivery_count=stored.delivery_count,
            enqueued=stored.enqueued,
            properties=dict(message.properties),
            dead_letter_reason=stored.dead_letter_reason,
            dead_letter_description=stored.dead_letter_description,
            receipt=receipt,
        )

    def _settle(self, queue: str, message: ReceivedMessage, dead: bool) -> _Queued:
        """The stored message ``message`` holds a live lock on; raises StateConflictError otherwise."""
        receipt = message.receipt
        if not isinstance(receipt, _Receipt) or receipt.queue != queue or receipt.dead != dead:
            raise ValueError("message was not received from this queue")
        now = self._clock.now()
        for stored in self._queue(queue, dead):
            if stored.lock_token == receipt.lock_token and stored.visible_at > now:
                return stored
        raise StateConflictError(f"the lock on message {message.message_id} was lost or already settled")

    async def receive(self, queue: str, max_messages: int = 16, lock_seconds: int = 60) -> list[ReceivedMessage]:
        return self._take(queue, False, max_messages, lock_seconds)

    async def complete(self, queue: str, message: ReceivedMessage) -> None:
        self._queue(queue, dead=False).remove(self._settle(queue, message, dead=False))

    async def abandon(self, queue: str, message: ReceivedMessage) -> None:
        stored = self._settle(queue, message, dead=False)
        stored.lock_token = None
        stored.visible_at = self._clock.now()

    async def dead_letter(self, queue: str, message: ReceivedMessage, reason: str, description: str) -> None:
        stored = self._settle(queue, message, dead=False)
        self._queue(queue, dead=False).remove(stored)
        stored.lock_token = None
        stored.visible_at = self._clock.now()
        stored.dead_letter_reason = reason
        stored.dead_letter_description = description
        self._queue(queue, dead=True).append(stored)

    async def peek_dead_letters(self, queue: str, max_messages: int = 100) -> list[ReceivedMessage]:
        return [self._view(stored, None) for stored in self._queue(queue, dead=True)[:max_messages]]

    async def receive_dead_letters(
        self, queue: str, max_messages: int = 16, lock_seconds: int = 60
    ) -> list[ReceivedMessage]:
        return self._take(queue, True, max_messages, lock_seconds)

    async def release_dead_letter(self, queue: str, message: ReceivedMessage) -> None:
        stored = self._settle(queue, message, dead=True)
        stored.lock_token = None
        stored.visible_at = self._clock.now()

    async def complete_dead_letter(self, queue: str, message: ReceivedMessage) -> None:
        self._queue(queue, dead=True).remove(self._settle(queue, message, dead=True))

    async def depth(self, queue: str) -> tuple[int, int]:
        return len(self._queue(queue, dead=False)), len(self._queue(queue, dead=True))

    async def close(self) -> None:
        self.closed = True
