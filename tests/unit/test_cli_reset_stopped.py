"""The on-call engineer's view of a reset run stopped for a missing permission: `failed --json` and `status --json`
name the exact command that resets the dead-lettered guest and the rest of the run, not only "replay"."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from typer.testing import CliRunner

from app.cli.common import ExitCode
from app.cli.main import app
from lifecycle.errors import PermissionDeniedError
from lifecycle.reset.local import run_locally
from tests.builders.reset import redeemed, services_with
from tests.fakes import FakeDirectory, FakeLookup

RERUN = "python -m lifecycle run redemption-reset --mode enforce --run-id reset-night"


@pytest.fixture(name="services")
def _services(monkeypatch: pytest.MonkeyPatch):
    directory = FakeDirectory()
    for n in range(3):
        redeemed(directory, f"p{n}@fabrikam.com", "google")

    async def denied(request):
        raise PermissionDeniedError("Insufficient privileges.", status=403, code="Authorization_RequestDenied")

    directory.invite_guest = denied  # type: ignore[method-assign]
    services = services_with(directory, FakeLookup())

    async def bootstrap(*_: Any, **__: Any):
        return services

    monkeypatch.setattr("app.bootstrap.bootstrap", bootstrap)
    return services


def test_a_stopped_reset_run_names_the_command_that_resets_the_rest(services):
    summary = asyncio.run(run_locally(services, "enforce", "reset-night"))
    assert summary["reason"].startswith("stopped:")
    runner = CliRunner()
    failed = runner.invoke(app, ["failed", "--json"], env={"COLUMNS": "240"})
    assert failed.exit_code == ExitCode.ATTENTION, failed.output
    # One row for the one guest: the guest's reset marker is not a second failure to act on.
    [row] = json.loads(failed.stdout)
    assert row["error"] == "permission-missing" and "User.ReadWrite.All" in row["message"]
    assert RERUN in row["next"]
    # One next step, not two contradicting ones: a replay of this dead letter would reset this guest only.
    assert "replay" not in row["message"] and RERUN in row["message"]
    status = runner.invoke(app, ["status", "--json"], env={"COLUMNS": "240"})
    [flag] = [f for f in json.loads(status.stdout)["attention"] if f["runId"] == "reset-night"]
    assert flag["kind"] == "stopped" and flag["next"].endswith(RERUN)
    assert "replay" not in flag["detail"] and flag["detail"].count(RERUN) == 1
