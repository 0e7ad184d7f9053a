"""`export desired-state` against tenantsim's locked-down and fresh tenants, and against one the product's
governance and policy drift jobs configured (the lockdown areas included): the file loads with the product's
schema, and neither the drift plan (every opt-in area with it) nor the governance plan against the tenant it came
from has anything to write."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from adapters.memory import MemoryAuditLog, MemoryDriftReports
from app.doctor_probe import export_ports
from config.desired_state import DesiredState, load_desired_state
from config.settings import load_settings
from graph.api_connectors import GraphApiConnectors
from graph.client import build_graph_client
from graph.credentials import TenantSimCredential
from graph.governance import GraphGovernance
from graph.identity_providers import GraphGuestIdentityProviders
from graph.lifecycle_policies import GraphGuestLifecyclePolicies, GraphLifecyclePolicyPriority
from graph.permissions import GRANTED, features_of, granted
from graph.policies import GraphPolicies
from graph.scope_groups import GraphScopeGroups
from graph.sign_ins import GraphSignInEvidence
from graph.users import GraphSweepReads
from lifecycle.clock import SystemClock
from lifecycle.drift.entry import plan_drift
from lifecycle.export.run import export_desired_state
from lifecycle.governance import run_governance
from lifecycle.governance.job import make_plan
from lifecycle.plans import Change
from tenantsim.client import TenantSimAdmin
from tenantsim.seed import FABRIKAM_COLLABORATORS_GROUP_ID, PROTECTED_GROUP_ID
from tenantsim.server import TenantSimServer
from tenantsim.stack import TENANT_ID
from tests.builders import LOCAL_ENV, memory_services
from tests.fakes import FakeDirectory

pytestmark = pytest.mark.stack

SAMPLE = Path(__file__).resolve().parents[2] / "config" / "desired-state.sample.yaml"
FEDERATIONS = "/v1.0/directory/federationConfigurations/microsoft.graph.samlOrWsFedExternalDomainFederation"
# Named as the drift job names a partner's federation: after the partner (the sample's Adatum Corporation).
ADATUM_FEDERATION = {
    "displayName": "Adatum Corporation",
    "issuerUri": "https://sts.adatum.com/",
    "passiveSignInUri": "https://sts.adatum.com/signin",
    "preferredAuthenticationProtocol": "saml",
    "signingCertificate": "MIIBszCCAVmgAwIBAgIU",
    "domains": [{"@odata.type": "microsoft.graph.externalDomainName", "id": "adatum.com"}],
}

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


# The deployment's secrets: Graph never shows them back, so the export must not hold them.
SECRETS = {"LIFECYCLE_SIGNUP_CONNECTOR_PASSWORD": "sign-up-basic-secret", "LIFECYCLE_GOOGLE_CLIENT_SECRET": "g-secret"}
BREAK_GLASS = "0b1f7a2e-5c3d-4e8f-9a6b-7c8d9e0f1a2b"


def _break_glass_directory() -> FakeDirectory:
    """The tenant's own emergency administrator, as the guest Conditional Access guardrail reads it."""
    directory = FakeDirectory()
    admin = directory.add_member("breakglass@contoso.com", "Emergency access")
    directory.users[BREAK_GLASS] = replace(directory.users.pop(admin.id), id=BREAK_GLASS)
    return directory


def _drift_services(url: str, state: DesiredState) -> object:
    """Policy drift with every opt-in area's gateway on tenantsim, holding what the file's features need."""
    roles = granted(redemption_reset=False, features=features_of(state))
    client = build_graph_client(credential=TenantSimCredential(url, roles=roles), base_url=f"{url}/v1.0")
    policies = GraphPolicies(client, beta_url=f"{url}/beta", conditional_access_interval=0.0)
    return memory_services(
        _break_glass_directory(),
        desired=state,
        settings=load_settings({**LOCAL_ENV, **SECRETS}),
        tenant_policies=policies,
        drift_reports=MemoryDriftReports(),
        sign_up_connectors=GraphApiConnectors(client),
        conditional_access_writes=policies,
        sign_in_evidence=GraphSignInEvidence(client),
        guest_identity_providers=GraphGuestIdentityProviders(client, policies),
        guest_reads=GraphSweepReads(client),
        lifecycle_policies=GraphGuestLifecyclePolicies(client),
        scope_groups=GraphScopeGroups(client),
        lifecycle_priority=GraphLifecyclePolicyPriority(client),
    )


async def _export_and_plan(url: str, out: Path, roles: frozenset[str] = READ_ROLES) -> tuple[str, list, list]:
    settings = _settings(url)
    credential = TenantSimCredential(url, roles=roles)
    policies, governance, lockdown, lifecycle_policies = export_ports(settings, credential)
    text = await export_desired_state(TENANT_ID, policies, governance, lockdown, lifecycle_policies)
    await asyncio.to_thread(out.write_text, text, encoding="utf-8")
    state = await asyncio.to_thread(load_desired_state, out)
    drift, _ = await plan_drift(_drift_services(url, state))
    plan, _ = await make_plan(governance, state)
    return text, [a for a in drift.actions if a.change in WRITES], [a for a in plan.actions if a.change in WRITES]


