"""The governance job through the real Graph gateway against tenantsim: each resource, re-runs, drift, onboarding."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from adapters.memory import MemoryAuditLog
from app.bootstrap import bootstrap
from config.desired_state import load_desired_state, parse_desired_state
from config.settings import load_settings
from graph.client import build_graph_client
from graph.credentials import TenantSimCredential
from graph.governance import GraphGovernance
from graph.permissions import GRANTED
from lifecycle.clock import SystemClock
from lifecycle.errors import PermissionDeniedError
from lifecycle.governance import run_governance
from lifecycle.ledger.worker import drain
from lifecycle.onboarding.handler import handle_ticket
from lifecycle.onboarding.submission import submit_documents
from tenantsim.client import TenantSimAdmin
from tenantsim.seed import (
    ADATUM_MARKETING_GROUP_ID,
    FABRIKAM_COLLABORATORS_GROUP_ID,
    NORTHWIND_SUPPLY_CHAIN_GROUP_ID,
)
from tenantsim.server import TenantSimServer

SAMPLE = Path(__file__).resolve().parents[2] / "config" / "desired-state.sample.yaml"
EM = "/v1.0/identityGovernance/entitlementManagement"
ROLES = ("EntitlementManagement.ReadWrite.All", "AccessReview.ReadWrite.All")


@pytest.fixture(scope="module")
def server() -> Iterator[TenantSimServer]:
    with TenantSimServer(guests=30) as running:
        yield running


REVIEW_DEFAULTS = {
    "reviewQueryVersionPrefix": True,
    "reviewNoEndAsNumbered": True,
    "reviewRelativeOwnersOnSingleGroup": False,
}
REVIEWS = "/v1.0/identityGovernance/accessReviews/definitions"


@pytest.fixture
def admin(server) -> Iterator[TenantSimAdmin]:
    with TenantSimAdmin(server.url) as client:
        client.seed(guests=30)
        client.configure(**REVIEW_DEFAULTS)
        yield client


def _client(server, roles=GRANTED):
    credential = TenantSimCredential(server.url, roles=frozenset(roles))
    return build_graph_client(credential=credential, base_url=f"{server.url}/v1.0")


async def _run(server, mode="plan", desired=None, roles=GRANTED, approved: frozenset[str] = frozenset()):
    return await run_governance(
        GraphGovernance(_client(server, roles)),
        desired=desired or load_desired_state(SAMPLE),
        audit=MemoryAuditLog(),
        clock=SystemClock(),
        mode=mode,
        approved_recreates=approved,
    )


def _graph(admin: TenantSimAdmin, method: str, path: str, **kwargs) -> httpx.Response:
    return httpx.request(method, f"{admin.base_url}{path}", headers=admin.auth_headers(list(ROLES)), **kwargs)


def _values(admin: TenantSimAdmin, path: str) -> list[dict]:
    response = _graph(admin, "GET", path)
    assert response.status_code == 200, response.text
    return response.json()["value"]


async def test_governance_is_ensured_on_the_seeded_tenant_and_the_second_plan_is_clean(server, admin):
    """Enforce creates what is missing (the seeded catalog and packages are reused) and converges in one run."""
    planned = await _run(server)
    creates = {a["key"] for a in planned["plan"]["actions"] if a["change"] == "create"}
    assert "catalog" not in creates and "package/fabrikam" not in creates  # seeded, matched by name
    assert {"review/guests", "organization/adatum", "policy/fabrikam/request"} <= creates

    enforced = await _run(server, "enforce")
    assert enforced["exitCode"] == 0 and enforced["failed"] == [] and enforced["after"]["drift"] == 0
    again = await _run(server)
    assert again["exitCode"] == 0 and again["plan"]["drift"] == 0

    assert len(_values(admin, f"{EM}/catalogs")) == 1
    assert len(_values(admin, "/v1.0/identityGovernance/accessReviews/definitions")) == 2
    organizations = _values(admin, f"{EM}/connectedOrganizations")
    assert sorted(o["displayName"] for o in organizations) == [
        "Adatum Corporation",
        "Fabrikam, Inc.",
        "Northwind Traders",
        "Woodgrove Bank",
    ]
    assert all(o["state"] == "configured" for o in organizations)
    settings = _graph(admin, "GET", f"{EM}/settings").json()
    assert settings["externalUserLifecycleAction"] == "blockSignInAndDelete"
    assert settings["durationUntilExternalUserDeletedAfterBlocked"] == "P30D"


async def test_enforcing_twice_creates_no_second_object(server, admin):
    """Reviews, organisations and policies exist once each after two enforce runs."""
    await _run(server, "enforce")
    await _run(server, "enforce")
    reviews = _values(admin, "/v1.0/identityGovernance/accessReviews/definitions")
    assert sorted(r["displayName"] for r in reviews) == [
        "Partner guest review: Fabrikam, Inc.",
        "Quarterly guest access review",
    ]
    assert len(_values(admin, f"{EM}/connectedOrganizations")) == 4
    assert len(_values(admin, f"{EM}/assignmentPolicies")) == 8


async def test_the_guest_review_carries_the_desired_settings(server, admin):
    """The quarterly review auto-applies Deny, removes access, is reviewed by sponsors with group owners as fallback."""
    await _run(server, "enforce")
    review = next(
        r
        for r in _values(admin, "/v1.0/identityGovernance/accessReviews/definitions")
        if r["displayName"] == "Quarterly guest access review"
    )
    settings = review["settings"]
    assert (settings["autoApplyDecisionsEnabled"], settings["defaultDecision"]) == (True, "Deny")
    assert settings["applyActions"] == [{"@odata.type": "#microsoft.graph.removeAccessApplyAction"}]
    assert settings["recurrence"]["pattern"]["interval"] == 3
    assert settings["recurrence"]["range"]["startDate"] == "2025-01-06"
    assert review["reviewers"][0]["query"] == "./sponsors"
    assert review["fallbackReviewers"][0]["query"] == "./owners"
    assert "userType eq 'Guest'" in review["scope"]["query"]
    assert review["instanceEnumerationScope"]["query"].startswith("/v1.0/groups?$filter=")


async def test_settings_drift_in_the_tenant_is_reported_and_fixed(server, admin):
    """A hand-edited review, policy and lifecycle setting show up as field diffs and enforce restores them."""
    await _run(server, "enforce")
    review = next(
        r
        for r in _values(admin, "/v1.0/identityGovernance/accessReviews/definitions")
        if r["displayName"] == "Quarterly guest access review"
    )
    edited = {k: v for k, v in review.items() if k != "@odata.context"}
    edited["settings"] = {**review["settings"], "instanceDurationInDays": 3}
    assert _graph(admin, "PUT", f"/v1.0/identityGovernance/accessReviews/definitions/{review['id']}", json=edited)
    _graph(admin, "PATCH", f"{EM}/settings", json={"externalUserLifecycleAction": "none"})

    planned = await _run(server)
    diffs = {(a["key"], d["field"]) for a in planned["plan"]["actions"] for d in a["diffs"]}
    assert ("review/guests", "settings.instanceDurationInDays") in diffs
    assert ("settings", "externalUserLifecycleAction") in diffs
    assert planned["exitCode"] == 2

    fixed = await _run(server, "enforce")
    assert fixed["exitCode"] == 0
    after = _graph(admin, "GET", f"/v1.0/identityGovernance/accessReviews/definitions/{review['id']}").json()
    assert after["settings"]["instanceDurationInDays"] == 14


async def test_without_the_access_review_permission_the_run_fails_loudly(server, admin):
    """Least privilege: a token without AccessReview.* is refused with 403, which surfaces as an error."""
    roles = GRANTED - {"AccessReview.ReadWrite.All"}
    with pytest.raises(PermissionDeniedError):
        await _run(server, roles=roles)


def _delete_packages(admin: TenantSimAdmin, *, catalogs: bool = False) -> None:
    """Take the seeded packages (and their policies, and with ``catalogs`` the catalog) out of the tenant."""
    for policy in _values(admin, f"{EM}/assignmentPolicies"):
        assert _graph(admin, "DELETE", f"{EM}/assignmentPolicies/{policy['id']}").status_code == 204
    for package in _values(admin, f"{EM}/accessPackages"):
        assert _graph(admin, "DELETE", f"{EM}/accessPackages/{package['id']}").status_code == 204
    for catalog in _values(admin, f"{EM}/catalogs") if catalogs else []:
        assert _graph(admin, "DELETE", f"{EM}/catalogs/{catalog['id']}").status_code == 204


def _applied(result: dict, key: str) -> str:
    return next(a["id"] for a in result["applied"] if a["key"] == key)


async def test_an_onboard_ticket_assigns_the_package_and_policy_governance_created(server, admin, azurite):
    """Governance creates the partner packages and policies; an onboard ticket then assigns exactly those,
    and the delivered assignment makes the guest a member of the group the package grants."""
    _delete_packages(admin)
    enforced = await _run(server, "enforce")
    assert enforced["exitCode"] == 0, enforced["failed"]
    package_id, policy_id = _applied(enforced, "package/fabrikam"), _applied(enforced, "policy/fabrikam/direct")

    prefix = "gov" + uuid.uuid4().hex[:8]
    env = {
        **azurite.env,
        "LIFECYCLE_GRAPH_BASE_URL": f"{server.url}/v1.0",
        "LIFECYCLE_GRAPH_BETA_URL": f"{server.url}/beta",
        "LIFECYCLE_GRAPH_CREDENTIAL": "tenantsim",
        "LIFECYCLE_TABLE_PREFIX": prefix,
        "LIFECYCLE_QUEUE_PREFIX": prefix,
    }
    services = await bootstrap(load_settings(env), credential=TenantSimCredential(server.url, roles=GRANTED))
    try:
        end = (datetime.now(UTC) + timedelta(days=60)).date().isoformat()
        ticket = {
            "schemaVersion": 1,
            "kind": "onboard",
            "ticketId": "GOV1",
            "email": "gov1@fabrikam.com",
            "displayName": "Governed Guest",
            "partner": "fabrikam",
            "sponsor": "megan.bowen@contoso.com",
            "endDate": end,
        }
        await submit_documents(services, "onboarding", [ticket])
        report = await drain(services, "onboarding", handle_ticket)
    finally:
        await services.close()
    assert [o.verdict.value for o in report.outcomes] == ["done"], report.outcomes

    guest = next(u for u in admin.snapshot()["users"] if u.get("mail") == "gov1@fabrikam.com")
    query = f"$filter=target/objectId eq '{guest['id']}'&$expand=accessPackage,assignmentPolicy"
    assignments = _values(admin, f"{EM}/assignments?{query}")
    assert [(a["accessPackage"]["id"], a["assignmentPolicy"]["id"]) for a in assignments] == [(package_id, policy_id)]
    for request in _values(admin, f"{EM}/assignmentRequests"):  # let the service finish delivering
        _graph(admin, "GET", f"{EM}/assignmentRequests/{request['id']}")
    group = next(g for g in admin.snapshot()["groups"] if g["id"] == FABRIKAM_COLLABORATORS_GROUP_ID)
    assert guest["id"] in group["members"]


async def test_a_partner_without_a_tenant_gets_a_domain_connected_organisation(server, admin):
    """Adatum (no Entra tenant) is connected by its domain; its request policy names that organisation."""
    raw = load_desired_state(SAMPLE).model_dump(mode="json", by_alias=True, exclude_none=True)
    raw["governance"]["partners"]["adatum"]["connectedOrganizationState"] = "proposed"
    await _run(server, "enforce", desired=parse_desired_state(raw))
    adatum = next(o for o in _values(admin, f"{EM}/connectedOrganizations") if o["displayName"] == "Adatum Corporation")
    assert adatum["identitySources"][0]["domainName"] == "adatum.com" and adatum["state"] == "proposed"
    policies = _values(admin, f"{EM}/assignmentPolicies")
    targets = [t for p in policies for t in p["specificAllowedTargets"]]
    assert {"@odata.type": "#microsoft.graph.connectedOrganizationMembers"}.items() <= next(
        t for t in targets if t["connectedOrganizationId"] == adatum["id"]
    ).items()


def _granted_roles(admin: TenantSimAdmin, package_name: str) -> list[str]:
    package = next(p for p in _values(admin, f"{EM}/accessPackages") if p["displayName"] == package_name)
    expanded = _graph(
        admin, "GET", f"{EM}/accessPackages/{package['id']}?$expand=resourceRoleScopes($expand=role,scope)"
    )
    return sorted(s["role"]["originId"] for s in expanded.json()["resourceRoleScopes"])


async def test_each_partner_package_grants_its_group_membership_and_extra_roles_are_removed(server, admin):
    """On the seeded tenant (groups already in the catalog) enforce adds each package's Member role; a role
    granted by hand shows as a delete in the next plan and is gone after enforce."""
    assert (await _run(server, "enforce"))["exitCode"] == 0
    assert _granted_roles(admin, "Fabrikam engineering") == [f"Member_{FABRIKAM_COLLABORATORS_GROUP_ID}"]
    assert _granted_roles(admin, "Northwind supply chain") == [f"Member_{NORTHWIND_SUPPLY_CHAIN_GROUP_ID}"]

    package = next(p for p in _values(admin, f"{EM}/accessPackages") if p["displayName"] == "Fabrikam engineering")
    resources = _values(admin, f"{EM}/catalogs/{package_catalog(admin)}/resources?$expand=roles,scopes")
    fabrikam = next(r for r in resources if r["originId"] == FABRIKAM_COLLABORATORS_GROUP_ID)
    owner = next(r for r in fabrikam["roles"] if r["displayName"] == "Owner")
    body = {"role": {**owner, "resource": {"id": fabrikam["id"]}}, "scope": fabrikam["scopes"][0]}
    assert (
        _graph(admin, "POST", f"{EM}/accessPackages/{package['id']}/resourceRoleScopes", json=body).status_code == 201
    )

    planned = await _run(server)
    drift = {a["key"]: a["change"] for a in planned["plan"]["actions"] if a["change"] != "none"}
    assert drift == {f"package/fabrikam/role:Owner_{FABRIKAM_COLLABORATORS_GROUP_ID}": "delete"}
    assert (await _run(server, "enforce"))["exitCode"] == 0
    assert _granted_roles(admin, "Fabrikam engineering") == [f"Member_{FABRIKAM_COLLABORATORS_GROUP_ID}"]


def package_catalog(admin: TenantSimAdmin) -> str:
    return next(c["id"] for c in _values(admin, f"{EM}/catalogs") if c["displayName"] == "Partner collaboration")


async def test_a_new_catalog_gets_its_groups_only_with_group_readwrite(server, admin):
    """Without Group.ReadWrite.All the groups cannot enter a new catalog: those creates (and the roles that
    need them) fail with Graph's 403 while the rest lands; with it, the next run converges."""
    _delete_packages(admin, catalogs=True)
    first = await _run(server, "enforce")
    failed = {f["key"]: f["error"].get("code") for f in first["failed"]}
    assert failed[f"resource/{FABRIKAM_COLLABORATORS_GROUP_ID}"] == "Authorization_RequestDenied"
    assert f"role/fabrikam/{FABRIKAM_COLLABORATORS_GROUP_ID}" in failed
    assert "policy/fabrikam/direct" not in failed and first["exitCode"] == 1

    second = await _run(server, "enforce", roles=GRANTED | {"Group.ReadWrite.All"})
    assert second["exitCode"] == 0 and second["after"]["drift"] == 0
    assert _granted_roles(admin, "Adatum marketing") == [f"Member_{ADATUM_MARKETING_GROUP_ID}"]


