"""``python -m lifecycle``: the operator's command line.

Exit codes (the README's Command line section lists them), the same for every command:
0 done; 1 failed (an error the command could not get past, or a refusal such as an unconfirmed purge or a
guardrail); 2 done, and something needs attention (rejections, failures, dead letters, drift); 3 nothing
matched what was named; 64 usage error (an unknown option, queue or job, a bad value); 65 an input file
cannot be read as what the command expects; 69 storage, the queues or Graph cannot be reached; 78 the
settings or the desired-state file are not usable. An error ends with one line and a hint; ``--debug``
anywhere on the command line shows the traceback instead.
"""

from __future__ import annotations

import asyncio
import difflib
import enum
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

# typer 0.29 carries its own copy of click: its exceptions, not the click package's, are what it raises.
from typer._click import exceptions as click
from typer.core import TyperGroup

from config.settings import ROOT
from lifecycle.errors import DesiredStateError, GraphError, InputError, SettingsError


class ExitCode(enum.IntEnum):
    OK = 0
    FAILED = 1
    ATTENTION = 2
    NOTHING_MATCHED = 3
    USAGE = 64
    BAD_INPUT = 65
    UNREACHABLE = 69
    CONFIG = 78


DEBUG_FLAG = "--debug"


class _Commands(TyperGroup):
    """The command group with the product's exit codes: every error ends in one line and a hint."""

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        debug = DEBUG_FLAG in argv
        argv = [a for a in argv if a != DEBUG_FLAG]
        try:
            code = super().main(
                argv,
                prog_name,
                complete_var,
                standalone_mode=False,
                windows_expand_args=windows_expand_args,
                **extra,
            )
        except click.NoArgsIsHelpError as exc:
            exc.show()
            code = ExitCode.USAGE
        except click.UsageError as exc:
            command = exc.ctx.command_path if exc.ctx else "python -m lifecycle"
            code = _fail(ExitCode.USAGE, exc.format_message(), f"see {command} --help")
        except typer.Abort:
            code = _fail(ExitCode.FAILED, "aborted", "nothing was changed after the prompt")
        except click.FileError as exc:
            code = _fail(ExitCode.BAD_INPUT, exc.format_message(), "check the file's path and permissions")
        except click.ClickException as exc:
            code = _fail(ExitCode.USAGE, exc.format_message(), "see python -m lifecycle --help")
        except Exception as exc:
            if debug:
                raise
            code = _fail(*explain(exc))
        code = int(code or 0)
        if standalone_mode:
            sys.exit(code)
        return code


def explain(exc: BaseException) -> tuple[ExitCode, str, str]:
    """What an error means to the operator: its exit code, one line, and a hint."""
    if isinstance(exc, SettingsError | DesiredStateError):
        return ExitCode.CONFIG, str(exc), "fix the setting or the desired-state file named above"
    if isinstance(exc, InputError):
        return ExitCode.BAD_INPUT, str(exc), "fix the file and run the command again"
    service = _unreachable(exc)
    if service:
        return (
            ExitCode.UNREACHABLE,
            f"cannot reach {service}: {_first_line(exc)}",
            "check the connection settings and that the service is up (make stack starts the local one)",
        )
    if isinstance(exc, GraphError):
        code = f" {exc.code}" if exc.code else ""
        request = f" (request id {exc.request_id})" if exc.request_id else ""
        return (
            ExitCode.FAILED,
            f"Graph refused{code}: {_first_line(exc)}{request}",
            "check the app's Graph permissions (infra/grant-graph-permissions) or run again with --debug",
        )
    return ExitCode.FAILED, f"{type(exc).__name__}: {_first_line(exc)}", "run again with --debug for the traceback"


_CONNECTION_ERRORS = {"ServiceRequestError", "ServiceResponseTimeoutError", "ConnectError", "ConnectTimeout"}


def _unreachable(exc: BaseException) -> str | None:
    """Which service an error says could not be reached (storage, Service Bus, Graph), or None."""
    chain: list[BaseException] = []
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        chain.append(current)
        inner = getattr(current, "inner_exception", None)
        todo += [current.__cause__, current.__context__, inner if isinstance(inner, BaseException) else None]
    if not any(isinstance(e, ConnectionError | TimeoutError) or type(e).__name__ in _CONNECTION_ERRORS for e in chain):
        return None
    modules = " ".join(type(e).__module__ for e in chain) + " " + " ".join(_frames(exc))
    if "servicebus" in modules:
        return "Service Bus"
    if "azure.data.tables" in modules or "adapters.tables" in modules:
        return "Table storage"
    if "azure.storage.queue" in modules or "storage_queue" in modules:
        return "the storage queues"
    if isinstance(exc, GraphError) or "httpx" in modules or "graph" in modules:
        return "Microsoft Graph"
    return "a service"


def _frames(exc: BaseException) -> list[str]:
    names: list[str] = []
    tb = exc.__traceback__
    while tb is not None:
        names.append(str(tb.tb_frame.f_globals.get("__name__", "")))
        tb = tb.tb_next
    return names


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _fail(code: ExitCode, message: str, hint: str) -> ExitCode:
    # Clients the failed command left open complain when collected; their complaint is not the operator's error.
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)
    err = Console(stderr=True, soft_wrap=True)
    err.print(Text(f"error: {message}", style="red"), Text(f" (hint: {hint})"), sep="", highlight=False)
    return code


