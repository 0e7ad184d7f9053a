"""The msgraph-sdk Directory gateway against tenantsim: real HTTP, real SDK, Graph's semantics."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from graph.client import build_graph_client
from graph.credentials import TenantSimCredential
from graph.permissions import GRANTED
from graph.users import SPONSOR_TTL_SECONDS, GraphDirectory
from lifecycle.errors import NotFoundError, PermissionDeniedError
from lifecycle.models import InvitationRequest

pytestmark = pytest.mark.stack


def _directory(stack, roles: frozenset[str] = GRANTED) -> GraphDirectory:
    credential = TenantSimCredential(stack.tenantsim_url, roles=roles)
    return GraphDirectory(build_graph_client(credential=credential, base_url=f"{stack.tenantsim_url}/v1.0"))


def _snapshot(stack) -> dict:
    return httpx.get(f"{stack.tenantsim_url}/_tenantsim/snapshot", timeout=10).json()


def _configure(stack, **settings: object) -> None:
    httpx.put(f"{stack.tenantsim_url}/_tenantsim/config", json=settings, timeout=10).raise_for_status()


def _a_seeded(stack, user_type: str) -> dict:
    return next(u for u in _snapshot(stack)["users"] if u["userType"] == user_type and u.get("mail"))


async def test_a_seeded_guest_is_found_by_mail_with_its_directory_fields(local_stack):
    """find_user_by_mail returns the guest with its #EXT# UPN and external state."""
    seeded = _a_seeded(local_stack, "Guest")
    found = await _directory(local_stack).find_user_by_mail(seeded["mail"])
    assert found is not None and found.id == seeded["id"] and found.is_guest
    assert "#EXT#" in (found.user_principal_name or "")


async def test_a_quote_in_a_lookup_value_cannot_widen_the_filter(local_stack):
    """An injection attempt is a literal that matches nobody, never a filter that matches everybody."""
    assert await _directory(local_stack).find_user_by_mail("x' or userType eq 'Guest") is None


async def test_inviting_twice_returns_the_same_guest_object(local_stack):
    """POST /invitations for an address with a guest reuses that guest (no duplicate object)."""
    directory = _directory(local_stack)
    request = InvitationRequest(email="gateway.test@fabrikam.com", redirect_url="https://myapps.microsoft.com")
    first = await directory.invite_guest(request)
    second = await directory.invite_guest(request)
    assert first.user_id == second.user_id
    matches = [u for u in _snapshot(local_stack)["users"] if u.get("mail") == "gateway.test@fabrikam.com"]
    assert len(matches) == 1


async def test_an_unknown_object_id_reads_as_none(local_stack):
    """GET /users/{id} that Graph answers 404 becomes None, not an exception."""
    assert await _directory(local_stack).get_user("00000000-0000-4000-8000-000000000000") is None


async def test_guests_stream_page_by_page_to_the_end(local_stack):
    """list_guests follows @odata.nextLink until Graph stops sending one, with no guest twice."""
    ids: list[str] = []
    pages = 0
    async for page in _directory(local_stack).list_guests(page_size=50):
        pages += 1
        ids.extend(u.id for u in page)
    seeded = [u for u in _snapshot(local_stack)["users"] if u["userType"] == "Guest"]
    assert pages > 1 and len(ids) == len(set(ids)) == len(seeded)


async def test_disable_revoke_and_soft_delete_reach_the_tenant(local_stack):
    """The write operations land: disabled, sessions revoked, then soft-deleted into deletedItems."""
    directory = _directory(local_stack)
    invited = await directory.invite_guest(
        InvitationRequest(email="to.remove@fabrikam.com", redirect_url="https://myapps.microsoft.com")
    )
    await directory.set_account_enabled(invited.user_id, False)
    await directory.revoke_sessions(invited.user_id)
    assert (await directory.get_user(invited.user_id)).account_enabled is False
    await directory.delete_user(invited.user_id)
    assert await directory.get_user(invited.user_id) is None
    deleted = _snapshot(local_stack)["deletedItems"]
    assert any(item["id"] == invited.user_id for item in deleted)


async def test_a_missing_permission_surfaces_as_permission_denied_with_graphs_code(local_stack):
    """Without User.Invite.All an invitation fails with Authorization_RequestDenied, clearly mapped."""
    directory = _directory(local_stack, roles=GRANTED - {"User.Invite.All"})
    with pytest.raises(PermissionDeniedError) as caught:
        await directory.invite_guest(
            InvitationRequest(email="nope@fabrikam.com", redirect_url="https://myapps.microsoft.com")
        )
    assert caught.value.code == "Authorization_RequestDenied" and caught.value.request_id


async def test_deleting_an_absent_user_is_not_found(local_stack):
    """A 404 on a write maps to NotFoundError (the sweep treats it as already gone)."""
    with pytest.raises(NotFoundError):
        await _directory(local_stack).delete_user("00000000-0000-4000-8000-000000000001")


async def test_a_sponsor_is_added_once_and_a_second_add_reports_it_was_already_there(local_stack):
    """add_sponsor posts the sponsor's read URL to sponsors/$ref; a 400 for a sponsor already there is False."""
    writer = _directory(local_stack, GRANTED | {"User.ReadWrite.All"})
    invited = await writer.invite_guest(
        InvitationRequest(email="sponsor.gateway@fabrikam.com", redirect_url="https://myapps.microsoft.com")
    )
    sponsor = _a_seeded(local_stack, "Member")["id"]
    assert await writer.sponsor_ids(invited.user_id) == set()
    assert await writer.add_sponsor(invited.user_id, sponsor) is True
    assert await writer.add_sponsor(invited.user_id, sponsor) is False
    assert await _directory(local_stack).sponsor_ids(invited.user_id) == {sponsor}
    assert _snapshot(local_stack)["sponsors"][invited.user_id] == [sponsor]


