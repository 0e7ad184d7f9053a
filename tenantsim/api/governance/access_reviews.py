"""Access review schedule definitions: `identityGovernance/accessReviews/definitions`, stored as Graph
rewrites them, and the instances a definition has run (tenantsim.api.governance.review_instances)."""

from __future__ import annotations

import copy
import re
import uuid
from datetime import datetime
from typing import Any

from tenantsim.api.governance import review_instances
from tenantsim.api.governance.common import REVIEWS, check_duration, eq_filter, page, public, writable_body
from tenantsim.api.governance.state import state_of
from tenantsim.config import SimConfig
from tenantsim.errors import bad_request, found
from tenantsim.runtime import Call, GraphResponse

REVIEW_SCOPES = frozenset(
    {
        "#microsoft.graph.accessReviewQueryScope",
        "#microsoft.graph.accessReviewInactiveUsersQueryScope",
        "#microsoft.graph.principalResourceMembershipsScope",
        "#microsoft.graph.accessReviewReviewerScope",
    }
)
DEFAULT_DECISIONS = frozenset({"Approve", "Deny", "Recommendation", "None"})
APPLY_ACTIONS = frozenset(
    {"#microsoft.graph.removeAccessApplyAction", "#microsoft.graph.disableAndDeleteUserApplyAction"}
)
DATE_ONLY = re.compile(r"^(\d{4}-\d{2}-\d{2})")

REVIEW_WRITABLE = (
    "displayName",
    "descriptionForAdmins",
    "descriptionForReviewers",
    "scope",
    "instanceEnumerationScope",
    "reviewers",
    "fallbackReviewers",
    "backupReviewers",
    "additionalNotificationRecipients",
    "settings",
    "stageSettings",
    "id",
    "status",
    "createdBy",
    "createdDateTime",
    "lastModifiedDateTime",
)
SETTINGS_DEFAULTS: dict[str, Any] = {
    "mailNotificationsEnabled": False,
    "reminderNotificationsEnabled": False,
    "justificationRequiredOnApproval": False,
    "defaultDecisionEnabled": False,
    "defaultDecision": "None",
    "instanceDurationInDays": 0,
    "autoApplyDecisionsEnabled": False,
    "recommendationsEnabled": False,
    "recurrence": None,
    "applyActions": [],
}
PATTERN_DEFAULTS = {
    "month": 0,
    "dayOfMonth": 0,
    "daysOfWeek": [],
    "firstDayOfWeek": "sunday",
    "index": "first",
}
RANGE_DEFAULTS = {"numberOfOccurrences": 0, "recurrenceTimeZone": None, "endDate": None}


# Reviewers resolved per reviewed user, relative to each decision: "Because ./manager is a relative query,
# specify the queryRoot property with the value decisions" (accessreviews-reviewers-concept); ./sponsors, each
# guest's sponsors, is the same kind of query. ./owners (all-groups reviews) is relative to the group instead.
PER_DECISION_REVIEWERS = frozenset({"./manager", "./sponsors"})
GROUP_OWNERS = "./owners"
# How Graph stores a definition's queries (accessreviewscheduledefinition-get, accessreviewset-list-definitions,
# accessreviewset-post-definitions example 2): absolute queries under /v1.0, filtered scope queries with $count.
VERSION_PREFIX = "/v1.0"
NO_END_DATE = "9999-12-31"
INDIVIDUAL_USER = re.compile(r"^(/v1\.0)?/users/[^/?]+$")


def _stored_query(query: str, config: SimConfig, count: str | None = None) -> str:
    """The query as Graph keeps it. ``count`` is where a filtered query gets its added ``$count=true``: first
    for a scope (``./members/...?$count=true&$filter=...``), last for an instanceEnumerationScope."""
    if count and "$filter=" in query and "$count=" not in query:
        if count == "first":
            path, _, options = query.partition("?")
            query = f"{path}?$count=true&{options}"
        else:
            query = f"{query}&$count=true"
    if config.review_query_version_prefix and query.startswith("/") and not query.startswith(("/v1.0/", "/beta/")):
        query = VERSION_PREFIX + query
    return query


def _reviewer_scopes(value: Any, name: str, config: SimConfig) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise bad_request(f"'{name}' must be a collection.")
    scopes = []
    for entry in value:
        if not isinstance(entry, dict) or not isinstance(entry.get("query"), str) or not entry["query"]:
            raise bad_request(f"Every entry of '{name}' needs a 'query'.")
        if entry["query"] in PER_DECISION_REVIEWERS and entry.get("queryRoot") != "decisions":
            raise bad_request(f"The relative reviewer query '{entry['query']}' needs queryRoot 'decisions'.")
        scopes.append(
            {
                "query": _stored_query(entry["query"], config),
                "queryType": entry.get("queryType", "MicrosoftGraph"),
                "queryRoot": None,
            }
            | ({"queryRoot": entry["queryRoot"]} if entry.get("queryRoot") else {})
        )
    return scopes


