"""Guest identity providers end to end on tenantsim: email OTP, Google federation, the redemption order."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from adapters.memory import MemoryDriftReports
from config.desired_state import DesiredState, GuestIdentityProviders, load_desired_state
from config.settings import SAMPLE_DESIRED_STATE, load_settings
from graph.client import build_graph_client
from graph.credentials import TenantSimCredential
from graph.identity_providers import GraphGuestIdentityProviders
from graph.permissions import GRANTED, features_of, granted
from graph.policies import GraphPolicies
from graph.users import GraphSweepReads
from lifecycle.drift.entry import drift_ports, run_policy_drift
from lifecycle.drift.identity_providers import EMAIL_OTP, REDEMPTION, SOCIAL
from lifecycle.plans import Change
from lifecycle.services import Services
from tenantsim.client import TenantSimAdmin
from tenantsim.server import TenantSimServer
from tests.builders import LOCAL_ENV, memory_services
from tests.integration.test_drift_tenantsim import _create_guest_ca_policies

SECRET = "google-client-secret-value"
CLIENT_ID = "1234-abc.apps.googleusercontent.com"
ORDER = {
    "primary": ["azureActiveDirectory", "externalFederation", "socialIdentityProviders"],
    "fallback": "emailOneTimePasscode",
}
ENTRA = [{"signInType": "federated", "issuer": "ExternalAzureAD", "issuerAssignedId": None}]


@pytest.fixture
def admin(sim: TenantSimServer) -> Iterator[TenantSimAdmin]:
    with TenantSimAdmin(sim.url) as client:
        client.seed(builtin="locked-down", guests=5)
        client.configure(throttlingEnabled=False)
        client.clear_faults()
        _create_guest_ca_policies(client, sim)
        for guest in _guests(client):
            client.patch_user(guest["id"], identities=ENTRA)  # every guest redeemed with an Entra tenant
        client.reset_counters()
        yield client


def _guests(admin: TenantSimAdmin) -> list[dict]:
    return [u for u in admin.snapshot()["users"] if u["userType"] == "Guest"]


def _redeemed_with(admin: TenantSimAdmin, issuer: str) -> dict:
    guest = next(g for g in _guests(admin) if g["mail"].endswith("@fabrikam.com"))
    admin.patch_user(guest["id"], identities=[{"signInType": "federated", "issuer": issuer, "issuerAssignedId": "x"}])
    return guest


def _desired(**section: object) -> DesiredState:
    wanted = GuestIdentityProviders.model_validate(
        {"emailOneTimePasscode": "enabled", "google": {"clientId": CLIENT_ID}, "redemptionOrder": ORDER, **section}
    )
    return load_desired_state(SAMPLE_DESIRED_STATE).model_copy(update={"guest_identity_providers": wanted})


def _services(
    sim: TenantSimServer, desired: DesiredState, roles: frozenset[str] | None = None, secret: str | None = SECRET
) -> Services:
    roles = granted(redemption_reset=False, features=features_of(desired)) if roles is None else roles
    client = build_graph_client(credential=TenantSimCredential(sim.url, roles=roles), base_url=f"{sim.url}/v1.0")
    policies = GraphPolicies(client, beta_url=f"{sim.url}/beta", conditional_access_interval=0.0)
    env = {**LOCAL_ENV, **({"LIFECYCLE_GOOGLE_CLIENT_SECRET": secret} if secret else {})}
    return memory_services(
        desired=desired,
        settings=load_settings(env),
        tenant_policies=policies,
        drift_reports=MemoryDriftReports(),
        guest_identity_providers=GraphGuestIdentityProviders(client, policies),
        guest_reads=GraphSweepReads(client),
    )


def _get(sim: TenantSimServer, admin: TenantSimAdmin, path: str, roles: list[str]) -> dict:
    return httpx.get(f"{sim.url}/v1.0{path}", headers=admin.auth_headers(roles)).json()


def _changes(run) -> dict[str, Change]:
    return {a.resource: a.change for a in run.actions if a.resource in (EMAIL_OTP, SOCIAL, REDEMPTION)}


async def test_plan_apply_plan_sets_each_provider_and_converges(sim, admin):
    services = _services(sim, _desired())
    planned = await run_policy_drift(services, "plan")
    assert _changes(planned) == {EMAIL_OTP: Change.UPDATE, SOCIAL: Change.CREATE, REDEMPTION: Change.UPDATE}
    applied = await run_policy_drift(services, "enforce")
    assert applied.failed == [] and len(applied.results) == 3
    email = _get(
        sim,
        admin,
        "/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/email",
        ["Policy.Read.All"],
    )
    assert email["allowExternalIdToUseEmailOtp"] == "enabled"
    providers = _get(sim, admin, "/identity/identityProviders", ["IdentityProvider.Read.All"])["value"]
    assert [(p["id"], p.get("clientId")) for p in providers] == [("MSASignup-OAUTH", None), ("Google-OAUTH", CLIENT_ID)]
    settled = await run_policy_drift(services, "plan")
    assert settled.drift == [] and settled.exit_code == 0


async def test_the_redemption_reset_reads_the_order_drift_applied(sim, admin):
    services = _services(sim, _desired())
    await run_policy_drift(services, "enforce")
    order = await drift_ports(services).tenant.get_redemption_order()
    assert order == {
        "primaryIdentityProviderPrecedenceOrder": ORDER["primary"],
        "fallbackIdentityProvider": ORDER["fallback"],
    }


async def test_the_google_secret_reaches_graph_only(sim, admin):
    services = _services(sim, _desired())
    run = await run_policy_drift(services, "enforce")
    (report,) = await drift_ports(services).reports.recent()
    audit = [entry.details async for entry in services.audit.entries()]
    assert SECRET not in json.dumps([run.as_dict(), report.document, audit], default=str) + report.markdown
    created = [
        r for r in admin.requests() if r["method"] == "POST" and r["path"].endswith("/identity/identityProviders")
    ]
    assert [r["status"] for r in created] == [201]


async def test_email_otp_is_never_turned_off_under_guests_who_redeem_with_it(sim, admin):
    guest = _redeemed_with(admin, "mail")
    run = await run_policy_drift(
        _services(sim, _desired(emailOneTimePasscode="disabled", redemptionOrder=None)), "enforce"
    )
    (refusal,) = [r for r in run.refusals if r.rule == "email-otp-in-use"]
    assert "1 guest(s)" in refusal.message and "fabrikam (1)" in refusal.message and run.results == []
    admin.patch_user(guest["id"], identities=ENTRA)
    allowed = await run_policy_drift(
        _services(sim, _desired(emailOneTimePasscode="disabled", redemptionOrder=None)), "enforce"
    )
    assert allowed.refusals == [] and allowed.failed == []


async def test_a_fallback_to_email_otp_with_email_otp_off_is_refused(sim, admin):
    run = await run_policy_drift(_services(sim, _desired(emailOneTimePasscode="disabled")), "plan")
    assert "fallback-needs-email-otp" in {r.rule for r in run.refusals}


async def test_removing_google_under_its_guests_is_held_naming_them_until_approved(sim, admin):
    services = _services(sim, _desired())
    await run_policy_drift(services, "enforce")
    guest = _redeemed_with(admin, "google.com")
    removing = _services(sim, _desired(google=False))
    held = await run_policy_drift(removing, "enforce")
    (action,) = [a for a in held.actions if a.resource == SOCIAL]
    assert (
        action.change is Change.REPORT and guest["mail"] in action.reason and "--approve-remove google" in action.reason
    )
    assert held.results == [] and guest["mail"] in held.to_markdown()
    approved = await run_policy_drift(removing, "enforce", approvals=frozenset({"remove-google"}))
    assert approved.failed == [] and [r.change for r in approved.results] == ["delete"]
    providers = _get(sim, admin, "/identity/identityProviders", ["IdentityProvider.Read.All"])["value"]
    assert [p["id"] for p in providers] == ["MSASignup-OAUTH"]


async def test_google_without_guests_is_removed_without_approval(sim, admin):
    await run_policy_drift(_services(sim, _desired()), "enforce")
    run = await run_policy_drift(_services(sim, _desired(google=False)), "enforce")
    assert [(r.resource, r.change) for r in run.results] == [(SOCIAL, "delete")]


async def test_google_without_its_secret_is_refused(sim, admin):
    run = await run_policy_drift(_services(sim, _desired(), secret=None), "enforce")
    assert "google-secret-missing" in {r.rule for r in run.refusals} and run.results == []


async def test_planning_needs_only_the_base_grant_and_enforcing_email_otp_needs_its_write_permission(sim, admin):
    desired = _desired(google=None, redemptionOrder=None)
    planned = await run_policy_drift(_services(sim, desired, roles=GRANTED), "plan")
    assert _changes(planned) == {EMAIL_OTP: Change.UPDATE}
    refused = await run_policy_drift(_services(sim, desired, roles=GRANTED), "enforce")
    assert [(r.resource, r.error["status"]) for r in refused.failed] == [(EMAIL_OTP, 403)]


async def test_a_rotated_google_secret_is_sent_again_only_when_an_operator_asks(sim, admin):
    await run_policy_drift(_services(sim, _desired()), "enforce")
    rotated = _services(sim, _desired(), secret="rotated-google-secret")
    assert (await run_policy_drift(rotated, "plan")).drift == []
    run = await run_policy_drift(rotated, "enforce", approvals=frozenset({"rotate-google"}))
    assert [(r.resource, r.change, r.ok) for r in run.results] == [(SOCIAL, "update", True)]
    assert "rotated-google-secret" not in json.dumps(run.as_dict(), default=str)
