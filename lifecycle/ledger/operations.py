"""What on-call engineers do: see what failed and why, replay it safely, purge what must go.

Replay sends a copy of a dead letter with a new broker message id (duplicate detection would swallow
the original id) carrying the original idempotency key, then removes the dead letter. The replay's
message id is recorded on the work item before it is sent, so a crash between send and removal re-sends
the same id next time: the broker drops it as a duplicate, and the handler's key dedups it regardless.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from lifecycle import progress
from lifecycle.dates import shown_end
from lifecycle.errors import StateConflictError
from lifecycle.jobs import CONSUMED_QUEUES
from lifecycle.models import AuditEntry, OutboundMessage, ReceivedMessage, WorkItem, WorkStatus
from lifecycle.services import Services

QUEUES = CONSUMED_QUEUES  # the queues the product consumes (lifecycle/jobs.py); their dead letters are ours
PROBLEM_STATUSES = (WorkStatus.FAILED, WorkStatus.DEAD_LETTERED)


@dataclass(frozen=True, slots=True)
class Selector:
    """Which work items or dead letters an operation applies to; empty means all."""

    keys: tuple[str, ...] = ()
    kind: str | None = None
    reason: str | None = None
    partner: str | None = None
    since: datetime | None = None
    # Exactly these dead letters (the ones an operator was shown and confirmed), whatever else matches.
    message_ids: tuple[str, ...] = ()

    def matches_item(self, item: WorkItem) -> bool:
        error = item.last_error or {}
        reason = " ".join(str(error.get(k, "")) for k in ("type", "code", "message", "reason"))
        return (
            (not self.keys or item.key in self.keys)
            and (self.kind is None or item.kind == self.kind)
            and (self.partner is None or item.partner == self.partner)
            and (self.since is None or (item.updated is not None and item.updated >= self.since))
            and (self.reason is None or self.reason.lower() in reason.lower())
        )

    def matches_message(self, message: ReceivedMessage) -> bool:
        reason = f"{message.dead_letter_reason or ''} {message.dead_letter_description or ''}"
        return (
            (not self.message_ids or message.message_id in self.message_ids)
            and (not self.keys or message.key in self.keys)
            and (self.kind is None or message.kind == self.kind or (message.key or "").startswith(f"{self.kind}:"))
            and (self.reason is None or self.reason.lower() in reason.lower())
            and (self.since is None or message.enqueued is None or message.enqueued >= self.since)
        )


async def mark_dead_lettered(services: Services, key: str | None, reason: str, description: str) -> None:
    if not key:
        return
    item = await services.work_items.get(key)
    if item is None or item.status in (WorkStatus.DONE, WorkStatus.DEAD_LETTERED):
        return
    item.status, item.updated = WorkStatus.DEAD_LETTERED, services.clock.now()
    item.last_error = {**(item.last_error or {}), "deadLetterReason": reason, "deadLetterDescription": description}
    try:
        await services.work_items.save(item)
    except StateConflictError:
        return


async def reconcile_dead_letters(services: Services, queues: Iterable[str] = QUEUES) -> int:
    """Mark the work items whose messages the broker dead-lettered (Service Bus does it on its own)."""
    marked = 0
    for logical in queues:
        for message in await services.transport.peek_dead_letters(services.settings.queue_name(logical), 100):
            before = await services.work_items.get(message.key) if message.key else None
            await mark_dead_lettered(
                services, message.key, message.dead_letter_reason or "", message.dead_letter_description or ""
            )
            marked += int(before is not None and before.status is not WorkStatus.DEAD_LETTERED)
    return marked


async def list_failed(services: Services, selector: Selector) -> list[WorkItem]:
    found: list[WorkItem] = []
    for status in PROBLEM_STATUSES:
        async for item in services.work_items.query(status=status):
            if selector.matches_item(item):
                found.append(item)
    return sorted(found, key=lambda i: i.updated.timestamp() if i.updated else 0.0, reverse=True)


async def show(services: Services, key: str) -> dict[str, Any] | None:
    item = await services.work_items.get(key)
    if item is None:
        return None
    history = [
        {"at": e.at.isoformat(), "action": e.action, "target": e.target, "reason": e.reason, "details": e.details}
        async for e in services.audit.entries(since=item.created)
        if e.key == key
    ]
    rejection = None
    async for candidate in services.rejections.all():
        if candidate.key == key:
            rejection = candidate
    return {
        "key": item.key,
        "kind": item.kind,
        "status": item.status.value,
        "attempts": item.attempts,
        "partner": item.partner,
        "runId": item.run_id,
        "created": item.created.isoformat() if item.created else None,
        "updated": item.updated.isoformat() if item.updated else None,
        "lastError": item.last_error,
        "result": {k: v for k, v in item.result.items() if k != "ticket"},
        "lastDay": shown_end(datetime.fromisoformat(item.result["endDate"])) if item.result.get("endDate") else None,
        "rejection": {"code": rejection.code, "message": rejection.message, "details": rejection.details}
        if rejection
        else None,
        "history": sorted(history, key=lambda h: h["at"]),
    }


async def replay(
    services: Services,
    logical_queue: str,
    selector: Selector,
    *,
    dry_run: bool,
    operator: str,
    lock_seconds: int = 30,
) -> list[dict[str, Any]]:
    queue = services.settings.queue_name(logical_queue)
    if dry_run:
        return [
            {"key": m.key, "messageId": m.message_id, "reason": m.dead_letter_reason, "action": "would replay"}
            for m in await services.transport.peek_dead_letters(queue, 100)
            if selector.matches_message(m)
        ]
    results: list[dict[str, Any]] = []
    seen: set[str] = set()
    total = len(selector.message_ids) or None
    with progress.step(f"replaying {logical_queue} dead letters", total=total, unit="dead letter") as replayed:
        while batch := await services.transport.receive_dead_letters(queue, max_messages=32, lock_seconds=lock_seconds):
            fresh = [m for m in batch if m.message_id not in seen]
            for message in fresh:
                seen.add(message.message_id)
                if selector.matches_message(message):
                    try:
                        results.append(await _replay_one(services, queue, message, operator))
                    except StateConflictError:
                        # A worker wrote the item between our read and our write (a delayed copy running, say):
                        # leave the dead letter where it is for the next replay, which reads the item afresh.
                        await services.transport.release_dead_letter(queue, message)
                        key = message.key or f"message:{message.message_id}"
                        results.append({"key": key, "action": "left in place (changed while replaying)"})
                    replayed.advance()
                else:
                    await services.transport.release_dead_letter(queue, message)
            if not fresh:
                for message in batch:
                    await services.transport.release_dead_letter(queue, message)
                break  # everything left was seen and not selected
    return results


async def _replay_one(services: Services, queue: str, message: ReceivedMessage, operator: str) -> dict[str, Any]:
    now = services.clock.now()
    key = message.key or f"message:{message.message_id}"
    item = await services.work_items.get(key)
    if item is not None and item.status is WorkStatus.DONE:
        await services.transport.complete_dead_letter(queue, message)
        await _audit(services, "job.replay-skipped", key, "already done; dead letter removed", operator)
        return {"key": key, "action": "removed (already done)"}

    if item is not None and item.status is WorkStatus.REPLAYED and item.result.get("replayOf") == message.message_id:
        replay_id = item.result["replayMessageId"]  # the send may have happened: re-send the same id
    else:
        replays = int(item.result.get("replays", 0)) + 1 if item else 1
        replay_id = f"{message.message_id}|replay|{replays}"[:128]
        if item is None:
            item = WorkItem(key, message.kind or "unknown", WorkStatus.REPLAYED, created=now, updated=now)
            item.result = {"replays": replays, "replayMessageId": replay_id, "replayOf": message.message_id}
            item = await services.work_items.create(item)
        else:
            item.status, item.updated = WorkStatus.REPLAYED, now
            item.result = {
                **item.result,
                "replays": replays,
                "replayMessageId": replay_id,
                "replayOf": message.message_id,
            }
            item = await services.work_items.save(item)

    copy = OutboundMessage(
        body=message.body,
        message_id=replay_id,
        key=key,
        kind=message.kind or item.kind,
        properties={**message.properties, "replayOf": message.message_id, "replayedBy": operator},
    )
    await services.transport.send(queue, [copy])
    await services.transport.complete_dead_letter(queue, message)
    await _audit(services, "job.replayed", key, f"dead letter {message.message_id} replayed as {replay_id}", operator)
    return {"key": key, "action": "replayed", "messageId": replay_id}


async def purge(services: Services, logical_queue: str, selector: Selector, *, operator: str) -> list[str]:
    queue = services.settings.queue_name(logical_queue)
    purged: list[str] = []
    seen: set[str] = set()
    total = len(selector.message_ids) or None
    with progress.step(f"purging {logical_queue} dead letters", total=total, unit="dead letter") as done:
        while batch := await services.transport.receive_dead_letters(queue, max_messages=32, lock_seconds=30):
            fresh = [m for m in batch if m.message_id not in seen]
            for message in fresh:
                seen.add(message.message_id)
                if not selector.matches_message(message):
                    await services.transport.release_dead_letter(queue, message)
                    continue
                await services.transport.complete_dead_letter(queue, message)
                key = message.key or f"message:{message.message_id}"
                await _mark_purged(services, key)
                await _audit(services, "job.purged", key, f"dead letter {message.message_id} purged", operator)
                purged.append(key)
                done.advance()
            if not fresh:
                for message in batch:
                    await services.transport.release_dead_letter(queue, message)
                break
    return purged


async def _mark_purged(services: Services, key: str) -> None:
    """The item of a purged dead letter is no longer a failure: ``failed`` and ``status`` stop counting it."""
    for _ in range(3):
        item = await services.work_items.get(key)
        if item is None or item.status not in PROBLEM_STATUSES:
            return
        item.status, item.updated = WorkStatus.PURGED, services.clock.now()
        try:
            await services.work_items.save(item)
            return
        except StateConflictError:
            continue  # a worker wrote it meanwhile: read it again


async def _audit(services: Services, action: str, key: str, reason: str, operator: str) -> None:
    await services.audit.record(AuditEntry(services.clock.now(), action, key, reason, actor=operator, key=key))
