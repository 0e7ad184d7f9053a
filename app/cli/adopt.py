"""``adopt``: give guests invited by hand a ledger row with the sponsor Graph lists for them."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from app.cli.common import ExitCode, JsonOption, app, cell, console, esc, operator, with_services
from app.cli.decide import ExportOption, YesOption, check_export, decide, export
from app.cli.remote import require_app_identity

COLUMNS = ("displayName", "mail", "partner", "sponsor", "status", "reason", "objectId")


@app.command()
def adopt(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show who would be adopted; write nothing.")] = False,
    who: Annotated[str | None, typer.Option("--operator", help="Who adopts (audited); default: your user.")] = None,
    yes: YesOption = False,
    export_to: ExportOption = None,
    as_json: JsonOption = False,
) -> None:
    """Adopt the guests this product did not invite: each gets a ledger row with its partner (by mail domain)
    and the enabled member Graph lists as its sponsor, so tickets and the attestation rule can act on it.

    Lists every guest without a ledger row by name first (who is adopted, who is left alone and why), then
    asks for "adopt N" typed back (--yes in scripts). Nothing is written to Graph. Exit 0 done, 2 some guest
    left alone or refused, 3 nothing to adopt."""
    from lifecycle.adopt.entry import AdoptError, plan_adoptions
    from lifecycle.adopt.entry import adopt as adopt_guests

    check_export(export_to)
    if not dry_run:
        require_app_identity(
            None,
            "adopt",
            "adopt has no --remote mode yet: run it with the app's identity (e.g. a pipeline holding the app's "
            "managed identity), or use --dry-run here",
        )
    actor = who or operator()

    async def go(services) -> list[dict[str, Any]]:
        plans = await plan_adoptions(services)
        rows = [p.to_json() for p in plans]
        acting = [p for p in plans if p.acts]
        if dry_run or not acting:
            if export_to is not None:
                export(rows, COLUMNS, export_to)
            return rows
        decide(
            f"{len(acting)} guest(s) to adopt, {len(rows) - len(acting)} left alone",
            rows,
            COLUMNS,
            f"adopt {len(acting)}",
            yes=yes,
            export_to=export_to,
            command="adopt",
            as_json=as_json,
        )
        return await adopt_guests(services, plans, actor)

    try:
        rows = asyncio.run(with_services(go))
    except AdoptError as exc:
        Console(stderr=True).print(f"[red]{esc(exc)}[/red]")
        raise typer.Exit(ExitCode.FAILED) from None
    if as_json:
        typer.echo(json.dumps({"dryRun": dry_run, "guests": rows}, indent=2, default=str))
    else:
        table = Table(title=f"adopt{' (dry run)' if dry_run else ''}: {len(rows)} guest(s) without a ledger row")
        for column in COLUMNS:
            table.add_column(column)
        for row in rows:
            table.add_row(*(cell("-" if row.get(c) in (None, "") else row.get(c)) for c in COLUMNS))
        console.print(table)
    if not rows:
        raise typer.Exit(ExitCode.NOTHING_MATCHED)
    statuses = {r["status"] for r in rows}
    raise typer.Exit(ExitCode.ATTENTION if statuses & {"left-alone", "refused"} else ExitCode.OK)
