"""Carry out a governance plan: creates, updates and recreates in dependency order, each audited."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import structlog

from lifecycle import progress
from lifecycle.errors import GraphError
from lifecycle.governance.planner import Snapshot, resolve
from lifecycle.governance.ports import KINDS, REVIEWS, GovernanceGraph
from lifecycle.models import AuditEntry
from lifecycle.plans import Action, Change, Plan
from lifecycle.ports import AuditLog, Clock

log = structlog.get_logger(__name__)


@dataclass
class ApplyReport:
    applied: list[dict[str, Any]] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)
    held: list[dict[str, Any]] = field(default_factory=list)  # braked: waits for an operator's approval


def braked(action: Action, approved: frozenset[str]) -> bool:
    """The recreate brake: deleting a review definition deletes its instances and their decisions, so it is
    carried out only for the review keys an operator approved for this run."""
    return action.resource == REVIEWS and action.change is Change.RECREATE and action.key not in approved


async def apply_plan(
    plan: Plan,
    snapshot: Snapshot,
    graph: GovernanceGraph,
    audit: AuditLog,
    clock: Clock,
    run_id: str,
    approved_recreates: frozenset[str] = frozenset(),
) -> ApplyReport:
    """Nothing is written while the plan holds a refusal; a failed object does not stop unrelated ones; a
    braked recreate is held (and audited) until an operator approves its key."""
    report = ApplyReport()
    if plan.refusals:
        return report
    ids: dict[str, str | None] = {a.key: snapshot.id_of(a.key) for a in plan.actions}
    drift = sorted(plan.drift, key=_order)
    with progress.step("applying governance changes", total=len(drift), unit="change") as applied:
        for action in applied.each(drift):
            if braked(action, approved_recreates):
                report.held.append({"key": action.key, "change": action.change.value, "reason": action.reason})
                await audit.record(
                    AuditEntry(
                        clock.now(),
                        "governance.held",
                        f"{action.resource}:{action.key}",
                        f"not applied without approval: {action.reason}",
                        key=action.key,
                        run_id=run_id,
                        details={"id": action.payload.get("id")},
                    )
                )
                continue
            try:
                object_id = await _apply(action, ids, graph)
            except GraphError as error:
                log.warning("governance.apply_failed", key=action.key, error=str(error))
                report.failed.append({"key": action.key, "change": action.change.value, "error": error.describe()})
                continue
            ids[action.key] = object_id
            report.applied.append({"key": action.key, "change": action.change.value, "id": object_id})
            await audit.record(
                AuditEntry(
                    clock.now(),
                    f"governance.{action.change.value}",
                    f"{action.resource}:{action.key}",
                    action.reason,
                    key=action.key,
                    run_id=run_id,
                    details={"id": object_id, "diffs": [[d.field, d.desired, d.actual] for d in action.diffs]},
                )
            )
    return report


def _order(action: Action) -> tuple[int, int]:
    """Creates and updates parents first; removals afterwards, children (a package's roles) before the
    parents they use (the catalog's groups)."""
    index = KINDS.index(action.resource)
    return (1, -index) if action.change is Change.DELETE else (0, index)


async def _apply(action: Action, ids: dict[str, str | None], graph: GovernanceGraph) -> str | None:
    if action.change is Change.DELETE:
        await graph.delete(action.resource, action.payload["id"], action.payload.get("parentId"))
        return action.payload["id"]
    body = resolve(action.payload["body"], ids)
    parent = action.payload.get("parent")
    if _unresolved(body) or (parent is not None and ids.get(parent) is None):
        raise GraphError(f"{action.key}: an object it refers to does not exist (its creation failed)")
    if action.change is Change.CREATE:
        return (await graph.create(action.resource, body, ids.get(parent) if parent else None)).get("id")
    if action.change is Change.RECREATE:
        await graph.delete(action.resource, action.payload["id"])
        return (await graph.create(action.resource, body)).get("id")
    await graph.update(action.resource, action.payload.get("id"), body)
    return action.payload.get("id")


def _unresolved(value: Any) -> bool:
    if isinstance(value, dict):
        return any((k in {"id", "connectedOrganizationId"} and v is None) or _unresolved(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_unresolved(v) for v in value)
    return False