async def test_the_run_reports_each_review_current_instance_without_drift(server, admin):
    """After enforce the quarterly guest review has one instance per Microsoft 365 group and occurrence; the
    run names the current one and its status as evidence, and the plan stays clean."""
    await _run(server, "enforce")
    result = await _run(server)
    assert result["exitCode"] == 0
    evidence = {e["key"]: e for e in result["reviewInstances"]}
    assert set(evidence) == {"review/guests", "review/partner/fabrikam"}
    current = evidence["review/guests"]["current"]
    assert current["status"] in {"InProgress", "Completed"} and current["instances"] == 1
    assert current["startDateTime"] <= datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize(
    "stored_as",
    [
        pytest.param(REVIEW_DEFAULTS, id="rewritten-as-graph-stores"),
        pytest.param({"reviewQueryVersionPrefix": False, "reviewNoEndAsNumbered": False}, id="echoed-as-sent"),
    ],
)
async def test_apply_then_plan_on_a_tenant_that_rewrites_stored_reviews_changes_nothing(server, admin, stored_as):
    """Graph stores reviews with /v1.0 queries, an added $count and noEnd as numbered until 9999-12-31 (or, as
    some examples show, as sent): either way the plan after an apply is clean and no review is deleted."""
    admin.configure(**stored_as)
    enforced = await _run(server, "enforce")
    assert enforced["exitCode"] == 0 and enforced["held"] == [] and enforced["after"]["drift"] == 0
    before = {r["id"]: r for r in _values(admin, REVIEWS)}
    partner = next(r for r in before.values() if r["displayName"].startswith("Partner guest review"))
    prefixed = stored_as["reviewQueryVersionPrefix"]
    assert partner["scope"]["query"].startswith("/v1.0/groups/" if prefixed else "/groups/")

    admin.reset_counters()
    again = await _run(server, "enforce")
    assert again["exitCode"] == 0 and again["plan"]["drift"] == 0
    review_calls = {r["method"] for r in admin.requests() if "accessReviews" in r["path"]}
    assert review_calls == {"GET"}  # read, and nothing deleted, replaced or created
    assert {r["id"]: r for r in _values(admin, REVIEWS)} == before