def fail(code: ExitCode, message: str, hint: str) -> typer.Exit:
    """Print the one-line error with its hint and return the Exit to raise with its code."""
    return typer.Exit(int(_fail(code, message, hint)))


app = typer.Typer(
    cls=_Commands,
    no_args_is_help=True,
    add_completion=False,
    help="Entra B2B guest lifecycle automation. Add --debug anywhere to see the traceback of an error.",
)
console = Console(stderr=False)
QUEUES = ("onboarding",)  # the queues a ticket is read from


def check_queue(name: str, accepted: Sequence[str], what: str, option: str = "QUEUE") -> str:
    """``name`` if it is one of ``accepted``; else a usage error naming the product's queues and a near match.

    A message sent to a queue nothing reads waits there for ever: an unknown name is refused, never created.
    """
    from lifecycle.operations import QUEUES as PRODUCT_QUEUES

    if name in accepted:
        return name
    known = ", ".join(PRODUCT_QUEUES)
    if name in PRODUCT_QUEUES:
        raise typer.BadParameter(f"{name} does not take {what}; use {' or '.join(accepted)}", param_hint=option)
    near = difflib.get_close_matches(name.lower(), PRODUCT_QUEUES, n=1, cutoff=0.6)
    guess = f"did you mean {near[0]}? " if near else ""
    raise typer.BadParameter(f"unknown queue {name!r}; {guess}the product's queues: {known}", param_hint=option)


def esc(value: object) -> str:
    """``value`` as literal text inside Rich markup: ticket fields, reasons and keys come from outside, and a
    ``[/x]`` in one would otherwise close a tag that was never opened (Rich raises) or restyle the output."""
    return escape(str(value))


def cell(value: object) -> Text:
    """A table cell shown as given, never read as markup."""
    return Text(str(value))


JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON instead of tables.")]


def main() -> None:
    import lifecycle.cli_config  # registers plan and apply
    import lifecycle.cli_doctor  # registers doctor and export
    import lifecycle.cli_jobs  # registers run, approve and sweep
    import lifecycle.cli_ops  # noqa: F401  (registers the on-call commands; both modules add commands to `app`)

    app()


@app.command()
def submit(
    queue: Annotated[str, typer.Argument(help="Logical queue name, e.g. onboarding.")],
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="JSON object, array, or JSON lines.")],
    as_json: JsonOption = False,
) -> None:
    """Put tickets from FILE on QUEUE, one message each (message id derived from the ticket id)."""
    from lifecycle.submission import read_documents, submit_documents

    check_queue(queue, QUEUES, "tickets")
    documents = read_documents(file)
    sent = asyncio.run(_with_services(lambda s: submit_documents(s, queue, documents)))
    _print({"queue": queue, "sent": sent}, as_json, f"sent {sent} message(s) to {queue}")


@app.command()
def demo(
    as_json: JsonOption = False,
    out: Annotated[Path, typer.Option(help="Where the posture report is written.")] = Path("reports"),
) -> None:
    """Run every job once over the local stack, as `make run` does, and show what each did."""
    from lifecycle import demo as steps
    from lifecycle.reset.entry import format_summary as reset_summary
    from lifecycle.sweep.entry import format_summary as sweep_summary

    async def go(services) -> dict[str, Any]:
        return {
            "onboarding": await steps.onboarding_step(services, _run_onboarding),
            "redemptionReset": await steps.reset_step(services),
            "policyDrift": await steps.drift_step(services),
            "governance": await steps.governance_step(services),
            "sweep": await steps.sweep_step(services),
            "status": await steps.status_step(services),
            "report": await steps.report_step(services),
        }

    from lifecycle.report import write_report

    results = asyncio.run(_with_services(go))
    results["report"] = write_report(results["report"], out)
    if as_json:
        typer.echo(json.dumps(results, indent=2, default=str))
    else:
        console.rule("1. onboarding: tickets from the ticketing system")
        _report(results["onboarding"], False)
        console.rule(f"2. redemption reset: {steps.MOVING_PARTNER_DOMAIN} moved to its own Entra tenant")
        for summary in results["redemptionReset"]:
            console.print(reset_summary(summary), highlight=False, markup=False)
        for key, title in (("policyDrift", "3. policy drift"), ("governance", "4. governance")):
            for phase, run in results[key].items():
                console.rule(f"{title}: {phase} (exit {run['exitCode']})")
                console.print(run["text"], highlight=False, soft_wrap=True, markup=False)
        console.rule("5. guest expiry sweep: plan, enforce, brake, approval")
        for summary in results["sweep"]:
            console.print(sweep_summary(summary), highlight=False, markup=False)
        console.rule("6. status")
        _print_status(results["status"])
        console.rule("7. report")
        totals = ", ".join(f"{k} {v}" for k, v in results["report"]["totals"].items())
        console.print(f"wrote {results['report']['html']} and {results['report']['markdown']} ({totals})", markup=False)
    onboarding = results["onboarding"]
    raise typer.Exit(ExitCode.FAILED if onboarding["failed"] or onboarding["crashed"] else ExitCode.OK)


