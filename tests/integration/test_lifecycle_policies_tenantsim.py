"""graph.lifecycle_policies against tenantsim: Microsoft's guest lifecycle policies through the product's Graph
client, under each reading tenantsim offers where the pages leave a shape open."""

from __future__ import annotations

import inspect
from collections.abc import Iterator

import pytest

from graph.client import build_graph_client
from graph.credentials import TenantSimCredential
from graph.lifecycle_policies import GraphGuestLifecyclePolicies, GraphLifecyclePolicyPriority
from graph.permissions import GUEST_LIFECYCLE_POLICIES, feature_grant
from lifecycle.drift.native_ports import GUEST_POLICY_TYPE, GuestLifecyclePolicies
from lifecycle.drift.native_priority import LifecyclePolicyPriority
from lifecycle.errors import BadRequestError, GraphError, PermissionDeniedError
from tenantsim.client import TenantSimAdmin
from tenantsim.seed import FABRIKAM_COLLABORATORS_GROUP_ID, PROTECTED_GROUP_ID
from tenantsim.server import TenantSimServer

NS = "#microsoft.graph.identityGovernance"
GUESTS = 120
READINGS = {
    "lifecyclePolicyExcludedGroups": "bind",
    "lifecyclePolicyRulesInline": True,
    "lifecyclePolicyRuleMethods": "none",
    "lifecyclePolicyReportBeforeProcessing": "notFound",
    "guestLifecyclePolicyLimit": 10,
    "lifecyclePolicyPortalRanges": True,
    "lifecyclePolicyUpdateUnlisted": "accept",
}


@pytest.fixture(scope="module")
def sim() -> Iterator[TenantSimServer]:
    with TenantSimServer(guests=GUESTS) as server:
        yield server


@pytest.fixture
def admin(sim: TenantSimServer) -> Iterator[TenantSimAdmin]:
    with TenantSimAdmin(sim.url) as client:
        client.seed(guests=GUESTS)
        client.configure(throttlingEnabled=False, clockOffsetSeconds=0, **READINGS)
        client.clear_faults()
        client.reset_counters()
        yield client


def _gateway(sim: TenantSimServer, roles: frozenset[str] | None = None) -> GraphGuestLifecyclePolicies:
    roles = feature_grant(GUEST_LIFECYCLE_POLICIES) if roles is None else roles
    client = build_graph_client(credential=TenantSimCredential(sim.url, roles=roles), base_url=f"{sim.url}/v1.0")
    return GraphGuestLifecyclePolicies(client)


def _body(name: str = "Inactive partner guests", *excluded: str) -> dict:
    return {
        "displayName": name,
        "isEnabled": True,
        "gracePeriodInDays": 7,
        "enforcementAction": {
            "@odata.type": f"{NS}.disableThenDeleteEnforcementAction",
            "deletionGracePeriodInDays": 30,
        },
        "rules": [
            {"@odata.type": f"{NS}.inactivityRule", "isEnabled": True, "lastActivityThresholdInDays": 90},
            {"@odata.type": f"{NS}.sponsorPresenceRule", "isEnabled": True, "minimumSponsorCount": 1},
        ],
        "scope": {"@odata.type": f"{NS}.allExcludingGroupsSubjectSet", "excludedGroups": [{"id": g} for g in excluded]}
        if excluded
        else None,
    }


def _excluded(policy: dict) -> list[str]:
    return [g["id"] for g in (policy.get("scope") or {}).get("excludedGroups", [])]


def test_the_gateway_has_every_method_of_the_port_with_its_parameters_and_kind():
    wanted = {n: f for n, f in vars(GuestLifecyclePolicies).items() if inspect.isfunction(f) and not n.startswith("_")}
    assert len(wanted) == 6
    for name, declared in wanted.items():
        given = getattr(GraphGuestLifecyclePolicies, name)
        assert list(inspect.signature(given).parameters) == list(inspect.signature(declared).parameters), name
        kind = (inspect.iscoroutinefunction(declared), inspect.isasyncgenfunction(given))
        assert kind == (inspect.iscoroutinefunction(given), name == "report_subjects"), name


