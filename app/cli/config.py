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
from app.cli.common import ExitCode, JsonOption, app, fail, with_services
from app.cli.decide import ExportOption, YesOption, check_export, decide
from app.cli.remote import RemoteOption, remote_url, require_app_identity, run_remote

TARGETS = ("policies", "governance")
Decision = Callable[[Any], Awaitable[None]]
TargetArgument = Annotated[str, typer.Argument(help=f"What to plan or apply: {', '.join(TARGETS)}.")]
MarkdownOption = Annotated[bool, typer.Option("--markdown", help="Print the markdown report (the default).")]


def _check(target: str) -> None:
    if target not in TARGETS:
        raise typer.BadParameter(f"unknown target {target!r}; available: {', '.join(TARGETS)}")


def drift_command(
    mode: str,
    remove_unknown_partners: bool,
    as_json: bool,
    decided: Decision | None = None,
    approvals: frozenset[str] = frozenset(),
) -> int:
    """``decided`` runs first on the same services: the operator's decision (it raises to stop)."""
    from lifecycle.drift.entry import render

    async def go(services):
        if decided is not None:
            await decided(services)
        return await recorded_drift_run(services, mode, remove_unknown_partners, approvals)

    run = asyncio.run(with_services(go))
    typer.echo(render(run, as_json=as_json))
    return run.exit_code


def governance_command(
    mode: str, as_json: bool, approved_recreates: frozenset[str] = frozenset(), decided: Decision | None = None
) -> int:
    from lifecycle.governance import render

    async def go(services):
        if decided is not None:
            await decided(services)
        return await recorded_governance_run(services, mode, approved_recreates)

    result = asyncio.run(with_services(go))
    typer.echo(json.dumps(result, indent=2, default=str) if as_json else render(result))
    return int(result["exitCode"])


async def recorded_drift_run(
    services, mode: str, remove_unknown_partners: bool, approvals: frozenset[str] = frozenset()
):
    """One policy drift run in ``mode``, recorded as the job's last run (the local command and the admin endpoint).
    ``approvals`` are what the operator approved (a guest CA policy switched on, a provider removed, a secret sent
    again); the timer never approves."""
    from lifecycle.drift.entry import run_policy_drift
    from lifecycle.ledger.status import record_run

    run = await run_policy_drift(services, mode, remove_unknown_partners, approvals)  # type: ignore[arg-type]
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


async def recorded_governance_run(services, mode: str, approved_recreates: frozenset[str]) -> dict[str, Any]:
    """One governance run in ``mode``, recorded as the job's last run (the local command and the admin endpoint)."""
    from lifecycle.governance.entry import run_with_services
    from lifecycle.ledger.status import record_run

    result = await run_with_services(services, mode, approved_recreates)  # type: ignore[arg-type]
    await record_run(
        services, "governance", {"mode": mode, "drift": result["plan"]["drift"], "exitCode": result["exitCode"]}
    )
    return result


@app.command("plan")
def plan_command(target: TargetArgument, as_json: JsonOption = False, markdown: MarkdownOption = False) -> None:
    """Show the field-level drift between the desired-state file and the tenant; change nothing."""
    _check(target)
    if target == "governance":
        raise typer.Exit(governance_command("plan", as_json and not markdown))
    raise typer.Exit(drift_command("plan", False, as_json and not markdown))


CHANGE_COLUMNS = ("change", "partner", "partnerName", "tenantId", "resource", "key", "fields", "reason")
WRITTEN = ("create", "update", "recreate", "delete")  # report-only drift is shown by the plan, never written


def _values(action: Any) -> dict[str, Any]:
    """Each changed field's value to write and the value it replaces (the plan's evidence, e.g. a lifecycle policy's
    shadow evaluation, beside them): part of the row, so the digest an apply is confirmed with (and the local
    re-check after the confirmation) binds the values shown, not only the fields' names. A file edited, or a
    tenant changed, between the plan and the apply is another plan."""
    found = {d.field: {"to": d.desired, "from": d.actual} for d in action.diffs}
    return json.loads(json.dumps(found, default=str))


