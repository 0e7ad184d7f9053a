"""GET/PATCH/DELETE /users, $count, paging, replication delay, soft delete and restore."""

from __future__ import annotations

import time
from urllib.parse import quote

from tests.tenantsim.conftest import guests, members

EVENTUAL = {"ConsistencyLevel": "eventual"}
WRITE_ROLES = ("User.ReadWrite.All",)


def test_guest_listing_pages_to_the_end_with_absolute_next_links(graph, admin):
    """Following @odata.nextLink returns every guest exactly once; links are absolute on the server's base."""
    seeded = {g["id"] for g in guests(admin)}
    seen: list[str] = []
    url = "/v1.0/users?$filter=userType eq 'Guest'&$top=7&$select=id"
    pages = 0
    while url:
        body = graph.get(url).json()
        seen += [u["id"] for u in body["value"]]
        url = body.get("@odata.nextLink")
        if url:
            assert url.startswith(f"{graph.server.url}/v1.0/users?") and "&$skiptoken=" in url
        pages += 1
    assert pages == -(-len(seeded) // 7) and len(seen) == len(set(seen)) and set(seen) == seeded


def test_without_select_the_default_property_set_is_returned(graph):
    """No $select: exactly Graph's default eleven properties."""
    user = graph.get("/v1.0/users?$top=1").json()["value"][0]
    assert set(user) == {
        "businessPhones",
        "displayName",
        "givenName",
        "id",
        "jobTitle",
        "mail",
        "mobilePhone",
        "officeLocation",
        "preferredLanguage",
        "surname",
        "userPrincipalName",
    }


def test_select_returns_exactly_the_selected_properties_and_names_them_in_the_context(graph):
    """$select narrows the payload and shows up in @odata.context."""
    body = graph.get("/v1.0/users?$select=id,externalUserState&$top=2").json()
    assert body["@odata.context"].endswith("$metadata#users(id,externalUserState)")
    assert all(set(u) == {"id", "externalUserState"} for u in body["value"])


def test_unknown_and_single_entity_properties_in_select_are_refused(graph):
    """An unknown property is a 400; a single-entity-only property on the collection is a 501."""
    assert graph.get("/v1.0/users?$select=favouriteColour").status_code == 400
    assert graph.get("/v1.0/users?$select=aboutMe").status_code == 501


def test_top_outside_1_to_999_and_skip_are_rejected(graph):
    """$top must be 1..999 and $skip is not supported on users."""
    assert graph.get("/v1.0/users?$top=0").status_code == 400
    assert graph.get("/v1.0/users?$top=1000").status_code == 400
    assert graph.get("/v1.0/users?$skip=5").status_code == 400


def test_sign_in_activity_pages_are_capped_at_the_configured_size(graph, admin):
    """With signInActivity selected the page size is capped (configurable, like the doc's 500/120)."""
    admin.configure(signInActivityPageCap=5)
    body = graph.get("/v1.0/users?$select=id,signInActivity&$top=999").json()
    assert len(body["value"]) == 5 and "@odata.nextLink" in body


def test_count_needs_the_eventual_consistency_header(graph, admin):
    """$count=true answers @odata.count only with ConsistencyLevel: eventual; without it, 400."""
    url = "/v1.0/users?$filter=userType eq 'Guest'&$count=true&$top=1"
    assert graph.get(url).status_code == 400
    body = graph.get(url, headers=EVENTUAL).json()
    assert body["@odata.count"] == len(guests(admin))


def test_the_count_segment_returns_plain_text(graph, admin):
    """GET /users/$count is a text/plain integer and needs the header too."""
    assert graph.get("/v1.0/users/$count").status_code == 400
    response = graph.get("/v1.0/users/$count?$filter=userType eq 'Member'", headers=EVENTUAL)
    assert response.headers["content-type"].startswith("text/plain")
    assert int(response.text) == len(members(admin))


def test_ne_not_and_endswith_are_advanced_queries(graph, admin):
    """ne/not/endsWith need $count=true plus the header, else 400 Request_UnsupportedQuery."""
    url = "/v1.0/users?$filter=" + quote("endsWith(userPrincipalName,'#EXT#@contoso.onmicrosoft.com')")
    refused = graph.get(url)
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "Request_UnsupportedQuery"
    body = graph.get(url + "&$count=true&$top=999", headers=EVENTUAL).json()
    assert body["@odata.count"] == len(guests(admin))
    ne = graph.get("/v1.0/users?$filter=userType ne 'Guest'&$count=true", headers=EVENTUAL).json()
    assert ne["@odata.count"] == len(members(admin))


def test_filters_by_mail_id_list_and_other_mails(graph, admin):
    """mail eq, id in (...) and otherMails/any(...) find the right users."""
    first, second = guests(admin)[:2]
    by_mail = graph.get(f"/v1.0/users?$filter=mail eq '{first['mail']}'&$select=id").json()["value"]
    assert [u["id"] for u in by_mail] == [first["id"]]
    by_ids = graph.get(f"/v1.0/users?$filter=id in ('{first['id']}','{second['id']}')&$select=id").json()["value"]
    assert {u["id"] for u in by_ids} == {first["id"], second["id"]}
    other = graph.get(f"/v1.0/users?$filter=otherMails/any(x:x eq '{second['mail'].upper()}')&$select=id").json()[
        "value"
    ]
    assert [u["id"] for u in other] == [second["id"]]


def test_a_hostile_quote_matches_nobody_over_http(graph):
    """The classic injection is a literal: nobody matches, no widening."""
    hostile = quote("mail eq 'x'' or userType eq ''Guest'")
    response = graph.get(f"/v1.0/users?$filter={hostile}")
    assert response.status_code == 200 and response.json()["value"] == []


def test_sign_in_activity_filters_cannot_combine_with_other_properties(graph):
    """Graph refuses signInActivity filters mixed with other properties."""
    url = "/v1.0/users?$filter=signInActivity/lastSignInDateTime le 2024-01-01T00:00:00Z and userType eq 'Guest'"
    assert graph.get(url).json()["error"]["code"] == "Request_UnsupportedQuery"
    assert graph.get("/v1.0/users?$filter=signInActivity/lastSignInDateTime le 2024-01-01T00:00:00Z").status_code == 200


def test_get_by_id_and_by_user_principal_name(graph, admin):
    """GET /users/{id} and /users/{upn} return the same user; unknown ids are 404 Request_ResourceNotFound."""
    guest = guests(admin)[0]
    by_id = graph.get(f"/v1.0/users/{guest['id']}").json()
    by_upn = graph.get(f"/v1.0/users/{quote(guest['userPrincipalName'])}").json()
    assert by_id["id"] == by_upn["id"] == guest["id"]
    assert by_id["@odata.context"].endswith("$metadata#users/$entity")
    missing = graph.get("/v1.0/users/00000000-0000-4000-8000-000000000000")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "Request_ResourceNotFound"


def test_patch_disables_a_guest_with_the_least_privileged_pair(graph, admin):
    """accountEnabled alone needs User.EnableDisableAccount.All + User.Read.All; the change lands (204)."""
    guest = guests(admin)[0]
    roles = ("User.EnableDisableAccount.All", "User.Read.All")
    response = graph.request("PATCH", f"/v1.0/users/{guest['id']}", roles=roles, json={"accountEnabled": False})
    assert response.status_code == 204
    assert graph.get(f"/v1.0/users/{guest['id']}?$select=accountEnabled").json()["accountEnabled"] is False
    other = graph.request("PATCH", f"/v1.0/users/{guest['id']}", roles=roles, json={"displayName": "X"})
    assert other.status_code == 403


def test_patch_refuses_unknown_and_read_only_properties(graph, admin):
    """Unknown or read-only properties are 400s and change nothing."""
    guest = guests(admin)[0]
    path = f"/v1.0/users/{guest['id']}"
    assert graph.request("PATCH", path, roles=WRITE_ROLES, json={"shoeSize": 9}).status_code == 400
    assert graph.request("PATCH", path, roles=WRITE_ROLES, json={"externalUserState": "Accepted"}).status_code == 400
    assert graph.request("PATCH", path, roles=WRITE_ROLES, json={"accountEnabled": "no"}).status_code == 400


def test_patch_other_mails_reindexes_the_address(graph, admin):
    """After PATCH otherMails, the new address finds the user and the old one does not."""
    guest = guests(admin)[0]
    graph.request(
        "PATCH", f"/v1.0/users/{guest['id']}", roles=WRITE_ROLES, json={"otherMails": ["new.address@fabrikam.com"]}
    )
    found = graph.get("/v1.0/users?$filter=otherMails/any(x:x eq 'new.address@fabrikam.com')&$select=id").json()
    assert [u["id"] for u in found["value"]] == [guest["id"]]


def test_delete_soft_deletes_into_deleted_items_and_restore_brings_it_back(graph, admin):
    """DELETE moves the user to deletedItems; restore returns it with the same id; hard delete purges."""
    guest = guests(admin)[0]
    roles = ("User.DeleteRestore.All", "User.Read.All")
    assert graph.request("DELETE", f"/v1.0/users/{guest['id']}", roles=roles).status_code == 204
    assert graph.get(f"/v1.0/users/{guest['id']}").status_code == 404
    listed = graph.get("/v1.0/directory/deletedItems/microsoft.graph.user", roles=roles).json()["value"]
    assert [u["id"] for u in listed] == [guest["id"]]
    item = graph.get(f"/v1.0/directory/deletedItems/{guest['id']}", roles=roles).json()
    assert item["@odata.type"] == "#microsoft.graph.user" and item["deletedDateTime"]
    restored = graph.request("POST", f"/v1.0/directory/deletedItems/{guest['id']}/restore", roles=roles)
    assert restored.status_code == 200 and restored.json()["id"] == guest["id"]
    assert graph.get(f"/v1.0/users/{guest['id']}").status_code == 200
    graph.request("DELETE", f"/v1.0/users/{guest['id']}", roles=roles)
    # Opt in: app-only permanent delete follows the permissions changelog, not the delete page (the default).
    admin.configure(deletedUserPurgeAppOnly=True)
    assert graph.request("DELETE", f"/v1.0/directory/deletedItems/{guest['id']}", roles=roles).status_code == 204
    assert graph.get(f"/v1.0/directory/deletedItems/{guest['id']}", roles=roles).status_code == 404
    assert admin.snapshot()["deletedItems"] == []


def test_revoke_sign_in_sessions_answers_true_and_moves_the_valid_from_time(graph, admin):
    """POST revokeSignInSessions: 200 {"value": true}; signInSessionsValidFromDateTime is now."""
    guest = guests(admin)[0]
    response = graph.request(
        "POST", f"/v1.0/users/{guest['id']}/revokeSignInSessions", roles=("User.RevokeSessions.All",)
    )
    assert response.status_code == 200 and response.json()["value"] is True
    after = next(u for u in guests(admin) if u["id"] == guest["id"])
    assert after["signInSessionsValidFromDateTime"] > guest["signInSessionsValidFromDateTime"]


def test_a_just_invited_guest_is_invisible_during_the_replication_delay(graph, admin):
    """Within the delay GET/PATCH by id are 404 and $filter omits the guest; afterwards all see it."""
    admin.configure(replicationDelaySeconds=0.4)
    invited = graph.request(
        "POST",
        "/v1.0/invitations",
        roles=("User.Invite.All",),
        json={"invitedUserEmailAddress": "late@fabrikam.com", "inviteRedirectUrl": "https://myapps.microsoft.com"},
    ).json()["invitedUser"]["id"]
    assert graph.get(f"/v1.0/users/{invited}").status_code == 404
    patch = graph.request("PATCH", f"/v1.0/users/{invited}", roles=WRITE_ROLES, json={"accountEnabled": False})
    assert patch.status_code == 404
    assert graph.get("/v1.0/users?$filter=mail eq 'late@fabrikam.com'").json()["value"] == []
    time.sleep(0.45)
    assert graph.get(f"/v1.0/users/{invited}").status_code == 200
    assert len(graph.get("/v1.0/users?$filter=mail eq 'late@fabrikam.com'").json()["value"]) == 1


def test_group_members_and_sponsors_are_listed(graph, admin):
    """The protected group lists its guests; a guest's sponsors are seeded members."""
    snapshot = admin.snapshot()
    protected = next(g for g in snapshot["groups"] if g["displayName"] == "Guest lifecycle exclusions")
    members_page = graph.get(f"/v1.0/groups/{protected['id']}/members", roles=("GroupMember.Read.All",)).json()
    assert {m["id"] for m in members_page["value"]} == set(protected["members"])
    guest_id, sponsor_ids = next(iter(snapshot["sponsors"].items()))
    sponsors = graph.get(f"/v1.0/users/{guest_id}/sponsors").json()["value"]
    assert [s["id"] for s in sponsors] == sponsor_ids


def test_sign_in_activity_without_a_premium_licence_is_refused_and_other_reads_still_work(graph, admin):
    """entraIdPremium off: selecting or filtering signInActivity is 403 with the non-premium code."""
    admin.configure(entraIdPremium=False)
    guest = guests(admin)[0]
    for url in (
        "/v1.0/users?$filter=userType eq 'Guest'&$select=id,signInActivity",
        "/v1.0/users?$filter=signInActivity/lastSignInDateTime le 2024-01-01T00:00:00Z",
        f"/v1.0/users/{guest['id']}?$select=id,signInActivity",
    ):
        response = graph.get(url)
        assert response.status_code == 403, url
        assert response.json()["error"]["code"] == "Authentication_RequestFromNonPremiumTenantOrB2CTenant"
        assert "premium license" in response.json()["error"]["message"]
    assert graph.get("/v1.0/users?$filter=userType eq 'Guest'&$select=id,createdDateTime").status_code == 200
    admin.configure(entraIdPremium=True)
    assert graph.get("/v1.0/users?$filter=userType eq 'Guest'&$select=id,signInActivity").status_code == 200


def test_patch_mail_adds_it_to_proxy_addresses_as_the_primary_smtp_address(graph, admin):
    """A new mail lands in proxyAddresses as SMTP:; the previous primary stays as an smtp: alias."""
    guest = guests(admin)[0]
    path = f"/v1.0/users/{guest['id']}"
    assert graph.request("PATCH", path, roles=WRITE_ROLES, json={"mail": "moved@fabrikam.com"}).status_code == 204
    after = graph.get(f"{path}?$select=mail,proxyAddresses").json()
    assert after["mail"] == "moved@fabrikam.com"
    assert after["proxyAddresses"] == ["SMTP:moved@fabrikam.com", f"smtp:{guest['mail']}"]


def test_patch_mail_that_is_another_objects_proxy_address_is_refused(graph, admin):
    """mail conflicting with another user's proxyAddresses: 400, and nothing changes."""
    first, second = guests(admin)[:2]
    path = f"/v1.0/users/{first['id']}"
    response = graph.request("PATCH", path, roles=WRITE_ROLES, json={"mail": second["mail"].upper()})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "Request_BadRequest"
    assert "proxyAddresses already exists" in response.json()["error"]["message"]
    assert graph.get(f"{path}?$select=mail").json()["mail"] == first["mail"]
    same = graph.request("PATCH", path, roles=WRITE_ROLES, json={"mail": first["mail"]})
    assert same.status_code == 204


def test_other_mails_may_hold_an_address_another_object_uses(graph, admin):
    """No uniqueness is documented for otherMails: an address another user holds is accepted."""
    first, second = guests(admin)[:2]
    response = graph.request(
        "PATCH", f"/v1.0/users/{first['id']}", roles=WRITE_ROLES, json={"otherMails": [second["mail"]]}
    )
    assert response.status_code == 204
