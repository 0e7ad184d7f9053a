"""A guest lifecycle policy's whole life through the drift entry point: planned, created disabled, braked in shadow,
approved, switched on, then compared with Microsoft's compliance report. The cross-tenant side is tenantsim; the
lifecycle policies are the in-memory fake of the port (Graph's documented JSON)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta

import pytest

from adapters.memory import MemoryDriftReports
from config.desired_state import DesiredState, load_desired_state
from config.lifecycle_policies import GuestLifecyclePolicies
from config.settings import SAMPLE_DESIRED_STATE
from graph.client import build_graph_client
from graph.credentials import TenantSimCredential
from graph.permissions import GRANTED
from graph.policies import GraphPolicies
from lifecycle.drift.entry import drift_ports, run_policy_drift
from lifecycle.drift.native_compare import REPORT
from lifecycle.drift.native_policies import RESOURCE
from lifecycle.models import SignInActivity, SponsorRef
from lifecycle.plans import Change
from tenantsim.client import TenantSimAdmin
from tenantsim.server import TenantSimServer
from tests.builders import NOW, memory_services
from tests.fakes import FakeDirectory
from tests.fakes.lifecycle_policies import FakeGuestLifecyclePolicies, FakeScopeGroups

NAME = "Guests: inactive for 180 days"


@pytest.fixture
def admin(sim: TenantSimServer) -> Iterator[TenantSimAdmin]:
    with TenantSimAdmin(sim.url) as client:
        client.seed(builtin="locked-down", guests=5)
        client.configure(throttlingEnabled=False, timeCompression=1)
        client.clear_faults()
        yield client


def _desired(owner: str | None = "native") -> DesiredState:
    section = GuestLifecyclePolicies.model_validate(
        {
            "policies": {
                "inactive": {
                    "displayName": NAME,
                    "enabled": True,
                    "owner": owner,
                    "excludedGroups": ["Guests the sweep governs"],
                    "rules": [{"type": "inactivity", "days": 180}],
                    "action": {"kind": "disableThenDelete", "deleteAfterDays": 30},
                    "gracePeriodDays": 14,
                    "notifications": {"offsetsDays": [7, 1], "fallbackRecipients": ["guest-admins@contoso.com"]},
                }
            }
        }
    )
    return load_desired_state(SAMPLE_DESIRED_STATE).model_copy(update={"guest_lifecycle_policies": section})


def _tenant() -> tuple[FakeDirectory, FakeScopeGroups, dict[str, str]]:
    """Three Woodgrove guests (a partner the sweep leaves alone: optOut), two of them idle for 200 days, and one
    Fabrikam guest the sweep governs, left out of the native policy by a group it is a direct member of."""
    directory = FakeDirectory()
    ids = {}
    for name, idle in (("ann", 200), ("bob", 200), ("cy", 3)):
        guest = directory.add_guest(f"{name}@woodgrovebank.com")
        seen = SignInActivity(last_sign_in=NOW - timedelta(days=idle))
        directory.users[guest.id] = replace(guest, sign_in_activity=seen, sponsors=(SponsorRef("s1", False, True),))
        ids[name] = guest.id
    ids["dee"] = directory.add_guest("dee@fabrikam.com").id
    groups = FakeScopeGroups()
    groups.add("Guests the sweep governs", users={ids["dee"]})
    return directory, groups, ids


def _services(sim: TenantSimServer, desired: DesiredState, port: FakeGuestLifecyclePolicies, tenant, **ports):
    directory, groups, _ = tenant
    client = build_graph_client(credential=TenantSimCredential(sim.url, roles=GRANTED), base_url=f"{sim.url}/v1.0")
    return memory_services(
        directory,
        desired=desired,
        tenant_policies=GraphPolicies(client, beta_url=f"{sim.url}/beta"),
        drift_reports=MemoryDriftReports(),
        lifecycle_policies=port,
        scope_groups=groups,
        **ports,
    )


def _native(run, resource: str = RESOURCE):
    return next(a for a in run.actions if a.resource == resource and a.key == "inactive")


async def test_planned_created_disabled_braked_in_shadow_approved_switched_on_and_compared(sim, admin):
    port, tenant = FakeGuestLifecyclePolicies(), _tenant()
    ids = tenant[2]
    services = _services(sim, _desired(), port, tenant)

    planned = await run_policy_drift(services, "plan")
    assert _native(planned).change is Change.CREATE and port.policies == {}
    exposure = next(e for e in planned.evidence if e.kind == "licence-exposure")
    assert exposure.value == {"governedGuests": 3, "pricePerGovernedGuest": 0.75, "currency": "USD", "monthly": 2.25}

    created = await run_policy_drift(services, "enforce")
    assert created.failed == [] and created.refusals == []
    policy = port.named(NAME)
    assert policy["isEnabled"] is False
    excluded = {g["id"] for g in policy["scope"]["excludedGroups"]}
    assert excluded == {*tenant[1].names, services.desired.exclusions.protected_group_id}

    held = await run_policy_drift(services, "enforce")  # the hourly timer: it never approves
    action = _native(held)
    assert action.change is Change.REPORT and "--approve-enable lifecycle-inactive" in action.reason
    assert "trips the deletion brake" in action.reason
    shadow = next(d.actual for d in action.diffs if d.field == "shadowEvaluation")
    assert "would disable 2 of 3 governed guest(s)" in shadow and "ann@woodgrovebank.com" in shadow
    assert port.named(NAME)["isEnabled"] is False
    report = await drift_ports(services).reports.get(held.run_id)
    assert report is not None and "ann@woodgrovebank.com" in report.markdown

    approved = await run_policy_drift(services, "enforce", approvals=frozenset({"lifecycle-inactive"}))
    assert approved.failed == [] and port.named(NAME)["isEnabled"] is True
    assert "approved by an operator" in _native(approved).reason
    audited = [e async for e in services.audit.entries() if e.target == f"{RESOURCE}/inactive"]
    assert [e.action for e in audited] == ["policy-drift.create", "policy-drift.update"]
    assert audited[1].details["after"]["isEnabled"] is True and audited[1].details["before"]["isEnabled"] is False

    policy_id = port.named(NAME)["id"]
    port.publish_report(policy_id, {ids["ann"]: "nonCompliant", ids["bob"]: "compliant", ids["cy"]: "nonCompliant"})
    compared = await run_policy_drift(services, "plan")
    disagreement = _native(compared, REPORT)
    assert disagreement.change is Change.REPORT
    fields = {d.field: d for d in disagreement.diffs}
    assert "bob@woodgrovebank.com" in fields["noncompliantByProductOnly"].desired
    assert "cy@woodgrovebank.com" in fields["noncompliantByMicrosoftOnly"].actual
    # What the on-call engineer does about it: who acts on whom, and where to look.
    assert "put any who must stay directly in an excluded group" in disagreement.reason
    assert "left alone by Microsoft" in disagreement.reason
    stored = await drift_ports(services).reports.get(compared.run_id)
    assert stored is not None and "noncompliantByMicrosoftOnly" in stored.markdown


async def test_a_policy_whose_guests_the_sweep_also_judges_is_never_switched_on_without_an_owner(sim, admin):
    port, tenant = FakeGuestLifecyclePolicies(), _tenant()
    directory = tenant[0]
    directory.add_guest("eve@northwindtraders.com")  # the sweep judges Northwind's guests, and nobody excluded her
    services = _services(sim, _desired(owner=None), port, tenant)
    await run_policy_drift(services, "enforce")
    held = await run_policy_drift(services, "enforce", approvals=frozenset({"lifecycle-inactive"}))
    action = _native(held)
    assert action.change is Change.REPORT and "choose who judges them" in action.reason
    assert "northwind (1)" in action.reason
    assert port.named(NAME)["isEnabled"] is False


async def test_the_files_priorities_are_written_once_the_policies_exist_and_then_hold(sim, admin):
    port, tenant = FakeGuestLifecyclePolicies(), _tenant()
    desired = _desired()
    section = desired.guest_lifecycle_policies
    assert section is not None
    first = section.policies["inactive"].model_copy(update={"priority": 2})
    second = first.model_copy(update={"display_name": "Guests: unsponsored", "priority": 1, "enabled": False})
    wanted = section.model_copy(update={"policies": {"inactive": first, "unsponsored": second}})
    desired = desired.model_copy(update={"guest_lifecycle_policies": wanted})
    services = _services(sim, desired, port, tenant, lifecycle_priority=port)

    created = await run_policy_drift(services, "enforce")
    order = next(a for a in created.actions if a.resource.endswith("lifecyclePolicyPriorityConfigurations"))
    assert order.change is Change.NONE and "ordered on the next run" in order.reason
    assert [port.policies[i]["displayName"] for i in port.order] == [NAME, "Guests: unsponsored"]

    ordered = await run_policy_drift(services, "enforce")
    assert ordered.failed == []
    assert [port.policies[i]["displayName"] for i in port.order] == ["Guests: unsponsored", NAME]
    settled = await run_policy_drift(services, "plan")
    order = next(a for a in settled.actions if a.resource.endswith("lifecyclePolicyPriorityConfigurations"))
    assert order.change is Change.NONE


async def test_the_confirmed_list_of_changes_binds_the_values_not_only_the_fields_names(sim, admin):
    """apply policies (local re-check, and the admin endpoint's digest) compares the list confirmed with the list
    computed again: a file edit or a tenant change between them that keeps the same fields must not match."""
    from app.cli.config import policy_changes

    port, tenant = FakeGuestLifecyclePolicies(), _tenant()
    directory = tenant[0]
    await run_policy_drift(_services(sim, _desired(), port, tenant), "enforce")  # created disabled
    approvals = frozenset({"lifecycle-inactive"})
    shown = await policy_changes(_services(sim, _desired(), port, tenant), False, approvals)
    again = await policy_changes(_services(sim, _desired(), port, tenant), False, approvals)
    assert shown and shown == again
    switch = next(r for r in shown if r["resource"] == RESOURCE)
    assert "would disable 2 of 3" in switch["values"]["shadowEvaluation"]["from"]

    for n in range(3):  # three more idle guests since the operator read the list: 5 guests would be disabled
        guest = directory.add_guest(f"late{n}@woodgrovebank.com")
        seen = SignInActivity(last_sign_in=NOW - timedelta(days=400))
        directory.users[guest.id] = replace(guest, sign_in_activity=seen, sponsors=(SponsorRef("s1", False, True),))
    widened = await policy_changes(_services(sim, _desired(), port, tenant), False, approvals)
    assert widened is not None and [r["fields"] for r in widened] == [r["fields"] for r in shown]
    assert widened != shown

    section = _desired().guest_lifecycle_policies
    assert section is not None
    edited = section.policies["inactive"].model_copy(update={"grace_period_days": 1})
    desired = _desired().model_copy(
        update={"guest_lifecycle_policies": section.model_copy(update={"policies": {"inactive": edited}})}
    )
    port.named(NAME)["gracePeriodInDays"] = 21  # a grace period differed when the list was shown, and still does
    before = await policy_changes(_services(sim, _desired(), port, tenant), False, frozenset())
    after = await policy_changes(_services(sim, desired, port, tenant), False, frozenset())
    assert before is not None and after is not None
    assert [r["fields"] for r in before] == [r["fields"] for r in after] and before != after


async def test_a_policy_renamed_into_the_files_name_is_not_adopted_and_the_products_own_is_put_back(sim, admin):
    """The product remembers the id it created: another policy that takes the file's display name (created or
    renamed in the admin center) is never rewritten without an operator adopting it, and the product's own policy,
    renamed away, gets its name back."""
    from lifecycle.drift.native_ownership import marker_key

    port, tenant = FakeGuestLifecyclePolicies(), _tenant()
    services = _services(sim, _desired(), port, tenant)
    await run_policy_drift(services, "enforce")  # created disabled, and remembered
    ours = port.named(NAME)["id"]
    assert (await services.work_items.get(marker_key("inactive"))).result["id"] == ours  # type: ignore[union-attr]

    port.policies[ours]["displayName"] = "Renamed in the portal"
    put_back = await run_policy_drift(services, "enforce")
    assert "displayName" in {d.field for d in _native(put_back).diffs}
    assert port.policies[ours]["displayName"] == NAME

    del port.policies[ours]  # deleted in the admin center; someone else's policy takes the name, all guests, delete
    other = await port.create_guest_policy(
        {
            "@odata.type": "#microsoft.graph.identityGovernance.guestLifecyclePolicy",
            "displayName": NAME,
            "isEnabled": False,
            "enforcementAction": {"@odata.type": "#microsoft.graph.identityGovernance.deleteOnlyEnforcementAction"},
            "rules": [],
        }
    )
    writes = len(port.writes)
    held = await run_policy_drift(services, "enforce", approvals=frozenset({"lifecycle-inactive"}))
    action = _native(held)
    assert action.change is Change.REPORT and other["id"] in action.reason
    assert "--approve-enable adopt-lifecycle-inactive" in action.reason
    assert len(port.writes) == writes and held.failed == []

    adopted = await run_policy_drift(services, "enforce", approvals=frozenset({"adopt-lifecycle-inactive"}))
    assert adopted.failed == [] and len(port.writes) > writes
    assert (await services.work_items.get(marker_key("inactive"))).result["id"] == other["id"]  # type: ignore[union-attr]
    assert port.policies[other["id"]]["isEnabled"] is False  # adopted, still switched on only past the brake
    again = await run_policy_drift(
        services, "plan", approvals=frozenset({"adopt-lifecycle-inactive", "adopt-lifecycle-x"})
    )
    assert "--approve-enable adopt-lifecycle-inactive: nothing to adopt" in " ".join(again.warnings)
    assert "--approve-enable adopt-lifecycle-x: no such lifecycle policy" in " ".join(again.warnings)
