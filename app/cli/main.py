"""``python -m lifecycle``: the operator's command line.

Exit codes (the README's Command line section lists them), the same for every command:
0 done; 1 failed (an error the command could not get past, or a refusal such as a confirmation typed wrong or
a guardrail); 2 done, and something needs attention (rejections, failures, dead letters, drift); 3 nothing
matched what was named; 64 usage error (an unknown option, queue or job, a bad value, a confirmation asked
for without a terminal and without --yes); 65 an input file
cannot be read as what the command expects; 69 storage, the queues or Graph cannot be reached; 78 the
settings or the desired-state file are not usable. An error ends with one line and a hint; ``--debug``
anywhere on the command line shows the traceback instead.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

# typer 0.29 carries its own copy of click: its exceptions, not the click package's, are what it raises.
from app.cli import adopt, config, doctor, halt, jobs, ops, restore, watch  # noqa: F401  (each registers its commands on `app`)
from app.cli.common import (
    QUEUES,
    ExitCode,
    JsonOption,
    app,
    cell,
    check_queue,
    console,
    esc,
    print_result,
    run_onboarding,
    with_services,
)
from config.settings import ROOT


def main() -> None:
    """``python -m lifecycle``: console-mode logs (the file, warnings on the terminal), then the command."""
    watch.quiet_console_logs(verbose=any(a in watch.VERBOSE_FLAGS for a in sys.argv[1:]))
    app()


@app.command()
def submit(
    queue: Annotated[str, typer.Argument(help="Logical queue name, e.g. onboarding.")],
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="JSON object, array, or JSON lines.")],
    as_json: JsonOption = False,
) -> None:
    """Put tickets from FILE on QUEUE, one message each (message id derived from the ticket id)."""
    from lifecycle.onboarding.submission import read_documents, submit_documents

    check_queue(queue, QUEUES, "tickets")
    documents = read_documents(file)
    watch.resumable("each message's id is its ticket id: a ticket sent twice is processed once")
    sent = asyncio.run(with_services(lambda s: submit_documents(s, queue, documents)))
    print_result({"queue": queue, "sent": sent}, as_json, f"sent {sent} message(s) to {queue}")


@app.command()
def demo(
    as_json: JsonOption = False,
    out: Annotated[Path, typer.Option(help="Where the posture report is written.")] = Path("reports"),
) -> None:
    """Run every job once over the local stack, as `make run` does, and show what each did."""
    from app import demo as steps
    from app.cli.story import tell
    from config.logging import console_logs

    watch.storytelling()
    watch.resumable("the demo starts over on a fresh local stack; nothing outside it was touched", command="make run")

    async def go(services) -> dict[str, Any]:
        return {
            "onboarding": await steps.onboarding_step(services, run_onboarding),
            "redemptionReset": await steps.reset_step(services),
            "policyDrift": await steps.drift_step(services),
            "governance": await steps.governance_step(services),
            "sweep": await steps.sweep_step(services),
            "status": await steps.status_step(services),
            "report": await steps.report_step(services),
        }

    from lifecycle.reporting.files import write_report

    results = asyncio.run(with_services(go))
    results["report"] = write_report(results["report"], out)
    if as_json:
        typer.echo(json.dumps(results, indent=2, default=str))
    else:
        logs = console_logs()
        tell(console, results, steps.MOVING_PARTNER_DOMAIN, str(logs.file) if logs and logs.file else None)
    onboarding = results["onboarding"]
    raise typer.Exit(ExitCode.FAILED if onboarding["failed"] or onboarding["crashed"] else ExitCode.OK)


@app.command()
def onboard(
    csv_file: Annotated[Path, typer.Option("--csv", exists=True, dir_okay=False, help="Rows to onboard.")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what each row would do; send nothing.")] = False,
    sponsor: Annotated[str | None, typer.Option(help="Sponsor for rows without one (UPN or id).")] = None,
    partner: Annotated[str | None, typer.Option(help="Partner for rows without one (else from the domain).")] = None,
    days: Annotated[
        int | None, typer.Option(min=1, help="Rows without an end date: the last day is N days from today.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Turn a CSV (own columns or the Entra bulk-invite template) into onboard tickets on the queue.

    The Entra template names no sponsor or end date: give them with --sponsor and --days. Each row shows the
    partner, sponsor and last day it would get; an address seen before is reported as a duplicate, not sent."""
    from lifecycle.onboarding.bulk import RowDefaults, batch_id, default_end, missing_defaults, plan_rows, read_rows
    from lifecycle.onboarding.submission import submit_documents

    rows = read_rows(csv_file)
    lacking = {"sponsor": "--sponsor UPN", "endDate": "--days N"}
    missing = missing_defaults(rows, sponsor_given=sponsor is not None, end_given=days is not None)
    if missing:
        raise typer.BadParameter(
            f"{csv_file.name} gives no {' and no '.join(missing)} (the Entra bulk-invite template has neither "
            f"column): pass {' and '.join(lacking[m] for m in missing)}",
            param_hint="--csv",
        )

    async def go(services) -> list:
        now = services.clock.now()
        defaults = RowDefaults(sponsor, partner, default_end(now, days))
        results = plan_rows(rows, services.desired, now, defaults, batch_id(csv_file))
        accepted = [r for r in results if r.accepted]
        if not dry_run and accepted:
            await submit_documents(services, "onboarding", [r.document for r in accepted])
        return results

    watch.resumable(
        "each row's ticket id (from the file's content and the row number) is its idempotency key: rows "
        "already sent arrive again as duplicates of the same ticket, and nobody is invited twice"
    )

    results = asyncio.run(with_services(go))
    rejects = [r for r in results if not r.accepted]
    duplicates = [r for r in rejects if r.code == "duplicate-address"]
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "dryRun": dry_run,
                    "rows": [
                        {
                            "row": r.row,
                            "ticketId": r.ticket_id,
                            "email": r.email,
                            "partner": r.partner or None,
                            "sponsor": r.sponsor or None,
                            "lastDay": r.last_day or None,
                            "accepted": r.accepted,
                            "code": r.code,
                            "reason": r.reason,
                        }
                        for r in results
                    ],
                    "duplicates": [r.row for r in duplicates],
                },
                indent=2,
            )
        )
    else:
        table = Table(title=Text(f"{csv_file.name}: {len(results)} row(s){' (dry run)' if dry_run else ''}"))
        for column in ("row", "ticket", "email", "partner", "sponsor", "last day", "result"):
            table.add_column(column)
        for r in results:
            verdict = (
                ("[green]would submit[/green]" if dry_run else "[green]submitted[/green]")
                if r.accepted
                else (f"[yellow]{esc(r.code)}[/yellow]: {esc(r.reason)}")
            )
            table.add_row(
                cell(r.row),
                cell(r.ticket_id),
                cell(r.email),
                cell(r.partner or "-"),
                cell(r.sponsor or "-"),
                cell(r.last_day or "-"),
                verdict,
            )
        console.print(table)
        if duplicates:
            console.print(
                f"{len(duplicates)} duplicate address(es) left out: rows {', '.join(str(r.row) for r in duplicates)}",
                markup=False,
            )
    raise typer.Exit(ExitCode.ATTENTION if rejects else ExitCode.OK)


@app.command()
def schema(
    which: Annotated[str, typer.Argument(help="ticket or desired-state")],
    write: Annotated[bool, typer.Option(help="Write config/schemas/<which>.schema.json")] = False,
) -> None:
    """Print (or write) the JSON Schema of the ticket contract or of the desired-state file."""
    from app.schemas import SCHEMAS

    if which not in SCHEMAS:
        raise typer.BadParameter(f"choose one of {', '.join(SCHEMAS)}")
    text = json.dumps(SCHEMAS[which](), indent=2) + "\n"
    if write:
        path = ROOT / "config" / "schemas" / f"{which}.schema.json"
        path.write_text(text, encoding="utf-8")
        console.print(f"wrote {path.relative_to(ROOT)}", markup=False)
    else:
        typer.echo(text, nl=False)