@pytest.mark.parametrize("excluded_groups", ["bind", "inline"])
async def test_a_created_policy_is_listed_with_its_rules_and_excluded_group_ids_under_either_reading(
    sim, admin, excluded_groups
):
    admin.configure(lifecyclePolicyExcludedGroups=excluded_groups)
    gateway = _gateway(sim)
    created = await gateway.create_guest_policy(_body("Partners", PROTECTED_GROUP_ID, FABRIKAM_COLLABORATORS_GROUP_ID))
    assert created["@odata.type"] == GUEST_POLICY_TYPE and created["versionNumber"] == 1
    [listed] = await gateway.list_guest_policies()
    assert listed["id"] == created["id"]
    assert [r["@odata.type"] for r in listed["rules"]] == [f"{NS}.inactivityRule", f"{NS}.sponsorPresenceRule"]
    assert sorted(_excluded(listed)) == sorted([PROTECTED_GROUP_ID, FABRIKAM_COLLABORATORS_GROUP_ID])


async def test_rules_are_read_from_their_own_collection_when_a_policy_comes_without_them(sim, admin):
    admin.configure(lifecyclePolicyRulesInline=False)
    gateway = _gateway(sim)
    created = await gateway.create_guest_policy(_body())
    [listed] = await gateway.list_guest_policies()
    assert [r["id"] for r in listed["rules"]] == [r["id"] for r in created["rules"]]
    assert any(e["path"].endswith(f"/lifecyclePolicies/{created['id']}/rules") for e in admin.requests())


async def test_a_documented_limit_is_raised_without_a_second_attempt(sim, admin):
    gateway = _gateway(sim)
    too_many = _body()
    too_many["rules"] = too_many["rules"] * 6
    admin.reset_counters()
    with pytest.raises(BadRequestError) as refused:
        await gateway.create_guest_policy(too_many)
    assert refused.value.code == "lifecyclePolicyRulesLimitExceeded"
    assert [e["method"] for e in admin.requests()] == ["POST"]


async def test_an_update_changes_the_policy_and_its_version(sim, admin):
    gateway = _gateway(sim)
    created = await gateway.create_guest_policy(_body())
    await gateway.update_guest_policy(created["id"], {"displayName": "Renamed", "isEnabled": False})
    [listed] = await gateway.list_guest_policies()
    assert (listed["displayName"], listed["isEnabled"], listed["versionNumber"]) == ("Renamed", False, 2)
    assert listed["rules"] == created["rules"]


async def test_a_grace_period_graph_refuses_in_an_update_leaves_the_rest_written_and_names_the_admin_center(sim, admin):
    """Under the reading where the update takes only the properties its page lists, a switch off sent with a
    grace period still lands; the refusal is raised, not swallowed. A rule that neither way can change says so."""
    admin.configure(lifecyclePolicyUpdateUnlisted="refuse")
    gateway = _gateway(sim)
    created = await gateway.create_guest_policy(_body())
    with pytest.raises(BadRequestError) as refused:
        await gateway.update_guest_policy(created["id"], {"isEnabled": False, "gracePeriodInDays": 14})
    assert "admin center" in str(refused.value) and "the rest of the update was written" in str(refused.value)
    [listed] = await gateway.list_guest_policies()
    assert (listed["isEnabled"], listed["gracePeriodInDays"]) == (False, 7)
    inactivity = created["rules"][0]
    with pytest.raises(BadRequestError) as rule_refused:
        await gateway.update_rule(
            created["id"],
            inactivity["id"],
            {"@odata.type": inactivity["@odata.type"], "lastActivityThresholdInDays": 120},
        )
    assert "change the rule in the Microsoft Entra admin center" in str(rule_refused.value)


