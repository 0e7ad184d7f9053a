"""Groups: the list (``$filter`` on displayName and id), a group's direct members, and its transitive user members.

``GET /groups`` (group-list.md) answers the groups with their default properties; tenantsim serves ``$filter``
(displayName and id, with the operators of tenantsim.odata_filter), ``$select``, ``$top`` and paging, and refuses
the other options it does not simulate rather than ignoring them.

``GET /groups/{id}/members`` (group-list-members.md) lists the direct members of every type: users and nested groups,
each with its ``@odata.type``; it is not transitive.

``/groups/{id}/transitiveMembers/microsoft.graph.user``: the users in a group and in every group nested in it.

The cast segment keeps the answer to user objects (Graph's transitiveMembers alone also lists the nested
groups); the msgraph SDK sends the short form ``graph.user``, so both are routed here. An OData cast on a
transitive members list is an advanced query (concepts/aad-advanced-queries.md, group-list-transitivemembers.md):
without ``ConsistencyLevel: eventual`` and ``$count=true`` it is a 400 Request_UnsupportedQuery.
"""

from __future__ import annotations

from typing import Any

from tenantsim.api.users import _context, _decode_token, _next_link, _object_page, _page_size, parse_select, project
from tenantsim.errors import bad_request, found, not_found, unsupported_query
from tenantsim.odata_filter import compile_filter, parse_filter
from tenantsim.runtime import Call, GraphResponse

CAST_NEEDS_ADVANCED_QUERY = (
    "The OData cast on transitiveMembers is only supported through advanced queries. Add the $count=true query "
    "parameter and the ConsistencyLevel:eventual header. Refer to https://aka.ms/graph-docs/advanced-queries "
    "for more information"
)


GROUP = "#microsoft.graph.group"
USER = "#microsoft.graph.user"
# The group properties tenantsim keeps, returned by default (group.md lists these among the default properties).
GROUP_PROPERTIES = ("id", "displayName", "description", "mailEnabled", "securityEnabled", "groupTypes")
GROUP_FILTERABLE = {"id": "string", "displayName": "string"}
GROUP_LIST_QUERY = frozenset({"$filter", "$select", "$top", "$skiptoken"})


def _group_select(call: Call) -> tuple[str, ...]:
    raw = call.request.query.get("$select")
    if raw is None:
        return GROUP_PROPERTIES
    canonical = {name.lower(): name for name in GROUP_PROPERTIES}
    chosen: list[str] = []
    for part in raw.split(","):
        name = canonical.get(part.strip().lower())
        if name is None:
            raise bad_request(f"Could not find a property named '{part.strip()}' on type 'microsoft.graph.group'.")
        if name not in chosen:
            chosen.append(name)
    return tuple(chosen)


def _page(call: Call, context: str, values: list[dict[str, Any]]) -> GraphResponse:
    top = _page_size(call, uses_sign_in=False)
    start = _decode_token(call.request.query.get("$skiptoken"))
    body: dict[str, Any] = {"@odata.context": context}
    if start + top < len(values):
        body["@odata.nextLink"] = _next_link(call, start + top)
    body["value"] = values[start : start + top]
    return GraphResponse(200, body)


def list_groups(call: Call) -> GraphResponse:
    call.require("groups.list")
    unsupported = sorted(k for k in call.request.query if k.startswith("$") and k not in GROUP_LIST_QUERY)
    if unsupported:
        raise unsupported_query(f"Query option '{unsupported[0]}' on groups is not supported by this simulator.")
    select = _group_select(call)
    groups = list(call.sim.directory.groups.values())
    if (text := call.request.query.get("$filter")) is not None:
        node, _ = parse_filter(text)
        keep = compile_filter(node, GROUP_FILTERABLE)
        groups = [g for g in groups if keep(g)]
    values = [{"@odata.type": GROUP} | {name: g.get(name) for name in select} for g in groups]
    fragment = f"groups({','.join(select)})" if "$select" in call.request.query else "groups"
    return _page(call, call.context_url(fragment), values)


def list_direct_members(call: Call, group_id: str) -> GraphResponse:
    """Users and nested groups directly in the group; a $select names user properties, a group shows those of them
    it has (``id``, ``displayName``, ...)."""
    call.require("groups.read")
    select = parse_select(call, collection=True)
    group = found(call.sim.directory.groups, group_id)
    directory, now = call.sim.directory, call.sim.clock()
    values: list[dict[str, Any]] = []
    for member in group["members"]:
        if member in directory.users and directory.users[member].visible_after <= now:
            values.append({"@odata.type": USER} | project(directory.users[member].data, select))
        elif member in directory.groups:
            nested = directory.groups[member]
            names = [n for n in select if n in GROUP_PROPERTIES] if select else GROUP_PROPERTIES
            values.append({"@odata.type": GROUP} | {name: nested.get(name) for name in names})
    return _page(call, _context(call, "directoryObjects", select), values)


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
