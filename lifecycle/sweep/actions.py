"""The `guest-actions` worker: re-check one guest right before acting, then disable or delete it, or tell
its sponsor (an event on the ticketing system's queue) that it is about to be disabled.

A decision planned hours ago may be stale: the guest may have signed in, been re-enabled, been given a
new end date, been promoted to member, or joined the protected group. The worker decides again with the
same rules at its own instant and drops a decision that no longer holds, with the reason.

Graph calls and ledger writes cannot be one transaction, so the work item records the step reached
before each call; a redelivery after a crash resumes from there instead of mistaking this product's own
disable for somebody else's.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog

from lifecycle.errors import GraphError, NotFoundError, PermissionDeniedError, StateConflictError, TransientGraphError
from lifecycle.ledger import work
from lifecycle.ledger.outcomes import Outcome, Verdict
from lifecycle.models import (
    AuditEntry,
    DirectoryUser,
    GuestRecord,
    GuestState,
    ReceivedMessage,
    WorkItem,
    WorkStatus,
)
from lifecycle.runs.model import RunStatus
from lifecycle.safety import Write, gate_of
from lifecycle.services import Services
from lifecycle.sweep.model import Action, NoticeRecord, PlannedAction, Rule, Skip
from lifecycle.sweep.notice import notice_event, notice_message
from lifecycle.sweep.ports import SweepPorts, SweepRuns
from lifecycle.sweep.rules import Decision, NoticeRules, SweepPolicy, decide

log = structlog.get_logger(__name__)

KIND = "guest-action"
STAGE = "stage"
DISPATCHED_STATES = (RunStatus.DISPATCHING, RunStatus.DISPATCHED)


class RunGate:
    """Which runs may act, and the protected members as of the run; cached per process and run id."""

    def __init__(self, ports: SweepPorts) -> None:
        self.ports = ports
        self.runs = ports.runs
        self._released: set[str] = set()
        self._without_sign_in: set[str] = set()  # runs planned without signInActivity (no P1/P2 licence)
        self._protected: dict[tuple[str, str], frozenset[str]] = {}
        self._reading = asyncio.Lock()

    async def released(self, run_id: str) -> bool:
        if run_id in self._released:
            return True
        run = await self.runs.get(run_id)
        if run is not None and run.status in DISPATCHED_STATES:
            self._released.add(run_id)
            if not run.sign_in_activity_known:
                self._without_sign_in.add(run_id)
            return True
        return False

    async def policy(self, services: Services, run_id: str) -> SweepPolicy:
        """The run's rules: a run planned without signInActivity is re-checked without the inactivity rule."""
        policy = await self._policy(services, run_id)
        return policy.without_sign_in_activity() if run_id in self._without_sign_in else policy

    async def _policy(self, services: Services, run_id: str) -> SweepPolicy:
        group_id = services.desired.exclusions.protected_group_id
        if not group_id:
            return SweepPolicy(services.desired)
        membership = self.ports.membership
        if membership is None:
            raise PermissionDeniedError(f"protected group {group_id} cannot be read: not acting on any guest")
        cache_key = (run_id, group_id)
        if cache_key not in self._protected:
            # The first messages of a run arrive together: one of them reads the group, the others wait.
            async with self._reading:
                if cache_key not in self._protected:
                    if len(self._protected) > 8:
                        self._protected.clear()
                    self._protected[cache_key] = frozenset(await membership.group_member_ids(group_id))
        return SweepPolicy(services.desired, self._protected[cache_key])


@dataclass(slots=True)
class Observed:
    """What the worker reads right before acting: the guest, its ledger row and its last sponsor notice."""

    user: DirectoryUser | None
    record: GuestRecord | None
    notice: NoticeRecord | None = None
    assignment_end: datetime | None = None


@dataclass(frozen=True, slots=True)
class Step:
    """What to do with a planned action given what was observed: act, drop, or finish an earlier attempt."""

    kind: str  # "act", "drop", "finish"
    verdict: Decision | None = None
    code: str = ""
    why: str = ""


STAGE_OF = {Action.DISABLE: "disabling", Action.DELETE: "deleting", Action.NOTIFY_SPONSOR: "notifying"}
WRITES = {Action.DISABLE: Write.DISABLE, Action.DELETE: Write.DELETE}  # a sponsor notice writes to no guest


