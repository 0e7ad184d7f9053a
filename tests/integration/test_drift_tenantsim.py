"""Policy drift end to end against tenantsim: the Graph gateway, plan, apply, re-plan, partial failure, audit."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from adapters.memory import MemoryDriftReports
from config.desired_state import DesiredState, load_desired_state
from config.settings import SAMPLE_DESIRED_STATE
from graph.client import build_graph_client
from graph.credentials import TenantSimCredential
from graph.permissions import GRANTED
from graph.policies import GraphPolicies
from lifecycle.drift.entry import drift_ports, run_policy_drift
from lifecycle.plans import Change
from lifecycle.services import Services
from tenantsim.client import TenantSimAdmin
from tenantsim.seed import FABRIKAM_TENANT_ID, NORTHWIND_TENANT_ID
from tenantsim.server import TenantSimServer
from tests.builders import memory_services

ROLES = GRANTED
CA_WRITE = ("Policy.ReadWrite.ConditionalAccess", "Policy.Read.All", "Application.Read.All")
GUESTS = "internalGuest,b2bCollaborationGuest,b2bCollaborationMember,b2bDirectConnectUser,otherExternalUser"


def _sample() -> DesiredState:
    return load_desired_state(SAMPLE_DESIRED_STATE)


def _services(
    sim: TenantSimServer, desired: DesiredState | None = None, interval: float = 0.0, roles: frozenset[str] = ROLES
) -> Services:
    credential = TenantSimCredential(sim.url, roles=roles)
    client = build_graph_client(credential=credential, base_url=f"{sim.url}/v1.0")
    gateway = GraphPolicies(client, beta_url=f"{sim.url}/beta", conditional_access_interval=interval)
    return memory_services(desired=desired or _sample(), tenant_policies=gateway, drift_reports=MemoryDriftReports())


def _create_guest_ca_policies(admin: TenantSimAdmin, sim: TenantSimServer) -> None:
    """An administrator's two guest policies: MFA for guests on all apps, and no legacy authentication."""
    users = {
        "includeGuestsOrExternalUsers": {
            "guestOrExternalUserTypes": GUESTS,
            "externalTenants": {"membershipKind": "all"},
        }
    }
    base = {"users": users, "applications": {"includeApplications": ["All"]}}
    bodies = [
        {
            "displayName": "Guests: require MFA",
            "state": "enabled",
            "conditions": {**base, "clientAppTypes": ["all"]},
            "grantControls": {"operator": "OR", "builtInControls": ["mfa"]},
        },
        {
            "displayName": "Guests: block legacy authentication",
            "state": "enabled",
            "conditions": {**base, "clientAppTypes": ["exchangeActiveSync", "other"]},
            "grantControls": {"operator": "OR", "builtInControls": ["block"]},
        },
    ]
    headers = admin.auth_headers(list(CA_WRITE))
    for body in bodies:
        response = httpx.post(f"{sim.url}/v1.0/identity/conditionalAccess/policies", json=body, headers=headers)
        assert response.status_code == 201, response.text


def _writable(run) -> list[tuple[str, str, Change]]:
    return [(a.resource, a.key, a.change) for a in run.drift if a.change is not Change.REPORT]


async def test_a_fresh_tenant_shows_every_kind_of_drift_and_plan_mode_writes_nothing(sim, admin):
    """Fresh (wide open): default, partners, invitations, domain list and CA drift; exit 2; tenant unchanged."""
    admin.seed(builtin="fresh", guests=5)
    before = admin.snapshot()["policies"]
    run = await run_policy_drift(_services(sim), "plan")
    kinds = {(a.resource, a.change) for a in run.drift}
    assert kinds == {
        ("crossTenantAccessPolicy/default", Change.UPDATE),
        ("crossTenantAccessPolicy/partners", Change.CREATE),
        ("authorizationPolicy", Change.UPDATE),
        ("b2bManagementPolicies", Change.CREATE),
        ("identity/conditionalAccess/policies", Change.REPORT),
    }
    assert run.exit_code == 2 and run.results == []
    assert admin.snapshot()["policies"] == before


