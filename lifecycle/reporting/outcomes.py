"""The night's job outcomes and the latest policy drift, read from what the jobs already keep.

Outcomes: the sweep's and the reset's run rows (their run store), the drift reports, the governance runs and
every ``job.run`` row in the audit trail (runs from the command line, earlier reports), over the last day.
A timer job with nothing recorded in that window is listed too: a job that did not run is an outcome.

Drift: the newest drift report's changes, each partner policy named by the partner's display name from the
desired-state file, not only its tenant id.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from config.desired_state import DesiredState
from lifecycle.drift.fields import LICENCE_EXPOSURE
from lifecycle.drift.ports import DriftPorts
from lifecycle.drift.resources import PARTNERS
from lifecycle.jobs import JOBS
from lifecycle.services import Services
from lifecycle.sweep.ports import SweepPorts

WINDOW = timedelta(hours=24)
WINDOW_TEXT = "24 hours"
# Jobs whose runs leave a row the report can read; hold-release runs every few minutes and keeps none.
REPORTED_TIMERS = tuple(j.name for j in JOBS if j.trigger == "timer" and j.name != "hold-release")
RUN_PREFIXES = {"sweep-": "guest-sweep", "reset-": "redemption-reset"}
GOOD = {"planned", "dispatched", "ok", "clean", "0"}


@dataclass(frozen=True, slots=True)
class Outcome:
    job: str
    at: datetime | None
    outcome: str  # e.g. dispatched, braked, failed, drift, clean, "no run recorded"
    detail: str
    runs: int = 1

    @property
    def good(self) -> bool:
        return self.outcome in GOOD


@dataclass(frozen=True, slots=True)
class DriftRow:
    resource: str
    key: str
    partner: str | None  # the partner's display name, for a partner policy
    change: str
    fields: str
    reason: str


def partner_names(desired: DesiredState) -> dict[str, str]:
    """Partner display names by tenant id (lower case)."""
    return {p.tenant_id.lower(): p.display_name for p in desired.partners.values() if p.tenant_id}


async def night_outcomes(services: Services, window: timedelta = WINDOW) -> list[Outcome]:
    """The latest outcome per job over ``window``, with how many runs it saw; jobs with none say so."""
    since = services.clock.now() - window
    found: list[Outcome] = []
    sweep = services.jobs.find(SweepPorts)
    if sweep is not None:
        async for run in sweep.runs.runs():
            job = next((name for prefix, name in RUN_PREFIXES.items() if run.run_id.startswith(prefix)), None)
            if job is not None and run.started >= since:
                summary = run.summary()
                detail = (
                    f"{run.run_id}: {summary['totalGuests']} guests, disable {summary['disable']}, "
                    f"delete {summary['delete']}, notify {summary['notifySponsor']}"
                )
                if run.reason or run.brake.reason:
                    detail += f"; {run.reason or run.brake.reason}"
                found.append(Outcome(job, run.updated or run.started, run.status.value, detail))
    drift = services.jobs.find(DriftPorts)
    if drift is not None:
        for report in await drift.reports.recent(50):
            if report.at >= since:
                outcome = "failed" if report.failed else ("drift" if report.drift else "clean")
                detail = f"{report.run_id} ({report.mode}): {report.drift} change(s), {report.failed} failed"
                found.append(Outcome("policy-drift", report.at, outcome, detail))
    async for entry in services.audit.entries(since=since):
        if entry.at < since:
            continue
        if entry.action == "governance.run":
            code = str(entry.details.get("exitCode", ""))
            found.append(Outcome("governance", entry.at, _exit_outcome(code), entry.reason))
        elif entry.action == "job.run":
            job = str(entry.details.get("job") or entry.target)
            found.append(Outcome(job, entry.at, _job_run_outcome(entry.details), _details(entry.details)))
    return _latest_per_job(found)


def _exit_outcome(code: str) -> str:
    return {"0": "clean", "2": "drift", "1": "failed"}.get(code, code or "done")


def _job_run_outcome(details: dict[str, Any]) -> str:
    if "status" in details:
        return str(details["status"])
    if "exitCode" in details:
        return _exit_outcome(str(details["exitCode"]))
    if details.get("failed"):
        return "failed"
    return "ok"


def _details(details: dict[str, Any]) -> str:
    shown = [f"{k} {v}" for k, v in details.items() if k not in ("job", "status") and isinstance(v, str | int | float)]
    return ", ".join(shown[:8])


def _latest_per_job(found: list[Outcome]) -> list[Outcome]:
    by_job: dict[str, list[Outcome]] = {}
    for outcome in found:
        by_job.setdefault(outcome.job, []).append(outcome)
    latest = []
    for job, outcomes in by_job.items():
        newest = max(outcomes, key=lambda o: o.at or datetime.min.replace(tzinfo=UTC))
        latest.append(Outcome(job, newest.at, newest.outcome, newest.detail, len(outcomes)))
    for job in REPORTED_TIMERS:
        if job not in by_job:
            latest.append(Outcome(job, None, "no run recorded", f"nothing recorded in the last {WINDOW_TEXT}", 0))
    order = {name: i for i, name in enumerate(j.name for j in JOBS)}
    return sorted(latest, key=lambda o: (order.get(o.job, len(order)), o.job))


async def latest_drift(services: Services) -> tuple[str | None, list[DriftRow]]:
    """The newest drift report's run id and its changes (empty when drift has never run or found nothing)."""
    drift = services.jobs.find(DriftPorts)
    if drift is None:
        return None, []
    recent = await drift.reports.recent(1)
    if not recent:
        return None, []
    report = recent[0]
    names = partner_names(services.desired)
    rows = []
    for action in report.document.get("actions", []):
        if action.get("change") == "none":
            continue
        key = str(action.get("key", ""))
        partner = names.get(key.lower()) if action.get("resource") == PARTNERS else None
        fields = ", ".join(str(d.get("field", "")) for d in action.get("diffs") or [] if d.get("field"))
        rows.append(
            DriftRow(
                str(action.get("resource", "")),
                key,
                partner,
                str(action.get("change", "")),
                fields,
                str(action.get("reason", "")),
            )
        )
    return f"{report.run_id} at {report.at:%Y-%m-%d %H:%M} UTC ({report.mode})", rows


async def licence_exposure(services: Services) -> dict[str, Any] | None:
    """The newest drift report's estimate of what the native guest lifecycle policies cost a month (governed guests
    times the per-guest meter), with the run it comes from; None without the section or a drift run."""
    drift = services.jobs.find(DriftPorts)
    if drift is None or services.desired.guest_lifecycle_policies is None:
        return None
    recent = await drift.reports.recent(1)
    if not recent:
        return None
    for evidence in recent[0].document.get("evidence", []):
        if evidence.get("kind") == LICENCE_EXPOSURE and isinstance(evidence.get("value"), dict):
            return {**evidence["value"], "runId": recent[0].run_id}
    return None
