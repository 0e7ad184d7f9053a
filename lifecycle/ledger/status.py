"""What `status` shows: queue depths and dead letters, work items by status, each job's last run (one
audit row per run, written by record_run), and what needs a person."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

from lifecycle.jobs import CONSUMED_QUEUES
from lifecycle.ledger import work
from lifecycle.models import AuditEntry, WorkStatus
from lifecycle.runs.claim import INTERRUPTED
from lifecycle.runs.halt import RESUME, halt_detail
from lifecycle.runs.model import STOPPED, DailyRun, RunStatus
from lifecycle.runs.ports import RunStore
from lifecycle.services import Services

LAST_RUNS_WINDOW = timedelta(days=31)
# A run left planning longer than this without touching its row was abandoned (the runs' own take-over time).
STALLED_PLANNING = timedelta(minutes=15)


async def status(services: Services, runs: RunStore | None = None) -> dict[str, Any]:
    """Queue depths and dead letters, work items by status, each job's last run, and what needs a person:
    runs the brake is holding, runs whose planning stopped, work an attempt claimed and never finished."""
    queues = {}
    for logical in CONSUMED_QUEUES:
        active, dead = await services.transport.depth(services.settings.queue_name(logical))
        queues[logical] = {"active": active, "deadLetters": dead}
    counts: Counter[str] = Counter()
    stale: list[str] = []  # claimed (running) and untouched longer than a lease: the attempt died
    lease_cutoff = services.clock.now() - timedelta(seconds=work.LEASE_SECONDS)
    async for item in services.work_items.query():
        counts[item.status.value] += 1
        if item.status is WorkStatus.RUNNING and (item.updated or item.created or lease_cutoff) < lease_cutoff:
            stale.append(item.key)
    last_runs: dict[str, dict[str, Any]] = {}
    # The audit table is partitioned by day: read the recent days only, never the whole history.
    async for entry in services.audit.entries(since=services.clock.now() - LAST_RUNS_WINDOW):
        if entry.action == "job.run":
            job = entry.details.get("job", entry.target)
            if job not in last_runs or last_runs[job]["at"] < entry.at.isoformat():
                last_runs[job] = {"at": entry.at.isoformat(), **entry.details}
    attention = await _runs_needing_attention(services, runs) if runs is not None else []
    attention += _interrupted_work(stale)
    return {"queues": queues, "workItems": dict(counts), "lastRuns": last_runs, "attention": attention}


async def _runs_needing_attention(services: Services, store: RunStore) -> list[dict[str, Any]]:
    """Recent runs a person has to act on (braked; halted by an operator; stopped for a missing permission), or
    that stopped and wait for the next fire (interrupted, stalled): each with what to run."""
    now, found = services.clock.now(), []
    async for run in store.runs():
        if run.started < now - LAST_RUNS_WINDOW:
            continue
        if run.status is RunStatus.BRAKED:
            found.append(
                _flag(run, "braked", run.brake.reason or run.reason, f"python -m lifecycle approve {run.run_id}")
            )
        elif run.status is RunStatus.HALTED:
            found.append(_flag(run, "halted", halt_detail(run), f"after the fix: {RESUME.format(run.run_id)}"))
        elif run.status is RunStatus.FAILED and run.reason.startswith(INTERRUPTED):
            found.append(_flag(run, "interrupted", run.reason, "the next scheduled fire resumes it from its last page"))
        elif run.status is RunStatus.DISPATCHED and run.reason.startswith(f"{STOPPED}:"):
            found.append(
                _flag(
                    run,
                    "stopped",
                    run.reason,
                    f"grant what it names, then: python -m lifecycle run {_job_of(run.run_id)} --mode enforce "
                    f"--run-id {run.run_id}",
                )
            )
        elif run.status is RunStatus.PLANNING and (run.updated or run.started) < now - STALLED_PLANNING:
            found.append(_flag(run, "stalled", "planning stopped updating its run row", "the next fire takes it over"))
    return found


def _job_of(run_id: str) -> str:
    """The job a run id belongs to (lifecycle.jobs), as ``python -m lifecycle run`` names it."""
    return "redemption-reset" if run_id.startswith("reset-") else "guest-sweep"


def _interrupted_work(keys: list[str]) -> list[dict[str, Any]]:
    """One flag for the work items an attempt claimed and stopped touching longer than a lease ago."""
    if not keys:
        return []
    shown = ", ".join(keys[:10]) + (f" and {len(keys) - 10} more" if len(keys) > 10 else "")
    return [
        {
            "kind": "interrupted-work",
            "count": len(keys),
            "keys": keys[:10],
            "detail": f"claimed and not finished: {shown}",
            "next": "a redelivery of the message or `python -m lifecycle replay` carries it on",
        }
    ]


def _flag(run: DailyRun, kind: str, detail: str, next_step: str) -> dict[str, Any]:
    return {"kind": kind, "runId": run.run_id, "status": run.status.value, "detail": detail, "next": next_step}


async def record_run(services: Services, job: str, summary: dict[str, Any]) -> None:
    """One audit row per job run: what `status` shows as the job's last run."""
    details = {"job": job, **{k: v for k, v in summary.items() if isinstance(v, str | int | float | bool)}}
    await services.audit.record(AuditEntry(services.clock.now(), "job.run", job, f"{job} run", details=details))