async def test_enforce_then_plan_again_is_clean_and_a_second_enforce_writes_nothing(sim, admin):
    """Apply on the fresh tenant, then the plan has no drift (CA created by an admin) and re-apply is a no-op."""
    admin.seed(builtin="fresh", guests=5)
    services = _services(sim)
    applied = await run_policy_drift(services, "enforce")
    assert applied.failed == [] and len(applied.results) == len(_writable(applied))
    _create_guest_ca_policies(admin, sim)
    again = await run_policy_drift(services, "plan")
    assert again.drift == [] and again.exit_code == 0
    admin.reset_counters()
    second = await run_policy_drift(services, "enforce")
    assert second.results == [] and second.exit_code == 0
    writes = [r for r in admin.requests() if r["method"] != "GET"]
    assert writes == []


async def test_the_locked_down_tenant_matches_the_sample_file(sim, admin):
    """The locked-down seed plus the admin's CA policies is exactly the sample's posture: exit 0."""
    admin.seed(builtin="locked-down", guests=5)
    _create_guest_ca_policies(admin, sim)
    run = await run_policy_drift(_services(sim), "plan")
    assert [(a.resource, a.key) for a in run.drift] == [] and run.exit_code == 0


XTAP = "/v1.0/policies/crossTenantAccessPolicy"
UNMANAGED_DEFAULT = {
    "m365CollaborationInbound": {
        "users": {"accessType": "allowed", "targets": [{"target": "AllUsers", "targetType": "user"}]}
    },
    "appServiceConnectInbound": {
        "applications": {
            "accessType": "allowed",
            "targets": [{"target": "AllApplications", "targetType": "application"}],
        }
    },
    "invitationRedemptionIdentityProviderConfiguration": {
        "primaryIdentityProviderPrecedenceOrder": ["externalFederation", "azureActiveDirectory"],
        "fallbackIdentityProvider": "emailOneTimePasscode",
    },
}
UNMANAGED_PARTNER = {
    "m365CollaborationOutbound": {
        "usersAndGroups": {"accessType": "allowed", "targets": [{"target": "AllUsers", "targetType": "user"}]}
    },
    "automaticUserConsentSettings": {"inboundAllowed": True, "outboundAllowed": True},
}


def _someone_else_sets_unmanaged_settings_and_opens_two_managed_ones(
    admin: TenantSimAdmin, sim: TenantSimServer
) -> None:
    headers = admin.auth_headers(["Policy.ReadWrite.CrossTenantAccess"])
    everyone = {"accessType": "allowed", "targets": [{"target": "AllUsers", "targetType": "user"}]}
    for path, body in (
        (f"{XTAP}/default", {**UNMANAGED_DEFAULT, "b2bCollaborationInbound": {"usersAndGroups": everyone}}),
        (f"{XTAP}/partners/{FABRIKAM_TENANT_ID}", {**UNMANAGED_PARTNER, "inboundTrust": {"isMfaAccepted": False}}),
    ):
        response = httpx.patch(f"{sim.url}{path}", json=body, headers=headers)
        assert response.status_code == 204, response.text


async def test_enforce_leaves_the_cross_tenant_settings_it_does_not_manage_untouched(sim, admin):
    """Another admin set m365, app service connect, the redemption order and consent: drift fixes only its own."""
    admin.seed(builtin="locked-down", guests=5)
    _create_guest_ca_policies(admin, sim)
    _someone_else_sets_unmanaged_settings_and_opens_two_managed_ones(admin, sim)
    services = _services(sim)
    applied = await run_policy_drift(services, "enforce")
    assert {(a.resource, a.key) for a in applied.drift} == {
        ("crossTenantAccessPolicy/default", "default"),
        ("crossTenantAccessPolicy/partners", FABRIKAM_TENANT_ID),
    }
    assert applied.failed == []
    policies = admin.snapshot()["policies"]
    default = policies["crossTenantAccessDefault"]
    fabrikam = next(p for p in policies["crossTenantAccessPartners"] if p["tenantId"] == FABRIKAM_TENANT_ID)
    assert {name: default[name] for name in UNMANAGED_DEFAULT} == UNMANAGED_DEFAULT
    assert {name: fabrikam[name] for name in UNMANAGED_PARTNER} == UNMANAGED_PARTNER
    assert default["b2bCollaborationInbound"]["usersAndGroups"]["accessType"] == "blocked"
    assert fabrikam["inboundTrust"]["isMfaAccepted"] is True
    again = await run_policy_drift(services, "plan")
    assert again.drift == [] and again.exit_code == 0


