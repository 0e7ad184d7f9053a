"""Timer jobs on demand: ``run JOB --mode plan|enforce``, ``approve RUN_ID`` and ``sweep show RUN_ID``."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from app.cli import watch
from app.cli.common import (
    ExitCode,
    JsonOption,
    app,
    cell,
    console,
    esc,
    operator,
    report_summary,
    run_onboarding,
    with_services,
)
from app.cli.decide import ExportOption, YesOption, check_export, decide
from app.cli.remote import RemoteOption, remote_url, require_app_identity, run_remote
from app.cli.summaries import reset_summary, sweep_exit_code, sweep_summary
from lifecycle.jobs import ON_DEMAND

JOBS = ON_DEMAND  # lifecycle/jobs.py: the jobs a person may run once, as their trigger would
ModeOption = Annotated[str, typer.Option("--mode", help="plan (change nothing) or enforce.")]
RunIdOption = Annotated[str | None, typer.Option("--run-id", help="Resume or enforce this run instead of today's.")]
sweep_app = typer.Typer(no_args_is_help=True, help="Guest expiry sweep runs.")
app.add_typer(sweep_app, name="sweep")


@app.command()
def run(
    job: Annotated[str, typer.Argument(help=f"The job: {', '.join(JOBS)}.")],
    mode: ModeOption = "plan",
    run_id: RunIdOption = None,
    as_json: JsonOption = False,
    remote: RemoteOption = None,
) -> None:
    """Run JOB once now, as its trigger would. Exit 0 done, 2 needs attention (drift, brake, failures), 1 error.
    With --remote the function app runs it with its own identity (every job but onboarding, whose queue
    trigger works the queue)."""
    if job not in JOBS:
        raise typer.BadParameter(f"unknown job {job!r}; available: {', '.join(JOBS)}")
    if mode not in ("plan", "enforce"):
        raise typer.BadParameter("--mode must be plan or enforce")
    # Even in plan mode a run records its run and audit rows, which a reader's session may not write.
    url = require_app_identity(remote_url(remote), f"run {job}")
    if url is not None:
        if job == "onboarding":
            raise typer.BadParameter("the function app's queue trigger works the onboarding queue", param_hint="JOB")
        raise typer.Exit(
            run_remote(
                url,
                "run",
                {"job": job, "mode": mode, "runId": run_id},
                title=lambda rows: f"run {job} in {mode} mode with the function app's identity",
                phrase=None,
                yes=True,
                export_to=None,
                label=f"run {job}",
                as_json=as_json,
            )
        )
    if job == "onboarding":
        watch.resumable(
            "what was not processed is still on the queue, and a ticket already done is recognised by its key"
        )
        summary = asyncio.run(with_services(run_onboarding))
        report_summary(summary, as_json)
        raise typer.Exit(ExitCode.ATTENTION if summary["failed"] else ExitCode.OK)
    if job == "policy-drift":
        from app.cli.config import drift_command

        raise typer.Exit(drift_command(mode, False, as_json))
    if job == "governance":
        from app.cli.config import governance_command

        raise typer.Exit(governance_command(mode, as_json))
    if job == "guest-sweep":
        from lifecycle.sweep import entry as sweep

        watch.resumable(SWEEP_RESUME_SAFE, run_id_option=True)
        summary = asyncio.run(with_services(lambda s: _recorded(s, job, sweep.run_locally(s, mode, run_id))))
        raise typer.Exit(_print_summary(summary, as_json, sweep_summary, sweep_exit_code))
    if job == "guest-report":
        from lifecycle.reporting import entry as report_job

        summary = asyncio.run(with_services(report_job.write_daily))
        raise typer.Exit(_print_summary(summary, as_json, _report_line, lambda _: 0))
    from lifecycle.reset import local as reset_local

    watch.resumable(RESET_RESUME_SAFE, run_id_option=True)
    summary = asyncio.run(with_services(lambda s: _recorded(s, job, reset_local.run_locally(s, mode, run_id))))
    code = 2 if summary["status"] in ("braked", "failed") else 0
    _print_summary(summary, as_json, reset_summary, lambda _: code)
    raise typer.Exit(code)


@app.command()
def approve(
    run_id: Annotated[str, typer.Argument(help="A run the brake stopped, e.g. sweep-2026-11-24 or reset-2026-11-24.")],
    approver: Annotated[str | None, typer.Option(help="Who approves (recorded); default: your user name.")] = None,
    yes: YesOption = False,
    export_to: ExportOption = None,
    as_json: JsonOption = False,
    remote: RemoteOption = None,
) -> None:
    """Release a run the deletion brake stopped; its actions are fanned out on the guest-actions queue.

    Locally the command then works that queue itself until the run's actions are done. With --remote the app
    fans the run out and answers at once; its guest-actions trigger carries the actions out (follow them with
    `status` and `sweep show RUN`).

    First lists every guest the run will change (name, mail, partner, sponsor, rule, due day), then asks
    for the run id typed back (--yes in scripts). With --remote the function app's identity approves it, in the
    name the operator's token carries (--approver is then refused)."""
    from lifecycle.reset import local as reset_local
    from lifecycle.reset.runs import ResetRunError
    from lifecycle.sweep import entry as sweep
    from lifecycle.sweep.runner import SweepError

    check_export(export_to)
    url = require_app_identity(remote_url(remote), f"approve {run_id}")
    if url is not None:
        if approver is not None:
            raise typer.BadParameter(
                "the endpoint records the signed-in operator; leave --approver out", param_hint="--approver"
            )
        raise typer.Exit(
            run_remote(
                url,
                "approve",
                {"runId": run_id},
                title=lambda rows: f"{run_id}: {len(rows)} change(s) to approve",
                phrase=lambda rows: run_id,
                yes=yes,
                export_to=export_to,
                label=f"approve {run_id}",
                as_json=as_json,
            )
        )
    who = approver or operator()
    is_reset = run_id.startswith("reset-")
    job = "redemption-reset" if is_reset else "guest-sweep"

    async def decided(services) -> dict[str, Any]:
        rows = await braked_changes(services, run_id, is_reset)
        if rows is not None:
            decide(
                f"{run_id}: {len(rows)} change(s) to approve",
                rows,
                APPROVE_COLUMNS,
                run_id,
                yes=yes,
                export_to=export_to,
                command=f"approve {run_id}",
                as_json=as_json,
            )
        # Once approved, an interrupted run is taken up again by running it, not by approving it twice.
        watch.resumable(
            RESET_RESUME_SAFE if is_reset else SWEEP_RESUME_SAFE,
            command=f"python -m lifecycle run {job} --mode enforce --run-id {run_id}",
        )
        if is_reset:
            return await reset_local.approve_locally(services, run_id, who)
        return await sweep.approve_locally(services, run_id, who)

    try:
        summary = asyncio.run(with_services(decided))
        if is_reset:
            raise typer.Exit(_print_summary(summary, as_json, reset_summary, lambda _: 0))
    except (SweepError, ResetRunError) as exc:
        Console(stderr=True).print(f"[red]{esc(exc)}[/red]")
        raise typer.Exit(ExitCode.FAILED) from None
    raise typer.Exit(_print_summary(summary, as_json, sweep_summary, sweep_exit_code))


