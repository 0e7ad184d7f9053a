"""Redemption reset against tenantsim: a partner changes identity provider and its guests re-redeem."""

from __future__ import annotations

import pytest

from adapters.memory import MemorySweepRuns
from app.demo import admit_partner_tenant
from config.desired_state import Safety
from graph.client import build_graph_client
from graph.credentials import TenantSimCredential
from graph.groups import GraphGroupMembers
from graph.permissions import GRANTED, RESET_GRANT
from graph.policies import GraphPolicies
from graph.tenants import GraphProviderLookup
from graph.users import GraphDirectory
from lifecycle.ledger import work
from lifecycle.ledger.outcomes import Verdict
from lifecycle.reset.entry import handle_reset_ticket, run_reset_detection
from lifecycle.reset.local import run_locally
from lifecycle.tickets import ResetRedemptionTicket
from tenantsim.client import TenantSimAdmin
from tenantsim.seed import PROTECTED_GROUP_ID
from tests.builders import memory_services

pytestmark = pytest.mark.stack

NEW_ADATUM_TENANT = "0c6f3a2b-9d8e-4f1a-b2c3-d4e5f6a7b8c9"


@pytest.fixture
def admin(local_stack):
    with TenantSimAdmin(local_stack.tenantsim_url) as client:
        client.seed(builtin="fresh", guests=120, random_seed=3)
        try:
            yield client
        finally:
            client.seed(builtin="fresh", guests=300, random_seed=0)
            client.configure(tenantLookupDomains="primary")


def _services(stack, roles: frozenset[str] = GRANTED | RESET_GRANT):
    """A deployment with redemption reset switched on; ``roles`` is what it was actually granted."""
    credential = TenantSimCredential(stack.tenantsim_url, roles=roles)
    client = build_graph_client(credential=credential, base_url=f"{stack.tenantsim_url}/v1.0")
    lookup = GraphProviderLookup(GraphPolicies(client, beta_url=f"{stack.tenantsim_url}/beta"))
    services = memory_services(
        GraphDirectory(client),
        group_membership=GraphGroupMembers(client),  # the protected group, as bootstrap attaches it
        sweep_runs=MemorySweepRuns(),
        provider_lookup=lookup,
    )
    services.settings = services.settings.model_copy(update={"reset_enabled": True, "reset_mode": "enforce"})
    # The seeded guests were not onboarded by the product: tickets may name them in these tests. The gate's
    # managed rule is tested in tests/unit/test_safety_gate.py.
    services.desired = services.desired.model_copy(update={"safety": Safety(tickets_may_act_on_unmanaged_guests=True)})
    settings = services.desired.redemption_reset.model_copy(update={"brake_count": 500})
    services.desired = services.desired.model_copy(update={"redemption_reset": settings})
    return services


def _without_fabrikam_tenant(services):
    """Fabrikam left Entra: the desired state no longer names its tenant (while it names one that exists, the
    guests of its second domain are left alone as unverified)."""
    fabrikam = services.desired.partners["fabrikam"].model_copy(update={"tenant_id": None})
    services.desired = services.desired.model_copy(
        update={"partners": {**services.desired.partners, "fabrikam": fabrikam}}
    )
    return services


def _redeemed(snapshot: dict, domain: str) -> dict[str, dict]:
    """The domain's redeemed, enabled guests that a reset may touch (the protected group's are never reset)."""
    protected = {m for g in snapshot["groups"] if g["id"] == PROTECTED_GROUP_ID for m in g["members"]}
    return {
        u["id"]: u
        for u in snapshot["users"]
        if u["userType"] == "Guest"
        and (u.get("mail") or "").endswith("@" + domain)
        and u["externalUserState"] == "Accepted"
        and u["accountEnabled"]
        and u["id"] not in protected
    }


@pytest.mark.parametrize(
    ("domain", "provider", "tenant_id"),
    [("adatum.com", "AzureAD", NEW_ADATUM_TENANT), ("fabrikam.co.uk", "EmailOTP", None)],
    ids=["google-and-otp-to-entra", "entra-to-passcode"],
)
async def test_a_provider_change_resets_the_domains_guests_and_keeps_their_objects(
    local_stack, admin, domain, provider, tenant_id
):
    """After the domain's provider changes, enforce resets exactly its redeemed guests; a rerun sends nothing.
    For fabrikam.co.uk leaving Entra the desired state no longer names a Fabrikam tenant: while it names one
    that exists, the domain's guests are left alone (the next test)."""
    before = _redeemed(admin.snapshot(), domain)
    untouched = _redeemed(admin.snapshot(), "northwindtraders.com")
    assert before and untouched
    admin.set_identity_provider(domain, provider, tenant_id)
    services = _services(local_stack)
    if tenant_id:
        services.desired = admit_partner_tenant(services.desired, "adatum", tenant_id)
    else:
        _without_fabrikam_tenant(services)
    summary = await run_locally(services, "enforce")  # fanned out on guest-actions, then worked by the local worker
    assert summary["status"] == "dispatched" and summary["dispatched"] == len(before)
    assert summary["progress"]["reset"] == len(before) and summary["worker"] == {"done": len(before)}
    after = {u["id"]: u for u in admin.snapshot()["users"]}
    assert all(after[i]["externalUserState"] == "PendingAcceptance" for i in before)
    assert all(after[i]["mail"] == before[i]["mail"] for i in before)
    assert all(after[i]["externalUserState"] == "Accepted" for i in untouched)
    invitations = admin.counters()["invitations"]
    await run_locally(services, "enforce", "reset-rerun")
    assert admin.counters()["invitations"] == invitations


