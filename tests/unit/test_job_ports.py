"""Each job's ports: built explicitly by the composition root, read by the job from Services.jobs, and absent
(the job refuses to run) when the root did not build them."""

from __future__ import annotations

import pytest

from adapters.memory import MemoryDriftReports, MemorySweepRuns
from app.bootstrap import bootstrap
from graph.assignment_expiries import GraphAssignmentExpiries
from graph.credentials import TenantSimCredential
from graph.governance import GraphGovernance
from graph.groups import GraphGroupMembers
from graph.lifecycle_policies import GraphGuestLifecyclePolicies, GraphLifecyclePolicyPriority
from graph.policies import GraphPolicies
from graph.scope_groups import GraphScopeGroups
from graph.tenants import GraphProviderLookup
from graph.users import GraphSweepReads
from lifecycle.drift.entry import run_policy_drift
from lifecycle.drift.ports import DriftPorts
from lifecycle.errors import PermissionDeniedError
from lifecycle.governance.ports import GovernancePorts
from lifecycle.reset.entry import run_reset_detection
from lifecycle.reset.ports import ResetPorts
from lifecycle.safety import Write, gate_of
from lifecycle.services import JobPorts
from lifecycle.sweep import entry as sweep
from lifecycle.sweep.ports import SweepPorts
from tests.builders import memory_services
from tests.builders.sweep import add, relaxed
from tests.fakes import FakeDirectory


async def test_bootstrap_builds_every_jobs_ports_on_the_graph_client_and_the_gate_shares_the_group_reads():
    """One GraphGroupMembers answers the gate's live check and the sweep's and reset's member listing; the
    sweep reads guests through GraphSweepReads, not the Directory port."""
    fakes = memory_services()
    kernel = ("work_items", "guests", "audit", "rejections", "transport")
    runs, reports = MemorySweepRuns(), MemoryDriftReports()
    services = await bootstrap(
        fakes.settings,
        desired=fakes.desired,
        credential=TenantSimCredential("http://127.0.0.1:9"),  # never called: nothing here reaches Graph
        sweep_runs=runs,
        drift_reports=reports,
        **{name: getattr(fakes, name) for name in kernel},
    )
    try:
        swept = services.jobs.find(SweepPorts)
        reset = services.jobs.find(ResetPorts)
        drift = services.jobs.find(DriftPorts)
        governance = services.jobs.find(GovernancePorts)
        assert swept is not None and reset is not None and drift is not None and governance is not None
        assert swept.runs is runs and reset.runs is runs and drift.reports is reports
        assert isinstance(swept.guest_reads, GraphSweepReads)
        assert isinstance(swept.expiries, GraphAssignmentExpiries)
        assert isinstance(services.protected_groups, GraphGroupMembers)
        assert swept.membership is services.protected_groups and reset.membership is services.protected_groups
        assert isinstance(reset.lookup, GraphProviderLookup)
        assert isinstance(drift.tenant, GraphPolicies) and isinstance(governance.graph, GraphGovernance)
        # Microsoft's guest lifecycle policies, their excluded groups and their order: guestLifecyclePolicies is
        # planned instead of refused as lifecycle-policies-not-composed.
        assert isinstance(drift.lifecycle_policies, GraphGuestLifecyclePolicies)
        assert isinstance(drift.scope_groups, GraphScopeGroups)
        assert isinstance(drift.lifecycle_priority, GraphLifecyclePolicyPriority)
    finally:
        await services.close()


async def test_a_bundle_built_without_a_jobs_ports_makes_that_job_refuse_to_run():
    """No run store: neither the sweep nor reset has ports; no tenant gateway: drift has none. Each entry
    says what the composition root did not build instead of running on a substitute."""
    services = memory_services()
    assert services.jobs.find(SweepPorts) is None and services.jobs.find(ResetPorts) is None
    with pytest.raises(RuntimeError, match="no sweep run store"):
        await sweep.run_sweep(services, "plan")
    with pytest.raises(RuntimeError, match="no sweep run store"):
        await run_reset_detection(services, "plan")
    with pytest.raises(RuntimeError, match="tenant_policies/drift_reports"):
        await run_policy_drift(services, "plan")


async def test_the_sweep_plans_from_its_guest_reads_port_not_from_the_directory():
    """The guests the sweep examines are the ones its guest_reads port lists, as in production."""
    reads = FakeDirectory()
    stale = add(reads, days_since_sign_in=120)
    services = relaxed(memory_services(FakeDirectory(), sweep_runs=MemorySweepRuns(), guest_reads=reads))
    summary = await sweep.run_sweep(services, "plan")
    assert summary["totalGuests"] == 1 and summary["disable"] == 1
    assert [a["objectId"] for a in (await sweep.show(services, summary["runId"]))["plan"]] == [stale.id]


async def test_without_protected_group_reads_the_gate_refuses_to_touch_any_guest():
    """The gate checks the protected group through Services.protected_groups only: a directory that could
    answer is not consulted behind the bundle's back."""
    directory = FakeDirectory()
    guest = directory.add_guest("ana.lopez@fabrikam.com")
    services = memory_services(directory, group_membership=None)
    assert services.desired.exclusions.protected_group_id
    with pytest.raises(PermissionDeniedError, match="cannot check membership"):
        await gate_of(services).refusal(guest, None, Write.DISABLE, managed_only=False)


def test_a_bundle_holds_one_ports_object_per_job():
    runs = MemorySweepRuns()
    directory = FakeDirectory()
    with pytest.raises(ValueError, match="two SweepPorts"):
        JobPorts(SweepPorts(runs, directory), SweepPorts(runs, directory))
    only = JobPorts(SweepPorts(runs, directory))
    assert only.find(DriftPorts) is None and only.find(SweepPorts) is not None
