"""What every identity governance collection shares: the Graph view of a stored record, the writable-property
check of a request body, lookup by id, ISO 8601 durations and instants, `$top`/`$skip` paging, the `eq`
`$filter` subset and `$expand` parsing."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from tenantsim.errors import GraphError, bad_request
from tenantsim.runtime import Call, GraphResponse

EM = "identityGovernance/entitlementManagement"
REVIEWS = "identityGovernance/accessReviews/definitions"
ISO_DURATION = re.compile(r"^P(?!$)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?$")


def public(record: dict[str, Any]) -> dict[str, Any]:
    """A stored record as Graph shows it: internal bookkeeping keys start with an underscore."""
    return {k: copy.deepcopy(v) for k, v in record.items() if not k.startswith("_")}


def writable_body(body: Any, writable: Iterable[str], resource: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.")
    allowed = set(writable) | {"@odata.type"}
    for name in body:
        if name not in allowed:
            raise bad_request(f"Invalid property '{name}' for resource '{resource}'.")
    return {k: v for k, v in body.items() if k != "@odata.type"}


def check_duration(value: Any, name: str) -> None:
    if value is not None and (not isinstance(value, str) or not ISO_DURATION.match(value)):
        raise bad_request(f"'{name}' must be an ISO 8601 duration.")


def page(call: Call, items: list[dict[str, Any]], context: str) -> GraphResponse:
    """$top/$skip paging with an @odata.nextLink, as access reviews and entitlement management do."""
    query = call.request.query
    try:
        top = int(query.get("$top", 100))
        skip = int(query.get("$skip", 0))
    except ValueError as exc:
        raise bad_request("$top and $skip must be integers.") from exc
    if top < 1 or skip < 0:
        raise bad_request("$top must be positive and $skip not negative.")
    body: dict[str, Any] = {"@odata.context": call.context_url(context), "value": items[skip : skip + top]}
    if skip + top < len(items):
        body["@odata.nextLink"] = call.next_link({"$top": str(top), "$skip": str(skip + top)})
    return GraphResponse(200, body)


_COMPARISON = re.compile(r"^\s*([A-Za-z/]+)\s+eq\s+'((?:[^']|'')*)'\s*$")
_Getter = Callable[[dict[str, Any]], Any]


def eq_filter(
    call: Call,
    supported: dict[str, _Getter],
    enums: dict[str, frozenset[str]] | None = None,
) -> Callable[[dict[str, Any]], bool]:
    """The `a eq 'x' [and b eq 'y']` subset Graph documents for these collections.

    An enum property matches its members whatever the literal's casing: the list-assignments page filters
    `state eq 'Delivered'` on a property whose member is `delivered`. A literal naming no member is a 400.
    """
    raw = call.request.query.get("$filter")
    if not raw:
        return lambda _record: True
    clauses: list[tuple[Callable[[dict[str, Any]], Any], str]] = []
    for part in re.split(r"\s+and\s+", raw.strip()):
        match = _COMPARISON.match(part)
        if match is None or match.group(1) not in supported:
            raise GraphError(400, "BadRequest", f"Invalid filter clause: {part!r}.")
        value = match.group(2).replace("''", "'")
        members = (enums or {}).get(match.group(1))
        if members is not None:
            value = enum_member(members, value, match.group(1))
        clauses.append((supported[match.group(1)], value))
    return lambda record: all(str(getter(record) or "") == value for getter, value in clauses)


def listed_filters(call: Call, named: dict[str, _Getter], navigation: dict[str, _Getter]) -> dict[str, _Getter]:
    """The properties a package or policy list filters on, as knob `accessPackageListFilters` says: the ones its
    page names, or those and the navigation ids no page names."""
    return named if call.sim.config.access_package_list_filters == "displayName" else {**named, **navigation}


def enum_member(members: frozenset[str], literal: str, name: str) -> str:
    member = next((m for m in members if m.lower() == literal.lower()), None)
    if member is None:
        raise GraphError(400, "BadRequest", f"Invalid value '{literal}' for the enum property '{name}'.")
    return member


def expanded(call: Call) -> dict[str, str]:
    return expand_options(call.request.query.get("$expand", ""))


def expand_options(raw: str) -> dict[str, str]:
    """`a,b($expand=c,d)` as {"a": "", "b": "c,d"}: each expanded navigation with its nested $expand."""
    found: dict[str, str] = {}
    depth, start = 0, 0
    for index, char in enumerate(raw + ","):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "," and depth == 0:
            part = raw[start:index].strip()
            start = index + 1
            if not part:
                continue
            name, _, options = part.partition("(")
            nested = re.match(r"^\$expand=(.*)\)$", options.strip())
            if options and nested is None:
                raise bad_request(f"Unsupported nested query options in $expand: {part!r}.")
            found[name.strip()] = nested.group(1) if nested else ""
    if depth:
        raise bad_request("Unbalanced parentheses in $expand.")
    return found


def by_id(items: list[dict[str, Any]], item_id: str) -> dict[str, Any]:
    return next(i for i in items if i["id"] == item_id)


def instant(value: Any) -> datetime | None:
    """A DateTimeOffset from a JSON body, in UTC; None when it is not one."""
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)
