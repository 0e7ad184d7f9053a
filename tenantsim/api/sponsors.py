"""A user's sponsors: GET /users/{id}/sponsors, POST /users/{id}/sponsors/$ref, and invitedUserSponsors.

Sponsors are users or groups (user-post-sponsors, user-list-sponsors). Adding needs User.ReadWrite.All, the
only permission its page names; listing needs User.Read.All or User.ReadWrite.All. Adding a reference that
is already there is refused with 400 Request_BadRequest and the directory's "One or more added object
references already exist ..." message: that answer is observed for group members and for sponsors, not
documented by Microsoft, so config ``duplicateSponsorNoContent`` offers a 204 instead.
A reference to an object that does not exist is a 404 here, as Graph answers for group members (also
observed, not documented for sponsors).
"""

from __future__ import annotations

import re
from typing import Any

from tenantsim.api.users import parse_select, project, visible_user
from tenantsim.errors import GraphError, bad_request, not_found
from tenantsim.runtime import Call, GraphResponse

ALREADY_EXISTS = "One or more added object references already exist for the following modified properties: 'sponsors'."
_REFERENCE = re.compile(
    r"^(?P<base>https?://[^/]+)/(?:v1\.0|beta)/(?P<kind>users|groups|directoryObjects)/(?P<id>[^/?#()]+)$"
)
GRAPH_HOSTS = ("https://graph.microsoft.com",)


def list_sponsors(call: Call, user_id: str) -> GraphResponse:
    select = parse_select(call, collection=True)
    call.require("users.sponsors.read")
    if "signInActivity" in (select or ()):
        call.require("users.read.signInActivity")
    record = visible_user(call, user_id)
    objects = [sponsor_object(call, s, select) for s in call.sim.directory.sponsors.get(record.data["id"], [])]
    fragment = "directoryObjects" + (f"({','.join(select)})" if select else "")
    body = {"@odata.context": call.context_url(fragment), "value": [o for o in objects if o is not None]}
    return GraphResponse(200, body)


def add_sponsor(call: Call, user_id: str) -> GraphResponse:
    call.require("users.sponsors.add")
    body = call.request.body
    reference = body.get("@odata.id") if isinstance(body, dict) else None
    if not isinstance(reference, str) or set(body) != {"@odata.id"}:
        raise bad_request("The request body must be a JSON object with exactly one property, '@odata.id'.")
    found = _REFERENCE.match(reference)
    if found is None or found["base"] not in (*GRAPH_HOSTS, call.sim.base_url):
        raise bad_request(f"Invalid URL format specified in @odata.id: '{reference}'.")
    record = visible_user(call, user_id)
    sponsor_id = found["id"]
    if not _exists(call, found["kind"], sponsor_id):
        raise not_found(sponsor_id)
    sponsors = call.sim.directory.sponsors.setdefault(record.data["id"], [])
    if sponsor_id in sponsors:
        if call.sim.config.duplicate_sponsor_no_content:
            return GraphResponse(204)
        raise bad_request(ALREADY_EXISTS)
    sponsors.append(sponsor_id)
    return GraphResponse(204)


def invited_user_sponsors(call: Call, value: Any) -> list[str]:
    """The object ids of an invitation's invitedUserSponsors; each must be an existing user or group."""
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(s, dict) and isinstance(s.get("id"), str) for s in value):
        raise _invalid_sponsors()
    ids = list(dict.fromkeys(s["id"] for s in value))
    if not all(_exists(call, "directoryObjects", i) for i in ids):
        raise _invalid_sponsors()
    return ids


def sponsor_object(call: Call, object_id: str, select: tuple[str, ...] | None) -> dict[str, Any] | None:
    directory = call.sim.directory
    user = directory.users.get(object_id)
    if user is not None:
        return {"@odata.type": "#microsoft.graph.user"} | project(user.data, select)
    group = directory.groups.get(object_id)
    if group is not None:
        names = select or ("id", "displayName", "description", "mailEnabled", "securityEnabled", "groupTypes")
        return {"@odata.type": "#microsoft.graph.group"} | {n: group.get(n) for n in names}
    return None  # deleted since it was added: Graph lists live objects only


def _exists(call: Call, kind: str, object_id: str) -> bool:
    directory = call.sim.directory
    user = directory.users.get(object_id)
    is_user = user is not None and user.visible_after <= call.sim.clock()
    is_group = object_id in directory.groups
    return {"users": is_user, "groups": is_group}.get(kind, is_user or is_group)


def _invalid_sponsors() -> GraphError:
    return GraphError(
        400,
        "BadRequest",
        "Invalid value specified for property 'invitedUserSponsors' of resource 'Invitation': every sponsor must be "
        "an existing user or group.",
    )
