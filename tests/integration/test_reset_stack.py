"""Redemption reset against tenantsim: a partner changes identity provider and its guests re-redeem."""

from __future__ import annotations

import pytest

from graph.client import build_graph_client
from graph.credentials import TenantSimCredential
from graph.directory import GraphDirectory
from graph.permissions import GRANTED
from graph.policies import GraphPolicies
from graph.sweep_reads import GraphGroupMembers
from graph.tenants import GraphProviderLookup
from lifecycle import work
from lifecycle.adapters.sweep_runs import MemorySweepRuns
from lifecycle.demo import admit_partner_tenant
from lifecycle.outcomes import Verdict
from lifecycle.reset.entry import handle_reset_ticket, run_reset_detection, use_lookup
from lifecycle.sweep.entry import use_runs
from lifecycle.tickets import ResetRedemptionTicket
from tenantsim.client import TenantSimAdmin
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


def _services(stack, roles: frozenset[str] = GRANTED):
    credential = TenantSimCredential(stack.tenantsim_url, roles=roles)
    client = build_graph_client(credential=credential, base_url=f"{stack.tenantsim_url}/v1.0")
    services = memory_services(GraphDirectory(client))
    services.group_membership = GraphGroupMembers(client)  # the protected group, as bootstrap attaches it
    settings = services.desired.redemption_reset.model_copy(update={"brake_count": 500})
    services.desired = services.desired.model_copy(update={"redemption_reset": settings})
    return use_lookup(
        use_runs(services, MemorySweepRuns()),
        GraphProviderLookup(GraphPolicies(client, beta_url=f"{stack.tenantsim_url}/beta")),
    )


def _redeemed(snapshot: dict, domain: str) -> dict[str, dict]:
    return {
        u["id"]: u
        for u in snapshot["users"]
        if u["userType"] == "Guest"
        and (u.get("mail") or "").endswith("@" + domain)
        and u["externalUserState"] == "Accepted"
        and u["accountEnabled"]
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
        fabrikam = services.desired.partners["fabrikam"].model_copy(update={"tenant_id": None})
        services.desired = services.desired.model_copy(
            update={"partners": {**services.desired.partners, "fabrikam": fabrikam}}
        )
    summary = await run_reset_detection(services, "enforce")
    assert summary["status"] == "dispatched" and summary["dispatched"] == len(before)
    after = {u["id"]: u for u in admin.snapshot()["users"]}
    assert all(after[i]["externalUserState"] == "PendingAcceptance" for i in before)
    assert all(after[i]["mail"] == before[i]["mail"] for i in before)
    assert all(after[i]["externalUserState"] == "Accepted" for i in untouched)
    invitations = admin.counters()["invitations"]
    await run_reset_detection(services, "enforce", "reset-rerun")
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
    summary = await run_reset_detection(_services(local_stack), "enforce")
    assert summary["dispatched"] == 0 and summary["skipped"]["provider-unverified"] == len(before)
    assert admin.counters()["invitations"] == invitations
    assert all(u["externalUserState"] == "Accepted" for u in _redeemed(admin.snapshot(), "fabrikam.co.uk").values())


async def test_a_move_to_a_tenant_the_desired_state_keeps_out_resets_nobody(local_stack, admin):
    """Adatum's new tenant has no partner entry and the default blocks inbound: no guest is re-invited."""
    before = _redeemed(admin.snapshot(), "adatum.com")
    admin.set_identity_provider("adatum.com", "AzureAD", NEW_ADATUM_TENANT)
    invitations = admin.counters()["invitations"]
    summary = await run_reset_detection(_services(local_stack), "enforce")
    assert summary["dispatched"] == 0 and summary["skipped"]["provider-tenant-not-allowed-inbound"] == len(before)
    assert admin.counters()["invitations"] == invitations


async def test_a_ticket_with_a_new_email_updates_the_guest_then_resets_it(local_stack, admin):
    """newEmail is patched into mail and otherMails on tenantsim, then the same object is re-invited there."""
    guest_id, guest = next(iter(_redeemed(admin.snapshot(), "fabrikam.com").items()))
    new_email = "renamed." + guest["mail"]
    services = _services(local_stack)  # exactly the grant: User.ReadUpdate.All covers the address change
    ticket = ResetRedemptionTicket.model_validate(
        {"schemaVersion": 1, "kind": "reset-redemption", "ticketId": "T-7", "objectId": guest_id, "newEmail": new_email}
    )
    item = await work.begin(services, "ticket:T-7", kind=ticket.kind)
    assert item is not None
    outcome = await handle_reset_ticket(ticket, item, services, b"{}", "fp")
    assert outcome.verdict is Verdict.DONE and outcome.detail["objectId"] == guest_id
    stored = next(u for u in admin.snapshot()["users"] if u["id"] == guest_id)
    assert stored["mail"] == new_email and stored["externalUserState"] == "PendingAcceptance"


async def test_without_the_write_permission_an_email_change_fails_before_any_invitation(local_stack, admin):
    """A 403 on the address update dead-letters the ticket and no invitation is sent."""
    guest_id, guest = next(iter(_redeemed(admin.snapshot(), "fabrikam.com").items()))
    services = _services(local_stack, roles=GRANTED - {"User.ReadUpdate.All"})
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
    assert outcome.verdict is Verdict.FAILED and outcome.code == "authorization_requestdenied"
    assert admin.counters()["invitations"] == invitations
