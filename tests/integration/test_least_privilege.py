"""Least privilege, proven: with exactly the granted Graph permissions every job's calls succeed, and
without any one of them the call that needs it fails with Graph's clear 403 (Authorization_RequestDenied).

The grant list is graph/permissions.py, the one infra/grant-graph-permissions applies; tenantsim checks each
request's token roles against what Graph requires per endpoint.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from graph.client import build_graph_client
from graph.credentials import TenantSimCredential
from graph.entitlement import GraphAccessPackages
from graph.governance import GraphGovernance
from graph.groups import GraphGroupMembers
from graph.permissions import GRANTED, RESET_GRANT
from graph.policies import GraphPolicies
from graph.users import GraphDirectory, GraphSweepReads
from lifecycle.errors import PermissionDeniedError
from lifecycle.governance.ports import REVIEWS
from lifecycle.models import InvitationRequest
from tenantsim.client import TenantSimAdmin

pytestmark = pytest.mark.stack
PROTECTED_GROUP = "7d3e9f1a-2b4c-4d6e-8f0a-1b2c3d4e5f6a"


class Ports:
    def __init__(self, stack, roles: frozenset[str]) -> None:
        client = build_graph_client(
            credential=TenantSimCredential(stack.tenantsim_url, roles=roles), base_url=f"{stack.tenantsim_url}/v1.0"
        )
        self.directory = GraphDirectory(client)
        self.packages = GraphAccessPackages(client)
        self.policies = GraphPolicies(client, beta_url=f"{stack.tenantsim_url}/beta", conditional_access_interval=0)
        self.governance = GraphGovernance(client)
        self.members = GraphGroupMembers(client)
        self.reads = GraphSweepReads(client)


async def _a_guest(ports: Ports) -> str:
    invited = await ports.directory.invite_guest(
        InvitationRequest(email="least.privilege@fabrikam.com", redirect_url="https://myapps.microsoft.com")
    )
    return invited.user_id


async def _sign_in_listing(ports: Ports) -> None:
    async for _ in ports.reads.list_guests(select=("id", "signInActivity"), page_size=50):
        return


# For each granted permission: a call the product makes that needs exactly that permission.
PROBES: dict[str, Callable[[Ports, str], Awaitable[Any]]] = {
    "User.Read.All": lambda p, g: p.directory.find_user_by_mail("least.privilege@fabrikam.com"),
    "User.Invite.All": lambda p, g: p.directory.invite_guest(
        InvitationRequest(email="probe.invite@fabrikam.com", redirect_url="https://myapps.microsoft.com")
    ),
    "User.EnableDisableAccount.All": lambda p, g: p.directory.set_account_enabled(g, True),
    "User.DeleteRestore.All": lambda p, g: p.directory.delete_user(g),
    "User.RevokeSessions.All": lambda p, g: p.directory.revoke_sessions(g),
    "GroupMember.ReadBasic.All": lambda p, g: p.members.group_member_ids(PROTECTED_GROUP),
    "AuditLog.Read.All": lambda p, g: _sign_in_listing(p),
    "Policy.Read.All": lambda p, g: p.policies.list_conditional_access_policies(),
    "Policy.ReadWrite.CrossTenantAccess": lambda p, g: p.policies.update_default({}),
    "Policy.ReadWrite.Authorization": lambda p, g: p.policies.update_authorization_policy(
        {"allowInvitesFrom": "adminsAndGuestInviters"}
    ),
    "Policy.ReadWrite.B2BManagementPolicy": lambda p, g: p.policies.list_b2b_management_policies(),
    "CrossTenantInformation.ReadBasic.All": lambda p, g: p.policies.find_tenant_by_domain("fabrikam.com"),
    "IdentityProvider.ReadWrite.All": lambda p, g: p.policies.list_federations(),
    "EntitlementManagement.ReadWrite.All": lambda p, g: p.packages.resolve(
        "Partner collaboration", "Fabrikam engineering"
    ),
    "AccessReview.ReadWrite.All": lambda p, g: p.governance.list(REVIEWS),
}


@pytest.fixture(name="fresh")
def _fresh(local_stack):
    with TenantSimAdmin(local_stack.tenantsim_url) as admin:
        admin.seed(builtin="fresh", guests=40)
        yield admin
        admin.seed(builtin="fresh", guests=300)


def test_every_granted_permission_has_a_probe():
    """A permission added to the grant must come with the call that needs it (and so with this proof)."""
    assert set(PROBES) == set(GRANTED)


async def test_with_exactly_the_grant_every_call_succeeds(local_stack, fresh):
    """Each probe runs without a 403 under a token holding exactly graph.permissions.GRANTED."""
    ports = Ports(local_stack, GRANTED)
    guest = await _a_guest(ports)
    for name, probe in PROBES.items():
        if name != "User.DeleteRestore.All":
            await probe(ports, guest)
    await PROBES["User.DeleteRestore.All"](ports, guest)


@pytest.mark.parametrize("missing", sorted(GRANTED))
async def test_without_one_permission_its_call_fails_with_a_clear_permission_error(local_stack, fresh, missing):
    """Remove one permission: the call that needs it raises PermissionDeniedError with Graph's code."""
    guest = await _a_guest(Ports(local_stack, GRANTED))
    ports = Ports(local_stack, GRANTED - {missing})
    with pytest.raises(PermissionDeniedError) as caught:
        await PROBES[missing](ports, guest)
    assert caught.value.code == "Authorization_RequestDenied" and caught.value.status == 403


