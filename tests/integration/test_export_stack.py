"""`export desired-state` against tenantsim's locked-down and fresh tenants: the file loads with the product's
schema, and the drift plan against the tenant it came from has nothing to write."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from app.doctor_probe import graph_ports
from config.desired_state import load_desired_state
from config.settings import load_settings
from graph.credentials import TenantSimCredential
from lifecycle.drift.desired import desired_policies
from lifecycle.drift.planner import plan_policies, read_tenant
from lifecycle.export.run import export_desired_state
from lifecycle.governance.job import make_plan
from lifecycle.plans import Change
from tenantsim.server import TenantSimServer
from tenantsim.stack import TENANT_ID

pytestmark = pytest.mark.stack

WRITES = {Change.CREATE, Change.UPDATE, Change.RECREATE, Change.DELETE}
READ_ROLES = frozenset(
    {
        "Policy.Read.All",
        "Policy.Read.B2BManagementPolicy",
        "IdentityProvider.Read.All",
        "CrossTenantInformation.ReadBasic.All",
        "EntitlementManagement.ReadWrite.All",
        "AccessReview.Read.All",
    }
)


def _settings(url: str):
    return load_settings(
        {
            "LIFECYCLE_ENVIRONMENT": "local",
            "LIFECYCLE_TENANT_ID": TENANT_ID,
            "LIFECYCLE_TABLES_CONNECTION_STRING": "UseDevelopmentStorage=true",
            "LIFECYCLE_QUEUE_TRANSPORT": "storage",
            "LIFECYCLE_QUEUES_CONNECTION_STRING": "UseDevelopmentStorage=true",
            "LIFECYCLE_GRAPH_BASE_URL": f"{url}/v1.0",
            "LIFECYCLE_GRAPH_BETA_URL": f"{url}/beta",
            "LIFECYCLE_GRAPH_CREDENTIAL": "tenantsim",
        }
    )


async def _export_and_plan(url: str, out: Path) -> tuple[str, list, list]:
    settings = _settings(url)
    credential = TenantSimCredential(url, roles=READ_ROLES)
    policies, governance = graph_ports(settings, credential)
    text = await export_desired_state(TENANT_ID, policies, governance)
    await asyncio.to_thread(out.write_text, text, encoding="utf-8")
    state = await asyncio.to_thread(load_desired_state, out)
    desired = desired_policies(state)
    drift = plan_policies(desired, await read_tenant(policies, desired))
    plan, _ = await make_plan(governance, state)
    return text, [a for a in drift.actions if a.change in WRITES], [a for a in plan.actions if a.change in WRITES]


@pytest.mark.parametrize("posture", ["locked-down", "fresh"])
def test_an_exported_tenant_has_no_writable_drift_or_governance_change_against_itself(posture, tmp_path):
    with TenantSimServer(posture=posture) as sim:
        text, drift, governance = asyncio.run(_export_and_plan(sim.url, tmp_path / "exported.yaml"))
    assert [(a.resource, a.key, a.reason) for a in drift] == []
    assert [(a.resource, a.key, a.reason) for a in governance] == []
    # What the format cannot hold is reported as comments, not dropped.
    assert "# in the tenant, not exported: access package 'Fabrikam engineering'" in text
    assert "# DECIDE: appHoldsGuestInviter" in text


def test_the_fresh_tenants_open_default_is_marked_for_a_human_and_partners_are_named_from_their_tenants(tmp_path):
    with TenantSimServer(posture="fresh") as sim:
        fresh, _, _ = asyncio.run(_export_and_plan(sim.url, tmp_path / "fresh.yaml"))
    with TenantSimServer(posture="locked-down") as sim:
        locked, _, _ = asyncio.run(_export_and_plan(sim.url, tmp_path / "locked.yaml"))
    assert "# DECIDE: the default lets users of every external tenant in" in fresh
    assert "# DECIDE: the default lets users" not in locked
    partners = load_desired_state(tmp_path / "locked.yaml").partners
    assert partners["fabrikam-inc"].display_name == "Fabrikam, Inc."
    assert partners["fabrikam-inc"].tenant_id == "9a3d526c-1b7e-4c2f-8d6a-5e0f3b7c9d21"
