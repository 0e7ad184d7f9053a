"""A user's transitive group memberships: what the safety gate asks right before it writes to a guest."""

from __future__ import annotations

import pytest

from tenantsim.seed import PROTECTED_GROUP_ID, build_seed
from tests.tenantsim.conftest import GUESTS

OUTER, INNER = "0a9e4c1d-6b2f-4e8a-9c3d-5f7b1a2e4d60", "1b8f5d2e-7c3a-4f9b-8d4e-6a8c2b3f5e71"


@pytest.fixture(name="nested")
def _nested(admin) -> dict[str, str]:
    """The protected group holds OUTER; OUTER holds INNER; INNER holds guest C and OUTER (a cycle)."""
    document = build_seed(GUESTS)
    a, c = [u["id"] for u in document["users"] if u["userType"] == "Guest"][:2]
    template = next(g for g in document["groups"] if g["id"] == PROTECTED_GROUP_ID)
    template["members"] = [OUTER]
    document["groups"] += [
        {**template, "id": OUTER, "displayName": "Outer", "members": [INNER]},
        {**template, "id": INNER, "displayName": "Inner", "members": [c, OUTER]},
    ]
    admin.seed(document)
    return {"a": a, "c": c}


def test_transitive_member_of_lists_every_enclosing_group_once(graph, nested):
    page = graph.get(f"/v1.0/users/{nested['c']}/transitiveMemberOf?$select=id", roles=("User.Read.All",)).json()
    assert sorted(g["id"] for g in page["value"]) == sorted([PROTECTED_GROUP_ID, OUTER, INNER])
    assert all(g["@odata.type"] == "#microsoft.graph.group" for g in page["value"])


def test_a_membership_added_later_shows_at_once(graph, admin, nested):
    path = f"/v1.0/users/{nested['a']}/transitiveMemberOf?$select=id"
    assert PROTECTED_GROUP_ID not in {g["id"] for g in graph.get(path).json()["value"]}
    admin.add_group_member(INNER, nested["a"])
    assert PROTECTED_GROUP_ID in {g["id"] for g in graph.get(path).json()["value"]}


def test_transitive_member_of_needs_a_read_permission_and_a_visible_user(graph, nested):
    path = f"/v1.0/users/{nested['c']}/transitiveMemberOf"
    assert graph.get(path, roles=("AuditLog.Read.All",)).status_code == 403
    assert graph.get(path, roles=("GroupMember.Read.All",)).status_code == 200
    missing = "/v1.0/users/00000000-0000-4000-8000-000000000000/transitiveMemberOf"
    assert graph.get(missing, roles=("User.Read.All",)).status_code == 404


def test_filter_without_the_advanced_query_parameters_is_refused(graph, nested):
    path = f"/v1.0/users/{nested['c']}/transitiveMemberOf?$filter=id eq '{OUTER}'"
    response = graph.get(path, roles=("User.Read.All",))
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "Request_UnsupportedQuery"


def test_pages_hold_at_most_top_groups_and_link_to_the_rest(graph, nested):
    first = graph.get(f"/v1.0/users/{nested['c']}/transitiveMemberOf?$select=id&$top=2").json()
    assert len(first["value"]) == 2
    rest = graph.get("/v1.0" + first["@odata.nextLink"].split("/v1.0", 1)[1]).json()
    assert len(rest["value"]) == 1 and "@odata.nextLink" not in rest
