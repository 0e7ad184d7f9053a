"""The governance job through the real Graph gateway against tenantsim: each resource, re-runs, drift, onboarding."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from config.desired_state import load_desired_state, parse_desired_state
from graph.client import build_graph_client
from graph.credentials import TenantSimCredential
from graph.entitlement import GraphAccessPackages
from graph.governance import GraphGovernance
from graph.permissions import GRANTED
from lifecycle.adapters.memory import MemoryAuditLog
from lifecycle.clock import SystemClock
from lifecycle.errors import PermissionDeniedError
from lifecycle.governance import run_governance
from tenantsim.client import TenantSimAdmin
from tenantsim.server import TenantSimServer

SAMPLE = Path(__file__).resolve().parents[2] / "config" / "desired-state.sample.yaml"
EM = "/v1.0/identityGovernance/entitlementManagement"
ROLES = ("EntitlementManagement.ReadWrite.All", "AccessReview.ReadWrite.All")


@pytest.fixture(scope="module")
def server() -> Iterator[TenantSimServer]:
    with TenantSimServer(guests=30) as running:
        yield running


@pytest.fixture
def admin(server) -> Iterator[TenantSimAdmin]:
    with TenantSimAdmin(server.url) as client:
        client.seed(guests=30)
        yield client


def _client(server, roles=GRANTED):
    credential = TenantSimCredential(server.url, roles=frozenset(roles))
    return build_graph_client(credential=credential, base_url=f"{server.url}/v1.0")


async def _run(server, mode="plan", desired=None, roles=GRANTED):
    return await run_governance(
        GraphGovernance(_client(server, roles)),
        desired=desired or load_desired_state(SAMPLE),
        audit=MemoryAuditLog(),
        clock=SystemClock(),
        mode=mode,
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


async def test_onboarding_assigns_through_the_package_and_policy_governance_created(server, admin):
    """On a tenant with no catalog, governance creates it; onboarding's gateway then resolves and assigns."""
    for policy in _values(admin, f"{EM}/assignmentPolicies"):
        assert _graph(admin, "DELETE", f"{EM}/assignmentPolicies/{policy['id']}").status_code == 204
    for package in _values(admin, f"{EM}/accessPackages"):
        assert _graph(admin, "DELETE", f"{EM}/accessPackages/{package['id']}").status_code == 204
    for catalog in _values(admin, f"{EM}/catalogs"):
        assert _graph(admin, "DELETE", f"{EM}/catalogs/{catalog['id']}").status_code == 204

    packages = GraphAccessPackages(_client(server))
    assert await packages.resolve("Partner collaboration", "Fabrikam engineering") is None
    assert (await _run(server, "enforce"))["exitCode"] == 0

    target = await packages.resolve("Partner collaboration", "Fabrikam engineering")
    assert target is not None
    created = {p["id"]: p for p in _values(admin, f"{EM}/assignmentPolicies")}
    assert created[target.policy_id]["displayName"] == "Admin direct assignment"
    guest = next(u for u in admin.snapshot()["users"] if (u.get("mail") or "").endswith("@fabrikam.com"))
    end = datetime.now(UTC) + timedelta(days=30)
    request = await packages.request_assignment(guest["id"], target, end, "governance integration test")
    assert request.state == "submitted"
    assert (await packages.get_request(request.id)).state == "delivered"
    assignment = await packages.find_assignment(guest["id"], target.package_id)
    assert assignment is not None and assignment.state == "delivered"


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