async def test_a_partner_set_explicitly_to_the_default_is_not_drift(sim, admin):
    """Null in the file, explicit-but-equal in the tenant (direct connect blocked, no trust): no drift."""
    admin.seed(builtin="locked-down", guests=5)
    _create_guest_ca_policies(admin, sim)
    blocked = {"accessType": "blocked", "targets": [{"target": "AllUsers", "targetType": "user"}]}
    headers = admin.auth_headers(["Policy.ReadWrite.CrossTenantAccess"])
    async with httpx.AsyncClient() as http:
        response = await http.patch(
            f"{sim.url}/v1.0/policies/crossTenantAccessPolicy/partners/{NORTHWIND_TENANT_ID}",
            json={"b2bDirectConnectInbound": {"usersAndGroups": blocked}},
            headers=headers,
        )
    assert response.status_code == 204
    run = await run_policy_drift(_services(sim), "plan")
    assert run.drift == []


async def test_unknown_partners_are_reported_and_removed_only_with_the_flag(sim, admin):
    """A partner absent from the file: reported (exit 2, untouched) unless removal is asked for."""
    admin.seed(builtin="locked-down", guests=5)
    _create_guest_ca_policies(admin, sim)
    desired = _sample().model_copy(
        update={"partners": {k: v for k, v in _sample().partners.items() if k != "woodgrove"}}
    )
    services = _services(sim, desired)
    reported = await run_policy_drift(services, "enforce")
    assert [(a.change, a.key) for a in reported.drift] == [(Change.REPORT, "e1b2c3d4-5f6a-4b7c-8d9e-0f1a2b3c4d5e")]
    assert reported.exit_code == 2 and len(admin.snapshot()["policies"]["crossTenantAccessPartners"]) == 3
    removed = await run_policy_drift(services, "enforce", remove_unknown_partners=True)
    assert removed.exit_code == 0 and len(admin.snapshot()["policies"]["crossTenantAccessPartners"]) == 2


async def test_one_failing_setting_does_not_stop_the_others_and_the_next_run_picks_it_up(sim, admin):
    """Without the write permission for authorizationPolicy, that PATCH fails (403) while everything else
    applies; the failure is reported and audited, and the next run (permission granted) applies it."""
    admin.seed(builtin="fresh", guests=5)
    crippled = _services(sim, roles=ROLES - {"Policy.ReadWrite.Authorization"})
    first = await run_policy_drift(crippled, "enforce")
    failed = [(r.resource, r.error["code"]) for r in first.results if not r.ok]
    assert failed == [("authorizationPolicy", "Authorization_RequestDenied")]
    assert sum(r.ok for r in first.results) == len(first.results) - 1 and first.exit_code == 1
    assert "**failed**" in first.to_markdown()
    audited = [e async for e in crippled.audit.entries() if e.details["status"] == "failed"]
    assert [e.target for e in audited] == ["authorizationPolicy/authorizationPolicy"]
    assert admin.snapshot()["policies"]["crossTenantAccessDefault"]["isServiceDefault"] is False
    second = await run_policy_drift(_services(sim), "enforce")
    assert [(r.resource, r.ok) for r in second.results] == [("authorizationPolicy", True)]
    assert admin.snapshot()["policies"]["authorizationPolicy"]["allowInvitesFrom"] == "adminsAndGuestInviters"


async def test_every_apply_is_audited_with_before_and_after_and_the_run_is_kept(sim, admin):
    """The audit row for the invitation settings holds both values; the report store has the run's markdown."""
    admin.seed(builtin="fresh", guests=5)
    services = _services(sim)
    run = await run_policy_drift(services, "enforce")
    entries = {e.target: e async for e in services.audit.entries()}
    authorization = entries["authorizationPolicy/authorizationPolicy"]
    assert authorization.details["before"]["allowInvitesFrom"] == "everyone"
    assert authorization.details["after"]["allowInvitesFrom"] == "adminsAndGuestInviters"
    assert authorization.run_id == run.run_id
    stored = await drift_ports(services).reports.get(run.run_id)
    assert stored is not None and stored.exit_code == run.exit_code
    assert "### applied" in stored.markdown and stored.document["runId"] == run.run_id


