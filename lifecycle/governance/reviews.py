"""Access review definitions compared by what they mean, not how Graph spells them back.

Graph rewrites a definition it stores (accessreviewscheduledefinition-get, accessreviewset-list-definitions,
accessreviewset-post-definitions): absolute queries come back under ``/v1.0``, filtered queries gain
``$count=true``, a ``noEnd`` recurrence range comes back ``numbered`` until 9999-12-31, and user reviewers may
gain a ``queryRoot``. None of that changes what is reviewed or by whom, so both sides are normalised before the
planner compares them; otherwise every run would plan a delete-and-create of a running review.

Graph also updates ``reviewers`` only while individual users review (accessreviewscheduledefinition-update):
any other reviewer change needs the definition deleted and created again, which loses its instances and
their decisions, so the planner brakes it.
"""

from __future__ import annotations

import copy
import re
from typing import Any
from urllib.parse import unquote_plus

NO_END_DATE = "9999-12-31"
VERSION_PREFIXES = ("https://graph.microsoft.com/v1.0/", "/v1.0/")
INDIVIDUAL_USER = re.compile(r"^/users/[^/?]+$")
# What a PUT may carry back of a stored scope: the members of accessReviewQueryScope and its subtypes.
SCOPE_MEMBERS = ("@odata.type", "query", "queryType", "queryRoot", "inactiveDuration")
REVIEWER_MEMBERS = ("query", "queryType", "queryRoot")


def normal_query(query: Any) -> Any:
    """One spelling per query: no version prefix, no ``$count`` (it changes no member of the set), options
    sorted, ``+`` read as a space, no slash before the options, whitespace collapsed."""
    if not isinstance(query, str):
        return query
    text = query.strip()
    for prefix in VERSION_PREFIXES:
        if text.startswith(prefix):
            text = "/" + text[len(prefix) :]
            break
    path, _, options = text.partition("?")
    path = path.rstrip("/") or path
    kept = []
    for option in filter(None, options.split("&")):
        name, _, value = option.partition("=")
        if name.strip().lower() == "$count":
            continue
        kept.append(f"{name.strip().lower()}={' '.join(unquote_plus(value).split())}")
    return f"{path}?{'&'.join(sorted(kept))}" if kept else path


def _normal_reviewer(scope: Any) -> Any:
    if not isinstance(scope, dict):
        return scope
    query = normal_query(scope.get("query"))
    relative = isinstance(query, str) and query.startswith("./")
    return {
        "query": query,
        "queryType": scope.get("queryType") or "MicrosoftGraph",
        # queryRoot says what a relative query starts from; on an absolute query it means nothing.
        "queryRoot": scope.get("queryRoot") if relative else None,
    }


def _normal_range(span: Any) -> Any:
    if not isinstance(span, dict):
        return span
    normal = dict(span)
    if normal.get("endDate") == "null":
        normal["endDate"] = None
    if (
        normal.get("type") == "numbered"
        and str(normal.get("endDate") or "")[:10] == NO_END_DATE
        and not normal.get("numberOfOccurrences")
    ):
        normal.update(type="noEnd", endDate=None, numberOfOccurrences=0)
    if isinstance(normal.get("startDate"), str):
        normal["startDate"] = normal["startDate"][:10]
    return normal


def normal_definition(definition: dict[str, Any]) -> dict[str, Any]:
    """The definition with every Graph rewrite undone: what the planner compares."""
    normal = copy.deepcopy(definition)
    for name in ("scope", "instanceEnumerationScope"):
        if isinstance(normal.get(name), dict) and "query" in normal[name]:
            normal[name]["query"] = normal_query(normal[name]["query"])
    for name in ("reviewers", "fallbackReviewers"):
        if isinstance(normal.get(name), list):
            normal[name] = [_normal_reviewer(scope) for scope in normal[name]]
    recurrence = (normal.get("settings") or {}).get("recurrence")
    if isinstance(recurrence, dict) and "range" in recurrence:
        recurrence["range"] = _normal_range(recurrence["range"])
    return normal


def individual_users(reviewers: Any) -> bool:
    """Reviewers Graph lets an update change: one or more specific users, nothing relative, no groups."""
    return (
        isinstance(reviewers, list)
        and bool(reviewers)
        and all(INDIVIDUAL_USER.match(str(normal_query((r or {}).get("query")))) for r in reviewers)
    )


def reviewers_updatable(desired: dict[str, Any], actual: dict[str, Any]) -> bool:
    """Whether a PUT may move the reviewers from ``actual`` to ``desired``."""
    return individual_users(desired.get("reviewers")) and individual_users(actual.get("reviewers"))


def _reviewer_key(scopes: Any) -> list[str]:
    return sorted(repr(sorted(_normal_reviewer(scope).items())) for scope in scopes or [])


def same_reviewers(desired: Any, actual: Any) -> bool:
    return _reviewer_key(desired) == _reviewer_key(actual)


def update_body(desired: dict[str, Any], actual: dict[str, Any]) -> dict[str, Any]:
    """The whole definition for the PUT: the desired settings, and what is unchanged exactly as Graph stores
    it (scopes cannot change, and reviewers that only read differently are no change to send)."""
    body = copy.deepcopy(desired)
    for name in ("scope", "instanceEnumerationScope"):
        stored = actual.get(name)
        body[name] = {k: v for k, v in stored.items() if k in SCOPE_MEMBERS} if isinstance(stored, dict) else stored
    for name in ("reviewers", "fallbackReviewers"):
        if same_reviewers(desired.get(name), actual.get(name)):
            body[name] = [{k: v for k, v in r.items() if k in REVIEWER_MEMBERS} for r in actual.get(name) or []]
    return body
