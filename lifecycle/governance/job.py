"""The daily governance job: read, plan, and (in enforce mode) apply, then plan again to prove it converged."""

from __future__ import annotations

import uuid
from typing import Any

import structlog

from config.desired_state import DesiredState
from lifecycle.governance.apply import apply_plan
from lifecycle.governance.desired import desired_resources
from lifecycle.governance.evidence import review_instances
from lifecycle.governance.guardrails import recreate_warnings, refusals, warnings
from lifecycle.governance.planner import explain_review_recreates, plan_governance, read_tenant
from lifecycle.governance.ports import GovernanceGraph
from lifecycle.markdown import md
from lifecycle.models import AuditEntry
from lifecycle.plans import EXIT_CLEAN, EXIT_DRIFT, EXIT_ERROR, Action, Change, FieldDiff, Mode, Plan, Refusal
from lifecycle.ports import AuditLog, Clock

log = structlog.get_logger(__name__)


async def make_plan(
    graph: GovernanceGraph, desired: DesiredState, approved_recreates: frozenset[str] = frozenset()
) -> tuple[Plan, Any]:
    resources = desired_resources(desired)
    snapshot = await read_tenant(graph, resources)
    plan = plan_governance(resources, snapshot)
    await explain_review_recreates(plan, graph)
    plan.refusals.extend(refusals(desired))
    plan.warnings.extend(warnings(desired))
    plan.warnings.extend(recreate_warnings(plan, approved_recreates))
    return plan, snapshot


async def run_governance(
    graph: GovernanceGraph,
    *,
    desired: DesiredState,
    audit: AuditLog,
    clock: Clock,
    mode: Mode = "plan",
    run_id: str | None = None,
    approved_recreates: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """Returns the run as data (the plan, what was applied, what is left) with the CLI's ``exitCode``.

    ``approved_recreates``: the review keys an operator approved deleting and creating again in this run
    (a recreate loses the review's instances and decisions); other review recreates are held.

    Exit codes: 0 no drift (or all of it fixed), 2 drift found in plan mode (or left after enforce, a held
    recreate included), 1 a refusal or a failed write.
    """
    if mode not in ("plan", "enforce"):
        raise ValueError(f"mode must be plan or enforce, not {mode!r}")
    run_id = run_id or uuid.uuid4().hex
    plan, snapshot = await make_plan(graph, desired, approved_recreates)
    result: dict[str, Any] = {"job": "governance", "mode": mode, "runId": run_id, "plan": plan.as_dict()}
    exit_code = plan.exit_code
    if mode == "enforce" and not plan.refusals and plan.drift:
        report = await apply_plan(plan, snapshot, graph, audit, clock, run_id, approved_recreates)
        after, snapshot = await make_plan(graph, desired)
        result.update(applied=report.applied, failed=report.failed, held=report.held, after=after.as_dict())
        exit_code = EXIT_ERROR if report.failed else (EXIT_DRIFT if after.drift else EXIT_CLEAN)
    result["reviewInstances"] = await review_instances(graph, desired_resources(desired), snapshot)
    result["exitCode"] = exit_code
    await audit.record(
        AuditEntry(
            clock.now(),
            "governance.run",
            "governance",
            f"{mode}: {len(plan.drift)} change(s), {len(plan.refusals)} refusal(s)",
            run_id=run_id,
            details={"exitCode": exit_code, "drift": [a.key for a in plan.drift]},
        )
    )
    log.info("governance.run", mode=mode, drift=len(plan.drift), exit_code=exit_code, run_id=run_id)
    return result


def render(result: dict[str, Any]) -> str:
    """The run as markdown: the plan table, then what enforce mode applied or could not apply."""
    lines = [plan_from_dict(result["plan"]).to_markdown()]
    for applied in result.get("applied", []):
        lines.append(f"- applied {md(applied['change'])} {md(applied['key'])} ({md(applied['id'])})")
    for failed in result.get("failed", []):
        lines.append(f"- **failed** {md(failed['change'])} {md(failed['key'])}: {md(failed['error']['message'])}")
    for held in result.get("held", []):
        lines.append(
            f"- **held** {md(held['change'])} {md(held['key'])} until an operator approves it: {md(held['reason'])}"
        )
    if "after" in result:
        lines.append(f"\nAfter enforce: {result['after']['drift']} change(s) left.")
    if result.get("reviewInstances"):
        lines.append("\nAccess review instances (evidence, not drift):")
        lines += [f"- {md(describe_instance(entry))}" for entry in result["reviewInstances"]]
    return "\n".join(lines) + "\n"


def describe_instance(entry: dict[str, Any]) -> str:
    """One review's standing, e.g. `review/guests: InProgress 2026-01-05 to 2026-01-19 (3 instances)`."""
    if "error" in entry:
        return f"{entry['key']}: instances unreadable ({entry['error'].get('message')})"
    current = entry.get("current")
    if not current:
        return f"{entry['key']}: no instance yet"
    window = f"{str(current['startDateTime'])[:10]} to {str(current['endDateTime'])[:10]}"
    count = f" ({current['instances']} instances)" if current["instances"] > 1 else ""
    return f"{entry['key']}: {current['status']} {window}{count}"


def plan_from_dict(data: dict[str, Any]) -> Plan:
    """A Plan back from ``Plan.as_dict()`` (the shape written to JSON output and the audit trail)."""
    return Plan(
        data["job"],
        [
            Action(
                a["resource"],
                a["key"],
                Change(a["change"]),
                a["reason"],
                tuple(FieldDiff(**d) for d in a["diffs"]),
                a["payload"],
            )
            for a in data["actions"]
        ],
        [Refusal(**r) for r in data["refusals"]],
        list(data["warnings"]),
    )
