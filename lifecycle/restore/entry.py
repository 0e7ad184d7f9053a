"""Undo by run, for the command line: plan what undoing a sweep run would do to each guest, then carry it out.

The plan is read from the run's own work items: only an action the worker recorded as carried out is undone
(a dropped or failed one changed nothing). It is shown by name before anything is written, braked like the
run (the same deletion brake over the guests it would write to), and each guest is read and planned again
right before its write.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any, TypeVar

import structlog

from lifecycle.errors import LifecycleError
from lifecycle.models import AuditEntry, WorkStatus
from lifecycle.restore.apply import Packages, carry_out, observe
from lifecycle.restore.model import GuestRestore, RunAction, Seen, Step
from lifecycle.restore.planner import brake_state, plan_guest
from lifecycle.restore.ports import RestorePorts
from lifecycle.runs.model import BrakeState
from lifecycle.safety import Write, gate_of
from lifecycle.services import Services
from lifecycle.sweep.model import Action, PlannedAction

log = structlog.get_logger(__name__)
CONCURRENCY = 8
T = TypeVar("T")


class RestoreError(LifecycleError):
    """The run cannot be undone as asked (unknown run, nothing it did matches)."""


@dataclass(slots=True)
class RestorePlan:
    run_id: str
    guests: list[GuestRestore]
    brake: BrakeState
    actions: list[RunAction] = field(default_factory=list)

    @property
    def acting(self) -> list[GuestRestore]:
        return [g for g in self.guests if g.acts]

    def summary(self) -> dict[str, Any]:
        counts: dict[str, int] = {}
        for guest in self.guests:
            status = guest.to_json()["status"]
            counts[status] = counts.get(status, 0) + 1
        return {
            "runId": self.run_id,
            "guests": len(self.guests),
            "toRestore": len(self.acting),
            "counts": dict(sorted(counts.items())),
            "brake": self.brake.to_json(),
            "plan": [g.to_json() for g in self.guests],
        }


def restore_ports(services: Services) -> RestorePorts:
    ports = services.jobs.find(RestorePorts)
    if ports is None:
        raise RuntimeError("services carry no restore ports; the composition root builds them")
    return ports


async def run_actions(services: Services, ports: RestorePorts, run_id: str, key: str | None = None) -> list[RunAction]:
    """Every disable and delete of ``run_id`` its worker carried out (``key``: only that work item or guest)."""
    if await ports.runs.get(run_id) is None:
        raise RestoreError(f"no sweep run {run_id}")
    wanted: list[PlannedAction] = []
    async for page in ports.runs.actions(run_id):
        wanted.extend(
            a
            for a in page
            if a.action in (Action.DISABLE, Action.DELETE) and (key is None or key in (a.key, a.object_id))
        )

    async def applied(planned: PlannedAction) -> RunAction | None:
        item = await services.work_items.get(planned.key)
        if item is None or item.status is not WorkStatus.DONE or not item.result.get("applied"):
            return None
        return RunAction(
            run_id,
            planned.object_id,
            planned.action,
            planned.rule.value,
            planned.partner,
            planned.key,
            item.updated,
            item.result.get("before"),
        )

    found = await _bounded([lambda p=p: applied(p) for p in wanted])
    return [a for a in found if a is not None]


async def plan_restore(services: Services, run_id: str, key: str | None = None) -> RestorePlan:
    """What undoing ``run_id`` would do to each guest, by name, and whether the brake holds it."""
    ports = restore_ports(services)
    actions = await run_actions(services, ports, run_id, key)
    if not actions:
        what = f" matching {key}" if key else ""
        raise RestoreError(f"sweep run {run_id} carried out no disable or delete{what}: nothing to undo")
    packages = Packages(services)
    now = services.clock.now()
    seen = await _bounded([lambda a=a: observe(services, ports, a, packages) for a in actions])
    planned = await _bounded(
        [lambda a=a, s=s: _gated(services, plan_guest(a, s, now), s) for a, s in zip(actions, seen, strict=True)]
    )
    guests = sorted(planned, key=lambda g: (g.name.lower(), g.object_id))
    run = await ports.runs.get(run_id)
    total = run.total_guests if run is not None else 0
    return RestorePlan(run_id, guests, brake_state(guests, total, services.desired.lifecycle.deletion_brake), actions)


async def _gated(services: Services, plan: GuestRestore, seen: Seen) -> GuestRestore:
    """The plan as the safety gate lets it stand: a guest the gate refuses is shown refused before anyone
    confirms (carry_out asks the gate again right before the write)."""
    if not plan.acts:
        return plan
    subject = seen.user or (seen.deleted.user if seen.deleted is not None else None)
    write = Write.RESTORE if Step.RESTORE in plan.steps else Write.ENABLE
    refusal = await gate_of(services).refusal(subject, seen.record, write, managed_only=False)
    return plan if refusal is None else replace(plan, steps=(), code=refusal.code, reason=refusal.message)


async def apply_restore(
    services: Services, plan: RestorePlan, operator: str, *, over_brake: bool = False
) -> dict[str, Any]:
    """Carry the plan out guest by guest, each re-read and re-planned first; audited with ``operator``."""
    ports = restore_ports(services)
    summary = plan.summary()
    if plan.brake.tripped and not over_brake:
        await _audit(services, plan, "restore.braked", f"deletion brake: {plan.brake.reason}", operator)
        return {**summary, "status": "braked"}
    if plan.brake.tripped:
        plan.brake.approved_by, plan.brake.approved_at = operator, services.clock.now()
        await _audit(services, plan, "restore.approved", f"deletion brake released by {operator}", operator)
    packages = Packages(services)
    cool_off = timedelta(days=services.settings.restore_cool_off_days)
    by_id = {g.object_id for g in plan.acting}
    todo = [a for a in plan.actions if a.object_id in by_id]
    results = await _bounded([lambda a=a: carry_out(services, ports, a, packages, operator, cool_off) for a in todo])
    untouched = [g.to_json() for g in plan.guests if g.object_id not in by_id]
    shown = sorted([*results, *untouched], key=lambda r: (str(r.get("displayName") or "").lower(), r["objectId"]))
    counts: dict[str, int] = {}
    for result in shown:
        counts[result["status"]] = counts.get(result["status"], 0) + 1
    await _audit(
        services,
        plan,
        "restore.applied",
        f"{counts.get('restored', 0)} guest(s) restored by {operator}",
        operator,
        counts=counts,
    )
    return {**summary, "status": "applied", "counts": dict(sorted(counts.items())), "plan": shown}


async def _audit(services: Services, plan: RestorePlan, action: str, reason: str, operator: str, **extra: Any) -> None:
    details = {k: v for k, v in plan.summary().items() if k != "plan"}
    await services.audit.record(
        AuditEntry(
            services.clock.now(),
            action,
            plan.run_id,
            reason,
            actor=operator,
            run_id=plan.run_id,
            details=details | extra,
        )
    )


async def _bounded(calls: list[Callable[[], Awaitable[T]]]) -> list[T]:
    """Run ``calls`` at most CONCURRENCY at a time, results in order."""
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(call: Callable[[], Awaitable[T]]) -> T:
        async with gate:
            return await call()

    return list(await asyncio.gather(*(one(c) for c in calls)))
