"""Configuration-as-code commands of ``python -m lifecycle``: plan and apply.

Exit codes for pipelines: 0 no drift (or all of it applied), 2 drift found or left over, 1 error or a
guardrail refused the desired state.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import typer

from app.cli import watch
from app.cli.common import JsonOption, app, with_services
from app.cli.decide import ExportOption, YesOption, check_export, decide

TARGETS = ("policies", "governance")
Decision = Callable[[Any], Awaitable[None]]
TargetArgument = Annotated[str, typer.Argument(help=f"What to plan or apply: {', '.join(TARGETS)}.")]
MarkdownOption = Annotated[bool, typer.Option("--markdown", help="Print the markdown report (the default).")]


def _check(target: str) -> None:
    if target not in TARGETS:
        raise typer.BadParameter(f"unknown target {target!r}; available: {', '.join(TARGETS)}")


def drift_command(mode: str, remove_unknown_partners: bool, as_json: bool, decided: Decision | None = None) -> int:
    """``decided`` runs first on the same services: the operator's decision (it raises to stop)."""
    from lifecycle.drift.entry import render, run_policy_drift
    from lifecycle.ledger.status import record_run

    async def go(services):
        if decided is not None:
            await decided(services)
        run = await run_policy_drift(services, mode, remove_unknown_partners)
        await record_run(
            services,
            "policy-drift",
            {
                "mode": mode,
                "drift": len(run.drift),
                "exitCode": run.exit_code,
                # The audit row keeps scalars only: the waivers as one line each, joined.
                "waivers": "; ".join(f"{w.label}: {w.state}, owner {w.owner}, until {w.expires}" for w in run.waivers),
            },
        )
        return run

    run = asyncio.run(with_services(go))
    typer.echo(render(run, as_json=as_json))
    return run.exit_code


def governance_command(
    mode: str, as_json: bool, approved_recreates: frozenset[str] = frozenset(), decided: Decision | None = None
) -> int:
    from lifecycle.governance import render
    from lifecycle.governance.entry import run_with_services
    from lifecycle.ledger.status import record_run

    async def go(services):
        if decided is not None:
            await decided(services)
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


CHANGE_COLUMNS = ("change", "partner", "partnerName", "tenantId", "resource", "key", "fields", "reason")
WRITTEN = ("create", "update", "recreate", "delete")  # report-only drift is shown by the plan, never written


async def policy_changes(services, remove_unknown_partners: bool) -> list[dict[str, Any]] | None:
    """What ``apply policies`` would write, partner by partner name; None when a guardrail refuses the plan
    (the apply then writes nothing and says why)."""
    from lifecycle.drift.desired import desired_policies
    from lifecycle.drift.entry import drift_ports
    from lifecycle.drift.planner import plan_policies, read_tenant

    tenant = drift_ports(services).tenant
    desired = desired_policies(services.desired)
    plan = plan_policies(
        desired, await read_tenant(tenant, desired), remove_unknown_partners, today=services.clock.now().date()
    )
    if plan.refusals:
        return None
    rows = []
    for action in plan.drift:
        if action.change.value not in WRITTEN:
            continue
        partner = desired.partners.get(action.key.lower()) if action.resource.endswith("partners") else None
        name = partner.display_name if partner else None
        if action.resource.endswith("partners") and partner is None:
            known = await tenant.find_tenant_by_id(action.key)  # a partner the file does not name
            name = (known or {}).get("displayName")
        rows.append(
            {
                "change": action.change.value,
                "partner": partner.key if partner else None,
                "partnerName": name,
                "tenantId": action.key if action.resource.endswith("partners") else None,
                "resource": action.resource,
                "key": action.key,
                "fields": ", ".join(d.field for d in action.diffs),
                "reason": action.reason,
            }
        )
    return rows


async def governance_changes(services, approved_recreates: frozenset[str]) -> list[dict[str, Any]] | None:
    """What ``apply governance`` would write, with the partner each object belongs to; None when refused."""
    from lifecycle.governance.entry import governance_ports
    from lifecycle.governance.job import make_plan

    plan, _ = await make_plan(governance_ports(services).graph, services.desired, approved_recreates)
    if plan.refusals:
        return None
    partners = services.desired.partners
    rows = []
    for action in plan.drift:
        if action.change.value not in WRITTEN:
            continue
        key = next((k for k in action.key.split("/") if k in partners), None)
        rows.append(
            {
                "change": action.change.value,
                "partner": key,
                "partnerName": partners[key].display_name if key else None,
                "tenantId": partners[key].tenant_id if key else None,
                "resource": action.resource,
                "key": action.key,
                "fields": ", ".join(d.field for d in action.diffs),
                "reason": action.reason,
            }
        )
    return rows


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
    yes: YesOption = False,
    export_to: ExportOption = None,
    as_json: JsonOption = False,
    markdown: MarkdownOption = False,
) -> None:
    """Apply the plan unless a guardrail refuses it; what fails is reported and retried next run.

    First lists every write by partner name (and tenant id), then asks for "apply N" typed back (--yes in
    scripts; refused without a terminal). Nothing to write, or a refused plan, asks nothing."""
    _check(target)
    check_export(export_to)
    approved = frozenset(approve_recreate or ())

    async def decided(services) -> None:
        if target == "governance":
            rows = await governance_changes(services, approved)
        else:
            rows = await policy_changes(services, remove_unknown_partners)
        if rows:
            decide(
                f"apply {target}: {len(rows)} write(s) to the tenant",
                rows,
                CHANGE_COLUMNS,
                f"apply {len(rows)}",
                yes=yes,
                export_to=export_to,
                command=f"apply {target}",
                as_json=as_json,
            )
            watch.resumable(
                "the command compares the desired state with the tenant again: what was written is no longer "
                "a difference, so only what is left is listed and written"
            )

    if target == "governance":
        raise typer.Exit(governance_command("enforce", as_json and not markdown, approved, decided))
    raise typer.Exit(drift_command("enforce", remove_unknown_partners, as_json and not markdown, decided))