@pytest.mark.parametrize(
    ("lookup", "moved"), [("primary", False), ("verified", True)], ids=["second-domain", "left-entra"]
)
async def test_a_partner_domain_the_tenant_lookup_cannot_place_resets_nobody_and_says_why(
    local_stack, admin, lookup, moved
):
    """fabrikam.co.uk is a second domain of Fabrikam's tenant, which the desired state names. Where the tenant
    look-up answers for primary domains only (the documented reading) it finds nothing for it; where it answers
    for every verified domain it finds nothing once the domain leaves Entra. Either way Fabrikam's tenant still
    exists, so its Entra guests are not taken for personal accounts: nobody is reset, and the run says why."""
    admin.configure(tenantLookupDomains=lookup)
    before = _redeemed(admin.snapshot(), "fabrikam.co.uk")
    assert before
    if moved:
        admin.set_identity_provider("fabrikam.co.uk", "EmailOTP")
    invitations = admin.counters()["invitations"]
    summary = await run_locally(_services(local_stack), "enforce")
    assert summary["dispatched"] == 0 and summary["skipped"]["provider-unverified"] == len(before)
    assert admin.counters()["invitations"] == invitations
    assert all(u["externalUserState"] == "Accepted" for u in _redeemed(admin.snapshot(), "fabrikam.co.uk").values())


async def test_a_move_to_a_tenant_the_desired_state_keeps_out_resets_nobody(local_stack, admin):
    """Adatum's new tenant has no partner entry and the default blocks inbound: no guest is re-invited."""
    before = _redeemed(admin.snapshot(), "adatum.com")
    admin.set_identity_provider("adatum.com", "AzureAD", NEW_ADATUM_TENANT)
    invitations = admin.counters()["invitations"]
    summary = await run_locally(_services(local_stack), "enforce")
    assert summary["dispatched"] == 0 and summary["skipped"]["provider-tenant-not-allowed-inbound"] == len(before)
    assert admin.counters()["invitations"] == invitations


async def test_a_ticket_with_a_new_email_adds_it_to_other_mails_then_resets_the_same_object(local_stack, admin):
    """newEmail is added to otherMails (and set as mail) on tenantsim, then the same object is reset to it;
    tenantsim refuses a reset to an address the guest does not have, so the order is proven."""
    guest_id, guest = next(iter(_redeemed(admin.snapshot(), "fabrikam.com").items()))
    new_email = "renamed." + guest["mail"]
    services = _services(local_stack)  # the base grant plus the reset's User.ReadWrite.All
    ticket = ResetRedemptionTicket.model_validate(
        {"schemaVersion": 1, "kind": "reset-redemption", "ticketId": "T-7", "objectId": guest_id, "newEmail": new_email}
    )
    item = await work.begin(services, "ticket:T-7", kind=ticket.kind)
    assert item is not None
    outcome = await handle_reset_ticket(ticket, item, services, b"{}", "fp")
    assert outcome.verdict is Verdict.DONE and outcome.detail["objectId"] == guest_id
    stored = next(u for u in admin.snapshot()["users"] if u["id"] == guest_id)
    assert stored["mail"] == new_email and stored["externalUserState"] == "PendingAcceptance"
    assert new_email in stored["otherMails"] and stored["userPrincipalName"] == guest["userPrincipalName"]


async def test_without_the_reset_grant_an_email_change_fails_replayably_before_any_invitation(local_stack, admin):
    """A 403 on the address update fails the ticket naming User.ReadWrite.All; no invitation, no revocation."""
    guest_id, guest = next(iter(_redeemed(admin.snapshot(), "fabrikam.com").items()))
    services = _services(local_stack, roles=GRANTED)
    ticket = ResetRedemptionTicket.model_validate(
        {
            "schemaVersion": 1,
            "kind": "reset-redemption",
            "ticketId": "T-8",
            "objectId": guest_id,
            "newEmail": "n." + guest["mail"],
        }
    )
    item = await work.begin(services, "ticket:T-8", kind=ticket.kind)
    assert item is not None
    invitations = admin.counters()["invitations"]
    outcome = await handle_reset_ticket(ticket, item, services, b"{}", "fp")
    assert outcome.verdict is Verdict.FAILED and outcome.code == "permission-missing"
    assert "User.ReadWrite.All" in outcome.message
    assert admin.counters()["invitations"] == invitations
    stored = next(u for u in admin.snapshot()["users"] if u["id"] == guest_id)
    assert stored["signInSessionsValidFromDateTime"] == guest["signInSessionsValidFromDateTime"]


