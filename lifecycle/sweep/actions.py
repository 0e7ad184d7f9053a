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

import contextlib
import json
from datetime import timedelta

import structlog

from lifecycle.admission import Slot
from lifecycle.clock import SystemClock
from lifecycle.errors import GraphError, NotFoundError, PermissionDeniedError, StateConflictError, TransientGraphError
from lifecycle.kept import KeptAnswers
from lifecycle.ledger import work
from lifecycle.ledger.outcomes import Outcome, Verdict
from lifecycle.models import (
    ReceivedMessage,
    WorkItem,
    WorkStatus,
)
from lifecycle.ports import Clock
from lifecycle.runs.halt import RUN_HALTED, RUN_STATUS_TTL
from lifecycle.runs.model import RunStatus
from lifecycle.safety import Write, gate_of
from lifecycle.services import Services
from lifecycle.sweep.applied import drop_action, finish_delete, finish_disable, finish_notice, item_result, send_notice
from lifecycle.sweep.gone import finish_gone_ended, finish_reassign, send_reassign
from lifecycle.sweep.model import Action, PlannedAction
from lifecycle.sweep.ports import SweepPorts
from lifecycle.sweep.recheck import Observed, Step, next_step, observe
from lifecycle.sweep.rules import SweepPolicy

log = structlog.get_logger(__name__)

KIND = "guest-action"
STAGE = "stage"
DISPATCHED_STATES = (RunStatus.DISPATCHING, RunStatus.DISPATCHED)


class RunGate:
    """Which runs may act, and the protected members as of the run; cached per process and run id.

    A released run's status is trusted for ``ttl`` (RUN_STATUS_TTL), then read again, so an operator's halt
    reaches every worker within that much while a busy run still costs one run read per ``ttl``, not one per
    message. A halted or unreleased run is never cached: its messages are few, and a resume must be seen at once.
    """

    def __init__(self, ports: SweepPorts, clock: Clock | None = None, ttl: timedelta = RUN_STATUS_TTL) -> None:
        self.ports = ports
        self.runs = ports.runs
        self.clock: Clock = clock or SystemClock()
        # A released run, kept for ``ttl``; the first messages of a run share one read of it.
        self._released: KeptAnswers[str, tuple[RunStatus, bool] | None] = KeptAnswers(
            ttl.total_seconds(),
            keep=lambda read: read is not None and read[0] in DISPATCHED_STATES,
            clock=lambda: self.clock.now().timestamp(),
            limit=64,
        )
        self._without_sign_in: set[str] = set()  # runs planned without signInActivity (no P1/P2 licence)
        # The protected group's members as of the run's first message, kept for the run: one read however many
        # of its messages arrive together.
        self._protected: KeptAnswers[tuple[str, str], frozenset[str]] = KeptAnswers(
            float("inf"), keep=lambda _members: True, limit=8
        )

    async def status(self, run_id: str) -> RunStatus | None:
        """The run's status as of at most ``ttl`` ago for a released run, as of now otherwise (None: unknown)."""
        read = await self._released.get(run_id, lambda: self._read(run_id))
        if read is None:
            return None
        status, sign_in_activity_known = read
        if status in DISPATCHED_STATES and not sign_in_activity_known:
            self._without_sign_in.add(run_id)
        return status

    async def _read(self, run_id: str) -> tuple[RunStatus, bool] | None:
        run = await self.runs.get(run_id)
        return None if run is None else (run.status, run.sign_in_activity_known)

    async def released(self, run_id: str) -> bool:
        return await self.status(run_id) in DISPATCHED_STATES

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

        async def read() -> frozenset[str]:
            return frozenset(await membership.group_member_ids(group_id))

        return SweepPolicy(services.desired, await self._protected.get((run_id, group_id), read))


STAGE_OF = {
    Action.DISABLE: "disabling",
    Action.DELETE: "deleting",
    Action.NOTIFY_SPONSOR: "notifying",
    Action.SPONSOR_REASSIGN: "reassigning",
    Action.SPONSOR_GONE_ENDED: "clearing",
}
WRITES = {Action.DISABLE: Write.DISABLE, Action.DELETE: Write.DELETE}  # a sponsor notice writes to no guest


async def handle_guest_action(message: ReceivedMessage, services: Services, gate: RunGate) -> Outcome:
    # Among the instance's first ``READ_SLOTS`` until the action's first write (lifecycle.admission).
    async with services.admission.reading() as slot:
        return await _handle(message, services, gate, slot)


async def _handle(message: ReceivedMessage, services: Services, gate: RunGate, slot: Slot) -> Outcome:
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
    status = await gate.status(planned.run_id)
    if status is RunStatus.HALTED:
        # Nothing written, nothing dead-lettered: the action waits for the resume, which sends it again. An
        # attempt already past this check finishes; one cut short resumes from its stage once re-sent.
        log.info("sweep.action.halted")
        return Outcome(
            planned.key, Verdict.HELD, code=RUN_HALTED, message=f"run {planned.run_id} is halted: left for its resume"
        )
    if status not in DISPATCHED_STATES:
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
    attempt = _Attempt(planned, services, gate, slot)
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

    def __init__(self, planned: PlannedAction, services: Services, gate: RunGate, slot: Slot) -> None:
        self.planned, self.services, self.gate, self.slot = planned, services, gate, slot
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
            status, result = WorkStatus.DONE, item_result(planned, applied=False, dropped=step.code)
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
        self.slot.release()
        if step.kind == "drop":
            return await drop_action(planned, item, services, step.code, step.why)
        if planned.action is Action.NOTIFY_SPONSOR:
            if step.kind == "act":
                assert seen.user is not None and step.verdict is not None
                await send_notice(planned, services, seen.user, policy.rules_for(step.verdict.partner).notice)
            return await finish_notice(planned, item, services, self.gate.runs, seen, step.verdict)
        if planned.action is Action.SPONSOR_REASSIGN:
            if step.kind == "act":
                assert seen.user is not None and step.verdict is not None
                rules = policy.rules_for(step.verdict.partner)
                await send_reassign(planned, services, self.gate.ports, seen.user, rules)
            return await finish_reassign(planned, item, services, seen, step.verdict)
        if planned.action is Action.SPONSOR_GONE_ENDED:
            return await finish_gone_ended(planned, item, services, seen, step.verdict)
        if planned.action is Action.DISABLE:
            if step.kind == "act":
                await services.directory.set_account_enabled(planned.object_id, False)
            assert seen.user is not None
            return await finish_disable(planned, item, services, seen.user, seen.record, step.verdict)
        if step.kind == "act":
            # Deleted between the re-check and the call: the outcome this action wanted.
            with contextlib.suppress(NotFoundError):
                await services.directory.delete_user(planned.object_id)
        return await finish_delete(planned, item, services, seen.record, step.verdict, seen.user)


async def _stage(services: Services, item: WorkItem, stage: str) -> WorkItem:
    item.result = {**item.result, STAGE: stage}
    item.updated = services.clock.now()
    # Keep the caller's object current: a retry or failure recorded later must carry the new etag.
    item.etag = (await services.work_items.save(item)).etag
    return item