async def handle_guest_action(message: ReceivedMessage, services: Services, gate: RunGate) -> Outcome:
    try:
        planned = PlannedAction.from_json(json.loads(message.body))
    except (ValueError, KeyError, TypeError) as error:
        key = message.key or f"guest-action:{message.message_id}"
        return await work.reject(
            services, key=key, kind=KIND, code="malformed-action", message=str(error), raw=message.body
        )
    structlog.contextvars.bind_contextvars(run_id=planned.run_id, object_id=planned.object_id)
    # A refused message is recorded under its own key, never under the action's: a forged message must not
    # leave a finished work item behind that a real action of a later run would take for its own.
    refused_key = f"guest-action-refused:{message.message_id}"
    if not await gate.released(planned.run_id):
        return await work.reject(
            services,
            key=refused_key,
            kind=KIND,
            code="run-not-released",
            message=f"run {planned.run_id} is not dispatched (planned only, braked or unknown): not acting",
            raw=message.body,
        )
    stored = await gate.runs.planned_action(planned.run_id, planned.object_id, planned.action)
    if stored is None:
        return await work.reject(
            services,
            key=refused_key,
            kind=KIND,
            code="not-in-plan",
            message=(
                f"run {planned.run_id} holds no {planned.action.value} for {planned.object_id}: "
                "a message only points into an approved plan"
            ),
            raw=message.body,
        )
    planned = stored  # act on what the plan holds, never on what the message says it held
    attempt = _Attempt(planned, services, gate)
    try:
        return await attempt.run()
    except work.WorkInProgress as busy:
        return Outcome(planned.key, Verdict.RETRY, code="in-progress", message=str(busy), retry_after=busy.retry_after)


class _Attempt:
    """One delivery of a planned action.

    The common case is an action no attempt has touched yet: the guest is re-read first and the work item
    is then created in one insert already carrying the step it is about to take (or, for a stale decision,
    already done), instead of a read, an insert and a stage update. When the insert finds the item, an
    earlier delivery got there first and the usual begin/resume path takes over with fresh reads.
    """

    def __init__(self, planned: PlannedAction, services: Services, gate: RunGate) -> None:
        self.planned, self.services, self.gate = planned, services, gate
        self.item: WorkItem | None = None

    async def run(self) -> Outcome:
        planned, services = self.planned, self.services
        try:
            policy = await self.gate.policy(services, planned.run_id)
            seen = await observe(planned, services, self.gate.ports, policy)
            step = await self._decide(seen, None, policy)
            if await self._claim_fresh(step):
                return await self._execute(step, seen, policy)
            self.item = await work.begin(services, planned.key, kind=KIND, partner=planned.partner)
            if self.item is None:
                return Outcome(planned.key, Verdict.DUPLICATE, message="action already carried out")
            self.item.run_id = planned.run_id
            # The item existed: an earlier attempt may have acted since the first read. Look again.
            seen = await observe(planned, services, self.gate.ports, policy)
            step = await self._decide(seen, self.item.result.get(STAGE), policy)
            if step.kind == "act":
                self.item = await _stage(services, self.item, STAGE_OF[planned.action])
            return await self._execute(step, seen, policy)
        except (TransientGraphError, StateConflictError) as error:
            log.warning("sweep.action.transient", error=str(error))
            if not await self._ensure_item():
                return Outcome(planned.key, Verdict.DUPLICATE, message="action already carried out")
            assert self.item is not None
            return await work.retry_later(services, self.item, error)
        except GraphError as error:
            log.error("sweep.action.failed", error=error.describe())
            if not await self._ensure_item():
                return Outcome(planned.key, Verdict.DUPLICATE, message="action already carried out")
            assert self.item is not None
            return await work.fail(services, self.item, error)

    async def _decide(self, seen: Observed, stage: str | None, policy: SweepPolicy) -> Step:
        """The rules' answer at this instant, then the safety gate's for a write (a live protected-group
        check: the run's cached membership may be hours old)."""
        step = next_step(self.planned, seen, stage, policy, self.services.clock.now())
        write = WRITES.get(self.planned.action)
        if step.kind != "act" or write is None:
            return step
        refusal = await gate_of(self.services).refusal(seen.user, seen.record, write, managed_only=False)
        return step if refusal is None else Step("drop", code=refusal.code, why=refusal.message)

    async def _ensure_item(self) -> bool:
        """A failure before the claim still needs the work item, so its attempts count and it can be replayed."""
        if self.item is None:
            self.item = await work.begin(self.services, self.planned.key, kind=KIND, partner=self.planned.partner)
        return self.item is not None

    async def _claim_fresh(self, step: Step) -> bool:
        """Insert the work item already in the state ``step`` leads to; False when it exists already."""
        now = self.services.clock.now()
        planned = self.planned
        if step.kind == "act":
            status, result = WorkStatus.RUNNING, {STAGE: STAGE_OF[planned.action]}
        elif step.kind == "drop":
            status, result = WorkStatus.DONE, _result(planned, applied=False, dropped=step.code)
        else:
            return False  # finishing an earlier attempt's work: that attempt's item exists
        fresh = WorkItem(
            planned.key, KIND, status, attempts=1, run_id=planned.run_id, partner=planned.partner, created=now
        )
        fresh.updated, fresh.result = now, result
        try:
            self.item = await self.services.work_items.create(fresh)
        except StateConflictError:
            return False
        return True

    async def _execute(self, step: Step, seen: Observed, policy: SweepPolicy) -> Outcome:
        planned, services, item = self.planned, self.services, self.item
        assert item is not None
        if step.kind == "drop":
            return await _drop(planned, item, services, step.code, step.why)
        if planned.action is Action.NOTIFY_SPONSOR:
            if step.kind == "act":
                assert seen.user is not None and step.verdict is not None
                await _send_notice(planned, services, seen.user, policy.rules_for(step.verdict.partner).notice)
            return await _noticed(planned, item, services, self.gate.runs, seen, step.verdict)
        if planned.action is Action.DISABLE:
            if step.kind == "act":
                await services.directory.set_account_enabled(planned.object_id, False)
            assert seen.user is not None
            return await _finish_disable(planned, item, services, seen.user, seen.record, step.verdict)
        if step.kind == "act":
            # Deleted between the re-check and the call: the outcome this action wanted.
            with contextlib.suppress(NotFoundError):
                await services.directory.delete_user(planned.object_id)
        return await _deleted(planned, item, services, seen.record, step.verdict)


