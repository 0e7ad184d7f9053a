"""Configuration-as-code commands of ``python -m lifecycle``: plan and apply.

Exit codes for pipelines: 0 no drift (or all of it applied), 2 drift found or left over, 1 error or a
guardrail refused the desired state.
"""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

import typer

from app.cli.common import JsonOption, app, with_services

TARGETS = ("policies", "governance")
TargetArgument = Annotated[str, typer.Argument(help=f"What to plan or apply: {', '.join(TARGETS)}.")]
MarkdownOption = Annotated[bool, typer.Option("--markdown", help="Print the markdown report (the default).")]


def _check(target: str) -> None:
    if target not in TARGETS:
        raise typer.BadParameter(f"unknown target {target!r}; available: {', '.join(TARGETS)}")


def drift_command(mode: str, remove_unknown_partners: bool, as_json: bool) -> int:
    from lifecycle.drift.entry import render, run_policy_drift
    from lifecycle.ledger.operations import record_run

    async def go(services):
        run = await run_policy_drift(services, mode, remove_unknown_partners)
        await record_run(services, "policy-drift", {"mode": mode, "drift": len(run.drift), "exitCode": run.exit_code})
        return run

    run = asyncio.run(with_services(go))
    typer.echo(render(run, as_json=as_json))
    return run.exit_code


def governance_command(mode: str, as_json: bool, approved_recreates: frozenset[str] = frozenset()) -> int:
    from lifecycle.governance import render
    from lifecycle.governance.entry import run_with_services
    from lifecycle.ledger.operations import record_run

    async def go(services):
        result = await run_with_services(services, mode, approved_recreates)
        await record_run(
            services, "governance", {"mode": mode, "drift": result["plan"]["drift"], "exitCode": result["exitCode"]}
        )
        return result

    result = asyncio.run(with_services(go))
    typer.echo(json.dumps(result, indent=2, default=str) if as_json else render(result))
    return int(result["exitCode"])


@app.command("plan")
def plan_command(target: TargetArgument, as_json: JsonOption = False, markdown: MarkdownOption = False) -> None:
    """Show the field-level drift between the desired-state file and the tenant; change nothing."""
    _check(target)
    if target == "governance":
        raise typer.Exit(governance_command("plan", as_json and not markdown))
    raise typer.Exit(drift_command("plan", False, as_json and not markdown))


@app.command("apply")
def apply_command(
    target: TargetArgument,
    remove_unknown_partners: Annotated[
        bool, typer.Option("--remove-unknown-partners", help="Delete partner policies the file does not name.")
    ] = False,
    approve_recreate: Annotated[
        list[str] | None,
        typer.Option(
            "--approve-recreate",
            help="Governance: delete and create this access review (its key, e.g. review/guests) although that "
            "loses its instances and decisions. Repeatable; without it such a recreate is held.",
        ),
    ] = None,
    as_json: JsonOption = False,
    markdown: MarkdownOption = False,
) -> None:
    """Apply the plan unless a guardrail refuses it; what fails is reported and retried next run."""
    _check(target)
    if target == "governance":
        raise typer.Exit(governance_command("enforce", as_json and not markdown, frozenset(approve_recreate or ())))
    raise typer.Exit(drift_command("enforce", remove_unknown_partners, as_json and not markdown))
