"""A guest's sponsors: invitedUserSponsors on a new guest, POST /users/{id}/sponsors/$ref, GET sponsors."""

from __future__ import annotations

import uuid

from msgraph.generated.models.directory_object_collection_response import DirectoryObjectCollectionResponse
from msgraph.generated.models.group import Group
from msgraph.generated.models.reference_create import ReferenceCreate
from msgraph.generated.models.user import User

from tenantsim.seed import PROTECTED_GROUP_ID
from tests.tenantsim.conftest import guests, members
from tests.tenantsim.sdk_models import assert_absorbed
from tests.tenantsim.test_msgraph_sdk import client_for

INVITE = ("User.Invite.All",)
WRITE = ("User.ReadWrite.All",)
GRAPH = "https://graph.microsoft.com/v1.0"


def _invite(graph, email: str, sponsors: list[str]):
    body = {
        "invitedUserEmailAddress": email,
        "inviteRedirectUrl": "https://myapps.microsoft.com",
        "invitedUserSponsors": [{"id": s} for s in sponsors],
    }
    return graph.request("POST", "/v1.0/invitations", roles=INVITE, json=body)


def _sponsor_ids(graph, user_id: str) -> list[str]:
    response = graph.get(f"/v1.0/users/{user_id}/sponsors")
    assert response.status_code == 200, response.text
    return [s["id"] for s in response.json()["value"]]


def _add(graph, user_id: str, reference: str, roles: tuple[str, ...] = WRITE):
    return graph.request("POST", f"/v1.0/users/{user_id}/sponsors/$ref", roles=roles, json={"@odata.id": reference})


def _unsponsored_guest(graph) -> str:
    return _invite(graph, f"unsponsored.{uuid.uuid4().hex[:8]}@fabrikam.com", []).json()["invitedUser"]["id"]


def test_an_invitation_makes_its_sponsors_the_new_guests_sponsors(graph, admin):
    """invitedUserSponsors on an invitation that creates a guest: GET sponsors lists exactly them, in order."""
    first, second = (m["id"] for m in members(admin)[:2])
    response = _invite(graph, "sponsored.new@fabrikam.com", [first, second])
    assert response.status_code == 201
    guest_id = response.json()["invitedUser"]["id"]
    assert _sponsor_ids(graph, guest_id) == [first, second]
    assert admin.snapshot()["sponsors"][guest_id] == [first, second]


def test_an_invitation_naming_a_sponsor_that_does_not_exist_is_400_and_creates_nobody(graph, admin):
    """An unknown sponsor id refuses the whole invitation before any guest is created."""
    response = _invite(graph, "sponsor.missing@fabrikam.com", [str(uuid.uuid4())])
    assert response.status_code == 400 and response.json()["error"]["code"] == "BadRequest"
    assert "invitedUserSponsors" in response.json()["error"]["message"]
    assert not [u for u in admin.snapshot()["users"] if u.get("mail") == "sponsor.missing@fabrikam.com"]


def test_invited_user_sponsors_of_the_wrong_shape_are_400(graph):
    """invitedUserSponsors must be a list of objects with an id."""
    body = {
        "invitedUserEmailAddress": "sponsor.shape@fabrikam.com",
        "inviteRedirectUrl": "https://myapps.microsoft.com",
        "invitedUserSponsors": ["not-an-object"],
    }
    assert graph.request("POST", "/v1.0/invitations", roles=INVITE, json=body).status_code == 400


def test_an_invitation_that_reuses_a_guest_leaves_its_sponsors_alone(graph, admin):
    """Re-inviting an existing guest returns it; its sponsors are not replaced by the invitation's."""
    guest = guests(admin)[0]
    before = admin.snapshot()["sponsors"].get(guest["id"], [])
    other = next(m["id"] for m in members(admin) if m["id"] not in before)
    response = _invite(graph, guest["mail"], [other])
    assert response.status_code == 201 and response.json()["invitedUser"]["id"] == guest["id"]
    assert _sponsor_ids(graph, guest["id"]) == before


def test_adding_a_sponsor_by_reference_is_204_and_listed(graph, admin):
    """The documented body (the sponsor's read URL on graph.microsoft.com) adds the sponsor."""
    guest_id = _unsponsored_guest(graph)
    sponsor = members(admin)[0]["id"]
    response = _add(graph, guest_id, f"{GRAPH}/users/{sponsor}")
    assert response.status_code == 204 and response.content == b""
    assert _sponsor_ids(graph, guest_id) == [sponsor]


def test_the_simulators_own_base_url_and_a_directory_object_url_are_accepted(graph, admin):
    """A client pointed at tenantsim sends its own base URL; directoryObjects/{id} names a user as well."""
    guest_id = _unsponsored_guest(graph)
    first, second = (m["id"] for m in members(admin)[:2])
    assert _add(graph, guest_id, f"{graph.server.url}/v1.0/users/{first}").status_code == 204
    assert _add(graph, guest_id, f"{GRAPH}/directoryObjects/{second}").status_code == 204
    assert _sponsor_ids(graph, guest_id) == [first, second]


