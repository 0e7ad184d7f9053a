"""What every command shares: the Typer app, the console, the exit codes and the one-line errors, the
services door (``with_services``) and the printers."""

from __future__ import annotations

import difflib
import enum
import getpass
import json
import logging
import sys
from collections.abc import Sequence
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

# typer 0.29 carries its own copy of click: its exceptions, not the click package's, are what it raises.
from typer._click import exceptions as click
from typer.core import TyperGroup

from app.cli import watch
from config.admin import ADMIN_URL_SETTING
from lifecycle.errors import DesiredStateError, GraphError, InputError, ReadOnlySessionError, SettingsError


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
        # Like --debug, -v/--verbose is read anywhere on the line (main() routes the logs by it).
        argv = [a for a in argv if a not in (DEBUG_FLAG, *watch.VERBOSE_FLAGS)]
        self._argv = argv
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

    def invoke(self, ctx: Any) -> Any:
        """The command under a watch: its steps draw progress; Ctrl-C ends in one message and exit 130, and
        long work that finished ends with its closing line."""
        with watch.session(getattr(self, "_argv", [])) as session:
            try:
                result = super().invoke(ctx)
            except KeyboardInterrupt:
                session.watcher.stop()
                _stderr().print(session.interrupted_message(), markup=False, highlight=False)
                raise typer.Exit(watch.INTERRUPTED) from None
            except typer.Exit:
                _close(session)
                raise
            _close(session)
            return result


def _close(session: watch.Session) -> None:
    session.watcher.stop()
    line = session.closing_line()
    if line:
        _stderr().print(line, markup=False, highlight=False)


def _stderr() -> Console:
    return Console(stderr=True, soft_wrap=True)


def explain(exc: BaseException) -> tuple[ExitCode, str, str]:
    """What an error means to the operator: its exit code, one line, and a hint."""
    if isinstance(exc, SettingsError | DesiredStateError):
        return ExitCode.CONFIG, str(exc), "fix the setting or the desired-state file named above"
    if isinstance(exc, InputError):
        return ExitCode.BAD_INPUT, str(exc), "fix the file and run the command again"
    if isinstance(exc, ReadOnlySessionError):
        return ExitCode.USAGE, str(exc), f"set {ADMIN_URL_SETTING} or pass --remote URL: the function app writes"
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
    help=(
        "Entra B2B guest lifecycle automation. The terminal shows warnings and errors only; every log line goes "
        "to .lifecycle/logs/lifecycle-YYYYMMDD.log (or the file LIFECYCLE_LOG_FILE names). Add -v/--verbose "
        "anywhere to see info logs on the terminal too, --debug anywhere to see the traceback of an error."
    ),
)
console = Console(stderr=False)
QUEUES = ("onboarding",)  # the queues a ticket is read from


def check_queue(name: str, accepted: Sequence[str], what: str, option: str = "QUEUE") -> str:
    """``name`` if it is one of ``accepted``; else a usage error naming the product's queues and a near match.

    A message sent to a queue nothing reads waits there for ever: an unknown name is refused, never created.
    """
    from lifecycle.ledger.operations import QUEUES as PRODUCT_QUEUES

    if name in accepted:
        return name
    known = ", ".join(PRODUCT_QUEUES)
    if name in PRODUCT_QUEUES:
        raise typer.BadParameter(f"{name} does not take {what}; use {' or '.join(accepted)}", param_hint=option)
    near = difflib.get_close_matches(name.lower(), PRODUCT_QUEUES, n=1, cutoff=0.6)
    guess = f"did you mean {near[0]}? " if near else ""
    raise typer.BadParameter(f"unknown queue {name!r}; {guess}the product's queues: {known}", param_hint=option)


def operator() -> str:
    """Who runs the command, for the audit trail (the OS account; "operator" where it has none)."""
    try:
        return getpass.getuser()
    except OSError:
        return "operator"


def esc(value: object) -> str:
    """``value`` as literal text inside Rich markup: ticket fields, reasons and keys come from outside, and a
    ``[/x]`` in one would otherwise close a tag that was never opened (Rich raises) or restyle the output."""
    return escape(str(value))


def cell(value: object) -> Text:
    """A table cell shown as given, never read as markup."""
    return Text(str(value))


JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON instead of tables.")]


def print_status(report: dict[str, Any], out: Console | None = None) -> None:
    out = out or console
    queues = Table(title="queues")
    for column in ("queue", "active", "dead letters"):
        queues.add_column(column)
    for name, depth in report["queues"].items():
        dead = depth["deadLetters"]
        queues.add_row(cell(name), cell(depth["active"]), f"[red]{esc(dead)}[/red]" if dead else "0")
    out.print(queues)
    work = ", ".join(f"{k} {v}" for k, v in sorted(report["workItems"].items())) or "none"
    out.print("work items: " + work, markup=False)
    for job, run in sorted(report["lastRuns"].items()):
        details = " ".join(f"{k}={v}" for k, v in run.items() if k not in ("at", "job"))
        out.print(f"last {job} run: {run['at']} {details}", markup=False)
    for flag in report.get("attention", []):
        subject = flag.get("runId") or f"{flag.get('count')} work item(s)"
        out.print(f"[yellow]needs attention[/yellow] {esc(flag['kind'])} {esc(subject)}: {esc(flag['detail'])}")
        out.print(f"  next: {flag['next']}", markup=False)


async def with_services(action):
    from app.bootstrap import bootstrap

    services = await bootstrap()
    try:
        return await action(services)
    finally:
        await services.close()


async def run_onboarding(services, wait_for_delayed_seconds: float = 0.0) -> dict[str, Any]:
    from lifecycle.ledger.status import record_run
    from lifecycle.ledger.worker import drain
    from lifecycle.onboarding.handler import handle_ticket
    from lifecycle.onboarding.holds import release_due

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
            {"key": o.key, "verdict": o.verdict.value, "code": o.code, "message": o.message, **brief(o.detail)}
            for o in report.outcomes
        ],
    }
    await record_run(services, "onboarding", summary)
    return summary


def brief(detail: dict[str, Any]) -> dict[str, Any]:
    brief = {k: detail[k] for k in ("objectId", "reused", "endDate") if k in detail}
    if detail.get("endDate"):
        brief["lastDay"] = last_day(detail["endDate"])
    return brief


def last_day(end: str) -> str:
    """A stored end (an ISO time at which access ends) as people gave it: the inclusive last day."""
    from datetime import datetime

    from lifecycle.dates import shown_end

    return shown_end(datetime.fromisoformat(end))


def report_summary(summary: dict[str, Any], as_json: bool, out: Console | None = None) -> None:
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    out = out or console
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
    out.print(table)
    out.print(
        f"done {summary['done']} · duplicates {summary['duplicates']} · rejected {summary['rejected']} · "
        f"retrying {summary['retrying']} · failed {summary['failed']}"
    )


def print_result(payload: dict[str, Any], as_json: bool, text: str) -> None:
    typer.echo(json.dumps(payload) if as_json else text)