async def test_a_partner_review_names_its_group_s_owners(server, admin):
    """A review of one group names /groups/{id}/owners (tenantsim refuses ./owners there by default)."""
    enforced = await _run(server, "enforce")
    assert enforced["failed"] == []
    partner = next(r for r in _values(admin, REVIEWS) if r["displayName"].startswith("Partner guest review"))
    group = load_desired_state(SAMPLE).governance.partners["fabrikam"].review_group_id
    assert [r["query"] for r in partner["reviewers"]] == [f"/v1.0/groups/{group}/owners"]


async def test_a_reviewer_change_graph_cannot_update_waits_for_approval_then_recreates(server, admin):
    """Sponsors to a named user cannot be PUT (Graph updates reviewers only between individual users): enforce
    holds the recreate and leaves the running review alone; approved, the review is created again."""
    await _run(server, "enforce")
    guests = next(r for r in _values(admin, REVIEWS) if r["displayName"] == "Quarterly guest access review")
    raw = load_desired_state(SAMPLE).model_dump(mode="json", by_alias=True, exclude_none=True)
    megan = next(u for u in admin.snapshot()["users"] if u.get("userType") == "Member")
    raw["governance"]["guestReview"]["reviewers"] = [{"kind": "user", "id": megan["id"]}]
    changed = parse_desired_state(raw)

    held = await _run(server, "enforce", desired=changed)
    action = next(a for a in held["plan"]["actions"] if a["key"] == "review/guests")
    assert action["change"] == "recreate" and "in progress" in action["reason"]
    assert [h["key"] for h in held["held"]] == ["review/guests"] and held["exitCode"] == 2
    assert _graph(admin, "GET", f"{REVIEWS}/{guests['id']}").json()["reviewers"][0]["query"] == "./sponsors"

    approved = await _run(server, "enforce", desired=changed, approved=frozenset({"review/guests"}))
    assert approved["exitCode"] == 0 and approved["held"] == []
    assert _graph(admin, "GET", f"{REVIEWS}/{guests['id']}").status_code == 404
    recreated = next(r for r in _values(admin, REVIEWS) if r["displayName"] == "Quarterly guest access review")
    assert recreated["reviewers"][0]["query"] == f"/v1.0/users/{megan['id']}"
