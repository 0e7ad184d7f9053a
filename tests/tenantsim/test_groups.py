"""Group membership reads: direct members, and transitive user members through nested groups."""

from __future__ import annotations

import pytest

from tenantsim.seed import PROTECTED_GROUP_ID, build_seed
from tests.tenantsim.conftest import GUESTS

OUTER, INNER = "0a9e4c1d-6b2f-4e8a-9c3d-5f7b1a2e4d60", "1b8f5d2e-7c3a-4f9b-8d4e-6a8c2b3f5e71"
EVENTUAL = {"ConsistencyLevel": "eventual"}


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
    path = f"/v1.0/groups/{PROTECTED_GROUP_ID}/transitiveMembers/{cast}?$select=id&$count=true"
    page = graph.get(path, roles=("GroupMember.Read.All",), headers=EVENTUAL).json()
    assert sorted(m["id"] for m in page["value"]) == sorted(nested.values())
    assert all(m["@odata.type"] == "#microsoft.graph.user" for m in page["value"])
    assert page["@odata.count"] == len(nested)


@pytest.mark.parametrize(
    ("query", "headers"),
    [("?$select=id", {}), ("?$select=id", EVENTUAL), ("?$select=id&$count=true", {})],
    ids=["neither", "header only", "count only"],
)
def test_the_user_cast_on_transitive_members_is_an_advanced_query(graph, nested, query, headers):
    """An OData cast on a transitive members list needs ConsistencyLevel: eventual and $count=true."""
    path = f"/v1.0/groups/{PROTECTED_GROUP_ID}/transitiveMembers/microsoft.graph.user{query}"
    answer = graph.get(path, roles=("GroupMember.Read.All",), headers=headers)
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "Request_UnsupportedQuery"


def test_direct_members_list_the_users_and_groups_directly_in_the_group(graph, nested):
    """Users and nested groups alike, each with its type; the nested groups' own members are not listed."""
    page = graph.get(f"/v1.0/groups/{PROTECTED_GROUP_ID}/members", roles=("GroupMember.Read.All",)).json()
    assert [(m["@odata.type"], m["id"]) for m in page["value"]] == [
        ("#microsoft.graph.user", nested["a"]),
        ("#microsoft.graph.group", OUTER),
    ]
    assert page["value"][1]["displayName"] == "Outer"
    selected = graph.get(f"/v1.0/groups/{OUTER}/members?$select=id", roles=("GroupMember.Read.All",)).json()
    assert selected["value"] == [
        {"@odata.type": "#microsoft.graph.user", "id": nested["b"]},
        {"@odata.type": "#microsoft.graph.group", "id": INNER},
    ]


def test_groups_are_found_by_display_name_with_a_filter(graph, nested):
    """displayName eq (case-insensitive, a doubled quote inside the literal) answers the groups of that name."""
    path = "/v1.0/groups?$filter=displayName eq 'outer'&$select=id,displayName"
    page = graph.get(path, roles=("GroupMember.Read.All",)).json()
    assert page["value"] == [{"@odata.type": "#microsoft.graph.group", "id": OUTER, "displayName": "Outer"}]
    quoted = graph.get("/v1.0/groups?$filter=displayName eq 'O''Brien'", roles=("GroupMember.Read.All",)).json()
    assert quoted["value"] == []
    everything = graph.get("/v1.0/groups?$top=2", roles=("Group.Read.All",)).json()
    assert len(everything["value"]) == 2 and "@odata.nextLink" in everything
    assert {"displayName", "groupTypes", "securityEnabled"} <= set(everything["value"][0])


def test_the_group_list_needs_a_documented_permission_and_refuses_what_it_does_not_serve(graph, nested):
    path = "/v1.0/groups?$filter=displayName eq 'Outer'"
    for roles in (("GroupMember.ReadBasic.All",), ("User.Read.All",)):
        assert graph.get(path, roles=roles).status_code == 403, roles
    for query in ('$search="displayName:Out"', "$select=noSuchProperty", "$filter=displayName eq"):
        answer = graph.get(f"/v1.0/groups?{query}", roles=("GroupMember.Read.All",))
        assert answer.status_code == 400, query


def test_transitive_members_need_a_group_read_permission_and_an_existing_group(graph, nested):
    path = f"/v1.0/groups/{PROTECTED_GROUP_ID}/transitiveMembers/microsoft.graph.user?$count=true"
    assert graph.get(path, roles=("User.Read.All",), headers=EVENTUAL).status_code == 403
    assert graph.get(path, roles=("Directory.ReadWrite.All",), headers=EVENTUAL).status_code == 403
    assert graph.get(path, roles=("GroupMember.ReadBasic.All",), headers=EVENTUAL).status_code == 200
    missing = "/v1.0/groups/00000000-0000-4000-8000-000000000000/transitiveMembers/microsoft.graph.user?$count=true"
    assert graph.get(missing, roles=("GroupMember.Read.All",), headers=EVENTUAL).status_code == 404


def test_direct_members_need_a_documented_group_read_permission(graph, nested):
    """GroupMember.ReadBasic.All is documented for transitive members only; Directory.ReadWrite.All for neither."""
    path = f"/v1.0/groups/{PROTECTED_GROUP_ID}/members"
    for roles in (
        ("GroupMember.Read.All",),
        ("GroupMember.ReadWrite.All",),
        ("Group.Read.All",),
        ("Directory.Read.All",),
    ):
        assert graph.get(path, roles=roles).status_code == 200, roles
    for roles in (("GroupMember.ReadBasic.All",), ("Directory.ReadWrite.All",), ("User.Read.All",)):
        assert graph.get(path, roles=roles).status_code == 403, roles
