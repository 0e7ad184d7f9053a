"""GET /users/{id}/transitiveMemberOf: the groups a user belongs to, directly or through nested groups.

api-reference/v1.0/api/user-list-transitivememberof.md: application permission User.Read.All (or
GroupMember.Read.All, Group.Read.All, Directory.Read.All, Directory.ReadWrite.All); default page 100,
maximum 999; `$filter`, `$search`, `$orderby` and an OData cast need `ConsistencyLevel: eventual` and
`$count=true`. tenantsim serves the plain listing with `$select` and `$top` (what the product sends)
and answers the advanced forms it does not implement with 400 rather than a wrong result.
"""

from __future__ import annotations

from typing import Any

from tenantsim.api.users import _context, _decode_token, _next_link, _page_size, visible_user
from tenantsim.errors import bad_request, unsupported_query
from tenantsim.runtime import Call, GraphResponse

SUPPORTED = {"$select", "$top", "$skiptoken", "$count"}
ADVANCED = {"$filter", "$search", "$orderby"}


def list_transitive_member_of(call: Call, user_id: str) -> GraphResponse:
    call.require("users.transitiveMemberOf")
    query = call.request.query
    advanced = call.request.headers.get("consistencylevel", "").lower() == "eventual"
    counted = query.get("$count", "").lower() == "true"
    used_advanced = ADVANCED & query.keys()
    if used_advanced and not (advanced and counted):
        raise unsupported_query(
            f"{sorted(used_advanced)[0]} on transitiveMemberOf needs $count=true and the ConsistencyLevel: eventual "
            "header."
        )
    if used_advanced:
        raise bad_request(f"tenantsim does not implement {sorted(used_advanced)[0]} on transitiveMemberOf.")
    unknown = [k for k in query if k.startswith("$") and k not in SUPPORTED | ADVANCED]
    if unknown:
        raise bad_request(f"Query option '{unknown[0]}' is not supported.")
    select = tuple(p.strip() for p in query["$select"].split(",")) if query.get("$select") else None
    user = visible_user(call, user_id)
    groups = _groups_containing(call, user.data["id"])
    top = _page_size(call, uses_sign_in=False)
    start = _decode_token(query.get("$skiptoken"))
    chunk = groups[start : start + top]
    values = [{"@odata.type": "#microsoft.graph.group"} | _project(group, select) for group in chunk]
    body: dict[str, Any] = {"@odata.context": _context(call, "directoryObjects", select)}
    if start + top < len(groups):
        body["@odata.nextLink"] = _next_link(call, start + top)
    body["value"] = values
    return GraphResponse(200, body)


def _groups_containing(call: Call, object_id: str) -> list[dict[str, Any]]:
    """Every group with ``object_id`` as a member or as a member of a group nested in it (cycles once)."""
    groups = call.sim.directory.groups
    found: dict[str, dict[str, Any]] = {}
    pending = [object_id]
    while pending:
        member = pending.pop()
        for group_id, group in groups.items():
            if member in group["members"] and group_id not in found:
                found[group_id] = group
                pending.append(group_id)
    return sorted(found.values(), key=lambda g: g["id"])


def _project(group: dict[str, Any], select: tuple[str, ...] | None) -> dict[str, Any]:
    shown = {"id": group["id"], "displayName": group.get("displayName")}
    return shown if select is None else {k: v for k, v in shown.items() if k in select or k == "id"}