SWEEP_RESUME_SAFE = (
    "the run is kept under its id: planning goes on from the last saved page, fan-out sends the same actions "
    "with the same idempotency keys, and a guest's action already done is not done again"
)
RESET_RESUME_SAFE = (
    "the run is kept under its id and each guest's reset is a work item: a run taken up again resets only the "
    "guests still queued or failed, never one twice"
)
APPROVE_COLUMNS = ("action", "displayName", "mail", "partner", "sponsor", "rule", "dueDate", "objectId")


async def braked_changes(services, run_id: str, is_reset: bool) -> list[dict[str, Any]] | None:
    """Every guest a braked run changes once approved, named; None when the run is not braked (the approval
    then refuses with its own reason)."""
    from lifecycle.ledger.naming import name_guests
    from lifecycle.runs.model import RunStatus
    from lifecycle.sweep.entry import sweep_ports

    runs = sweep_ports(services).runs
    run = await runs.get(run_id)
    if run is None or run.status is not RunStatus.BRAKED:
        return None
    rows: list[dict[str, Any]] = []
    if is_reset:
        from lifecycle.reset.items import KIND, PENDING

        async for item in services.work_items.query(kind=KIND):
            if item.run_id == run_id and item.status in PENDING:
                planned = item.result.get("planned", {})
                rows.append(
                    {
                        "action": "reset-redemption",
                        "objectId": planned.get("objectId"),
                        "mail": planned.get("email"),
                        "partner": planned.get("partner"),
                        "rule": f"signs in at {planned.get('used')}, expected {planned.get('expected')}",
                    }
                )
    else:
        async for page in runs.actions(run_id):
            rows.extend(
                {
                    "action": a.action.value,
                    "objectId": a.object_id,
                    "partner": a.partner,
                    "sponsor": ", ".join(a.sponsor_ids) or None,
                    "rule": a.rule.value,
                    "dueDate": a.due.isoformat() if a.due else a.evidence.get("dueDate"),
                }
                for a in page
            )
    return await name_guests(services, rows)


