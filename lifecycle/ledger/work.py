"""The job ledger's state machine for one work item: begin, then finish one way or another."""

from __future__ import annotations

import contextlib
import hashlib
from typing import Any

from lifecycle.errors import GraphError, StateConflictError, TransientGraphError
from lifecycle.ledger.outcomes import Outcome, Verdict
from lifecycle.models import AuditEntry, Rejection, WorkItem, WorkStatus
from lifecycle.services import Services
from lifecycle.tickets import KINDS, MAX_TICKET_BYTES

MAX_TRANSIENT_ATTEMPTS = 12
# How long a running attempt owns its work item. Matches the queues' lock duration (PT2M): a delivery of
# the same key inside it is a concurrent duplicate and backs off; after it, the attempt is presumed dead.
LEASE_SECONDS = 120.0
BUSY_RECHECK_SECONDS = 10.0
BACKOFF_BASE_SECONDS = 5.0
BACKOFF_CAP_SECONDS = 900.0


class ContentConflict(Exception):
    """The key is already taken by work begun for other content (a ticket id reused for another ticket)."""

    def __init__(self, item: WorkItem) -> None:
        super().__init__(f"{item.key} was begun for other content ({item.kind}, {item.status.value})")
        self.item = item


def _conflicts(item: WorkItem, kind: str, content_hash: str | None) -> bool:
    """Whether ``item`` was begun for other content than (``kind``, ``content_hash``).

    Rows from before content hashes were stored carry none: for them only the kind can tell, and only when it
    is a ticket's kind (the replay tool records a dead letter it found no item for under the message's own
    kind, such as ``ticket``, which says nothing about the ticket inside).
    """
    if content_hash is None:
        return False
    if item.content_hash is not None:
        return item.content_hash != content_hash
    return item.kind in KINDS and item.kind != kind


class WorkInProgress(Exception):
    """Another attempt is running this work item right now: come back after ``retry_after`` seconds."""

    def __init__(self, key: str, retry_after: float) -> None:
        super().__init__(f"{key} is being processed by another attempt")
        self.key, self.retry_after = key, retry_after


async def begin(
    services: Services,
    key: str,
    kind: str,
    partner: str | None = None,
    fingerprint: str | None = None,
    *,
    expect_new: bool = False,
    content_hash: str | None = None,
) -> WorkItem | None:
    """Claim the work item for an attempt. None means it already finished: the message is a duplicate.

    A rejected item is final for the same content only: a corrected ticket under the same id (another
    ``fingerprint``, the same kind) gets a new attempt, while a replay of the rejected one is a duplicate.
    With ``content_hash``, an item begun for other content (another hash, or another kind on a row without
    a hash) raises ContentConflict instead of being taken for a duplicate or resumed; a rejected item only
    when the kind differs, since a correction of a rejected ticket is meant to replace it.
    ``expect_new`` tries the insert before any read, one round trip instead of two for work that is
    usually seen for the first time (a ticket's first delivery); an existing item falls back to the read.
    """
    now = services.clock.now()

    def new_item() -> WorkItem:
        return WorkItem(
            key,
            kind,
            WorkStatus.RUNNING,
            attempts=1,
            partner=partner,
            created=now,
            updated=now,
            content_hash=content_hash,
        )

    if expect_new:
        fresh = new_item()
        try:
            return await services.work_items.create(fresh)
        except StateConflictError:
            pass
    for _ in range(3):
        item = await services.work_items.get(key)
        if item is None:
            try:
                return await services.work_items.create(new_item())
            except StateConflictError:
                continue
        if item.status is WorkStatus.REJECTED:
            if content_hash is not None and item.kind in KINDS and item.kind != kind:
                raise ContentConflict(item)
        elif _conflicts(item, kind, content_hash):
            raise ContentConflict(item)
        if item.status in (WorkStatus.DONE, WorkStatus.CANCELLED) or (
            item.status is WorkStatus.REJECTED and item.result.get("fingerprint") in (None, fingerprint)
        ):
            return None
        if item.status is WorkStatus.RUNNING and item.updated is not None:
            held_for = (now - item.updated).total_seconds()
            if held_for < LEASE_SECONDS:
                # Look again soon rather than at the lease's end: the running attempt usually finishes first.
                raise WorkInProgress(key, min(LEASE_SECONDS - held_for, BUSY_RECHECK_SECONDS))
        if item.status is WorkStatus.REJECTED and item.content_hash != content_hash:
            item.kind = kind  # a correction of a rejected ticket: the item is the corrected ticket's from now on
        item.status, item.attempts, item.updated = WorkStatus.RUNNING, item.attempts + 1, now
        item.partner = item.partner or partner
        item.content_hash = content_hash or item.content_hash
        try:
            return await services.work_items.save(item)
        except StateConflictError:
            continue
    raise StateConflictError(f"work item {key} kept changing under us")


