"""``restore --run RUN_ID``: undo what a sweep run did, guest by guest, after the operator has read the list."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from app.cli.common import ExitCode, JsonOption, app, cell, console, esc, operator, with_services
from app.cli.decide import ExportOption, YesOption, check_export, decide, export
from app.cli.remote import RemoteOption, remote_url, require_app_identity, run_remote

COLUMNS = ("displayName", "mail", "partner", "undo", "steps", "endDate", "status", "reason", "notes", "objectId")


def _row(guest: dict[str, Any]) -> dict[str, Any]:
    """A guest's plan or result as one flat row (lists joined) for the table and the export."""
    return {
        **guest,
        "steps": " + ".join(guest.get("steps") or ()) or None,
        "notes": "; ".join(guest.get("notes") or ()) or None,
        "reason": guest.get("reason") or guest.get("code"),
    }


@app.command()
def restore(
    run: Annotated[str, typer.Option("--run", help="The sweep run to undo, e.g. sweep-2026-11-24.")],
    key: Annotated[
        str | None, typer.Option("--key", help="Only one guest: the run's work-item key or the guest's object id.")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would be undone; change nothing.")] = False,
    over_brake: Annotated[
        bool, typer.Option("--over-brake", help="Release the deletion brake for this undo (recorded as yours).")
    ] = False,
    who: Annotated[str | None, typer.Option("--operator", help="Who restores (audited); default: your user.")] = None,
    yes: YesOption = False,
    export_to: ExportOption = None,
    as_json: JsonOption = False,
    remote: RemoteOption = None,
) -> None:
    """Undo a sweep run: re-enable the guests it disabled, restore the ones it deleted while Entra still holds
    them (30 days), and re-request the access package a guest lost until its recorded end date.

    Lists every guest by name first (what will be undone, what is refused and why), then asks for the run id
    typed back (--yes in scripts). A guest changed since the run (re-enabled, restored, re-addressed, acted on
    by a ticket or a later run) is refused. A restored guest is left alone by the sweep for
    LIFECYCLE_RESTORE_COOL_OFF_DAYS, then judged afresh. Exit 0 done, 2 something refused, braked or failed,
    3 no such run or nothing it did matches. With --remote the function app's identity carries it out, and only
    if its plan is still the one confirmed."""
    from lifecycle.restore.entry import RestoreError, apply_restore, plan_restore

    check_export(export_to)
    url = remote_url(remote) if dry_run else require_app_identity(remote_url(remote), "restore")
    if url is not None:
        raise typer.Exit(
            run_remote(
                url,
                "restore",
                {"runId": run, "key": key, "overBrake": over_brake},
                title=lambda rows: (
                    f"undo of {run}: {sum(r.get('status') == 'planned' for r in rows)} guest(s) to restore"
                ),
                phrase=lambda rows: run,
                yes=yes,
                export_to=export_to,
                label=f"restore --run {run}",
                as_json=as_json,
                nothing_matched=f"{run}: nothing it did is left to undo",
                plan_only=dry_run,
            )
        )
    actor = who or operator()

    async def go(services) -> dict[str, Any]:
        plan = await plan_restore(services, run, key)
        rows = [_row(g.to_json()) for g in plan.guests]
        if dry_run:
            if export_to is not None:
                export(rows, COLUMNS, export_to)
            return {**plan.summary(), "status": "planned", "dryRun": True}
        if not plan.acting:
            return {**plan.summary(), "status": "nothing-to-do"}
        if not plan.brake.tripped or over_brake:
            decide(
                f"undo of {run}: {len(plan.acting)} guest(s) to restore, {len(rows) - len(plan.acting)} left alone",
                rows,
                COLUMNS,
                run,
                yes=yes,
                export_to=export_to,
                command=f"restore --run {run}",
                as_json=as_json,
            )
        return await apply_restore(services, plan, actor, over_brake=over_brake)

    try:
        summary = asyncio.run(with_services(go))
    except RestoreError as exc:
        Console(stderr=True).print(f"[red]{esc(exc)}[/red] (hint: sweep runs are named sweep-YYYY-MM-DD)")
        raise typer.Exit(ExitCode.NOTHING_MATCHED) from None
    if as_json:
        typer.echo(json.dumps(summary, indent=2, default=str))
    else:
        _print(summary)
    raise typer.Exit(restore_exit_code(summary))


def _planned(rows: list[dict[str, Any]]) -> int:
    return sum(r.get("status") == "planned" for r in rows)


async def plan_rows(services, run_id: str, key: str | None) -> list[dict[str, Any]]:
    """What undoing ``run_id`` would do, one flat row per guest by name (the local list and the endpoint's)."""
    from lifecycle.restore.entry import plan_restore

    plan = await plan_restore(services, run_id, key)
    return [_row(g.to_json()) for g in plan.guests]


def summary_text(summary: dict[str, Any]) -> str:
    """The undo's outcome in a few lines, for the endpoint's answer."""
    lines = [f"undo of {summary['runId']}: {summary['status']}"]
    lines += [
        f"{g.get('displayName') or g.get('objectId')}: {g.get('status')} {g.get('reason') or ''}".rstrip()
        for g in summary.get("plan", [])
    ]
    lines.append(", ".join(f"{k} {v}" for k, v in summary.get("counts", {}).items()) or "no guests")
    return "\n".join(lines)


def restore_exit_code(summary: dict[str, Any]) -> int:
    if summary["status"] == "braked":
        return ExitCode.ATTENTION
    troubled = {"refused", "failed", "in-progress"}
    return ExitCode.ATTENTION if troubled & {g["status"] for g in summary["plan"]} else ExitCode.OK


def _print(summary: dict[str, Any]) -> None:
    status = summary["status"]
    title = {
        "planned": f"undo of {summary['runId']} (dry run): {summary['toRestore']} guest(s) would be restored",
        "braked": f"undo of {summary['runId']}: held by the deletion brake, nothing changed",
        "nothing-to-do": f"undo of {summary['runId']}: nothing left to undo",
        "applied": f"undo of {summary['runId']}",
    }[status]
    table = Table(title=title)
    for column in COLUMNS:
        table.add_column(column)
    for guest in summary["plan"]:
        row = _row(guest)
        table.add_row(*(cell("-" if row.get(c) in (None, "") else row.get(c)) for c in COLUMNS))
    console.print(table)
    console.print(", ".join(f"{k} {v}" for k, v in summary["counts"].items()) or "no guests", markup=False)
    if status == "braked":
        console.print(
            f"deletion brake: {summary['brake']['reason']}; run again with --over-brake to release it "
            "(recorded as your approval)",
            markup=False,
        )