@pytest.mark.parametrize("no_content", [False, True], ids=["400 (observed)", "204 (idempotent)"])
async def test_a_second_sponsor_add_is_settled_whichever_answer_graph_gives(local_stack, no_content):
    """The page leaves the answer to a sponsor already there open (tenantsim's duplicateSponsorNoContent):
    a 400 is settled by reading the sponsors back (False), a 204 is accepted; the sponsor is there once."""
    writer = _directory(local_stack, GRANTED | {"User.ReadWrite.All"})
    invited = await writer.invite_guest(
        InvitationRequest(email=f"sponsor.twice.{no_content}@fabrikam.com", redirect_url="https://myapps.microsoft.com")
    )
    sponsor = _a_seeded(local_stack, "Member")["id"]
    assert await writer.add_sponsor(invited.user_id, sponsor) is True
    _configure(local_stack, duplicateSponsorNoContent=no_content)
    try:
        second = await writer.add_sponsor(invited.user_id, sponsor)
    finally:
        _configure(local_stack, duplicateSponsorNoContent=False)
    assert second is no_content
    assert await writer.sponsor_ids(invited.user_id) == {sponsor}
    assert _snapshot(local_stack)["sponsors"][invited.user_id] == [sponsor]


async def test_an_invitation_with_a_sponsor_reaches_the_new_guests_sponsors(local_stack):
    """invitedUserSponsors is stored on the guest the invitation creates, read back through GET sponsors."""
    directory = _directory(local_stack)
    sponsor = _a_seeded(local_stack, "Member")["id"]
    invited = await directory.invite_guest(
        InvitationRequest(
            email="sponsor.invited@fabrikam.com", redirect_url="https://myapps.microsoft.com", sponsor_ids=(sponsor,)
        )
    )
    assert await directory.sponsor_ids(invited.user_id) == {sponsor}


async def test_adding_a_sponsor_to_an_unknown_user_is_not_found(local_stack):
    """A 404 from sponsors/$ref is NotFoundError, never mistaken for "already a sponsor"."""
    writer = _directory(local_stack, GRANTED | {"User.ReadWrite.All"})
    with pytest.raises(NotFoundError):
        await writer.add_sponsor("00000000-0000-4000-8000-000000000000", _a_seeded(local_stack, "Member")["id"])


def _directory_on(sim, clock) -> GraphDirectory:
    credential = TenantSimCredential(sim.url, roles=GRANTED)
    return GraphDirectory(build_graph_client(credential=credential, base_url=f"{sim.url}/v1.0"), clock=clock)


def _user_reads(admin, user_id: str) -> int:
    return sum(1 for r in admin.requests() if r["method"] == "GET" and r["path"].startswith(f"/v1.0/users/{user_id}"))


async def test_a_member_sponsor_is_read_once_for_the_tickets_that_name_it_until_it_ages_out(sim, admin):
    """A bulk request's tickets name one sponsor: the tickets asking at once share one read, the next ones
    within SPONSOR_TTL_SECONDS make none, and after it the sponsor is read again (a member made a guest since
    is then seen as a guest)."""
    member = next(u for u in admin.snapshot()["users"] if u["userType"] == "Member" and u.get("userPrincipalName"))
    now = [0.0]
    directory = _directory_on(sim, lambda: now[0])
    admin.reset_counters()
    answers = await asyncio.gather(*(directory.find_sponsor(member["userPrincipalName"]) for _ in range(20)))
    assert {a.id for a in answers} == {member["id"]} and _user_reads(admin, member["userPrincipalName"]) == 1

    now[0] += SPONSOR_TTL_SECONDS - 1
    again = await directory.find_sponsor(member["userPrincipalName"].upper())
    assert again is not None and again.user_type == "Member"
    assert len(admin.requests()) == 1

    admin.patch_user(member["id"], userType="Guest")
    try:
        now[0] += 2
        aged = await directory.find_sponsor(member["userPrincipalName"])
        assert aged is not None and aged.user_type == "Guest"
    finally:
        admin.patch_user(member["id"], userType="Member")


async def test_a_guest_or_unknown_sponsor_is_read_on_every_ticket(sim, admin):
    """Only a member is kept: a guest named as sponsor (refused) is read again for the next ticket, so one
    made a member meanwhile is accepted at once, and an unknown address is asked again too."""
    guest = next(u for u in admin.snapshot()["users"] if u["userType"] == "Guest")
    directory = _directory_on(sim, lambda: 0.0)
    admin.reset_counters()
    assert (await directory.find_sponsor(guest["id"])).user_type == "Guest"
    assert (await directory.find_sponsor(guest["id"])).user_type == "Guest"
    assert await directory.find_sponsor("nobody@contoso.com") is None
    assert await directory.find_sponsor("nobody@contoso.com") is None
    assert _user_reads(admin, guest["id"]) == 2 and _user_reads(admin, "nobody@contoso.com") == 2


async def test_the_directory_reads_on_after_the_server_closed_its_idle_connections(sim, admin):
    """A server that closes idle connections sooner than the client's pool keeps them (idleConnectionSeconds 1
    against httpx's 5 s): the next read goes out on a new connection, not a dead one."""
    member = next(u for u in admin.snapshot()["users"] if u["userType"] == "Member")
    admin.configure(idleConnectionSeconds=1)
    try:
        directory = _directory_on(sim, lambda: 0.0)
        assert (await directory.get_user(member["id"])).id == member["id"]
        await asyncio.sleep(1.5)
        assert (await directory.get_user(member["id"])).id == member["id"]
    finally:
        admin.configure(idleConnectionSeconds=30)
