"""The job ledger's state machine for one work item: begin, then finish one way or another."""

from __future__ import annotations

import contextlib
import hashlib
from typing import Any

from lifecycle.errors import GraphError, StateConflictError
from lifecycle.models import AuditEntry, Rejection, WorkItem, WorkStatus
from lifecycle.outcomes import Outcome, Verdict
from lifecycle.services import Services
from lifecycle.tickets import MAX_TICKET_BYTES

MAX_TRANSIENT_ATTEMPTS = 12
# How long a running attempt owns its work item. Matches the queues' lock duration (PT2M): a delivery of
# the same key inside it is a concurrent duplicate and backs off; after it, the attempt is presumed dead.
LEASE_SECONDS = 120.0
BUSY_RECHECK_SECONDS = 10.0
BACKOFF_BASE_SECONDS = 5.0
BACKOFF_CAP_SECONDS = 900.0


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
) -> WorkItem | None:
    """Claim the work item for an attempt. None means it already finished: the message is a duplicate.

    A rejected item is final for the same content only: a corrected ticket under the same id (another
    ``fingerprint``) gets a new attempt, while a replay of the rejected one is a duplicate.
    ``expect_new`` tries the insert before any read, one round trip instead of two for work that is
    usually seen for the first time (a ticket's first delivery); an existing item falls back to the read.
    """
    now = services.clock.now()
    if expect_new:
        fresh = WorkItem(key, kind, WorkStatus.RUNNING, attempts=1, partner=partner, created=now, updated=now)
        try:
            return await services.work_items.create(fresh)
        except StateConflictError:
            pass
    for _ in range(3):
        item = await services.work_items.get(key)
        if item is None:
            fresh = WorkItem(key, kind, WorkStatus.RUNNING, attempts=1, partner=partner, created=now, updated=now)
            try:
                return await services.work_items.create(fresh)
            except StateConflictError:
                continue
        if item.status in (WorkStatus.DONE, WorkStatus.CANCELLED) or (
            item.status is WorkStatus.REJECTED and item.result.get("fingerprint") in (None, fingerprint)
        ):
            return None
        if item.status is WorkStatus.RUNNING and item.updated is not None:
            held_for = (now - item.updated).total_seconds()
            if held_for < LEASE_SECONDS:
                # Look again soon rather than at the lease's end: the running attempt usually finishes first.
                raise WorkInProgress(key, min(LEASE_SECONDS - held_for, BUSY_RECHECK_SECONDS))
        item.status, item.attempts, item.updated = WorkStatus.RUNNING, item.attempts + 1, now
        item.partner = item.partner or partner
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
    hinted = getattr(error, "retry_after", None)
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