@pytest.mark.parametrize("posture", ["locked-down", "fresh"])
def test_an_exported_tenant_has_no_writable_drift_or_governance_change_against_itself(posture, tmp_path):
    with TenantSimServer(posture=posture) as sim:
        text, drift, governance = asyncio.run(_export_and_plan(sim.url, tmp_path / "exported.yaml"))
    assert [(a.resource, a.key, a.reason) for a in drift] == []
    assert [(a.resource, a.key, a.reason) for a in governance] == []
    # What the format cannot hold is reported as comments, not dropped.
    # The seeded packages name no partner (no request policy admits one, no description names one): a human binds them.
    assert "# DECIDE: access package 'Fabrikam engineering'" in text
    assert "# DECIDE: appHoldsGuestInviter" in text
    # A lockdown area the token may not read is left out with why, not guessed at.
    assert "#   not exported: the tenant's signUpRegistration could not be read (PermissionDeniedError" in text
    assert "reading it needs APIConnectors.ReadWrite.All and IdentityUserFlow.ReadWrite.All" in text
    assert "not exported: the guest lifecycle policies could not be read (PermissionDeniedError" in text


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


async def _apply_sample_governance(url: str) -> None:
    client = build_graph_client(credential=TenantSimCredential(url, roles=GRANTED), base_url=f"{url}/v1.0")
    result = await run_governance(
        GraphGovernance(client),
        desired=load_desired_state(SAMPLE),
        audit=MemoryAuditLog(),
        clock=SystemClock(),
        mode="enforce",
    )
    assert result["exitCode"] == 0, result.get("failed")


# Graph stores review definitions rewritten (a /v1.0 prefix on queries, noEnd read back as numbered until
# 9999-12-31: accessreviewset-post-definitions.md, accessreviewscheduledefinition-get.md); the export reads
# them either way.
REVIEW_READINGS = {
    "as-graph-stores-them": {"reviewQueryVersionPrefix": True, "reviewNoEndAsNumbered": True},
    "as-written": {"reviewQueryVersionPrefix": False, "reviewNoEndAsNumbered": False},
}


@pytest.mark.parametrize("reading", list(REVIEW_READINGS))
def test_governance_the_product_applied_exports_as_the_desired_state_it_came_from(reading, tmp_path):
    with TenantSimServer(posture="locked-down", guests=30) as sim:
        with TenantSimAdmin(sim.url) as admin:
            admin.configure(**REVIEW_READINGS[reading])
            headers = admin.auth_headers(["IdentityProvider.ReadWrite.All"])
            created = httpx.post(f"{sim.url}{FEDERATIONS}", json=ADATUM_FEDERATION, headers=headers)
            assert created.status_code == 201, created.text
        asyncio.run(_apply_sample_governance(sim.url))
        text, drift, governance = asyncio.run(_export_and_plan(sim.url, tmp_path / "exported.yaml"))
    assert [(a.resource, a.key, a.reason) for a in drift] == []
    assert [(a.resource, a.key, a.reason) for a in governance] == []
    sample = load_desired_state(SAMPLE)
    exported = load_desired_state(tmp_path / "exported.yaml")
    # The partners keep the keys the governance job made their objects under, so their objects stay theirs.
    assert set(exported.governance.partners) == set(sample.governance.partners)
    for key, settings in sample.governance.partners.items():
        assert exported.governance.partners[key] == settings, key
        assert exported.partners[key].access_package == sample.partners[key].access_package, key
    assert exported.governance.guest_review == sample.governance.guest_review
    assert exported.governance.partner_review == sample.governance.partner_review
    assert exported.governance.catalog == sample.governance.catalog
    assert exported.governance.external_user_lifecycle == sample.governance.external_user_lifecycle
    # Adatum has no Entra tenant: its direct federation and its connected organisation make one partner.
    assert exported.partners["adatum"].federation is not None
    assert exported.partners["adatum"].federation.issuer_uri == "https://sts.adatum.com/"
    assert exported.partners["adatum"].domains == ("adatum.com",)
    assert "DECIDE: access package" not in text


SIGN_UP_URL = "https://func-signup.contoso.example/api/signup"
LOCKDOWN = {
    "signUpRegistration": {
        "displayName": "Partner self-service sign-up",
        "targetUrl": SIGN_UP_URL,
        "username": "entra-signup",
        "userFlows": ["B2X_1_Partner"],
        "steps": ["postFederationSignup", "postAttributeCollection"],
    },
    "guestConditionalAccess": {
        "breakGlassUserIds": [BREAK_GLASS],
        "requireMfa": {"displayName": "Guests: require MFA (managed)", "enabled": True},
        "blockLegacyAuthentication": {"displayName": "Guests: no legacy authentication", "enabled": False},
    },
    "guestIdentityProviders": {
        "emailOneTimePasscode": "enabled",
        "google": {"clientId": "1234-abc.apps.googleusercontent.com", "displayName": "Google"},
        "redemptionOrder": {
            "primary": ["azureActiveDirectory", "externalFederation", "socialIdentityProviders"],
            "fallback": "emailOneTimePasscode",
        },
    },
}


