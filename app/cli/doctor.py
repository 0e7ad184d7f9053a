"""``python -m lifecycle doctor`` and ``python -m lifecycle export desired-state``: first contact with a tenant."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any

import typer

from app.cli.common import JsonOption, app
from app.cli.remote import RemoteOption, remote_url, run_remote_read
from lifecycle.doctor.checks import JOBS, exit_code, for_job, render

JobOption = Annotated[str | None, typer.Option("--job", help=f"Only the checks of one job: {', '.join(JOBS)}.")]


def probe_for(settings: Any) -> tuple[Any, Any]:
    from app.doctor_probe import GraphStorageProbe, doctor_credential

    credential = doctor_credential(settings)
    probe = GraphStorageProbe(settings, credential)

    async def close() -> None:
        await probe.close()
        if hasattr(credential, "close"):
            await credential.close()

    return probe, close


def required_for(settings: Any) -> dict[str, tuple[str, ...]]:
    from app.doctor_probe import required_permissions

    return required_permissions(settings)


@app.command()
def doctor(job: JobOption = None, as_json: JsonOption = False, remote: RemoteOption = None) -> None:
    """Check, without writing anything, what each job needs: settings, Graph token and permissions, the Graph
    reads and licences, the right to invite, the desired state against the tenant, storage and queues.
    Exit 0 all pass, 2 warnings (or checks that could not be verified), 1 failures. With --remote the function
    app runs the checks with its own identity (its Graph permissions, not yours)."""
    from lifecycle.doctor.run import run_doctor

    if job is not None and job not in JOBS:
        raise typer.BadParameter(f"choose one of {', '.join(JOBS)}", param_hint="--job")
    url = remote_url(remote)
    if url is not None:
        raise typer.Exit(run_remote_read(url, "doctor", {"job": job}, as_json=as_json))
    checks = for_job(asyncio.run(run_doctor(probe_for, required_for)), job)
    typer.echo(render(checks, as_json))
    raise typer.Exit(exit_code(checks))


export_app = typer.Typer(no_args_is_help=True, help="Write the tenant's current posture in the product's formats.")
app.add_typer(export_app, name="export")


@export_app.command("desired-state")
def export_desired_state(
    out: Annotated[Path | None, typer.Option("--out", help="Write here instead of standard output.")] = None,
) -> None:
    """The tenant's current posture as a desired-state file (loads with the product's schema; comments mark
    what a human must decide and what the format cannot express)."""
    from app.doctor_probe import export_from_settings

    text = asyncio.run(export_from_settings())
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {out}")
