"""/groups/{id}/transitiveMembers/microsoft.graph.user: the users in a group and in every group nested in it.

The cast segment keeps the answer to user objects (Graph's transitiveMembers alone also lists the nested
groups); the msgraph SDK sends the short form ``graph.user``, so both are routed here.
"""

from __future__ import annotations

from typing import Any

from tenantsim.api.users import _object_page, parse_select
from tenantsim.errors import not_found
from tenantsim.runtime import Call, GraphResponse


def list_transitive_user_members(call: Call, group_id: str) -> GraphResponse:
    call.require("groups.read")
    select = parse_select(call, collection=True)
    directory, now = call.sim.directory, call.sim.clock()
    if group_id not in directory.groups:
        raise not_found(group_id)
    users: dict[str, dict[str, Any]] = {}
    seen, pending = {group_id}, [group_id]
    while pending:  # breadth first; a membership cycle is visited once
        for member in directory.groups[pending.pop(0)]["members"]:
            if member in directory.groups and member not in seen:
                seen.add(member)
                pending.append(member)
            elif member in directory.users and directory.users[member].visible_after <= now:
                users.setdefault(member, directory.users[member].data)
    return _object_page(call, "users", list(users.values()), select)