@pytest.mark.parametrize(("methods", "patched_path"), [("none", "policy"), ("patch", "rule")])
async def test_a_rule_is_updated_directly_where_served_and_through_its_policy_where_not(
    sim, admin, methods, patched_path
):
    admin.configure(lifecyclePolicyRuleMethods=methods)
    gateway = _gateway(sim)
    created = await gateway.create_guest_policy(_body())
    inactivity = created["rules"][0]
    admin.reset_counters()
    await gateway.update_rule(
        created["id"], inactivity["id"], {"@odata.type": inactivity["@odata.type"], "lastActivityThresholdInDays": 120}
    )
    [listed] = await gateway.list_guest_policies()
    assert [r["lastActivityThresholdInDays"] for r in listed["rules"] if "lastActivityThresholdInDays" in r] == [120]
    assert [r["id"] for r in listed["rules"]] == [r["id"] for r in created["rules"]]
    patches = [e["path"] for e in admin.requests() if e["method"] == "PATCH" and e["status"] == 204]
    expected = f"/rules/{inactivity['id']}" if patched_path == "rule" else f"/lifecyclePolicies/{created['id']}"
    assert len(patches) == 1 and patches[0].endswith(expected)


@pytest.mark.parametrize("before", ["notFound", "notStarted"])
async def test_a_policy_never_processed_has_no_report_then_its_subjects_are_paged(sim, admin, before):
    admin.configure(lifecyclePolicyReportBeforeProcessing=before)
    gateway = _gateway(sim)
    created = await gateway.create_guest_policy(_body("All guests but the protected", PROTECTED_GROUP_ID))
    assert await gateway.get_report(created["id"]) is None
    admin.process_lifecycle_policies()
    report = await gateway.get_report(created["id"])
    assert report is not None and report["policyVersion"] == 1
    subjects = [s async for s in gateway.report_subjects(created["id"])]
    assert len(subjects) == report["subjectsInScopeCount"] > 100  # more than one page of 100
    assert len({s["id"] for s in subjects}) == len(subjects)
    assert {s["relationship"] for s in subjects} == {"effective"}
    pages = [e for e in admin.requests() if e["path"].endswith("/report/subjects")]
    assert len(pages) == 2


async def test_reading_works_with_the_plan_mode_permission_and_writing_needs_the_read_write_one(sim, admin):
    writer = _gateway(sim)
    await writer.create_guest_policy(_body())
    reader = _gateway(sim, roles=frozenset({"LifecyclePolicies-Guests.Read.All"}))
    assert len(await reader.list_guest_policies()) == 1
    with pytest.raises(PermissionDeniedError):
        await reader.create_guest_policy(_body("Another"))


def _priority(sim: TenantSimServer, roles: frozenset[str] | None = None) -> GraphLifecyclePolicyPriority:
    roles = feature_grant(GUEST_LIFECYCLE_POLICIES) if roles is None else roles
    client = build_graph_client(credential=TenantSimCredential(sim.url, roles=roles), base_url=f"{sim.url}/v1.0")
    return GraphLifecyclePolicyPriority(client)


async def test_the_priority_order_is_read_with_its_etag_and_changed_only_under_the_current_one(sim, admin):
    gateway = _gateway(sim)
    first = (await gateway.create_guest_policy(_body("First")))["id"]
    second = (await gateway.create_guest_policy(_body("Second")))["id"]
    assert isinstance(_priority(sim), LifecyclePolicyPriority)
    reader = _priority(sim, roles=frozenset({"LifecyclePolicies-Guests.Read.All"}))
    config = await reader.get_priority()
    assert config is not None and config["orderedPolicyIds"] == [first, second]
    with pytest.raises(PermissionDeniedError):
        await reader.set_priority([second, first], config["@odata.etag"])

    writer = _priority(sim)
    await writer.set_priority([second, first], config["@odata.etag"])
    changed = await writer.get_priority()
    assert changed is not None and changed["orderedPolicyIds"] == [second, first]
    assert changed["@odata.etag"] != config["@odata.etag"]
    patch = next(e for e in admin.requests() if e["method"] == "PATCH" and e["status"] == 204)
    assert patch["path"].endswith("/lifecyclePolicyPriorityConfigurations/user")

    with pytest.raises(GraphError) as stale:  # someone reordered since config was read: Graph's 412, no write
        await writer.set_priority([first, second], config["@odata.etag"])
    assert stale.value.status == 412
    assert (await writer.get_priority() or {})["orderedPolicyIds"] == [second, first]
