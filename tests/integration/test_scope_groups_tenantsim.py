"""graph.scope_groups on tenantsim: an excluded group's direct members, under the permission group-list-members
names, and a group that is gone leaving nobody out."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from config.lifecycle_policies import NativePolicy
from graph.client import build_graph_client
from graph.credentials import TenantSimCredential
from graph.scope_groups import GraphScopeGroups
from lifecycle.drift.native_scope import resolve_scope
from lifecycle.errors import PermissionDeniedError
from tenantsim.client import TenantSimAdmin
from tenantsim.seed import FABRIKAM_COLLABORATORS_GROUP_ID, PROTECTED_GROUP_ID
from tenantsim.server import TenantSimServer

MEMBERS_READ = "GroupMember.Read.All"
POLICY = NativePolicy.model_validate(
    {"displayName": "Guests: idle", "rules": [{"type": "inactivity", "days": 90}], "action": {"kind": "disableOnly"}}
)


@pytest.fixture
def admin(sim: TenantSimServer) -> Iterator[TenantSimAdmin]:
    with TenantSimAdmin(sim.url) as client:
        client.seed(builtin="fresh", guests=20)
        client.configure(throttlingEnabled=False, timeCompression=1)
        client.clear_faults()
        yield client


def _groups(sim: TenantSimServer, *roles: str) -> GraphScopeGroups:
    credential = TenantSimCredential(sim.url, roles=frozenset(roles))
    return GraphScopeGroups(build_graph_client(credential=credential, base_url=f"{sim.url}/v1.0"))


def _members(sim: TenantSimServer, admin: TenantSimAdmin, group_id: str) -> set[str]:
    url = f"{sim.url}/v1.0/groups/{group_id}/members?$select=id"
    return {m["id"] for m in httpx.get(url, headers=admin.auth_headers([MEMBERS_READ])).json()["value"]}


async def test_the_protected_groups_direct_members_are_what_the_native_engine_leaves_out(sim, admin):
    groups = _groups(sim, MEMBERS_READ)
    found = await groups.direct_members(PROTECTED_GROUP_ID)
    assert found.users == {m.lower() for m in _members(sim, admin, PROTECTED_GROUP_ID)} and found.users
    scope = await resolve_scope("idle", POLICY, PROTECTED_GROUP_ID, groups)
    assert scope.group_ids == (PROTECTED_GROUP_ID,) and scope.direct == found.users and scope.unreadable is None


async def test_a_group_that_is_gone_leaves_nobody_out_and_a_missing_grant_is_said(sim, admin):
    assert (await _groups(sim, MEMBERS_READ).direct_members("00000000-0000-4000-8000-000000000000")).users == set()
    with pytest.raises(PermissionDeniedError):
        await _groups(sim, "User.Read.All").direct_members(PROTECTED_GROUP_ID)
    scope = await resolve_scope("idle", POLICY, PROTECTED_GROUP_ID, _groups(sim, "User.Read.All"))
    assert scope.unreadable is not None and "PermissionDeniedError" in scope.unreadable


def _snapshot_group(admin: TenantSimAdmin, group_id: str) -> dict:
    return next(g for g in admin.snapshot()["groups"] if g["id"] == group_id)


async def test_an_excluded_group_is_found_by_its_display_name(sim, admin):
    """GET /groups?$filter=displayName eq '...': exactly one group resolves; none, or a quote in the name, finds
    nothing and the policy is refused rather than guessed."""
    groups = _groups(sim, MEMBERS_READ)
    assert await groups.groups_named("Fabrikam collaborators") == [FABRIKAM_COLLABORATORS_GROUP_ID.lower()]
    assert await groups.groups_named("Fabrikam collaborators' or displayName eq 'All employees") == []
    policy = POLICY.model_copy(update={"excluded_groups": ("Fabrikam collaborators", "No such group")})
    policy = NativePolicy.model_validate(policy.model_dump(by_alias=True))
    scope = await resolve_scope("idle", policy, PROTECTED_GROUP_ID, groups)
    assert scope.group_ids == (FABRIKAM_COLLABORATORS_GROUP_ID.lower(), PROTECTED_GROUP_ID)
    assert [r.rule for r in scope.refusals] == ["lifecycle-group-unresolved"]
    fabrikam = {m.lower() for m in _snapshot_group(admin, FABRIKAM_COLLABORATORS_GROUP_ID)["members"]}
    assert fabrikam and fabrikam <= scope.direct


async def test_a_nested_group_is_a_direct_member_of_its_own_type_and_flagged(sim, admin):
    """Fabrikam's group nested in the protected group: listed as a group among the direct members, its guests
    left to the native engine (direct membership only) and flagged."""
    admin.add_group_member(PROTECTED_GROUP_ID, FABRIKAM_COLLABORATORS_GROUP_ID)
    groups = _groups(sim, MEMBERS_READ)
    found = await groups.direct_members(PROTECTED_GROUP_ID)
    assert found.groups == {FABRIKAM_COLLABORATORS_GROUP_ID.lower()}
    protected = {m.lower() for m in _snapshot_group(admin, PROTECTED_GROUP_ID)["members"]}
    assert found.users == protected - found.groups
    scope = await resolve_scope("idle", POLICY, PROTECTED_GROUP_ID, groups)
    fabrikam = {m.lower() for m in _snapshot_group(admin, FABRIKAM_COLLABORATORS_GROUP_ID)["members"]}
    assert scope.nested_by_group == {PROTECTED_GROUP_ID: frozenset(fabrikam - found.users)}
    assert scope.protected == found.users | fabrikam