async def already_rejected(services: Services, key: str, fingerprint: str) -> bool:
    item = await services.work_items.get(key)
    return item is not None and item.status is WorkStatus.REJECTED and item.result.get("fingerprint") == fingerprint


async def finish(services: Services, item: WorkItem, result: dict[str, Any]) -> Outcome:
    item.status, item.result, item.last_error, item.updated = WorkStatus.DONE, result, None, services.clock.now()
    await services.work_items.save(item)
    return Outcome(item.key, Verdict.DONE, detail=result)


async def reject(
    services: Services,
    *,
    key: str,
    kind: str,
    code: str,
    message: str,
    details: dict[str, Any] | None = None,
    raw: bytes = b"",
    item: WorkItem | None = None,
    fingerprint: str | None = None,
) -> Outcome:
    """Record a rejection once (rejections table, job ledger, audit) so it is never retried nor lost."""
    now = services.clock.now()
    details = details or {}
    # Kept whole up to the largest valid ticket; invalid UTF-8 stays visible as \xNN escapes.
    text = raw[:MAX_TICKET_BYTES].decode("utf-8", "backslashreplace")
    await services.rejections.record(Rejection(key, kind, code, message, now, details, text))
    if item is None:
        item = await services.work_items.get(key)
    if item is None:
        item = WorkItem(key, kind, WorkStatus.REJECTED, attempts=1, created=now, updated=now)
        item.result = {"code": code, "message": message, "fingerprint": fingerprint}
        with contextlib.suppress(StateConflictError):
            await services.work_items.create(item)
    elif item.status is not WorkStatus.DONE:
        item.status, item.updated = WorkStatus.REJECTED, now
        item.result = {"code": code, "message": message, "fingerprint": fingerprint}
        await services.work_items.save(item)
    await services.audit.record(
        AuditEntry(at=now, action=f"{kind}.rejected", target=key, reason=f"{code}: {message}", key=key, details=details)
    )
    return Outcome(key, Verdict.REJECTED, code=code, message=message, detail=details)


async def retry_later(services: Services, item: WorkItem, error: GraphError | StateConflictError) -> Outcome:
    """Back off without burning the broker's delivery count; give up to the dead-letter queue eventually."""
    description = error.describe() if isinstance(error, GraphError) else {"type": type(error).__name__}
    description["message"] = str(error)
    item.status, item.last_error, item.updated = WorkStatus.FAILED, description, services.clock.now()
    # Another writer moved the row meanwhile (a concurrent attempt, an operator): the scheduled retry reads
    # it afresh. Raising here would abandon the message and spend a delivery on a transient problem.
    with contextlib.suppress(StateConflictError):
        await services.work_items.save(item)
    if item.attempts >= MAX_TRANSIENT_ATTEMPTS:
        return Outcome(
            item.key,
            Verdict.FAILED,
            code="transient-retries-exhausted",
            message=f"{item.attempts} attempts: {error}",
            detail=description,
        )
    hinted = error.retry_after if isinstance(error, TransientGraphError) else None
    backoff = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** (item.attempts - 1))
    delay = max(float(hinted), 1.0) if hinted is not None else backoff
    return Outcome(item.key, Verdict.RETRY, code="transient", message=str(error), retry_after=delay, detail=description)


async def checkpoint(services: Services, item: WorkItem, **progress: Any) -> WorkItem:
    """Record progress on the work item, so a retry resumes after the last step that finished."""
    item.result, item.updated = {**item.result, **progress}, services.clock.now()
    # Keep the caller's object current: the handler's error paths save the item it began with.
    item.etag = (await services.work_items.save(item)).etag
    return item


async def fail_with(services: Services, item: WorkItem, code: str, message: str, detail: dict[str, Any]) -> Outcome:
    item.status, item.updated = WorkStatus.FAILED, services.clock.now()
    item.last_error = {"type": code, "message": message, **detail}
    await services.work_items.save(item)
    return Outcome(item.key, Verdict.FAILED, code=code, message=message, detail=detail)


async def fail(services: Services, item: WorkItem, error: GraphError) -> Outcome:
    item.status, item.last_error, item.updated = WorkStatus.FAILED, error.describe(), services.clock.now()
    await services.work_items.save(item)
    code = (error.code or type(error).__name__).lower()
    return Outcome(item.key, Verdict.FAILED, code=code, message=str(error), detail=error.describe())


def fingerprint_of(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()[:32]
