"""Configuration-as-code commands of ``python -m lifecycle``: plan and apply.

Exit codes for pipelines: 0 no drift (or all of it applied), 2 drift found or left over, 1 error or a
guardrail refused the desired state.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from lifecycle.cli import JsonOption, _with_services, app

TARGETS = ("policies",)
TargetArgument = Annotated[str, typer.Argument(help=f"What to plan or apply: {', '.join(TARGETS)}.")]
MarkdownOption = Annotated[bool, typer.Option("--markdown", help="Print the markdown report (the default).")]


def _check(target: str) -> None:
    if target not in TARGETS:
        raise typer.BadParameter(f"unknown target {target!r}; available: {', '.join(TARGETS)}")


def _policy_drift(mode: str, remove_unknown_partners: bool, as_json: bool) -> int:
    from lifecycle.drift.entry import render, run_policy_drift

    run = asyncio.run(_with_services(lambda s: run_policy_drift(s, mode, remove_unknown_partners)))
    typer.echo(render(run, as_json=as_json))
    return run.exit_code


@app.command("plan")
def plan_command(target: TargetArgument, as_json: JsonOption = False, markdown: MarkdownOption = False) -> None:
    """Show the field-level drift between the desired-state file and the tenant; change nothing."""
    _check(target)
    raise typer.Exit(_policy_drift("plan", False, as_json and not markdown))


@app.command("apply")
def apply_command(
    target: TargetArgument,
    remove_unknown_partners: Annotated[
        bool, typer.Option("--remove-unknown-partners", help="Delete partner policies the file does not name.")
    ] = False,
    as_json: JsonOption = False,
    markdown: MarkdownOption = False,
) -> None:
    """Apply the plan unless a guardrail refuses it; what fails is reported and retried next run."""
    _check(target)
    raise typer.Exit(_policy_drift("enforce", remove_unknown_partners, as_json and not markdown))
