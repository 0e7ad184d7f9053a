"""On-call's stop button for a run already under way: ``halt RUN_ID --reason TEXT`` and ``resume RUN_ID``.

The brake holds a run before it is dispatched; ``halt`` stops one after: its `guest-actions` workers write nothing
more from their next read of the run's status (lifecycle.runs.halt), and ``resume`` dispatches it again after the
fix. Both change the tenant's course, so both go through the admin endpoint from an operator's read-only shell.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import typer
from rich.console import Console

from app.cli.common import ExitCode, JsonOption, app, esc, operator, with_services
from app.cli.decide import YesOption, decide
from app.cli.jobs import _print_summary
from app.cli.remote import RemoteOption, remote_url, require_app_identity, run_remote
from app.cli.summaries import reset_summary, sweep_summary

HALT_COLUMNS = ("runId", "job", "status", "change", "reason")
RunIdArgument = Annotated[
    str, typer.Argument(help="A dispatched sweep or reset run, e.g. sweep-2026-11-24 or reset-2026-11-24.")
]


def _job(run_id: str) -> str:
    return "redemption-reset" if run_id.startswith("reset-") else "guest-sweep"


async def run_changes(services, run_id: str, change: str, reason: str | None = None) -> list[dict[str, Any]] | None:
    """The one row a halt or a resume changes: the run, named, with what happens to it. ``status`` says "under way"
    for dispatching and dispatched alike, and the row leaves the dispatched count out, so the confirmed plan still
    holds when the fan-out finishes between plan and apply. None for an unknown run (the command then refuses
    with its own reason)."""
    from lifecycle.runs.model import RunStatus
    from lifecycle.sweep.entry import sweep_ports

    run = await sweep_ports(services).runs.get(run_id)
    if run is None:
        return None
    under_way = run.status in (RunStatus.DISPATCHING, RunStatus.DISPATCHED)
    return [
        {
            "runId": run_id,
            "job": _job(run_id),
            "status": "under way" if under_way else run.status.value,
            "change": change,
            "reason": reason if reason is not None else (run.halt.reason if run.halt else ""),
        }
    ]


HALT_CHANGE = "halt: its workers write nothing more; what is not done waits for resume"
RESUME_CHANGE = "resume: dispatched again; what is not done yet is carried out, nothing twice"


async def halt_run(services, run_id: str, who: str, why: str) -> dict[str, Any]:
    """Halt a sweep or reset run by its id (raises SweepError / ResetRunError when it is not under way)."""
    if run_id.startswith("reset-"):
        from lifecycle.reset.entry import halt_reset_run

        return await halt_reset_run(services, run_id, who, why)
    from lifecycle.sweep import entry as sweep

    return await sweep.halt(services, run_id, who, why)


async def resume_run(services, run_id: str, who: str, *, drain: bool) -> dict[str, Any]:
    """Resume a halted run; ``drain``: then work the queue here (the local command), as ``approve`` does."""
    if run_id.startswith("reset-"):
        from lifecycle.reset import entry as reset
        from lifecycle.reset import local as reset_local

        if drain:
            return await reset_local.resume_locally(services, run_id, who)
        return await reset.resume_reset_run(services, run_id, who)
    from lifecycle.sweep import entry as sweep

    return await (sweep.resume_locally if drain else sweep.resume)(services, run_id, who)


def summary_text(summary: dict[str, Any]) -> str:
    return (reset_summary if summary["runId"].startswith("reset-") else sweep_summary)(summary)


@app.command()
def halt(
    run_id: RunIdArgument,
    reason: Annotated[str, typer.Option("--reason", help="Why the run is stopped (recorded and shown).")],
    yes: YesOption = False,
    as_json: JsonOption = False,
    remote: RemoteOption = None,
) -> None:
    """Stop a dispatched sweep or reset run: every worker writes nothing more within seconds (its next read of the
    run's status), the messages still queued complete with `run-halted`, and what is not done stays pending for
    `resume RUN_ID`. Recorded with who, when and why. Exit 0 halted (or already halted), 1 not haltable."""
    if not reason.strip():
        raise typer.BadParameter("say why the run is stopped", param_hint="--reason")
    raise typer.Exit(
        _change_run(
            "halt",
            run_id,
            {"runId": run_id, "reason": reason},
            lambda services: run_changes(services, run_id, HALT_CHANGE, reason),
            lambda services: halt_run(services, run_id, operator(), reason),
            yes=yes,
            as_json=as_json,
            remote=remote,
        )
    )


@app.command()
def resume(
    run_id: RunIdArgument,
    yes: YesOption = False,
    as_json: JsonOption = False,
    remote: RemoteOption = None,
) -> None:
    """Let a halted run go on after the fix: it is dispatched again and what is not done yet is carried out (an
    action already done is recognised by its key, never done twice). Locally the command then works the
    guest-actions queue itself, as `approve` does; with --remote the app's trigger works it."""
    raise typer.Exit(
        _change_run(
            "resume",
            run_id,
            {"runId": run_id},
            lambda services: run_changes(services, run_id, RESUME_CHANGE),
            lambda services: resume_run(services, run_id, operator(), drain=True),
            yes=yes,
            as_json=as_json,
            remote=remote,
        )
    )


def _change_run(
    verb: str,
    run_id: str,
    body: dict[str, Any],
    changes: Callable[[Any], Awaitable[list[dict[str, Any]] | None]],
    act: Callable[[Any], Awaitable[dict[str, Any]]],
    *,
    yes: bool,
    as_json: bool,
    remote: str | None,
) -> int:
    """A halt or a resume: through the admin endpoint with --remote, else shown, confirmed and carried out here."""
    label = f"{verb} {run_id}"
    url = require_app_identity(remote_url(remote), label)
    if url is not None:
        return run_remote(
            url,
            verb,
            body,
            title=lambda rows: label,
            phrase=lambda rows: run_id,
            yes=yes,
            export_to=None,
            label=label,
            as_json=as_json,
        )

    async def decided(services) -> dict[str, Any]:
        rows = await changes(services)
        if rows:
            decide(label, rows, HALT_COLUMNS, run_id, yes=yes, export_to=None, command=label, as_json=as_json)
        return await act(services)

    return _carried(decided, as_json, halted=verb == "halt")


def _carried(decided, as_json: bool, *, halted: bool) -> int:
    from lifecycle.reset.runs import ResetRunError
    from lifecycle.sweep.runner import SweepError

    try:
        summary = asyncio.run(with_services(decided))
    except (SweepError, ResetRunError) as exc:
        Console(stderr=True).print(f"[red]{esc(exc)}[/red]")
        return ExitCode.FAILED
    return _print_summary(summary, as_json, summary_text, lambda s: exit_code(s, halted=halted))


def exit_code(summary: dict[str, Any], *, halted: bool) -> int:
    """halt: 0 once the run is halted. resume: 0 once it is under way again (2 when its actions failed)."""
    from app.cli.summaries import sweep_exit_code

    if halted:
        return ExitCode.OK if summary["status"] == "halted" else ExitCode.FAILED
    if summary["status"] == "halted":
        return ExitCode.FAILED
    return sweep_exit_code(summary)
