"""A user's manager: GET /users/{id}/manager, as user-list-manager.md describes it."""

from __future__ import annotations

from msgraph.generated.models.user import User

from tests.tenantsim.conftest import members
from tests.tenantsim.sdk_models import assert_absorbed


def _with_manager(admin) -> tuple[str, str, str]:
    """Seeds a tenant where the first member reports to the second; returns (user, manager, a user without one)."""
    document = admin.snapshot()
    first, second, third = (m["id"] for m in members(admin)[:3])
    document["managers"] = {first: second}
    admin.seed(document)
    return first, second, third


def test_the_manager_is_one_user_object_with_its_selected_properties(graph, admin):
    user, manager, _ = _with_manager(admin)
    response = graph.get(f"/v1.0/users/{user}/manager?$select=id,accountEnabled,userType")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["@odata.type"] == "#microsoft.graph.user"
    assert body["@odata.context"].endswith("$metadata#directoryObjects/$entity")
    assert {k: body[k] for k in ("id", "accountEnabled", "userType")} == {
        "id": manager,
        "accountEnabled": True,
        "userType": "Member",
    }
    assert_absorbed(body, User)


def test_a_user_without_a_manager_or_whose_manager_was_deleted_is_404(graph, admin):
    user, manager, alone = _with_manager(admin)
    response = graph.get(f"/v1.0/users/{alone}/manager")
    assert response.status_code == 404 and response.json()["error"]["code"] == "Request_ResourceNotFound"
    assert graph.request("DELETE", f"/v1.0/users/{manager}", roles=("User.ReadWrite.All",)).status_code == 204
    assert graph.get(f"/v1.0/users/{user}/manager").status_code == 404


def test_reading_a_manager_needs_a_user_or_directory_read_permission(graph, admin):
    user, _, _ = _with_manager(admin)
    for roles in (("User.Read.All",), ("User.ReadWrite.All",), ("Directory.Read.All",), ("Directory.ReadWrite.All",)):
        assert graph.get(f"/v1.0/users/{user}/manager", roles=roles).status_code == 200, roles
    denied = graph.get(f"/v1.0/users/{user}/manager", roles=("User.ReadBasic.All",))
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "Authorization_RequestDenied"
