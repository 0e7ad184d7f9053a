"""Reading what holds now for a guest of an undo, and carrying out its plan.

Each guest's undo is one work item (``restore:<runId>:<objectId>``). The steps it completed are checkpointed
on it, so an attempt that died half-way resumes where it stopped, and a finished undo is never done twice.
Right before writing, the guest is read again, planned again, and asked of the safety gate.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import structlog

from lifecycle.access_requests import earlier_request, since_first_attempt
from lifecycle.errors import GraphError, NotFoundError, PermissionDeniedError, StateConflictError
from lifecycle.ledger import work
from lifecycle.models import AccessPackageTarget, AuditEntry, GuestRecord, GuestState, WorkItem, WorkStatus
from lifecycle.restore.model import KIND, GuestRestore, RunAction, Seen, Step, restore_key
from lifecycle.restore.planner import plan_guest
from lifecycle.restore.ports import RestorePorts
from lifecycle.safety import Write, gate_of
from lifecycle.services import Services

log = structlog.get_logger(__name__)
# The application permission each step is carried out with (README, Undo a run).
PERMISSION_OF = {
    Step.RESTORE: "User.DeleteRestore.All",
    Step.ENABLE: "User.EnableDisableAccount.All",
    Step.REASSIGN: "EntitlementManagement.ReadWrite.All",
}


class Packages:
    """Each partner's access package, resolved once per undo."""

    def __init__(self, services: Services) -> None:
        self._services = services
        self._found: dict[str, AccessPackageTarget | None] = {}
        self._lock = asyncio.Lock()

    async def of(self, partner: str | None) -> AccessPackageTarget | None:
        config = self._services.desired.partners.get(partner or "")
        if config is None or config.access_package is None:
            return None
        async with self._lock:
            if partner not in self._found:
                ref = config.access_package
                self._found[partner or ""] = await self._services.access_packages.resolve(ref.catalog, ref.name)
        return self._found[partner or ""]


async def observe(services: Services, ports: RestorePorts, undo: RunAction, packages: Packages) -> Seen:
    """The guest live or in deleted items, its ledger row, its package and assignment, and this undo's item."""
    user, record, item = await asyncio.gather(
        ports.guest_reads.get_user(undo.object_id),
        services.guests.get(undo.object_id),
        services.work_items.get(restore_key(undo.run_id, undo.object_id)),
    )
    deleted = await ports.deleted.deleted_user(undo.object_id) if user is None else None
    package = await packages.of(undo.partner or (record.partner if record else None))
    seen = Seen(user, deleted, record, package)
    if user is not None and package is not None:
        seen.assignment = await services.access_packages.find_assignment(undo.object_id, package.package_id)
        seen.assignment_known = True
    if item is not None:
        seen.finished = item.status is WorkStatus.DONE
        seen.progress = dict(item.result)
    return seen


