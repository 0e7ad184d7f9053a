"""What the worker records once an action is carried out or dropped: the ledger row, the audit entry, the
work item's result, and the sponsor notice event."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import structlog

from lifecycle.ledger import work
from lifecycle.ledger.outcomes import Outcome, Verdict
from lifecycle.models import (
    AuditEntry,
    DirectoryUser,
    GuestRecord,
    GuestState,
    WorkItem,
    WorkStatus,
)
from lifecycle.services import Services
from lifecycle.sweep.model import NoticeRecord, PlannedAction
from lifecycle.sweep.notice import notice_event, notice_message
from lifecycle.sweep.ports import SweepRuns
from lifecycle.sweep.recheck import Observed, notice_sent
from lifecycle.sweep.rules import Decision, NoticeRules

log = structlog.get_logger(__name__)


async def send_notice(planned: PlannedAction, services: Services, user: DirectoryUser, rules: NoticeRules) -> None:
    """Put the event on the ticketing system's queue. The broker message id is the notice id, so a resend
    after a crash between this send and the notice record is dropped by Service Bus duplicate detection."""
    event = notice_event(planned, user, services.clock.now(), rules.lead_days)
    await services.transport.send(services.settings.queue_name(rules.queue), [notice_message(event)])


async def finish_notice(
    planned: PlannedAction,
    item: WorkItem,
    services: Services,
    runs: SweepRuns,
    seen: Observed,
    verdict: Decision | None,
) -> Outcome:
    now = services.clock.now()
    assert planned.due is not None
    if not notice_sent(planned, seen.notice):
        await runs.record_notice(NoticeRecord(planned.object_id, planned.due, now, planned.run_id, planned.key))
    await audit_applied(services, planned, "guest.sponsor-notified", verdict)
    return await work.finish(services, item, item_result(planned, applied=True))


async def finish_disable(
    planned: PlannedAction,
    item: WorkItem,
    services: Services,
    user: DirectoryUser,
    record: GuestRecord | None,
    verdict: Decision | None = None,
) -> Outcome:
    # Guest sessions live in their home tenant; revoking still cuts the refresh tokens this tenant issued.
    await services.directory.revoke_sessions(planned.object_id)
    now = services.clock.now()
    if record is None:
        record = GuestRecord(
            object_id=planned.object_id,
            email=user.mail or user.user_principal_name or "",
            partner=planned.partner or "",
            state=GuestState.DISABLED,
        )
    record.state, record.disabled, record.updated = GuestState.DISABLED, now, now
    record.history.append(history_event("disabled", planned, now))
    await services.guests.save(record)
    await audit_applied(services, planned, "guest.disabled", verdict)
    return await work.finish(services, item, item_result(planned, applied=True, before=user))


async def finish_delete(
    planned: PlannedAction,
    item: WorkItem,
    services: Services,
    record: GuestRecord | None,
    verdict: Decision | None = None,
    user: DirectoryUser | None = None,
) -> Outcome:
    now = services.clock.now()
    if record is not None:
        record.state, record.updated = GuestState.DELETED, now
        record.history.append(history_event("deleted", planned, now))
        await services.guests.save(record)
    await audit_applied(services, planned, "guest.deleted", verdict)
    return await work.finish(services, item, item_result(planned, applied=True, before=user))


async def drop_action(planned: PlannedAction, item: WorkItem, services: Services, code: str, why: str) -> Outcome:
    await services.audit.record(
        AuditEntry(
            at=services.clock.now(),
            action=f"guest.{planned.action.value}.dropped",
            target=planned.object_id,
            reason=f"{code}: {why}",
            key=planned.key,
            run_id=planned.run_id,
            details={"planned": planned.to_json()},
        )
    )
    log.info("sweep.action.dropped", code=code)
    if item.status is not WorkStatus.DONE:
        await work.finish(services, item, item_result(planned, applied=False, dropped=code))
    return Outcome(planned.key, Verdict.DONE, code=f"dropped:{code}", message=why)


async def audit_applied(services: Services, planned: PlannedAction, action: str, verdict: Decision | None) -> None:
    evidence = verdict.evidence if verdict is not None else planned.evidence
    rule = verdict.rule.value if verdict is not None else planned.rule.value
    await services.audit.record(
        AuditEntry(
            at=services.clock.now(),
            action=action,
            target=planned.object_id,
            reason=f"rule {rule} (run {planned.run_id})",
            key=planned.key,
            run_id=planned.run_id,
            details={"rule": rule, "evidence": evidence, "partner": planned.partner},
        )
    )


def history_event(event: str, planned: PlannedAction, now: datetime) -> dict[str, Any]:
    return {"at": now.isoformat(), "event": event, "rule": planned.rule.value, "run": planned.run_id}


def item_result(
    planned: PlannedAction, *, applied: bool, dropped: str | None = None, before: DirectoryUser | None = None
) -> dict[str, Any]:
    result: dict[str, Any] = {"objectId": planned.object_id, "action": planned.action.value, "applied": applied}
    if dropped:
        result["dropped"] = dropped
    if before is not None:
        result["before"] = snapshot(before)
    return result


# What an undo compares with Graph later: the guest as the worker saw it right before acting (a restore refuses
# a guest whose name, addresses or type changed since).
SNAPSHOT_FIELDS = ("displayName", "mail", "userPrincipalName", "userType", "accountEnabled")


def snapshot(user: DirectoryUser) -> dict[str, Any]:
    return {
        "displayName": user.display_name,
        "mail": user.mail,
        "userPrincipalName": user.user_principal_name,
        "userType": user.user_type,
        "accountEnabled": user.account_enabled,
    }