async def policy_changes(
    services, remove_unknown_partners: bool, approvals: frozenset[str] = frozenset()
) -> list[dict[str, Any]] | None:
    """What ``apply policies`` would write, partner by partner name; None when a guardrail refuses the plan
    (the apply then writes nothing and says why)."""
    from lifecycle.drift.desired import desired_policies
    from lifecycle.drift.entry import drift_ports, plan_drift

    tenant = drift_ports(services).tenant
    desired = desired_policies(services.desired)
    plan, _ = await plan_drift(services, remove_unknown_partners, approvals)
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
                "values": _values(action),
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
                "values": _values(action),
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
    approve_enable: Annotated[
        list[str] | None,
        typer.Option(
            "--approve-enable",
            help="Policies: switch this managed guest Conditional Access policy (guest-mfa, "
            "guest-legacy-authentication) from report-only to on, or this native guest lifecycle policy "
            "(lifecycle-KEY) on, or widened while on, although its evaluation trips the deletion brake, as the "
            "desired state wants; adopt-lifecycle-KEY adopts the policy now carrying the file's name once the "
            "product's own is gone. Repeatable; without it the switch is held and the plan shows what the policy "
            "would have blocked or would disable or delete.",
        ),
    ] = None,
    approve_remove: Annotated[
        list[str] | None,
        typer.Option(
            "--approve-remove",
            help="Policies: remove this guest federation (google) although guests sign in with it; the plan names "
            "them. Repeatable; without it the removal is held.",
        ),
    ] = None,
    rotate_secret: Annotated[
        list[str] | None,
        typer.Option(
            "--rotate-secret",
            help="Policies: send this deployment secret to Graph again after rotating it (signup-connector, "
            "google); Graph never shows a secret back, so its change cannot be seen. Repeatable.",
        ),
    ] = None,
    yes: YesOption = False,
    export_to: ExportOption = None,
    as_json: JsonOption = False,
    markdown: MarkdownOption = False,
    remote: RemoteOption = None,
) -> None:
    """Apply the plan unless a guardrail refuses it; what fails is reported and retried next run.

    First lists every write by partner name (and tenant id), then asks for "apply N" typed back (--yes in
    scripts; refused without a terminal). Nothing to write, or a refused plan, asks nothing. With --remote the
    function app's identity applies it, and only if its plan is still the one confirmed."""
    _check(target)
    check_export(export_to)
    approved = frozenset(approve_recreate or ())
    unknown = sorted(set(approve_remove or ()) - {"google"})
    if unknown:
        raise typer.BadParameter(f"--approve-remove takes google, not {', '.join(unknown)}")
    unknown = sorted(set(rotate_secret or ()) - {"signup-connector", "google"})
    if unknown:
        raise typer.BadParameter(f"--rotate-secret takes signup-connector or google, not {', '.join(unknown)}")
    enables = (
        frozenset(approve_enable or ())
        | {f"remove-{name}" for name in approve_remove or ()}
        | {f"rotate-{name}" for name in rotate_secret or ()}
    )

    url = require_app_identity(remote_url(remote), f"apply {target}")
    if url is not None:
        args: dict[str, Any] = (
            {"approveRecreate": sorted(approved)}
            if target == "governance"
            else {"removeUnknownPartners": remove_unknown_partners, "approvals": sorted(enables)}
        )
        raise typer.Exit(
            run_remote(
                url,
                f"apply-{target}",
                args,
                title=lambda rows: f"apply {target}: {len(rows)} write(s) to the tenant",
                phrase=lambda rows: f"apply {len(rows)}",
                yes=yes,
                export_to=export_to,
                label=f"apply {target}",
                as_json=as_json and not markdown,
            )
        )

    async def changes(services) -> list[dict[str, Any]] | None:
        if target == "governance":
            return await governance_changes(services, approved)
        return await policy_changes(services, remove_unknown_partners, enables)

    async def decided(services) -> None:
        rows = await changes(services)
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
            # The operator may have taken minutes to answer: act only if the tenant still needs what was shown.
            if await changes(services) != rows:
                raise fail(
                    ExitCode.FAILED,
                    "the plan changed while it waited for the confirmation; nothing was changed",
                    f"run apply {target} again to see and confirm the new list",
                )
            watch.resumable(
                "the command compares the desired state with the tenant again: what was written is no longer "
                "a difference, so only what is left is listed and written"
            )

    if target == "governance":
        raise typer.Exit(governance_command("enforce", as_json and not markdown, approved, decided))
    raise typer.Exit(drift_command("enforce", remove_unknown_partners, as_json and not markdown, decided, enables))
