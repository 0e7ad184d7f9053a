"""`apply policies` against tenantsim through the command line: every write is listed by the partner's name and
tenant id (a partner the file does not name by the tenant's own display name) before the tenant changes."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from adapters.memory import MemoryDriftReports
from app.cli import decide
from app.cli.common import ExitCode
from app.cli.main import app
from config.desired_state import load_desired_state
from config.settings import SAMPLE_DESIRED_STATE
from graph.client import build_graph_client
from graph.credentials import TenantSimCredential
from graph.permissions import GRANTED
from graph.policies import GraphPolicies
from lifecycle.services import Services
from tenantsim.client import TenantSimAdmin
from tenantsim.seed import FABRIKAM_TENANT_ID, WOODGROVE_TENANT_ID
from tenantsim.server import TenantSimServer
from tests.builders import memory_services


def _bootstrap(monkeypatch: pytest.MonkeyPatch, sim: TenantSimServer, without: str | None = None) -> None:
    desired = load_desired_state(SAMPLE_DESIRED_STATE)
    if without:
        desired = desired.model_copy(update={"partners": {k: v for k, v in desired.partners.items() if k != without}})

    async def bootstrap(*_: Any, **__: Any) -> Services:
        """A Graph client per command, as the composition root builds one per process."""
        credential = TenantSimCredential(sim.url, roles=GRANTED)
        client = build_graph_client(credential=credential, base_url=f"{sim.url}/v1.0")
        gateway = GraphPolicies(client, beta_url=f"{sim.url}/beta", conditional_access_interval=0.0)
        return memory_services(desired=desired, tenant_policies=gateway, drift_reports=MemoryDriftReports())

    monkeypatch.setattr("app.bootstrap.bootstrap", bootstrap)


def cli(*args: str, answer: str | None = None) -> Result:
    return CliRunner().invoke(app, list(args), input=answer, env={"COLUMNS": "300"})


def test_apply_policies_names_each_partner_and_writes_nothing_until_confirmed(
    sim: TenantSimServer, admin: TenantSimAdmin, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    admin.seed(builtin="fresh", guests=5)
    _bootstrap(monkeypatch, sim)
    before = admin.snapshot()["policies"]
    listed = tmp_path / "apply.csv"
    refused = cli("apply", "policies", "--export", str(listed))
    assert refused.exit_code == ExitCode.USAGE and "--yes" in refused.stderr, refused.output
    assert admin.snapshot()["policies"] == before
    rows = list(csv.DictReader(listed.open()))
    fabrikam = next(r for r in rows if r["tenantId"] == FABRIKAM_TENANT_ID)
    assert (fabrikam["partner"], fabrikam["partnerName"], fabrikam["change"]) == (
        "fabrikam",
        "Fabrikam, Inc.",
        "create",
    )
    assert "Fabrikam, Inc." in refused.stdout
    assert all(r["change"] != "report" for r in rows)  # Conditional Access drift is shown by plan, never written

    monkeypatch.setattr(decide, "interactive", lambda: True)
    assert cli("apply", "policies", answer="apply 1\n").exit_code == ExitCode.FAILED
    assert admin.snapshot()["policies"] == before
    applied = cli("apply", "policies", answer=f"apply {len(rows)}\n")
    assert applied.exit_code in (ExitCode.OK, ExitCode.ATTENTION), applied.output  # CA stays report-only drift
    assert admin.snapshot()["policies"] != before


def test_a_partner_the_file_does_not_name_is_listed_by_the_tenants_display_name(
    sim: TenantSimServer, admin: TenantSimAdmin, monkeypatch: pytest.MonkeyPatch
):
    admin.seed(builtin="locked-down", guests=5)
    _bootstrap(monkeypatch, sim, without="woodgrove")
    refused = cli("apply", "policies", "--remove-unknown-partners")
    assert refused.exit_code == ExitCode.USAGE
    assert WOODGROVE_TENANT_ID in refused.stdout and "Woodgrove Bank" in refused.stdout and "delete" in refused.stdout
    partners = admin.snapshot()["policies"]["crossTenantAccessPartners"]
    assert len(partners) == 3
    removed = cli("apply", "policies", "--remove-unknown-partners", "--yes")
    assert removed.exit_code in (ExitCode.OK, ExitCode.ATTENTION), removed.output
    assert len(admin.snapshot()["policies"]["crossTenantAccessPartners"]) == 2


def test_a_tenant_that_changes_while_the_operator_confirms_is_not_written(
    sim: TenantSimServer, admin: TenantSimAdmin, monkeypatch: pytest.MonkeyPatch
):
    """apply plans again after the typed confirmation: another list than the one confirmed writes nothing."""
    admin.seed(builtin="fresh", guests=5)
    _bootstrap(monkeypatch, sim)
    moved: dict[str, Any] = {}

    def operator_answers_while_the_tenant_moves(text: str, **_: Any) -> str:
        admin.seed(builtin="locked-down", guests=5)  # someone else's change lands during the prompt
        moved.update(admin.snapshot()["policies"])
        return text.split('"')[1]  # the phrase typed back exactly

    monkeypatch.setattr(decide, "interactive", lambda: True)
    monkeypatch.setattr(decide.typer, "prompt", operator_answers_while_the_tenant_moves)
    result = cli("apply", "policies")
    assert result.exit_code == ExitCode.FAILED, result.output
    assert "plan changed" in result.stderr
    assert admin.snapshot()["policies"] == moved
