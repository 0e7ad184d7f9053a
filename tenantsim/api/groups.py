"""/groups/{id}/transitiveMembers/microsoft.graph.user: the users in a group and in every group nested in it.

The cast segment keeps the answer to user objects (Graph's transitiveMembers alone also lists the nested
groups); the msgraph SDK sends the short form ``graph.user``, so both are routed here. An OData cast on a
transitive members list is an advanced query (concepts/aad-advanced-queries.md, group-list-transitivemembers.md):
without ``ConsistencyLevel: eventual`` and ``$count=true`` it is a 400 Request_UnsupportedQuery.
"""

from __future__ import annotations

from typing import Any

from tenantsim.api.users import _object_page, parse_select
from tenantsim.errors import not_found, unsupported_query
from tenantsim.runtime import Call, GraphResponse

CAST_NEEDS_ADVANCED_QUERY = (
    "The OData cast on transitiveMembers is only supported through advanced queries. Add the $count=true query "
    "parameter and the ConsistencyLevel:eventual header. Refer to https://aka.ms/graph-docs/advanced-queries "
    "for more information"
)


def list_transitive_user_members(call: Call, group_id: str) -> GraphResponse:
    call.require("groups.read.transitiveMembers")
    advanced = call.request.headers.get("consistencylevel", "").lower() == "eventual"
    counted = call.request.query.get("$count", "").lower() == "true"
    if not (advanced and counted):
        raise unsupported_query(CAST_NEEDS_ADVANCED_QUERY)
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
    page = _object_page(call, "users", list(users.values()), select)
    if "$skiptoken" not in call.request.query:  # the count comes with the first page, as for /users
        context = page.body.pop("@odata.context")
        page.body = {"@odata.context": context, "@odata.count": len(users), **page.body}
    return page
