"""How the command line and `make run` show the daily runs: the sweep's and the reset's summaries as text, and
the exit code a sweep summary means."""

from __future__ import annotations

from typing import Any

from lifecycle.plans import Mode
from lifecycle.reset.planner import BLOCKED_SKIP
from lifecycle.runs.halt import RESUME


def sweep_summary(summary: dict[str, Any]) -> str:
    """The run summary as text: counts per action and rule, skips, and the brake."""
    lines = [
        f"sweep {summary['runId']} ({summary['mode']}): {summary['status']}",
        f"  guests examined: {summary['totalGuests']}",
        f"  disable: {summary['disable']}   delete: {summary['delete']}   dispatched: {summary['dispatched']}",
    ]
    if summary.get("notifySponsor"):
        lines.append(f"  sponsor notices: {summary['notifySponsor']}")
    lines += [f"    {name:<40} {count:>7}" for name, count in summary["actions"].items()]
    if summary["skipped"]:
        lines.append("  left alone:")
        lines += [f"    {name:<40} {count:>7}" for name, count in summary["skipped"].items()]
    coverage = summary.get("sponsorCoverage", {}).get("counts", {})
    if coverage:
        lines.append("  sponsor coverage: " + ", ".join(f"{name} {count}" for name, count in coverage.items()))
    brake = summary["brake"]
    if brake["tripped"]:
        lines.append(f"  brake: TRIPPED ({brake['reason']})")
        if brake["approvedBy"]:
            lines.append(f"  approved by {brake['approvedBy']} at {brake['approvedAt']}")
    elif summary["mode"] == Mode.ENFORCE.value and summary["status"] != "failed":
        lines.append(f"  brake: clear ({brake['affected']} of {brake['total']} within limits)")
    lines += _reason_lines(summary)
    if "worker" in summary:
        lines.append("  worker: " + ", ".join(f"{k} {v}" for k, v in sorted(summary["worker"].items())))
    return "\n".join(lines)


def _reason_lines(summary: dict[str, Any]) -> list[str]:
    """The run's reason; for a run an operator halted, who halted it, when, why, and the command that resumes it
    (the reason says the same in one line); for one resumed since, who resumed it."""
    halt = summary.get("halt")
    if summary["status"] == "halted" and halt:
        return [
            f"  HALTED by {halt['haltedBy']} at {halt['haltedAt']}: {halt['reason']}",
            f"  nothing more is written; after the fix resume with: {RESUME.format(summary['runId'])}",
        ]
    lines = [f"  {summary['reason']}"] if summary["reason"] else []
    if halt and halt.get("resumedBy"):
        lines.append(
            f"  halted by {halt['haltedBy']} ({halt['reason']}), resumed by {halt['resumedBy']} at {halt['resumedAt']}"
        )
    return lines


def sweep_exit_code(summary: dict[str, Any]) -> int:
    """0 done; 1 the run failed; 2 it needs an operator (braked, halted) or some actions failed."""
    if summary["status"] == "failed":
        return 1
    worker = summary.get("worker", {})
    return 2 if summary["status"] in ("braked", "halted") or worker.get("failed") or worker.get("crashed") else 0


def reset_summary(summary: dict[str, Any]) -> str:
    """A reset run as text. ``progress`` (where its resets stand, from the work items) is there once the worker
    has been (local runs, ``sweep show``); right after a dispatch the resets are still on the queue."""
    progress = summary.get("progress")
    if progress is not None:
        done = (
            f"reset: {progress['reset']}   left alone on re-check: {progress['skipped']}   "
            f"failed: {progress['failed']}   waiting: {progress['waiting']}"
        )
    elif summary["status"] == "dispatched":
        done = f"handed to the guest-actions queue: {summary['dispatched']}"
    else:
        done = ""
    lines = [
        f"redemption reset {summary['runId']} ({summary['mode']}): {summary['status']}",
        f"  partner guests examined: {summary['totalGuests']}   {done}".rstrip(),
    ]
    lines += [f"    {name:<40} {count:>7}" for name, count in summary["actions"].items()]
    if summary["skipped"]:
        lines.append("  left alone:")
        lines += [f"    {name:<40} {count:>7}" for name, count in summary["skipped"].items()]
    if blocked := summary["skipped"].get(BLOCKED_SKIP):
        lines.append(
            f"  {blocked} guest(s) not reset: their domain's new Entra tenant is not allowed inbound by the"
            " desired state; set the partner's tenantId, apply policy drift, and run again"
        )
    if summary["brake"]["tripped"]:
        lines.append(f"  brake: TRIPPED ({summary['brake']['reason']})")
    lines += _reason_lines(summary)
    if "worker" in summary:
        lines.append("  worker: " + ", ".join(f"{k} {v}" for k, v in sorted(summary["worker"].items())))
    return "\n".join(lines)
