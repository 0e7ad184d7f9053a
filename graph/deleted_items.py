"""Entra's deleted items for users: read one deleted guest, restore it with its object id.

GET /directory/deletedItems/{id} (directory-deleteditems-get: User.Read.All for users) and
POST /directory/deletedItems/{id}/restore (directory-deleteditems-restore; User.DeleteRestore.All, the least
privileged application permission the permissions changelog names for restoring users). A deleted user stays
restorable for up to 30 days, then Entra deletes it for good and both answer 404.
"""

from __future__ import annotations

from urllib.parse import quote

from kiota_abstractions.method import Method
from msgraph import GraphServiceClient

from graph.raw import RawGraph
from graph.users import graph_instant, user_from_json
from lifecycle.errors import NotFoundError
from lifecycle.restore.ports import DeletedUser

DELETED_SELECT = ("id", "displayName", "mail", "userPrincipalName", "userType", "accountEnabled", "deletedDateTime")


class GraphDeletedUsers:
    def __init__(self, client: GraphServiceClient) -> None:
        self._raw = RawGraph(client)

    def _url(self, object_id: str) -> str:
        return f"{self._raw.v1}/directory/deletedItems/{quote(object_id, safe='')}"

    async def deleted_user(self, object_id: str) -> DeletedUser | None:
        try:
            body = await self._raw.send(Method.GET, f"{self._url(object_id)}?$select={','.join(DELETED_SELECT)}")
        except NotFoundError:
            return None
        if not body:
            return None
        return DeletedUser(user_from_json(body), graph_instant(body.get("deletedDateTime")))

    async def restore_user(self, object_id: str) -> None:
        await self._raw.send(Method.POST, f"{self._url(object_id)}/restore")
