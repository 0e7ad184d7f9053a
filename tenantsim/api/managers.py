"""A user's manager: GET /users/{id}/manager (api-reference/v1.0/api/user-list-manager.md).

The page lists User.Read.All, User.ReadWrite.All, Directory.Read.All and Directory.ReadWrite.All for applications
and answers one directoryObject. It names no answer for a user without a manager: Graph's directory answers a
missing single-valued reference with 404 Request_ResourceNotFound, and a manager deleted since is such a missing
reference (Graph shows live objects only). Managers are seeded as ``managers`` (user id -> manager id).
"""

from __future__ import annotations

from tenantsim.api.users import parse_select, project, visible_user
from tenantsim.errors import GraphError
from tenantsim.runtime import Call, GraphResponse


def get_manager(call: Call, user_id: str) -> GraphResponse:
    select = parse_select(call, collection=False)
    call.require("users.manager.read")
    record = visible_user(call, user_id)
    directory = call.sim.directory
    manager_id = directory.managers.get(record.data["id"])
    manager = directory.users.get(manager_id) if manager_id else None
    if manager is None or manager.visible_after > call.sim.clock():
        raise GraphError(
            404,
            "Request_ResourceNotFound",
            "Resource 'manager' does not exist or one of its queried reference-property objects are not present.",
        )
    body = {
        "@odata.context": call.context_url("directoryObjects/$entity"),
        "@odata.type": "#microsoft.graph.user",
        **project(manager.data, select),
    }
    return GraphResponse(200, body)