def _print_status(report: dict[str, Any]) -> None:
    queues = Table(title="queues")
    for column in ("queue", "active", "dead letters"):
        queues.add_column(column)
    for name, depth in report["queues"].items():
        dead = depth["deadLetters"]
        queues.add_row(cell(name), cell(depth["active"]), f"[red]{esc(dead)}[/red]" if dead else "0")
    console.print(queues)
    work = ", ".join(f"{k} {v}" for k, v in sorted(report["workItems"].items())) or "none"
    console.print("work items: " + work, markup=False)
    for job, run in sorted(report["lastRuns"].items()):
        details = " ".join(f"{k}={v}" for k, v in run.items() if k not in ("at", "job"))
        console.print(f"last {job} run: {run['at']} {details}", markup=False)


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
    from rich.progress import Progress

    from lifecycle.bulk import RowDefaults, batch_id, default_end, missing_defaults, plan_rows, read_rows
    from lifecycle.submission import ticket_message

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
            queue = services.settings.queue_name("onboarding")
            with Progress(console=Console(stderr=True), transient=True, disable=as_json) as progress:
                task = progress.add_task("submitting", total=len(accepted))
                for start in range(0, len(accepted), 100):
                    chunk = accepted[start : start + 100]
                    await services.transport.send(queue, [ticket_message(r.document) for r in chunk])
                    progress.advance(task, len(chunk))
        return results

    results = asyncio.run(_with_services(go))
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
    from lifecycle.schemas import SCHEMAS

    if which not in SCHEMAS:
        raise typer.BadParameter(f"choose one of {', '.join(SCHEMAS)}")
    text = json.dumps(SCHEMAS[which](), indent=2) + "\n"
    if write:
        path = ROOT / "config" / "schemas" / f"{which}.schema.json"
        path.write_text(text, encoding="utf-8")
        console.print(f"wrote {path.relative_to(ROOT)}", markup=False)
    else:
        typer.echo(text, nl=False)


async def _with_services(action):
    from lifecycle.bootstrap import bootstrap

    services = await bootstrap()
    try:
        return await action(services)
    finally:
        await services.close()


async def _run_onboarding(services, wait_for_delayed_seconds: float = 0.0) -> dict[str, Any]:
    from lifecycle.holds import release_due
    from lifecycle.onboarding import handle_ticket
    from lifecycle.operations import record_run
    from lifecycle.worker import drain

    released = await release_due(services)
    report = await drain(services, "onboarding", handle_ticket, wait_for_delayed_seconds=wait_for_delayed_seconds)
    counts = report.by_verdict
    summary = {
        "job": "onboarding",
        "processed": len(report.outcomes),
        "done": counts.get("done", 0),
        "duplicates": counts.get("duplicate", 0),
        "rejected": counts.get("rejected", 0),
        "retrying": counts.get("retry", 0),
        "failed": counts.get("failed", 0),
        "crashed": report.crashed,
        "releasedHolds": len(released),
        "held": counts.get("held", 0),
        "outcomes": [
            {"key": o.key, "verdict": o.verdict.value, "code": o.code, "message": o.message, **_brief(o.detail)}
            for o in report.outcomes
        ],
    }
    await record_run(services, "onboarding", summary)
    return summary


def _brief(detail: dict[str, Any]) -> dict[str, Any]:
    brief = {k: detail[k] for k in ("objectId", "reused", "endDate") if k in detail}
    if detail.get("endDate"):
        brief["lastDay"] = last_day(detail["endDate"])
    return brief


def last_day(end: str) -> str:
    """A stored end (an ISO time at which access ends) as people gave it: the inclusive last day."""
    from datetime import datetime

    from lifecycle.onboarding_policy import shown_end

    return shown_end(datetime.fromisoformat(end))


def _report(summary: dict[str, Any], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    table = Table(title=f"{summary['job']}: {summary['processed']} message(s)", show_lines=False)
    for column in ("ticket", "verdict", "guest / reason"):
        table.add_column(column)
    for o in summary["outcomes"]:
        colour = {"done": "green", "duplicate": "cyan", "rejected": "yellow"}.get(o["verdict"], "red")
        what = (
            f"{o['objectId']} ({'reused' if o.get('reused') else 'invited'}, last day {o['lastDay']})"
            if o["verdict"] == "done"
            else f"{o['code']}: {o['message']}"
        )
        table.add_row(cell(o["key"]), f"[{colour}]{esc(o['verdict'])}[/{colour}]", cell(what))
    console.print(table)
    console.print(
        f"done {summary['done']} · duplicates {summary['duplicates']} · rejected {summary['rejected']} · "
        f"retrying {summary['retrying']} · failed {summary['failed']}"
    )


def _print(payload: dict[str, Any], as_json: bool, text: str) -> None:
    typer.echo(json.dumps(payload) if as_json else text)