def test_adding_a_sponsor_that_is_already_there_is_400_with_the_directorys_message(graph, admin):
    """A second add of the same reference is refused (Request_BadRequest) and changes nothing."""
    guest_id = _unsponsored_guest(graph)
    sponsor = members(admin)[0]["id"]
    assert _add(graph, guest_id, f"{GRAPH}/users/{sponsor}").status_code == 204
    again = _add(graph, guest_id, f"{GRAPH}/users/{sponsor}")
    assert again.status_code == 400
    assert again.json()["error"]["code"] == "Request_BadRequest"
    assert "added object references already exist" in again.json()["error"]["message"]
    assert "'sponsors'" in again.json()["error"]["message"]
    assert _sponsor_ids(graph, guest_id) == [sponsor]


def test_adding_a_sponsor_needs_user_readwrite_all(graph, admin):
    """The granular user permissions do not cover sponsors: 403 Authorization_RequestDenied, nothing added."""
    guest_id = _unsponsored_guest(graph)
    sponsor = members(admin)[0]["id"]
    granular = ("User.Read.All", "User.ReadUpdate.All", "User.Invite.All", "User.EnableDisableAccount.All")
    denied = _add(graph, guest_id, f"{GRAPH}/users/{sponsor}", roles=granular)
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "Authorization_RequestDenied"
    assert _sponsor_ids(graph, guest_id) == []
    directory = _add(graph, guest_id, f"{GRAPH}/users/{sponsor}", roles=("Directory.ReadWrite.All",))
    assert directory.status_code == 403  # the page names User.ReadWrite.All alone
    assert _add(graph, guest_id, f"{GRAPH}/users/{sponsor}").status_code == 204


def test_listing_sponsors_needs_user_read_all_or_user_readwrite_all(graph, admin):
    """The list page names User.Read.All and User.ReadWrite.All; the directory-wide permissions are not listed."""
    guest_id = _unsponsored_guest(graph)
    path = f"/v1.0/users/{guest_id}/sponsors"
    assert graph.get(path, roles=("User.Read.All",)).status_code == 200
    assert graph.get(path, roles=("User.ReadWrite.All",)).status_code == 200
    for roles in (("Directory.Read.All",), ("Directory.ReadWrite.All",), ("GroupMember.Read.All",)):
        assert graph.get(path, roles=roles).status_code == 403, roles


def test_a_sponsors_page_is_a_directory_objects_collection(graph, admin):
    """The list page's example names the context directoryObjects; $select names the chosen properties."""
    guest_id = _unsponsored_guest(graph)
    _add(graph, guest_id, f"{GRAPH}/users/{members(admin)[0]['id']}")
    assert graph.get(f"/v1.0/users/{guest_id}/sponsors").json()["@odata.context"].endswith("$metadata#directoryObjects")
    selected = graph.get(f"/v1.0/users/{guest_id}/sponsors?$select=id").json()["@odata.context"]
    assert selected.endswith("$metadata#directoryObjects(id)")


def test_with_the_knob_a_sponsor_already_there_is_204_and_still_listed_once(graph, admin):
    """duplicateSponsorNoContent: the other answer the page leaves open, an idempotent 204."""
    admin.configure(duplicateSponsorNoContent=True)
    guest_id = _unsponsored_guest(graph)
    sponsor = members(admin)[0]["id"]
    assert _add(graph, guest_id, f"{GRAPH}/users/{sponsor}").status_code == 204
    assert _add(graph, guest_id, f"{GRAPH}/users/{sponsor}").status_code == 204
    assert _sponsor_ids(graph, guest_id) == [sponsor]


def test_an_unknown_user_or_sponsor_is_404(graph, admin):
    """The guest and the referenced object must both exist: Request_ResourceNotFound otherwise."""
    guest_id = _unsponsored_guest(graph)
    sponsor = members(admin)[0]["id"]
    missing = str(uuid.uuid4())
    no_user = _add(graph, missing, f"{GRAPH}/users/{sponsor}")
    no_sponsor = _add(graph, guest_id, f"{GRAPH}/users/{missing}")
    assert (no_user.status_code, no_sponsor.status_code) == (404, 404)
    assert no_sponsor.json()["error"]["code"] == "Request_ResourceNotFound"
    assert _add(graph, guest_id, f"{GRAPH}/groups/{sponsor}").status_code == 404  # a user is not a group
    assert _sponsor_ids(graph, guest_id) == []


def test_a_malformed_reference_is_400(graph, admin):
    """No @odata.id, extra properties, or a URL that is not an object's read URL: 400."""
    guest_id = _unsponsored_guest(graph)
    sponsor = members(admin)[0]["id"]
    path = f"/v1.0/users/{guest_id}/sponsors/$ref"
    bodies = [
        {},
        {"id": sponsor},
        {"@odata.id": f"{GRAPH}/users/{sponsor}", "extra": 1},
        {"@odata.id": sponsor},
        {"@odata.id": f"https://evil.example/v1.0/users/{sponsor}"},
    ]
    for body in bodies:
        assert graph.request("POST", path, roles=WRITE, json=body).status_code == 400, body