def _review_scope(value: Any, name: str, required: bool, config: SimConfig, count: str) -> dict[str, Any] | None:
    if value is None:
        if required:
            raise bad_request(f"'{name}' is required.")
        return None
    if not isinstance(value, dict) or value.get("@odata.type") not in REVIEW_SCOPES:
        raise bad_request(f"'{name}' must name a supported access review scope type.")
    scope = copy.deepcopy(value)
    if "query" in scope:
        if isinstance(scope["query"], str):
            scope["query"] = _stored_query(scope["query"], config, count)
        scope.setdefault("queryType", "MicrosoftGraph")
        scope.setdefault("queryRoot", None)
    check_duration(scope.get("inactiveDuration"), f"{name}.inactiveDuration")
    return scope


def _recurrence(value: Any, config: SimConfig) -> dict[str, Any] | None:
    if value is None:
        return None
    pattern, span = value.get("pattern"), value.get("range")
    if not isinstance(pattern, dict) or pattern.get("type") not in {"weekly", "absoluteMonthly"}:
        raise bad_request("recurrence.pattern.type must be weekly or absoluteMonthly.")
    if not isinstance(span, dict) or span.get("type") not in {"noEnd", "numbered", "endDate"}:
        raise bad_request("recurrence.range.type must be noEnd, numbered or endDate.")
    start = DATE_ONLY.match(str(span.get("startDate") or ""))
    if start is None:
        raise bad_request("recurrence.range.startDate is required.")
    normalised_range = {**RANGE_DEFAULTS, **span, "startDate": start.group(1)}
    if normalised_range.get("endDate"):
        end = DATE_ONLY.match(str(normalised_range["endDate"]))
        normalised_range["endDate"] = end.group(1) if end else None
    if normalised_range["type"] == "noEnd" and config.review_no_end_as_numbered:
        normalised_range.update(type="numbered", numberOfOccurrences=0, endDate=NO_END_DATE)
    return {"pattern": {**PATTERN_DEFAULTS, "interval": 1, **pattern}, "range": normalised_range}


def _owners_fit_the_scope(review: dict[str, Any], config: SimConfig) -> None:
    """./owners names each reviewed group's owners: documented for reviews of all groups; a review of one group
    names /groups/{id}/owners (accessreviews-reviewers-concept)."""
    if review["instanceEnumerationScope"] is not None or config.review_relative_owners_on_single_group:
        return
    for name in ("reviewers", "fallbackReviewers"):
        if any(entry["query"] == GROUP_OWNERS for entry in review[name]):
            raise bad_request(
                f"'{name}' names './owners' but the review has no instanceEnumerationScope: "
                "name the group's owners as /groups/{id}/owners."
            )


def _validated_review(body: dict[str, Any], config: SimConfig) -> dict[str, Any]:
    if not isinstance(body.get("displayName"), str) or not body["displayName"].strip():
        raise bad_request("'displayName' is required.")
    settings = {**SETTINGS_DEFAULTS, **(body.get("settings") or {})}
    if settings["defaultDecision"] not in DEFAULT_DECISIONS:
        raise bad_request("Invalid value for 'settings.defaultDecision'.")
    for action in settings["applyActions"]:
        if not isinstance(action, dict) or action.get("@odata.type") not in APPLY_ACTIONS:
            raise bad_request("Invalid entry in 'settings.applyActions'.")
    check_duration(settings.get("recommendationLookBackDuration"), "recommendationLookBackDuration")
    settings["recurrence"] = _recurrence(settings["recurrence"], config)
    # Setting either backupReviewers or fallbackReviewers fills fallbackReviewers (backupReviewers is deprecated).
    fallback = (
        body.get("fallbackReviewers") if body.get("fallbackReviewers") is not None else body.get("backupReviewers")
    )
    review = {
        "displayName": body["displayName"],
        "descriptionForAdmins": body.get("descriptionForAdmins"),
        "descriptionForReviewers": body.get("descriptionForReviewers"),
        "scope": _review_scope(body.get("scope"), "scope", True, config, "first"),
        "instanceEnumerationScope": _review_scope(
            body.get("instanceEnumerationScope"), "instanceEnumerationScope", False, config, "last"
        ),
        "reviewers": _reviewer_scopes(body.get("reviewers"), "reviewers", config),
        "fallbackReviewers": _reviewer_scopes(fallback, "fallbackReviewers", config),
        "additionalNotificationRecipients": copy.deepcopy(body.get("additionalNotificationRecipients") or []),
        "settings": settings,
    }
    if body.get("stageSettings"):
        review["stageSettings"] = copy.deepcopy(body["stageSettings"])
    _owners_fit_the_scope(review, config)
    return review


