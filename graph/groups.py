"""The group area of Graph: who is in a group, nested groups included, and which groups hold an object."""

from __future__ import annotations

from urllib.parse import quote

from msgraph import GraphServiceClient

from graph.raw import RawGraph


class GraphGroupMembers:
    """The protected group's users over Graph, nested groups included
    (GET /groups/{id}/transitiveMembers/microsoft.graph.user?$select=id&$count=true, paged). Needs
    GroupMember.ReadBasic.All, the least privileged permission for transitive members.

    Transitive, because an administrator who protects a group of groups means everyone in it: reading direct
    members only would leave a guest in a nested group open to disable and delete. The OData cast on a
    transitive members list is an advanced query (concepts/aad-advanced-queries.md): it needs the
    ``ConsistencyLevel: eventual`` header and ``$count=true``, else Graph answers 400.
    """

    def __init__(self, client: GraphServiceClient) -> None:
        self._client = client
        self._raw = RawGraph(client)

    async def group_member_ids(self, group_id: str) -> set[str]:
        # Lean JSON, not the SDK's user models: the first typed page a process parses imports msgraph's model
        # modules, about a second of CPU, which eight workers starting together on two cores spent as 4.5 s
        # of wall time before their run's first disable (bench.graph_budget_bench).
        url = f"{self._raw.v1}/groups/{quote(group_id, safe='')}/transitiveMembers/microsoft.graph.user"
        query = "$select=id&$top=999&$count=true"
        # ConsistencyLevel goes with every page, the nextLink ones too.
        members = await self._raw.collection(f"{url}?{query}", headers={"ConsistencyLevel": "eventual"})
        return {str(member["id"]) for member in members if member.get("id")}

    async def groups_containing(self, object_id: str, group_ids: list[str]) -> set[str]:
        """Which of ``group_ids`` hold the object now, directly or nested: the object's own transitive
        memberships (GET /users/{id}/transitiveMemberOf?$select=id, User.Read.All), one cheap read per guest
        instead of a whole group listing, answered at the moment of the write."""
        url = f"{self._raw.v1}/users/{quote(object_id, safe='')}/transitiveMemberOf?$select=id&$top=999"
        wanted = {g.lower() for g in group_ids}
        held = {str(item.get("id", "")).lower() for item in await self._raw.collection(url)}
        return wanted & held