async def test_sponsors_are_read_with_the_grant_but_adding_one_needs_a_permission_not_granted(local_stack, fresh):
    """Reading a guest's sponsors needs only User.Read.All. Adding one needs User.ReadWrite.All, deliberately not
    granted (it would supersede every narrower user permission above): with the grant the add is Graph's 403."""
    ports = Ports(local_stack, GRANTED)
    guest = await _a_guest(ports)
    sponsor = next(u["id"] for u in fresh.snapshot()["users"] if u["userType"] == "Member")
    assert "User.ReadWrite.All" not in GRANTED
    assert await ports.directory.sponsor_ids(guest) == set()
    with pytest.raises(PermissionDeniedError) as caught:
        await ports.directory.add_sponsor(guest, sponsor)
    assert caught.value.code == "Authorization_RequestDenied" and caught.value.status == 403
    assert await Ports(local_stack, GRANTED | {"User.ReadWrite.All"}).directory.add_sponsor(guest, sponsor)
    assert await ports.directory.sponsor_ids(guest) == {sponsor}


async def _reset_to_a_new_address(ports: Ports, guest: str) -> None:
    """The reset ticket's Graph calls: add the address to otherMails (and mail), then reset to it."""
    await ports.directory.update_user(guest, mail="moved@fabrikam.com", other_mails=["moved@fabrikam.com"])
    await ports.directory.invite_guest(
        InvitationRequest(
            email="moved@fabrikam.com",
            redirect_url="https://myapps.microsoft.com",
            reset_redemption=True,
            invited_user_id=guest,
        )
    )


async def test_the_reset_grant_resets_and_without_user_readwrite_all_the_reset_is_403(local_stack, fresh):
    """The base grant cannot reset a redemption nor set otherMails (403); with the reset's grant both succeed."""
    assert {"User.ReadWrite.All"} == RESET_GRANT and not RESET_GRANT & GRANTED
    guest = await _a_guest(Ports(local_stack, GRANTED))
    base = Ports(local_stack, GRANTED)
    with pytest.raises(PermissionDeniedError) as patch_refused:
        await base.directory.update_user(guest, other_mails=["moved@fabrikam.com"])
    with pytest.raises(PermissionDeniedError) as reset_refused:
        await base.directory.invite_guest(
            InvitationRequest(
                email="least.privilege@fabrikam.com",
                redirect_url="https://myapps.microsoft.com",
                reset_redemption=True,
                invited_user_id=guest,
            )
        )
    assert patch_refused.value.status == reset_refused.value.status == 403
    assert reset_refused.value.code == "Authorization_RequestDenied"
    await _reset_to_a_new_address(Ports(local_stack, GRANTED | RESET_GRANT), guest)
    stored = next(u for u in fresh.snapshot()["users"] if u["id"] == guest)
    assert stored["externalUserState"] == "PendingAcceptance" and "moved@fabrikam.com" in stored["otherMails"]


async def test_a_departed_sponsors_manager_is_read_with_the_grant_and_only_an_enabled_member_is_proposed(
    local_stack, fresh
):
    """GET /users/{id}/manager needs only User.Read.All (user-list-manager.md): the sponsor-reassign event proposes
    the manager when it is an enabled member; a disabled manager, or none at all (404), proposes nobody."""
    users = [u for u in fresh.snapshot()["users"] if u["userType"] == "Member"]
    sponsor, manager, alone = (u["id"] for u in users[:3])
    document = fresh.snapshot()
    document["managers"] = {sponsor: manager}
    fresh.seed(document)
    ports = Ports(local_stack, GRANTED)
    assert await ports.reads.manager_of(sponsor) == manager
    assert await ports.reads.manager_of(alone) is None
    fresh.patch_user(manager, accountEnabled=False)
    assert await ports.reads.manager_of(sponsor) is None
    with pytest.raises(PermissionDeniedError):
        await Ports(local_stack, GRANTED - {"User.Read.All"}).reads.manager_of(sponsor)