def list_reviews(call: Call) -> GraphResponse:
    call.require("accessReview.read")
    raw = call.request.query.get("$filter", "")
    contains = re.match(r"^contains\(scope/microsoft\.graph\.accessReviewQueryScope/query,\s*'((?:[^']|'')*)'\)$", raw)
    if contains:
        needle = contains.group(1).replace("''", "'")
        items = [public(r) for r in state_of(call).reviews.values() if needle in (r["scope"] or {}).get("query", "")]
    else:
        keep = eq_filter(call, {"status": lambda r: r["status"]})
        items = [public(r) for r in state_of(call).reviews.values() if keep(r)]
    return page(call, items, REVIEWS)


def create_review(call: Call) -> GraphResponse:
    call.require("accessReview.write")
    body = writable_body(call.request.body, REVIEW_WRITABLE, "accessReviewScheduleDefinition")
    review = {
        "id": str(uuid.uuid4()),
        **_validated_review(body, call.sim.config),
        "status": "NotStarted",
        "createdDateTime": call.sim.now_iso(),
        "lastModifiedDateTime": call.sim.now_iso(),
        "createdBy": {"id": call.caller.app_id, "displayName": "Guest lifecycle", "userPrincipalName": None},
    }
    state_of(call).reviews[review["id"]] = review
    return GraphResponse(201, {"@odata.context": call.context_url(f"{REVIEWS}/$entity"), **public(review)})


def get_review(call: Call, review_id: str) -> GraphResponse:
    call.require("accessReview.read")
    review = public(found(state_of(call).reviews, review_id))
    return GraphResponse(200, {"@odata.context": call.context_url(f"{REVIEWS}/$entity"), **review})


def _reviewer_set(scopes: list[dict[str, Any]]) -> list[tuple[str, str | None]]:
    return sorted((entry["query"], entry.get("queryRoot")) for entry in scopes)


def _individual_users(scopes: list[dict[str, Any]]) -> bool:
    return bool(scopes) and all(INDIVIDUAL_USER.match(entry["query"]) for entry in scopes)


def replace_review(call: Call, review_id: str) -> GraphResponse:
    """PUT with the full definition, answered 204 (accessreviewscheduledefinition-update). scope and
    instanceEnumerationScope cannot change after creation; reviewers only while individual users review."""
    call.require("accessReview.write")
    state = state_of(call)
    current = found(state.reviews, review_id)
    body = writable_body(call.request.body, REVIEW_WRITABLE, "accessReviewScheduleDefinition")
    replacement = _validated_review(body, call.sim.config)
    for fixed in ("scope", "instanceEnumerationScope"):
        if replacement[fixed] != current[fixed]:
            raise bad_request(f"'{fixed}' of an access review definition cannot be updated.")
    if _reviewer_set(replacement["reviewers"]) != _reviewer_set(current["reviewers"]) and not (
        _individual_users(current["reviewers"]) and _individual_users(replacement["reviewers"])
    ):
        raise bad_request("'reviewers' can only be updated when individual users are assigned as reviewers.")
    current.update(replacement)
    current["lastModifiedDateTime"] = call.sim.now_iso()
    return GraphResponse(204)


def delete_review(call: Call, review_id: str) -> GraphResponse:
    call.require("accessReview.write")
    state = state_of(call)
    found(state.reviews, review_id)
    del state.reviews[review_id]
    return GraphResponse(204)


def list_review_instances(call: Call, review_id: str) -> GraphResponse:
    """The instances the definition has run by now and its next one (see review_instances)."""
    call.require("accessReview.read")
    review = found(state_of(call).reviews, review_id)
    now = datetime.fromisoformat(call.sim.now_iso().replace("Z", "+00:00"))
    groups = list(call.sim.directory.groups.values())
    keep = eq_filter(call, {"status": lambda i: i["status"]})
    items = [i for i in review_instances.instances(review, groups, now) if keep(i)]
    return page(call, items, f"{REVIEWS}('{review_id}')/instances")