def test_a_group_sponsor_is_listed_as_a_group(graph, admin):
    """Sponsors may be groups: added by its read URL, listed with @odata.type microsoft.graph.group."""
    guest_id = _unsponsored_guest(graph)
    assert _add(graph, guest_id, f"{GRAPH}/groups/{PROTECTED_GROUP_ID}").status_code == 204
    [listed] = graph.get(f"/v1.0/users/{guest_id}/sponsors").json()["value"]
    assert listed["@odata.type"] == "#microsoft.graph.group" and listed["id"] == PROTECTED_GROUP_ID


def test_sponsor_pages_are_absorbed_by_the_sdk_model(graph, admin):
    """A sponsors page with a user and a group deserializes into msgraph's models with nothing left over."""
    guest_id = _unsponsored_guest(graph)
    _add(graph, guest_id, f"{GRAPH}/users/{members(admin)[0]['id']}")
    _add(graph, guest_id, f"{GRAPH}/groups/{PROTECTED_GROUP_ID}")
    parsed = assert_absorbed(graph.get(f"/v1.0/users/{guest_id}/sponsors").json(), DirectoryObjectCollectionResponse)
    assert [type(o) for o in parsed.value] == [User, Group]


async def test_the_sdk_adds_and_lists_sponsors(server, admin, graph):
    """msgraph-sdk's sponsors.ref.post and sponsors.get round-trip through tenantsim."""
    guest_id = _unsponsored_guest(graph)
    sponsor = members(admin)[0]["id"]
    client = client_for(server, admin, ("User.ReadWrite.All",))
    user = client.users.by_user_id(guest_id)
    await user.sponsors.ref.post(ReferenceCreate(odata_id=f"{GRAPH}/users/{sponsor}"))
    listed = await user.sponsors.get()
    assert [(type(o), o.id) for o in listed.value] == [(User, sponsor)]


def _with_sponsors(graph, admin) -> tuple[str, list[str]]:
    guest = guests(admin)[0]["id"]
    sponsors = admin.snapshot()["sponsors"][guest]
    return guest, sponsors


def test_the_guest_list_expands_each_guests_sponsors_with_a_nested_select(graph, admin):
    """user-list-sponsors.md: $expand=sponsors($select=...) on the user; on the list every guest carries them."""
    guest, sponsors = _with_sponsors(graph, admin)
    query = "$filter=userType eq 'Guest'&$select=id&$expand=sponsors($select=id,accountEnabled,userType)&$top=999"
    page = graph.get(f"/v1.0/users?{query}").json()["value"]
    listed = next(u for u in page if u["id"] == guest)
    assert [s["id"] for s in listed["sponsors"]] == sponsors
    assert set(listed["sponsors"][0]) == {"@odata.type", "id", "accountEnabled", "userType"}
    assert all("sponsors" in u for u in page)


def test_an_expanded_sponsor_deleted_since_is_left_out(graph, admin):
    guest, sponsors = _with_sponsors(graph, admin)
    assert graph.request("DELETE", f"/v1.0/users/{sponsors[0]}", roles=("User.DeleteRestore.All",)).status_code == 204
    one = graph.get(f"/v1.0/users/{guest}?$select=id&$expand=sponsors").json()
    assert sponsors[0] not in [s["id"] for s in one["sponsors"]]


def test_with_the_known_issues_reading_a_nested_select_is_ignored(graph, admin):
    """known-issues.md: no nested $select in $expand for directory objects; expandNestedSelect=ignore answers
    the sponsors with their default properties."""
    admin.configure(expandNestedSelect="ignore")
    guest, _ = _with_sponsors(graph, admin)
    one = graph.get(f"/v1.0/users/{guest}?$select=id&$expand=sponsors($select=id,accountEnabled)").json()
    assert "accountEnabled" not in one["sponsors"][0] and "displayName" in one["sponsors"][0]


def test_other_expansions_and_expand_with_advanced_queries_are_refused(graph, admin):
    assert graph.get("/v1.0/users?$expand=manager").status_code == 400
    advanced = graph.get("/v1.0/users?$expand=sponsors&$count=true", headers={"ConsistencyLevel": "eventual"})
    assert advanced.status_code == 400


def test_expand_beside_sign_in_activity_is_answered_unless_the_knob_refuses_it(graph, admin):
    """No page says whether the pair combines: tenantsim answers it by default; expandWithSignInActivity=false
    refuses it with 400 (and each alone still works)."""
    query = "/v1.0/users?$select=id,signInActivity&$expand=sponsors"
    assert graph.get(query).status_code == 200
    admin.configure(expandWithSignInActivity=False)
    assert graph.get(query).status_code == 400
    assert graph.get("/v1.0/users?$select=id,signInActivity").status_code == 200
    assert graph.get("/v1.0/users?$select=id&$expand=sponsors").status_code == 200
