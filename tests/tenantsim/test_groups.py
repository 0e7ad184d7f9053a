"""Group membership reads: direct members, and transitive user members through nested groups."""

from __future__ import annotations

import pytest

from tenantsim.seed import PROTECTED_GROUP_ID, build_seed
from tests.tenantsim.conftest import GUESTS

OUTER, INNER = "0a9e4c1d-6b2f-4e8a-9c3d-5f7b1a2e4d60", "1b8f5d2e-7c3a-4f9b-8d4e-6a8c2b3f5e71"


@pytest.fixture(name="nested")
def _nested(admin) -> dict[str, str]:
    """The protected group holds guest A and group OUTER; OUTER holds B and INNER; INNER holds C and OUTER."""
    document = build_seed(GUESTS)
    a, b, c = [u["id"] for u in document["users"] if u["userType"] == "Guest"][:3]
    template = next(g for g in document["groups"] if g["id"] == PROTECTED_GROUP_ID)
    template["members"] = [a, OUTER]
    document["groups"] += [
        {**template, "id": OUTER, "displayName": "Outer", "members": [b, INNER]},
        {**template, "id": INNER, "displayName": "Inner", "members": [c, OUTER]},
    ]
    admin.seed(document)
    return {"a": a, "b": b, "c": c}


@pytest.mark.parametrize("cast", ["microsoft.graph.user", "graph.user"])
def test_transitive_user_members_reach_through_nested_groups_and_cycles(graph, nested, cast):
    """Every user in the group or any group inside it, once each; the groups themselves are cast away."""
    path = f"/v1.0/groups/{PROTECTED_GROUP_ID}/transitiveMembers/{cast}?$select=id"
    page = graph.get(path, roles=("GroupMember.Read.All",)).json()
    assert sorted(m["id"] for m in page["value"]) == sorted(nested.values())
    assert all(m["@odata.type"] == "#microsoft.graph.user" for m in page["value"])


def test_direct_members_list_only_the_users_directly_in_the_group(graph, nested):
    page = graph.get(f"/v1.0/groups/{PROTECTED_GROUP_ID}/members", roles=("GroupMember.Read.All",)).json()
    assert [m["id"] for m in page["value"]] == [nested["a"]]


def test_transitive_members_need_a_group_read_permission_and_an_existing_group(graph, nested):
    path = f"/v1.0/groups/{PROTECTED_GROUP_ID}/transitiveMembers/microsoft.graph.user"
    assert graph.get(path, roles=("User.Read.All",)).status_code == 403
    missing = "/v1.0/groups/00000000-0000-4000-8000-000000000000/transitiveMembers/microsoft.graph.user"
    assert graph.get(missing, roles=("GroupMember.Read.All",)).status_code == 404
