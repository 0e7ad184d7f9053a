"""The `guest-actions` worker: re-check one guest right before acting, then disable or delete it.

A decision planned hours ago may be stale: the guest may have signed in, been re-enabled, been given a
new end date, been promoted to member, or joined the protected group. The worker decides again with the
same rules at its own instant and drops a decision that no longer holds, with the reason.

Graph calls and ledger writes cannot be one transaction, so the work item records the step reached
before each call; a redelivery after a crash resumes from there instead of mistaking this product's own
disable for somebody else's.
"""

from __future__ import annotations

import contextlib
import json
from datetime import datetime
from typing import Any

import structlog

from lifecycle import work
from lifecycle.errors import GraphError, NotFoundError, PermissionDeniedError, StateConflictError, TransientGraphError
from lifecycle.models import AuditEntry, DirectoryUser, GuestRecord, GuestState, ReceivedMessage, WorkItem
from lifecycle.outcomes import Outcome, Verdict
from lifecycle.services import Services
from lifecycle.sweep.model import Action, PlannedAction, RunStatus
from lifecycle.sweep.ports import SweepRuns
from lifecycle.sweep.rules import Decision, SweepPolicy, decide
from lifecycle.sweep.runner import group_membership, guest_reads

log = structlog.get_logger(__name__)

KIND = "guest-action"
STAGE = "stage"
DISPATCHED_STATES = (RunStatus.DISPATCHING, RunStatus.DISPATCHED)


class RunGate:
    """Which runs may act, and the protected members as of the run; cached per process and run id."""

    def __init__(self, runs: SweepRuns) -> None:
        self.runs = runs
        self._released: set[str] = set()
        self._protected: dict[tuple[str, str], frozenset[str]] = {}

    async def released(self, run_id: str) -> bool:
        if run_id in self._released:
            return True
        run = await self.runs.get(run_id)
        if run is not None and run.status in DISPATCHED_STATES:
            self._released.add(run_id)
            return True
        return False

    async def policy(self, services: Services, run_id: str) -> SweepPolicy:
        group_id = services.desired.exclusions.protected_group_id
        if not group_id:
            return SweepPolicy(services.desired)
        membership = group_membership(services)
        if membership is None:
            raise PermissionDeniedError(f"protected group {group_id} cannot be read: not acting on any guest")
        cache_key = (run_id, group_id)
        if cache_key not in self._protected:
            if len(self._protected) > 8:
                self._protected.clear()
            self._protected[cache_key] = frozenset(await membership.group_member_ids(group_id))
        return SweepPolicy(services.desired, self._protected[cache_key])


async def handle_guest_action(message: ReceivedMessage, services: Services, gate: RunGate) -> Outcome:
    try:
        planned = PlannedAction.from_json(json.loads(message.body))
    except (ValueError, KeyError, TypeError) as error:
        key = message.key or f"guest-action:{message.message_id}"
        return await work.reject(
            services, key=key, kind=KIND, code="malformed-action", message=str(error), raw=message.body
        )
    structlog.contextvars.bind_contextvars(run_id=planned.run_id, object_id=planned.object_id)
    if not await gate.released(planned.run_id):
        return await work.reject(
            services,
            key=planned.key,
            kind=KIND,
            code="run-not-released",
            message=f"run {planned.run_id} is not dispatched (planned only, braked or unknown): not acting",
            raw=message.body,
        )
    item = await work.begin(services, planned.key, kind=KIND, partner=planned.partner)
    if item is None:
        return Outcome(planned.key, Verdict.DUPLICATE, message="action already carried out")
    item.run_id = planned.run_id
    try:
        return await _carry_out(planned, item, services, gate)
    except (TransientGraphError, StateConflictError) as error:
        log.warning("sweep.action.transient", error=str(error), attempts=item.attempts)
        return await work.retry_later(services, item, error)
    except GraphError as error:
        log.error("sweep.action.failed", error=error.describe())
        return await work.fail(services, item, error)