async def test_without_the_reset_grant_a_run_revokes_no_session_and_resets_once_granted(local_stack, admin):
    """With only the base grant Graph refuses the reset (403): no guest loses its sessions, the run's probe meets
    the 403 and stops the run naming the permission, and the other guests are never sent (one refused
    invitation, not one per guest); the same run, granted User.ReadWrite.All, then resets every planned guest."""
    domain = "fabrikam.co.uk"
    before = _redeemed(admin.snapshot(), domain)
    assert len(before) > 1
    admin.set_identity_provider(domain, "EmailOTP", None)
    refused = await run_locally(
        _without_fabrikam_tenant(_services(local_stack, roles=GRANTED)), "enforce", "reset-no-grant"
    )
    assert refused["progress"]["reset"] == 0 and "User.ReadWrite.All" in refused["reason"]
    assert refused["worker"] == {"failed": 1} and refused["progress"]["waiting"] == len(before) - 1
    after = {u["id"]: u for u in admin.snapshot()["users"]}
    for object_id, guest in before.items():
        assert after[object_id]["externalUserState"] == "Accepted"
        assert after[object_id]["signInSessionsValidFromDateTime"] == guest["signInSessionsValidFromDateTime"]
    granted = await run_locally(_without_fabrikam_tenant(_services(local_stack)), "enforce", "reset-no-grant")
    assert granted["dispatched"] == len(before) and granted["progress"]["reset"] == len(before)
    after = {u["id"]: u for u in admin.snapshot()["users"]}
    assert all(after[i]["externalUserState"] == "PendingAcceptance" for i in before)


@pytest.mark.parametrize("unset_as_null", [False, True], ids=["unset-served-as-default", "unset-served-as-null"])
async def test_detection_follows_the_tenants_redemption_order(local_stack, admin, unset_as_null):
    """No order set (either answer): adatum's Google and passcode guests stay. Google dropped from the order
    with a passcode fallback: exactly its Google guests are planned to move to passcodes."""
    google = [u for u in _redeemed(admin.snapshot(), "adatum.com").values() if _issuer(u) == "google.com"]
    assert google
    admin.configure(unsetRedemptionOrderAsNull=unset_as_null)
    try:
        unset = await run_reset_detection(_services(local_stack), "plan", run_id="order-unset")
        assert unset["actions"] == {}
        order = {
            "primaryIdentityProviderPrecedenceOrder": ["azureActiveDirectory", "externalFederation"],
            "fallbackIdentityProvider": "emailOneTimePasscode",
        }
        await _set_redemption_order(local_stack, order)
        ordered = await run_reset_detection(_services(local_stack), "plan", run_id="order-set")
        assert ordered["actions"] == {"reset/google->email-otp": len(google)}
    finally:
        admin.configure(unsetRedemptionOrderAsNull=False)


def _issuer(user: dict) -> str:
    return next((i["issuer"] for i in user.get("identities") or [] if i["signInType"] == "federated"), "")


async def _set_redemption_order(stack, order: dict) -> None:
    """As a tenant administrator would, through the product's own gateway to the default policy."""
    credential = TenantSimCredential(stack.tenantsim_url, roles=frozenset({"Policy.ReadWrite.CrossTenantAccess"}))
    client = build_graph_client(credential=credential, base_url=f"{stack.tenantsim_url}/v1.0")
    policies = GraphPolicies(client, beta_url=f"{stack.tenantsim_url}/beta")
    await policies.update_default({"invitationRedemptionIdentityProviderConfiguration": order})


async def test_a_new_email_that_is_another_objects_proxy_address_is_rejected_before_any_invitation(local_stack, admin):
    """Graph refuses a mail another object holds as a proxy address: the ticket is rejected, nobody invited."""
    snapshot = admin.snapshot()
    guest_id, guest = next(iter(_redeemed(snapshot, "fabrikam.com").items()))
    member = next(u for u in snapshot["users"] if u["userType"] == "Member")
    alias = "shared.alias@fabrikam.com"  # only a proxy address: no mail filter finds it
    admin.patch_user(member["id"], proxyAddresses=[*(member.get("proxyAddresses") or []), f"smtp:{alias}"])
    services = _services(local_stack)
    ticket = ResetRedemptionTicket.model_validate(
        {"schemaVersion": 1, "kind": "reset-redemption", "ticketId": "T-9", "objectId": guest_id, "newEmail": alias}
    )
    item = await work.begin(services, "ticket:T-9", kind=ticket.kind)
    assert item is not None
    invitations = admin.counters()["invitations"]
    outcome = await handle_reset_ticket(ticket, item, services, b"{}", "fp")
    assert outcome.verdict is Verdict.REJECTED and outcome.code == "email-in-use"
    assert alias in outcome.message and "proxyAddresses" in outcome.message
    assert admin.counters()["invitations"] == invitations
    assert next(u for u in admin.snapshot()["users"] if u["id"] == guest_id)["mail"] == guest["mail"]