async def observe(planned: PlannedAction, services: Services, ports: SweepPorts, policy: SweepPolicy) -> Observed:
    """The guest, its ledger row, and where they matter its last notice and access package end, side by side."""
    reads: dict[str, Awaitable[Any]] = {
        "user": ports.guest_reads.get_user(planned.object_id),
        "record": services.guests.get(planned.object_id),
    }
    if policy.notices_anywhere:
        reads["notice"] = ports.runs.notice(planned.object_id)
    expiries = ports.expiries
    if expiries is not None and rests_on_end_date(planned):
        reads["assignment_end"] = expiries.end_date_of(planned.object_id)
    found = dict(zip(reads, await asyncio.gather(*reads.values()), strict=True))
    return Observed(**found)


def rests_on_end_date(planned: PlannedAction) -> bool:
    """Whether the plan used an end date: only then can an access package assignment change the answer
    (an end date only adds a rule; the due date of a notice is the end date only when that rule names it)."""
    return Rule.PAST_END_DATE.value in (planned.rule.value, planned.evidence.get("stillEligibleBy"))


def next_step(planned: PlannedAction, seen: Observed, stage: str | None, policy: SweepPolicy, now: datetime) -> Step:
    """Decide again, at ``now``, whether the planned action still holds; resume an interrupted attempt."""
    user = seen.user
    if planned.action is Action.DELETE and user is None and stage == "deleting":
        return Step("finish")
    if user is None:
        return Step("drop", code="guest-not-found", why="the guest no longer exists")
    if planned.action is Action.DISABLE and stage == "disabling" and user.account_enabled is False:
        return Step("finish")
    if planned.action is Action.NOTIFY_SPONSOR and stage == "notifying" and _notice_sent(planned, seen.notice):
        return Step("finish")
    hint = _planned_activity(planned) if user.sign_in_activity is None else None
    verdict = decide(user, seen.record, policy, now, seen.assignment_end, activity_hint=hint, notice=seen.notice)
    if not isinstance(verdict, Decision) or verdict.action is not planned.action:
        code, why = _why_stale(planned, user, verdict)
        return Step("drop", code=code, why=why)
    if planned.action is Action.NOTIFY_SPONSOR and verdict.due != planned.due:
        return Step("drop", code="due-date-moved", why="the guest's due date moved; a later run plans a new notice")
    return Step("act", verdict=verdict)


def _notice_sent(planned: PlannedAction, notice: NoticeRecord | None) -> bool:
    return notice is not None and notice.due == planned.due


async def _send_notice(planned: PlannedAction, services: Services, user: DirectoryUser, rules: NoticeRules) -> None:
    """Put the event on the ticketing system's queue. The broker message id is the notice id, so a resend
    after a crash between this send and the notice record is dropped by Service Bus duplicate detection."""
    event = notice_event(planned, user, services.clock.now(), rules.lead_days)
    await services.transport.send(services.settings.queue_name(rules.queue), [notice_message(event)])


async def _noticed(
    planned: PlannedAction,
    item: WorkItem,
    services: Services,
    runs: SweepRuns,
    seen: Observed,
    verdict: Decision | None,
) -> Outcome:
    now = services.clock.now()
    assert planned.due is not None
    if not _notice_sent(planned, seen.notice):
        await runs.record_notice(NoticeRecord(planned.object_id, planned.due, now, planned.run_id, planned.key))
    await _record(services, planned, "guest.sponsor-notified", verdict)
    return await work.finish(services, item, _result(planned, applied=True))


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
    if verdict is Skip.AWAITING_NOTICE_LEAD:
        return "awaiting-notice-lead", "the sponsor notice is younger than its lead time"
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
    if item.status is not WorkStatus.DONE:
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