async def carry_out(
    services: Services, ports: RestorePorts, undo: RunAction, packages: Packages, operator: str, cool_off: timedelta
) -> dict[str, Any]:
    """Read again, plan again, ask the gate, then write: the guest's result as shown to the operator."""
    seen = await observe(services, ports, undo, packages)
    plan = plan_guest(undo, seen, services.clock.now())
    resuming = bool(seen.progress.get("done")) and not seen.finished  # an earlier attempt did part of it
    if plan.code or not (plan.steps or resuming):
        return plan.to_json()
    subject = seen.user or (seen.deleted.user if seen.deleted is not None else None)
    write = Write.RESTORE if Step.RESTORE in plan.steps else Write.ENABLE
    refusal = await gate_of(services).refusal(subject, seen.record, write, managed_only=False)
    if refusal is not None:
        return {**plan.to_json(), "status": "refused", "code": refusal.code, "reason": refusal.message}
    try:
        item = await work.begin(services, plan.key, kind=KIND, partner=undo.partner)
    except work.WorkInProgress as busy:
        why = f"another restore of this guest is running; try again in {busy.retry_after:.0f} s"
        return {**plan.to_json(), "status": "in-progress", "code": "in-progress", "reason": why}
    if item is None:
        return {**plan.to_json(), "status": "already-restored", "code": "already-restored"}
    item.run_id = undo.run_id
    done = [Step(s) for s in item.result.get("done") or ()]
    extra: dict[str, Any] = {}
    step = plan.steps[0] if plan.steps else Step.RESTORE
    try:
        for step in plan.steps:
            if step in done:
                continue
            extra |= await _step(services, ports, plan, item, step, seen.package)
            done.append(step)
            item = await work.checkpoint(services, item, done=[s.value for s in done], **extra)
    except GraphError as error:
        log.error("restore.failed", object_id=undo.object_id, error=error.describe())
        await work.fail(services, item, error)
        code = "permission-missing" if isinstance(error, PermissionDeniedError) else "graph-error"
        why = f"Graph refused the {step.value} step: {error}"
        if code == "permission-missing":
            why += f" (this step needs {PERMISSION_OF[step]}; run the same command again once it is granted)"
        return {**plan.to_json(), "status": "failed", "code": code, "reason": why}
    rearm = services.clock.now() + cool_off
    await _record(services, plan, seen.record, operator, rearm)
    await services.audit.record(
        AuditEntry(
            services.clock.now(),
            "guest.restored",
            undo.object_id,
            f"undo of {undo.action.value} by run {undo.run_id} (rule {undo.rule}): {', '.join(s.value for s in done)}",
            actor=operator,
            key=plan.key,
            run_id=undo.run_id,
            details={**plan.to_json(), **extra, "rearmUntil": rearm.isoformat()},
        )
    )
    result = {**plan.to_json(), **extra, "status": "restored", "rearmUntil": rearm.isoformat()}
    await work.finish(services, item, {**result, "done": [s.value for s in done]})
    return result


async def _step(
    services: Services,
    ports: RestorePorts,
    plan: GuestRestore,
    item: WorkItem,
    step: Step,
    package: AccessPackageTarget | None,
) -> dict[str, Any]:
    oid = plan.object_id
    if step is Step.RESTORE:
        try:
            await ports.deleted.restore_user(oid)
        except NotFoundError:
            if await ports.guest_reads.get_user(oid) is None:
                raise  # purged between the plan and now
        return {}
    if step is Step.ENABLE:
        await services.directory.set_account_enabled(oid, True)
        return {}
    assert package is not None and plan.end is not None
    existing = await services.access_packages.find_assignment(oid, package.package_id)
    if existing is not None:
        return {"assignment": existing.state}
    # The justification names the guest as well as the run: it is how a later attempt finds this request.
    justification = f"Undo of sweep run {plan.undo.run_id} for {oid}"
    # Undoes are run by hand within minutes: any earlier attempt of this guest's undo may have sent one.
    request = await earlier_request(services, item, package, justification, since_first_attempt(item))
    if request is None:
        request = await services.access_packages.request_assignment(oid, package, plan.end, justification)
    return {"assignmentRequestId": request.id, "assignment": request.state}


async def _record(
    services: Services, plan: GuestRestore, record: GuestRecord | None, operator: str, rearm: datetime
) -> None:
    """The ledger row: active again (or still disabled, for a restored delete), with the re-arm marker."""
    now = services.clock.now()
    undo = plan.undo
    for _ in range(3):
        current = await services.guests.get(undo.object_id) or record
        if current is None:
            current = GuestRecord(undo.object_id, plan.mail or "", undo.partner or "", GuestState.DISABLED)
        if Step.ENABLE in plan.steps:
            current.state, current.disabled = GuestState.ACTIVE, None
        elif current.state is GuestState.DELETED:
            current.state = GuestState.DISABLED
        current.rearm_until, current.updated = rearm, now
        # Judged afresh after the cool-off: a guest whose sponsors are still gone gets a new event and a full period.
        current.sponsor_gone_since = None
        current.history.append(
            {"at": now.isoformat(), "event": "restored", "run": undo.run_id, "undid": undo.action.value, "by": operator}
        )
        try:
            await services.guests.save(current)
            return
        except StateConflictError:
            record = None  # written meanwhile (a ticket, the worker): read it again
    raise StateConflictError(f"the ledger row of {undo.object_id} kept changing")