def _with_federation(partner: str, domains: tuple[str, ...] | None = None) -> DesiredState:
    raw: dict[str, Any] = _sample().model_dump(by_alias=True, exclude_none=True)
    raw["partners"][partner]["federation"] = {
        "issuerUri": f"https://sts.{partner}.example/",
        "passiveSignInUri": f"https://sts.{partner}.example/signin",
        "preferredAuthenticationProtocol": "saml",
        "signingCertificate": "MIIBszCCAVmgAwIBAgIU",
        **({"domains": list(domains)} if domains else {}),
    }
    return DesiredState.model_validate(raw)


@pytest.mark.parametrize("inline", [True, False], ids=["domains-listed", "domains-in-own-collection"])
async def test_direct_federation_is_created_for_a_domain_without_an_entra_tenant(sim, admin, inline):
    """Adatum (Google, no Entra tenant): a SAML federation is planned, created, then matches, whether the list
    answers each configuration's domains (as its example shows) or they come from their own collection."""
    admin.seed(builtin="locked-down", guests=5)
    admin.configure(federationDomainsInline=inline)
    _create_guest_ca_policies(admin, sim)
    services = _services(sim, _with_federation("adatum"))
    planned = await run_policy_drift(services, "enforce")
    assert [(a.resource, a.key, a.change) for a in planned.drift] == [
        ("directory/federationConfigurations", "adatum", Change.CREATE)
    ]
    assert planned.failed == []
    assert (await run_policy_drift(services, "plan")).drift == []


@pytest.mark.parametrize("lookup", ["primary", "verified"])
async def test_direct_federation_for_an_entra_verified_domain_is_refused_and_nothing_applies(sim, admin, lookup):
    """fabrikam.com is Fabrikam's primary domain: refused (exit 1); the other drift is not applied either.
    fabrikam.co.uk, a second domain of Fabrikam's, is found by the tenant look-up only where it answers for
    every verified domain; where it answers for primary domains only (the documented reading) the federation
    is refused as unverifiable, since the partner's tenant exists, rather than created."""
    admin.seed(builtin="fresh", guests=5)
    admin.configure(tenantLookupDomains=lookup)
    run = await run_policy_drift(_services(sim, _with_federation("fabrikam")), "enforce")
    rules = {r.rule: r.message for r in run.refusals}
    if lookup == "primary":
        assert set(rules) == {"federation-entra-domain", "federation-domain-unverified"}
        assert "fabrikam.com" in rules["federation-entra-domain"]
        assert "fabrikam.co.uk" in rules["federation-domain-unverified"]
    else:
        assert set(rules) == {"federation-entra-domain"}
    assert {m for m in ("fabrikam.com", "fabrikam.co.uk") for r in run.refusals if m in r.message} == {
        "fabrikam.com",
        "fabrikam.co.uk",
    }
    assert all(FABRIKAM_TENANT_ID in r.message for r in run.refusals)
    assert run.results == [] and run.exit_code == 1
    assert admin.snapshot()["policies"]["crossTenantAccessPartners"] == []


async def test_conditional_access_reads_are_paced_to_the_service_limit(sim, admin):
    """With the one-per-second limit on, back-to-back runs read CA without ever being answered 429."""
    admin.seed(builtin="locked-down", guests=5)
    _create_guest_ca_policies(admin, sim)
    admin.configure(throttlingEnabled=True)
    admin.reset_counters()
    services = _services(sim, interval=1.0)
    started = time.monotonic()
    runs = [await run_policy_drift(services, "plan") for _ in range(2)]
    assert all(run.exit_code == 0 for run in runs)
    assert time.monotonic() - started >= 1.0
    assert not [r for r in admin.requests() if r["status"] == 429]