async def _carry_out(planned: PlannedAction, item: WorkItem, services: Services, gate: RunGate) -> Outcome:
    stage = item.result.get(STAGE)
    user = await guest_reads(services).get_user(planned.object_id)
    record = await services.guests.get(planned.object_id)

    if planned.action is Action.DELETE and user is None and stage == "deleting":
        return await _deleted(planned, item, services, record)
    if user is None:
        return await _drop(planned, item, services, "guest-not-found", "the guest no longer exists")
    if stage == "disabling" and user.account_enabled is False:
        return await _finish_disable(planned, item, services, user, record)

    now = services.clock.now()
    policy = await gate.policy(services, planned.run_id)
    hint = _planned_activity(planned) if user.sign_in_activity is None else None
    verdict = decide(user, record, policy, now, activity_hint=hint)
    if not isinstance(verdict, Decision) or verdict.action is not planned.action:
        return await _drop(planned, item, services, *_why_stale(planned, user, verdict))

    if planned.action is Action.DISABLE:
        item = await _stage(services, item, "disabling")
        await services.directory.set_account_enabled(planned.object_id, False)
        return await _finish_disable(planned, item, services, user, record, verdict)
    item = await _stage(services, item, "deleting")
    # Deleted between the re-check and the call: the outcome this action wanted.
    with contextlib.suppress(NotFoundError):
        await services.directory.delete_user(planned.object_id)
    return await _deleted(planned, item, services, record, verdict)


def _planned_activity(planned: PlannedAction) -> datetime | None:
    """The plan's view of the last sign-in, for a directory read that does not carry signInActivity."""
    if planned.evidence.get("baseline") != "lastSuccessfulSignIn":
        return None
    since = planned.evidence.get("inactiveSince")
    return datetime.fromisoformat(since) if since else None


def _why_stale(planned: PlannedAction, user: DirectoryUser, verdict: object) -> tuple[str, str]:
    if not user.is_guest:
        return "no-longer-a-guest", "the user is no longer a guest"
    if planned.action is Action.DELETE and user.account_enabled is not False:
        return "re-enabled", "the guest was re-enabled after this product disabled it"
    if planned.action is Action.DISABLE and user.account_enabled is False:
        return "already-disabled", "the guest was disabled by someone else meanwhile"
    if isinstance(verdict, Decision):
        return "different-action", f"the guest now calls for {verdict.action.value}, not {planned.action.value}"
    if verdict is not None:
        return f"now-{verdict}", f"the guest is now left alone: {verdict}"
    return "no-longer-eligible", "no rule holds any more (signed in, extended, or rules changed)"


async def _stage(services: Services, item: WorkItem, stage: str) -> WorkItem:
    item.result = {**item.result, STAGE: stage}
    item.updated = services.clock.now()
    # Keep the caller's object current: a retry or failure recorded later must carry the new etag.
    item.etag = (await services.work_items.save(item)).etag
    return item


async def _finish_disable(
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
    record.history.append(_event("disabled", planned, now))
    await services.guests.save(record)
    await _record(services, planned, "guest.disabled", verdict)
    return await work.finish(services, item, _result(planned, applied=True))


async def _deleted(
    planned: PlannedAction,
    item: WorkItem,
    services: Services,
    record: GuestRecord | None,
    verdict: Decision | None = None,
) -> Outcome:
    now = services.clock.now()
    if record is not None:
        record.state, record.updated = GuestState.DELETED, now
        record.history.append(_event("deleted", planned, now))
        await services.guests.save(record)
    await _record(services, planned, "guest.deleted", verdict)
    return await work.finish(services, item, _result(planned, applied=True))


async def _drop(planned: PlannedAction, item: WorkItem, services: Services, code: str, why: str) -> Outcome:
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
    await work.finish(services, item, _result(planned, applied=False, dropped=code))
    return Outcome(planned.key, Verdict.DONE, code=f"dropped:{code}", message=why)


async def _record(services: Services, planned: PlannedAction, action: str, verdict: Decision | None) -> None:
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


def _event(event: str, planned: PlannedAction, now: datetime) -> dict[str, Any]:
    return {"at": now.isoformat(), "event": event, "rule": planned.rule.value, "run": planned.run_id}


def _result(planned: PlannedAction, *, applied: bool, dropped: str | None = None) -> dict[str, Any]:
    result: dict[str, Any] = {"objectId": planned.object_id, "action": planned.action.value, "applied": applied}
    if dropped:
        result["dropped"] = dropped
    return result