@sweep_app.command("show")
def sweep_show(
    run_id: Annotated[str, typer.Argument(help="The run id, e.g. sweep-2026-11-24.")],
    limit: Annotated[int, typer.Option(help="How many planned actions to list.")] = 50,
    as_json: JsonOption = False,
) -> None:
    """A run's summary (counts per rule and action, brake) and its first planned actions with evidence; for a
    redemption-reset run (reset-...), where its resets stand and each planned guest's state."""
    from lifecycle.reset import entry as reset
    from lifecycle.sweep import entry as sweep

    is_reset = run_id.startswith("reset-")
    shown = asyncio.run(with_services(lambda s: (reset.show if is_reset else sweep.show)(s, run_id, limit)))
    if shown is None:
        kind = "redemption-reset" if is_reset else "sweep"
        Console(stderr=True).print(
            f"[red]no {kind} run {esc(run_id)}[/red] (hint: runs are named sweep-YYYY-MM-DD or reset-YYYY-MM-DD)"
        )
        raise typer.Exit(ExitCode.NOTHING_MATCHED)
    if as_json:
        typer.echo(json.dumps(shown, indent=2, default=str))
        return
    if is_reset:
        _show_reset(shown)
        return
    console.print(sweep_summary(shown), highlight=False, markup=False)
    table = Table(title=f"first {len(shown['plan'])} planned action(s)")
    for column in ("guest", "action", "rule", "partner", "evidence"):
        table.add_column(column)
    for a in shown["plan"]:
        table.add_row(
            cell(a["objectId"]),
            cell(a["action"]),
            cell(a["rule"]),
            cell(a["partner"] or "-"),
            cell(json.dumps(a["evidence"])),
        )
    console.print(table)


def _show_reset(shown: dict[str, Any]) -> None:
    console.print(reset_summary(shown), highlight=False, markup=False)
    table = Table(title=f"first {len(shown['plan'])} planned reset(s)")
    for column in ("guest", "mail", "partner", "change", "state", "outcome"):
        table.add_column(column)
    for row in shown["plan"]:
        table.add_row(
            cell(row.get("objectId") or "-"),
            cell(row.get("email") or "-"),
            cell(row.get("partner") or "-"),
            cell(f"{row.get('used')} -> {row.get('expected')}"),
            cell(row["status"]),
            cell(row.get("outcome") or row.get("error") or "-"),
        )
    console.print(table)


def _report_line(summary: dict[str, Any]) -> str:
    return f"guest report: {summary['guests']} guests; latest {summary['latest']}, dated copy {summary['dated']}"


async def _recorded(services, job: str, running) -> dict[str, Any]:
    from lifecycle.ledger.status import record_run

    summary = await running
    await record_run(services, job, summary)
    return summary


def _print_summary(summary: dict[str, Any], as_json: bool, formatter, exit_code) -> int:
    if as_json:
        typer.echo(json.dumps(summary, indent=2, default=str))
    else:
        console.print(formatter(summary), highlight=False, markup=False)
    return exit_code(summary)