def _lockdown_desired() -> DesiredState:
    sample = load_desired_state(SAMPLE).model_dump(by_alias=True, mode="json", exclude_none=True)
    return DesiredState.model_validate({**sample, **LOCKDOWN})


async def _apply_lockdown(url: str, desired: DesiredState) -> None:
    """The product's policy drift applies the three areas; the MFA policy is switched on by an approval."""
    from lifecycle.drift.ca_policies import MFA
    from lifecycle.drift.entry import run_policy_drift

    services = _drift_services(url, desired)
    first = await run_policy_drift(services, "enforce")
    assert first.refusals == [] and all(r.ok for r in first.results), first.refusals
    approved = await run_policy_drift(services, "enforce", approvals=frozenset({MFA}))
    assert all(r.ok for r in approved.results)


def test_the_lockdown_areas_the_product_applied_export_as_the_sections_they_came_from_and_no_secret(tmp_path):
    desired = _lockdown_desired()
    with TenantSimServer(posture="locked-down", guests=5) as sim:
        with TenantSimAdmin(sim.url) as admin:
            admin.configure(throttlingEnabled=False, signInListNeedsDirectoryRead=False)
            flow = {"id": "Partner", "userFlowType": "signUpOrSignIn", "userFlowTypeVersion": 1}
            headers = admin.auth_headers(["IdentityUserFlow.ReadWrite.All"])
            created = httpx.post(f"{sim.url}/v1.0/identity/b2xUserFlows", json=flow, headers=headers)
            assert created.status_code == 201, created.text
        asyncio.run(_apply_lockdown(sim.url, desired))
        roles = granted(redemption_reset=False, features=features_of(desired))
        text, drift, governance = asyncio.run(_export_and_plan(sim.url, tmp_path / "exported.yaml", roles))
    assert [(a.resource, a.key, a.reason) for a in drift] == []
    assert [(a.resource, a.key, a.reason) for a in governance] == []
    exported = load_desired_state(tmp_path / "exported.yaml")
    assert exported.sign_up_registration == desired.sign_up_registration
    assert exported.guest_conditional_access == desired.guest_conditional_access
    assert exported.guest_identity_providers == desired.guest_identity_providers
    # Graph shows no secret back, and the file names where each comes from instead.
    for secret in SECRETS.values():
        assert secret not in text
    assert "LIFECYCLE_SIGNUP_CONNECTOR_PASSWORD" in text and "LIFECYCLE_GOOGLE_CLIENT_SECRET" in text
    assert "--feature guest-conditional-access" in text


NATIVE = {
    "guestLifecyclePolicies": {
        "policies": {
            "idle": {
                "displayName": "Guests: idle for 180 days",
                "enabled": False,
                "excludedGroups": ["Fabrikam collaborators"],
                "rules": [{"type": "inactivity", "days": 180}, {"type": "sponsorPresence", "minimumSponsors": 1}],
                "action": {"kind": "disableThenDelete", "deleteAfterDays": 30},
                "gracePeriodDays": 14,
                "notifications": {"offsetsDays": [7, 1], "fallbackRecipients": ["guest-admins@contoso.com"]},
            }
        }
    }
}


async def _apply_native(url: str, desired: DesiredState) -> None:
    from lifecycle.drift.entry import run_policy_drift

    created = await run_policy_drift(_drift_services(url, desired), "enforce")
    assert created.refusals == [] and all(r.ok for r in created.results), created.refusals


def test_the_guest_lifecycle_policies_the_product_applied_export_as_the_section_they_came_from(tmp_path):
    """Created by policy drift (disabled, the protected group excluded beside the file's group, found by name), read
    back by the export with the plan-mode permission: the section plans nothing against the tenant it came from."""
    sample = load_desired_state(SAMPLE).model_dump(by_alias=True, mode="json", exclude_none=True)
    desired = DesiredState.model_validate({**sample, **NATIVE})
    with TenantSimServer(posture="locked-down", guests=5) as sim:
        asyncio.run(_apply_native(sim.url, desired))
        roles = READ_ROLES | {"LifecyclePolicies-Guests.Read.All"}
        text, drift, governance = asyncio.run(_export_and_plan(sim.url, tmp_path / "exported.yaml", roles))
    assert [(a.resource, a.key, a.reason) for a in drift] == []
    assert [(a.resource, a.key, a.reason) for a in governance] == []
    exported = load_desired_state(tmp_path / "exported.yaml").guest_lifecycle_policies
    wanted = desired.guest_lifecycle_policies
    assert exported is not None and wanted is not None
    [policy] = exported.policies.values()
    want = wanted.policies["idle"]
    assert (policy.display_name, policy.enabled, policy.owner) == (want.display_name, False, None)
    assert (policy.rules, policy.action, policy.grace_period_days) == (want.rules, want.action, want.grace_period_days)
    assert policy.notifications == want.notifications
    assert set(policy.excluded_groups) == {FABRIKAM_COLLABORATORS_GROUP_ID.lower(), PROTECTED_GROUP_ID}
    assert "--feature guest-lifecycle-policies" in text
