"""Policy drift against tenantsim on Microsoft's moving cross-tenant surface, and waivers over their life.

Settings someone else made in properties the product does not manage are evidence, never drift, and survive
an apply; a property the product has never seen is an unmanaged-field; a partner goes back to inheriting the
default the way Graph takes it (or the refusal is plain); a waiver is planned, reported, and once expired is
drift itself.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
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
from lifecycle.clock import FixedClock
from lifecycle.drift.entry import drift_ports, render, run_policy_drift
from lifecycle.drift.planner import DEFAULT, PARTNERS
from lifecycle.plans import Change
from lifecycle.services import Services
from tenantsim.client import TenantSimAdmin
from tenantsim.seed import FABRIKAM_TENANT_ID, NORTHWIND_TENANT_ID
from tenantsim.server import TenantSimServer
from tests.builders import NOW, memory_services

XTAP = "/v1.0/policies/crossTenantAccessPolicy"
ADMIN_WRITE = ["Policy.ReadWrite.CrossTenantAccess"]
CA_WRITE = ("Policy.ReadWrite.ConditionalAccess", "Policy.Read.All", "Application.Read.All")
GUESTS = "internalGuest,b2bCollaborationGuest,b2bCollaborationMember,b2bDirectConnectUser,otherExternalUser"
MANAGED = {
    "b2bCollaborationInbound",
    "b2bCollaborationOutbound",
    "b2bDirectConnectInbound",
    "b2bDirectConnectOutbound",
    "inboundTrust",
    "tenantRestrictions",
}


@pytest.fixture
def admin(sim: TenantSimServer) -> Iterator[TenantSimAdmin]:
    """The shared tenant, locked down, with guest Conditional Access policies in place."""
    with TenantSimAdmin(sim.url) as client:
        client.configure(
            throttlingEnabled=False,
            federationDomainsInline=True,
            tenantLookupDomains="primary",
            partnerNullSetting="inherit",
        )
        client.clear_faults()
        client.seed(builtin="locked-down", guests=5)
        _create_guest_ca_policies(client, sim)
        yield client


class RecordingPolicies:
    """The real Graph gateway, keeping every cross-tenant request body it sends (the request log has none)."""

    def __init__(self, inner: GraphPolicies) -> None:
        self._inner = inner
        self.bodies: list[tuple[str, dict[str, Any]]] = []

    async def update_default(self, body: dict[str, Any]) -> None:
        self.bodies.append(("default", json.loads(json.dumps(body))))
        await self._inner.update_default(body)

    async def update_partner(self, tenant_id: str, body: dict[str, Any]) -> None:
        self.bodies.append((tenant_id, json.loads(json.dumps(body))))
        await self._inner.update_partner(tenant_id, body)

    async def create_partner(self, body: dict[str, Any]) -> dict[str, Any]:
        self.bodies.append(("create", json.loads(json.dumps(body))))
        return await self._inner.create_partner(body)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def _sample() -> DesiredState:
    return load_desired_state(SAMPLE_DESIRED_STATE)


def _gateway(sim: TenantSimServer) -> GraphPolicies:
    credential = TenantSimCredential(sim.url, roles=GRANTED)
    client = build_graph_client(credential=credential, base_url=f"{sim.url}/v1.0")
    return GraphPolicies(client, beta_url=f"{sim.url}/beta", conditional_access_interval=0.0)


def _services(
    sim: TenantSimServer, desired: DesiredState | None = None, clock: FixedClock | None = None, tenant: Any = None
) -> Services:
    return memory_services(
        desired=desired or _sample(),
        clock=clock,
        tenant_policies=tenant or _gateway(sim),
        drift_reports=MemoryDriftReports(),
    )


def _create_guest_ca_policies(admin: TenantSimAdmin, sim: TenantSimServer) -> None:
    users = {
        "includeGuestsOrExternalUsers": {
            "guestOrExternalUserTypes": GUESTS,
            "externalTenants": {"membershipKind": "all"},
        }
    }
    base = {"users": users, "applications": {"includeApplications": ["All"]}}
    headers = admin.auth_headers(list(CA_WRITE))
    for name, clients, control in (
        ("Guests: require MFA", ["all"], "mfa"),
        ("Guests: block legacy authentication", ["exchangeActiveSync", "other"], "block"),
    ):
        body = {
            "displayName": name,
            "state": "enabled",
            "conditions": {**base, "clientAppTypes": clients},
            "grantControls": {"operator": "OR", "builtInControls": [control]},
        }
        response = httpx.post(f"{sim.url}/v1.0/identity/conditionalAccess/policies", json=body, headers=headers)
        assert response.status_code == 201, response.text


def _someone_else(admin: TenantSimAdmin, sim: TenantSimServer, method: str, path: str, body: dict[str, Any]) -> None:
    """An administrator changes the tenant through Graph, outside this product."""
    response = httpx.request(method, f"{sim.url}{path}", json=body, headers=admin.auth_headers(ADMIN_WRITE))
    assert response.status_code in (200, 201, 204), response.text


def _everyone(access: str, target: str = "AllUsers", target_type: str = "user") -> dict[str, Any]:
    return {"accessType": access, "targets": [{"target": target, "targetType": target_type}]}


OTP_FIRST = {
    "primaryIdentityProviderPrecedenceOrder": ["externalFederation", "azureActiveDirectory"],
    "fallbackIdentityProvider": "emailOneTimePasscode",
}


def _set_the_newer_properties(admin: TenantSimAdmin, sim: TenantSimServer) -> None:
    """Every newer v1.0 property, set by someone else: the Microsoft 365 and app service connect blocks and the
    redemption order on the default; consent, service provider, Microsoft 365 and user synchronization on Fabrikam."""
    _someone_else(
        admin,
        sim,
        "PATCH",
        f"{XTAP}/default",
        {
            "m365CollaborationInbound": {"users": _everyone("allowed")},
            "m365CollaborationOutbound": {"usersAndGroups": _everyone("allowed")},
            "appServiceConnectInbound": {"applications": _everyone("allowed", "AllApplications", "application")},
            "invitationRedemptionIdentityProviderConfiguration": OTP_FIRST,
        },
    )
    partner = f"{XTAP}/partners/{FABRIKAM_TENANT_ID}"
    _someone_else(
        admin,
        sim,
        "PATCH",
        partner,
        {
            "automaticUserConsentSettings": {"inboundAllowed": True, "outboundAllowed": True},
            "isServiceProvider": True,
            "m365CollaborationOutbound": {"usersAndGroups": _everyone("allowed")},
        },
    )
    sync = {"displayName": "Fabrikam", "userSyncInbound": {"isSyncAllowed": True}}
    _someone_else(admin, sim, "PUT", f"{partner}/identitySynchronization", sync)


def _evidence(run: Any) -> dict[tuple[str, str, str], Any]:
    return {(e.resource, e.key, e.field): (e.kind, e.value) for e in run.evidence}


async def test_newer_properties_set_by_someone_else_are_evidence_and_never_drift(sim, admin):
    """The locked-down tenant matches the file; with every newer property set by someone else it still does
    (exit 0), and each value is shown as unmanaged evidence in the markdown, the JSON and the stored report."""
    _set_the_newer_properties(admin, sim)
    services = _services(sim)
    run = await run_policy_drift(services, "plan")
    assert run.drift == [] and run.exit_code == 0
    evidence = _evidence(run)
    assert evidence[(DEFAULT, "default", "m365CollaborationInbound")] == (
        "unmanaged",
        {"users": _everyone("allowed")},
    )
    assert evidence[(DEFAULT, "default", "appServiceConnectInbound")][0] == "unmanaged"
    assert evidence[(DEFAULT, "default", "invitationRedemptionIdentityProviderConfiguration")] == (
        "unmanaged",
        OTP_FIRST,
    )
    fabrikam = FABRIKAM_TENANT_ID.lower()
    assert evidence[(PARTNERS, fabrikam, "automaticUserConsentSettings")][1] == {
        "inboundAllowed": True,
        "outboundAllowed": True,
    }
    assert evidence[(PARTNERS, fabrikam, "isServiceProvider")] == ("unmanaged", True)
    assert evidence[(PARTNERS, fabrikam, "identitySynchronization")][1]["userSyncInbound"] == {"isSyncAllowed": True}
    # A partner nobody touched shows nothing: its unset properties merely inherit.
    assert not [key for key in evidence if key[1] == NORTHWIND_TENANT_ID.lower()]
    markdown = render(run)
    assert (
        "### evidence" in markdown and "identitySynchronization" in markdown and "m365CollaborationInbound" in markdown
    )
    document = json.loads(render(run, as_json=True))
    assert {e["field"] for e in document["evidence"]} >= {"m365CollaborationOutbound", "isServiceProvider"}
    stored = await drift_ports(services).reports.get(run.run_id)
    assert stored is not None and "appServiceConnectInbound" in stored.markdown


async def test_an_apply_sends_managed_fields_only_and_every_unmanaged_setting_survives(sim, admin):
    """Someone opens the default's inbound collaboration and sets every newer property; enforce closes the
    inbound again with PATCH bodies holding managed fields only, and the newer properties are as they were set."""
    _set_the_newer_properties(admin, sim)
    _someone_else(
        admin, sim, "PATCH", f"{XTAP}/default", {"b2bCollaborationInbound": {"usersAndGroups": _everyone("allowed")}}
    )
    _someone_else(
        admin,
        sim,
        "PATCH",
        f"{XTAP}/partners/{FABRIKAM_TENANT_ID}",
        {"inboundTrust": {"isMfaAccepted": False, "isCompliantDeviceAccepted": True}},
    )
    before = admin.snapshot()["policies"]
    tenant = RecordingPolicies(_gateway(sim))
    run = await run_policy_drift(_services(sim, tenant=tenant), "enforce")
    assert run.failed == [] and {(a.resource, a.change) for a in run.drift} == {
        (DEFAULT, Change.UPDATE),
        (PARTNERS, Change.UPDATE),
    }
    assert tenant.bodies and all(set(body) <= MANAGED for _, body in tenant.bodies)
    after = admin.snapshot()["policies"]
    unmanaged_default = ("m365CollaborationInbound", "m365CollaborationOutbound", "appServiceConnectInbound")
    for name in (*unmanaged_default, "invitationRedemptionIdentityProviderConfiguration"):
        assert after["crossTenantAccessDefault"][name] == before["crossTenantAccessDefault"][name]
    fabrikam_before = next(p for p in before["crossTenantAccessPartners"] if p["tenantId"] == FABRIKAM_TENANT_ID)
    fabrikam_after = next(p for p in after["crossTenantAccessPartners"] if p["tenantId"] == FABRIKAM_TENANT_ID)
    for name in ("automaticUserConsentSettings", "isServiceProvider", "m365CollaborationOutbound"):
        assert fabrikam_after[name] == fabrikam_before[name]
    assert after["crossTenantIdentitySync"] == before["crossTenantIdentitySync"]
    assert fabrikam_after["inboundTrust"]["isMfaAccepted"] is True
    assert (await run_policy_drift(_services(sim), "plan")).drift == []


async def test_a_property_the_product_has_never_seen_is_an_unmanaged_field_and_survives_an_apply(sim, admin):
    """Graph starts serving a property nobody told the product about, on the default and inside a managed block:
    each is reported as an unmanaged-field, is not drift, and is still there after an apply that fixes drift."""
    snapshot = admin.snapshot()
    default = snapshot["policies"]["crossTenantAccessDefault"]
    default["crossCloudMeetings"] = {"inboundAllowed": True}
    default["b2bCollaborationInbound"]["devices"] = {"mode": "allowed", "rule": "device.isCompliant -eq True"}
    default["b2bCollaborationOutbound"] = {
        "usersAndGroups": _everyone("blocked"),
        "applications": _everyone("blocked", "AllApplications", "application"),
    }
    admin.seed(snapshot)
    _create_guest_ca_policies(admin, sim)  # the seed document holds the directory, not Conditional Access
    services = _services(sim)
    run = await run_policy_drift(services, "enforce")
    evidence = _evidence(run)
    assert evidence[(DEFAULT, "default", "crossCloudMeetings")] == ("unmanaged-field", {"inboundAllowed": True})
    assert evidence[(DEFAULT, "default", "b2bCollaborationInbound.devices")][0] == "unmanaged-field"
    assert [(a.resource, a.change) for a in run.drift] == [(DEFAULT, Change.UPDATE)]
    assert {d.field.split(".")[0] for d in run.drift[0].diffs} == {"b2bCollaborationOutbound"}
    assert run.failed == []
    after = admin.snapshot()["policies"]["crossTenantAccessDefault"]
    assert after["crossCloudMeetings"] == {"inboundAllowed": True}
    assert after["b2bCollaborationInbound"]["devices"] == default["b2bCollaborationInbound"]["devices"]
    assert after["b2bCollaborationOutbound"]["usersAndGroups"]["accessType"] == "allowed"


@pytest.mark.parametrize("reading", ["inherit", "refuse"])
async def test_a_partner_reset_to_inherit_is_applied_or_refused_plainly(sim, admin, reading):
    """Northwind's file inherits its outbound collaboration; someone set it on the partner. The apply sends the
    block as null: where Graph takes it (the default reading) the partner inherits again and a new plan is clean;
    where it refuses (knob), the failure says why and what to do, the partner is unchanged and nothing else breaks."""
    admin.configure(partnerNullSetting=reading)
    path = f"{XTAP}/partners/{NORTHWIND_TENANT_ID}"
    outbound = {
        "usersAndGroups": _everyone("blocked"),
        "applications": _everyone("blocked", "AllApplications", "application"),
    }
    _someone_else(admin, sim, "PATCH", path, {"b2bCollaborationOutbound": outbound})
    run = await run_policy_drift(_services(sim), "enforce")
    [action] = run.drift
    assert action.payload["body"] == {"b2bCollaborationOutbound": None}
    partner = next(
        p for p in admin.snapshot()["policies"]["crossTenantAccessPartners"] if p["tenantId"] == NORTHWIND_TENANT_ID
    )
    if reading == "inherit":
        assert run.failed == [] and partner["b2bCollaborationOutbound"] is None
        assert (await run_policy_drift(_services(sim), "plan")).drift == []
    else:
        [failed] = run.failed
        assert failed.error is not None and failed.error["status"] == 400
        assert "b2bCollaborationOutbound" in failed.error["inheritRefused"]
        assert partner["b2bCollaborationOutbound"] == outbound
        assert run.exit_code == 1


def _with_waiver(**waiver: Any) -> DesiredState:
    raw: dict[str, Any] = _sample().model_dump(by_alias=True, exclude_none=True, mode="json")
    raw["waivers"] = [
        {
            "owner": "megan.bowen@contoso.com",
            "reason": "Fabrikam's devices are enrolled in its Intune while the audit runs (CHG0042)",
            "expires": "2026-12-15",
            **waiver,
        }
    ]
    return DesiredState.model_validate(raw)


async def test_a_waiver_is_planned_applied_reported_and_once_expired_is_drift(sim, admin):
    """Waiving Fabrikam's compliant-device trust: the plan moves the tenant to the waived value and says who
    waived it until when (markdown, JSON, audit); a re-plan is clean but still lists the waiver; the day after
    it expires the field is drift against the file, naming the waiver, and the expired waiver is drift itself."""
    desired = _with_waiver(target="partners.fabrikam", field="inboundTrust.isCompliantDeviceAccepted", value=True)
    clock = FixedClock(NOW)
    services = _services(sim, desired, clock)
    applied = await run_policy_drift(services, "enforce")
    [action] = applied.drift
    assert action.resource == PARTNERS and action.key == FABRIKAM_TENANT_ID.lower()
    assert [(d.field, d.desired, d.actual) for d in action.diffs] == [
        ("inboundTrust.isCompliantDeviceAccepted", True, False)
    ]
    assert "megan.bowen@contoso.com" in action.reason and "2026-12-15" in action.reason
    assert applied.failed == []
    audit = [e async for e in services.audit.entries() if e.target.startswith(PARTNERS)]
    assert audit[0].details["waived"][0]["owner"] == "megan.bowen@contoso.com"
    partner = next(
        p for p in admin.snapshot()["policies"]["crossTenantAccessPartners"] if p["tenantId"] == FABRIKAM_TENANT_ID
    )
    assert partner["inboundTrust"]["isCompliantDeviceAccepted"] is True

    clean = await run_policy_drift(services, "plan")
    assert clean.drift == [] and clean.exit_code == 0
    [status] = clean.waivers
    assert (status.state, status.owner, status.expires) == ("active", "megan.bowen@contoso.com", "2026-12-15")
    assert "### waivers" in render(clean) and "inboundTrust.isCompliantDeviceAccepted" in render(clean)
    assert json.loads(render(clean, as_json=True))["waivers"][0]["state"] == "active"

    clock.set(NOW.replace(month=12, day=15, hour=23))
    assert (await run_policy_drift(services, "plan")).drift == []  # its last day still counts
    clock.advance(timedelta(hours=1))
    expired = await run_policy_drift(services, "plan")
    assert expired.exit_code == 2
    by_resource = {a.resource: a for a in expired.drift}
    assert set(by_resource) == {PARTNERS, "waivers"}
    assert [(d.desired, d.actual) for d in by_resource[PARTNERS].diffs] == [(False, True)]
    assert "expired on 2026-12-15" in by_resource[PARTNERS].reason
    assert by_resource["waivers"].change is Change.REPORT and "megan.bowen" in by_resource["waivers"].reason
    assert "**expired: drift**" in render(expired)
