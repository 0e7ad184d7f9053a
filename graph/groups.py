"""The group area of Graph: who is in a group, nested groups included, and which groups hold an object."""

from __future__ import annotations

from urllib.parse import quote

from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_abstractions.headers_collection import HeadersCollection
from msgraph import GraphServiceClient
from msgraph.generated.groups.item.transitive_members.graph_user.graph_user_request_builder import (
    GraphUserRequestBuilder,
)

from graph.errors import map_graph_error
from graph.origin import GraphOrigin
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
        origin = GraphOrigin.of(self._client.request_adapter.base_url)
        users = self._client.groups.by_group_id(group_id).transitive_members.graph_user
        query = GraphUserRequestBuilder.GraphUserRequestBuilderGetQueryParameters(select=["id"], top=999, count=True)
        headers = HeadersCollection()
        headers.add("ConsistencyLevel", "eventual")  # every page, the nextLink ones too
        found: set[str] = set()
        try:
            page = await users.get(RequestConfiguration(query_parameters=query, headers=headers))
            while page is not None:
                found.update(m.id for m in page.value or [] if m.id)
                if not page.odata_next_link:
                    break
                link = origin.check_link(page.odata_next_link, what="@odata.nextLink")
                page = await users.with_url(link).get(RequestConfiguration(headers=headers))
        except Exception as error:
            raise map_graph_error(error) from error
        return found

    async def groups_containing(self, object_id: str, group_ids: list[str]) -> set[str]:
        """Which of ``group_ids`` hold the object now, directly or nested: the object's own transitive
        memberships (GET /users/{id}/transitiveMemberOf?$select=id, User.Read.All), one cheap read per guest
        instead of a whole group listing, answered at the moment of the write."""
        url = f"{self._raw.v1}/users/{quote(object_id, safe='')}/transitiveMemberOf?$select=id&$top=999"
        wanted = {g.lower() for g in group_ids}
        held = {str(item.get("id", "")).lower() for item in await self._raw.collection(url)}
        return wanted & held
