"""Least privilege by job mode, proven on tenantsim: the grant of a deployment whose jobs all plan is enough
for every job to plan (and for onboarding, which has no plan mode), and an enforce run without the write
permissions it needs is refused by Graph, not by the product's own say-so.
"""

from __future__ import annotations

import uuid

import pytest

from app.bootstrap import bootstrap
from config.settings import load_settings
from graph.credentials import TenantSimCredential
from graph.permissions import Deployment, required_names
from lifecycle.drift.entry import run_policy_drift
from lifecycle.governance.entry import run_with_services
from lifecycle.sweep import entry as sweep
from tenantsim.client import TenantSimAdmin

pytestmark = pytest.mark.stack
PLANNING = required_names(Deployment())


@pytest.fixture
def fresh(local_stack):
    with TenantSimAdmin(local_stack.tenantsim_url) as admin:
        admin.seed(builtin="fresh", guests=60, random_seed=0)
        admin.reset_counters()
        yield admin
        admin.seed(builtin="fresh", guests=300, random_seed=0)


@pytest.fixture
async def planning(local_stack, fresh):
    suffix = uuid.uuid4().hex[:8]
    env = {**local_stack.env, "LIFECYCLE_TABLE_PREFIX": f"lp{suffix}", "LIFECYCLE_QUEUE_PREFIX": f"lp{suffix}-"}
    services = await bootstrap(
        load_settings(env), credential=TenantSimCredential(local_stack.tenantsim_url, roles=PLANNING)
    )
    yield services
    await services.close()


async def test_with_the_planning_grant_every_job_plans(planning, fresh):
    drift = await run_policy_drift(planning, "plan")
    assert drift.actions, "a fresh tenant drifts from the sample desired state"
    governance = await run_with_services(planning, "plan")
    assert governance["plan"]["actions"] and governance["exitCode"] == 2
    run = await sweep.run_sweep(planning, "plan", run_id="lp-plan")
    assert run["status"] == "planned" and run["totalGuests"] == 60
    assert fresh.counters()["writes"] == 0


async def test_enforcing_drift_without_its_write_permissions_is_refused_by_graph(planning, fresh):
    run = await run_policy_drift(planning, "enforce")
    assert run.failed and not any(r.ok for r in run.results)
    refused = [r for r in run.failed if "heldBack" not in (r.error or {})]  # the rest wait on a refused write
    assert refused and {r.error["code"] for r in refused} == {"Authorization_RequestDenied"}
    assert fresh.counters()["writes"] == 0
