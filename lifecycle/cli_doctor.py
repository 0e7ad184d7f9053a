"""``python -m lifecycle doctor``: first contact with a tenant."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import typer

from lifecycle.cli import JsonOption, app
from lifecycle.doctor.checks import JOBS, exit_code, for_job, render

JobOption = Annotated[str | None, typer.Option("--job", help=f"Only the checks of one job: {', '.join(JOBS)}.")]


def _probe_for(settings: Any) -> tuple[Any, Any]:
    from lifecycle.adapters.doctor import GraphStorageProbe, doctor_credential

    credential = doctor_credential(settings)
    probe = GraphStorageProbe(settings, credential)

    async def close() -> None:
        await probe.close()
        if hasattr(credential, "close"):
            await credential.close()

    return probe, close


def _required_for(settings: Any) -> dict[str, tuple[str, ...]]:
    from lifecycle.adapters.doctor import required_permissions

    return required_permissions(settings)


@app.command()
def doctor(job: JobOption = None, as_json: JsonOption = False) -> None:
    """Check, without writing anything, what each job needs: settings, Graph token and permissions, the Graph
    reads and licences, the right to invite, the desired state against the tenant, storage and queues.
    Exit 0 all pass, 2 warnings (or checks that could not be verified), 1 failures."""
    from lifecycle.doctor.run import run_doctor

    if job is not None and job not in JOBS:
        raise typer.BadParameter(f"choose one of {', '.join(JOBS)}", param_hint="--job")
    checks = for_job(asyncio.run(run_doctor(_probe_for, _required_for)), job)
    typer.echo(render(checks, as_json))
    raise typer.Exit(exit_code(checks))
