"""The groups a guest lifecycle policy's scope excludes: found by display name, and their direct members.

The adapter of lifecycle.drift.native_scope.ScopeGroups. Direct members, because the native engine honours direct
membership only; the core follows nested groups itself to see what the native engine does not. Both reads need
GroupMember.Read.All: ``GET /groups?$filter=displayName eq '...'`` (group-list, which supports ``$filter`` on
displayName) and ``GET /groups/{id}/members`` (group-list-members: direct members, users and groups alike, each
with its ``@odata.type``; not transitive).
"""

from __future__ import annotations

from urllib.parse import quote as url_quote
from urllib.parse import urlencode

from msgraph import GraphServiceClient

from graph.odata import quote
from graph.raw import RawGraph
from lifecycle.drift.native_scope import GroupMembers
from lifecycle.errors import NotFoundError

USER, GROUP = "#microsoft.graph.user", "#microsoft.graph.group"


class GraphScopeGroups:
    def __init__(self, client: GraphServiceClient) -> None:
        self._raw = RawGraph(client)

    async def groups_named(self, display_name: str) -> list[str]:
        query = urlencode({"$filter": f"displayName eq {quote(display_name)}", "$select": "id"}, quote_via=url_quote)
        return sorted(
            str(g["id"]).lower() for g in await self._raw.collection(f"{self._raw.v1}/groups?{query}") if g.get("id")
        )

    async def direct_members(self, group_id: str) -> GroupMembers:
        url = f"{self._raw.v1}/groups/{url_quote(group_id, safe='')}/members?$select=id&$top=999"
        try:
            members = await self._raw.collection(url)
        except NotFoundError:
            return GroupMembers()  # a group that no longer exists leaves nobody out
        users = frozenset(str(m["id"]).lower() for m in members if m.get("@odata.type") == USER and m.get("id"))
        groups = frozenset(str(m["id"]).lower() for m in members if m.get("@odata.type") == GROUP and m.get("id"))
        return GroupMembers(users, groups)
