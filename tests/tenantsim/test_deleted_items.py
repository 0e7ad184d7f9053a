"""directory/deletedItems for users: list (cast), get, restore and permanent delete, with their permissions."""

from __future__ import annotations

import pytest

from tests.tenantsim.conftest import guests

DELETE_RESTORE = ("User.DeleteRestore.All",)
LIST = "/v1.0/directory/deletedItems/microsoft.graph.user"


@pytest.fixture(name="deleted")
def _deleted(graph, admin) -> str:
    guest = guests(admin)[0]["id"]
    assert graph.request("DELETE", f"/v1.0/users/{guest}", roles=DELETE_RESTORE).status_code == 204
    return guest


def test_the_user_cast_lists_deleted_users_in_the_users_entity_set(graph, deleted):
    page = graph.get(f"{LIST}?$select=id,deletedDateTime", roles=("User.Read.All",)).json()
    assert page["@odata.context"].endswith("$metadata#users(id,deletedDateTime)")
    assert [(u["id"], bool(u["deletedDateTime"])) for u in page["value"]] == [(deleted, True)]


def test_listing_deleted_users_takes_user_read_all_or_user_delete_restore_all(graph, deleted):
    """The list page names User.Read.All; the permissions changelog lets User.DeleteRestore.All list them too."""
    for roles in (("User.Read.All",), DELETE_RESTORE, ("Directory.Read.All",)):
        assert graph.get(LIST, roles=roles).status_code == 200, roles
    assert graph.get(LIST, roles=("GroupMember.Read.All",)).status_code == 403


def test_getting_one_deleted_item_takes_the_get_pages_user_permissions(graph, deleted):
    """The get page's user rows: User.Read.All, User.ReadWrite.All, Directory.Read.All, Directory.ReadWrite.All."""
    path = f"/v1.0/directory/deletedItems/{deleted}"
    item = graph.get(path, roles=("User.Read.All",))
    assert item.status_code == 200 and item.json()["@odata.context"].endswith("$metadata#directoryObjects/$entity")
    assert graph.get(path, roles=DELETE_RESTORE).status_code == 403
    assert graph.get("/v1.0/directory/deletedItems/00000000-0000-4000-8000-000000000000").status_code == 404


@pytest.mark.parametrize("option", ["$filter=displayName eq 'x'", "$orderby=displayName", "$count=true", "$expand=x"])
def test_query_options_tenantsim_does_not_serve_are_refused_not_ignored(graph, deleted, option):
    answer = graph.get(f"{LIST}?{option}", roles=("User.Read.All",), headers={"ConsistencyLevel": "eventual"})
    assert answer.status_code == 400 and answer.json()["error"]["code"] == "Request_UnsupportedQuery"


def test_restore_answers_the_user_as_a_directory_object_with_its_id(graph, deleted):
    restored = graph.request("POST", f"/v1.0/directory/deletedItems/{deleted}/restore", roles=DELETE_RESTORE)
    assert restored.status_code == 200
    body = restored.json()
    assert body["@odata.type"] == "#microsoft.graph.user" and body["id"] == deleted
    assert body["@odata.context"].endswith("$metadata#directoryObjects/$entity")
    again = graph.request("POST", f"/v1.0/directory/deletedItems/{deleted}/restore", roles=DELETE_RESTORE)
    assert again.status_code == 404


def test_restore_needs_a_restore_permission(graph, deleted):
    path = f"/v1.0/directory/deletedItems/{deleted}/restore"
    assert graph.request("POST", path, roles=("User.Read.All",)).status_code == 403


def test_with_the_restore_pages_reading_only_user_read_write_all_restores(graph, admin, deleted):
    """The restore page lists User.ReadWrite.All for users; restoreNeedsUserReadWriteAll takes it at its word."""
    admin.configure(restoreNeedsUserReadWriteAll=True)
    path = f"/v1.0/directory/deletedItems/{deleted}/restore"
    assert graph.request("POST", path, roles=DELETE_RESTORE).status_code == 403
    assert graph.request("POST", path, roles=("User.ReadWrite.All",)).status_code == 200


def test_an_app_cannot_permanently_delete_a_user_by_default(graph, admin, deleted):
    """directory-deleteditems-delete.md: users, application permissions, not supported: 403, the item stays."""
    for roles in (DELETE_RESTORE, ("User.ReadWrite.All",), ("Directory.ReadWrite.All",)):
        answer = graph.request("DELETE", f"/v1.0/directory/deletedItems/{deleted}", roles=roles)
        assert answer.status_code == 403 and answer.json()["error"]["code"] == "Authorization_RequestDenied"
    assert [u["id"] for u in admin.snapshot()["deletedItems"]] == [deleted]


def test_with_the_knob_user_delete_restore_all_permanently_deletes(graph, admin, deleted):
    """deletedUserPurgeAppOnly: the permissions changelog's reading (User.DeleteRestore.All suffices)."""
    admin.configure(deletedUserPurgeAppOnly=True)
    path = f"/v1.0/directory/deletedItems/{deleted}"
    assert graph.request("DELETE", path, roles=("User.Read.All",)).status_code == 403
    assert graph.request("DELETE", path, roles=DELETE_RESTORE).status_code == 204
    assert graph.get(path).status_code == 404 and admin.snapshot()["deletedItems"] == []


def test_a_deleted_user_is_restorable_until_its_30th_day_and_permanently_deleted_after(graph, admin, deleted):
    """Deleted items stay restorable for 30 days, then Entra deletes them for good: on the tenant's clock,
    29 days on the user is still listed and gettable; 30 days on it is gone from deletedItems and a restore is
    404, while a user deleted later is kept."""
    item = f"/v1.0/directory/deletedItems/{deleted}"
    admin.configure(clockOffsetSeconds=29 * 86400)
    assert graph.get(item, roles=("User.Read.All",)).status_code == 200
    later = guests(admin)[0]["id"]
    assert graph.request("DELETE", f"/v1.0/users/{later}", roles=DELETE_RESTORE).status_code == 204
    admin.configure(clockOffsetSeconds=30 * 86400 + 60)
    assert graph.get(item, roles=("User.Read.All",)).status_code == 404
    assert graph.request("POST", f"{item}/restore", roles=DELETE_RESTORE).status_code == 404
    listed = graph.get(f"{LIST}?$select=id", roles=("User.Read.All",)).json()["value"]
    assert [u["id"] for u in listed] == [later]


def test_a_shorter_retention_knob_purges_earlier(graph, admin, deleted):
    """The pages say "up to 30 days": deletedItemRetentionDays gives the shorter reading."""
    admin.configure(deletedItemRetentionDays=2, clockOffsetSeconds=2 * 86400 + 60)
    assert graph.get(f"/v1.0/directory/deletedItems/{deleted}", roles=("User.Read.All",)).status_code == 404
