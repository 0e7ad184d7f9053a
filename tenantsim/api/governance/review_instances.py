"""Access review instances: what a recurring definition has run (and will run next) by the simulator's clock.

An instance starts on each occurrence of the definition's recurrence (weekly or absoluteMonthly, every
`interval`, from `range.startDate`, within `numberOfOccurrences`, or `endDate` when numbered with no count)
and lasts `settings.instanceDurationInDays`. A definition without a recurrence runs once, from its creation. A
definition with an `instanceEnumerationScope` over Microsoft 365 groups gets one instance per group and
occurrence, its `./members...` scope anchored at that group. Listed: every instance that has started, and
the next one (NotStarted). Status: NotStarted before the start, InProgress until the end, then Completed.
Source: accessreviewscheduledefinition-list-instances and accessreviewinstance (api-reference/v1.0).
"""

from __future__ import annotations

import calendar
import copy
import uuid
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

UNIFIED_GROUPS = "groupTypes/any(c:c+eq+'Unified')"
MAX_OCCURRENCES = 1000


def instances(definition: dict[str, Any], groups: list[dict[str, Any]], now: datetime) -> list[dict[str, Any]]:
    settings = definition.get("settings") or {}
    duration = timedelta(days=max(1, int(settings.get("instanceDurationInDays") or 0)))
    found = []
    for start_day in _listed_occurrences(definition, now):
        start = datetime.combine(start_day, time(), UTC)
        for scope in _scopes(definition, groups):
            found.append(_instance(definition, scope, start, start + duration, now))
    return found


def _listed_occurrences(definition: dict[str, Any], now: datetime) -> list[date]:
    """Every occurrence that has started by ``now``, then the next one."""
    listed = []
    for day in _occurrences(definition):
        listed.append(day)
        if datetime.combine(day, time(), UTC) > now:
            break
    return listed


def _occurrences(definition: dict[str, Any]) -> list[date]:
    recurrence = (definition.get("settings") or {}).get("recurrence")
    if not recurrence:
        return [date.fromisoformat(definition["createdDateTime"][:10])]
    pattern, span = recurrence["pattern"], recurrence["range"]
    start = date.fromisoformat(span["startDate"])
    interval = max(1, int(pattern.get("interval") or 1))
    # numbered with numberOfOccurrences 0 runs until its endDate: Graph stores a noEnd range as numbered, 0,
    # 9999-12-31 (accessreviewset-list-definitions), and the get example shows numbered, 0, with a real end.
    occurrences = int(span.get("numberOfOccurrences") or 0) if span["type"] == "numbered" else 0
    limit = occurrences or MAX_OCCURRENCES
    bounded = span["type"] == "endDate" or (span["type"] == "numbered" and not occurrences)
    end = date.fromisoformat(span["endDate"]) if bounded and span.get("endDate") else None
    days = []
    for index in range(min(limit, MAX_OCCURRENCES)):
        if pattern["type"] == "weekly":
            day = start + timedelta(weeks=index * interval)
        else:
            day = _add_months(start, index * interval, int(pattern.get("dayOfMonth") or 0) or start.day)
        if end is not None and day > end:
            break
        days.append(day)
    return days


def _add_months(start: date, months: int, day_of_month: int) -> date:
    year, month = divmod(start.month - 1 + months, 12)
    year, month = start.year + year, month + 1
    return date(year, month, min(day_of_month, calendar.monthrange(year, month)[1]))


def _scopes(definition: dict[str, Any], groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    scope = copy.deepcopy(definition["scope"])
    enumeration = definition.get("instanceEnumerationScope")
    if not enumeration:
        return [scope]
    unified = UNIFIED_GROUPS in (enumeration.get("query") or "")
    scopes = []
    for group in groups:
        if unified and "Unified" not in (group.get("groupTypes") or []):
            continue
        anchored = copy.deepcopy(scope)
        query = anchored.get("query") or ""
        if query.startswith("./"):
            anchored["query"] = f"/v1.0/groups/{group['id']}{query[1:]}"
        scopes.append(anchored)
    return scopes


def _instance(
    definition: dict[str, Any], scope: dict[str, Any], start: datetime, end: datetime, now: datetime
) -> dict[str, Any]:
    status = "NotStarted" if now < start else "InProgress" if now < end else "Completed"
    return {
        # Stable across reads: the same definition, start and scope always give the same instance.
        "id": str(uuid.uuid5(uuid.UUID(definition["id"]), f"{start.isoformat()}|{scope.get('query')}")),
        "startDateTime": _iso(start),
        "endDateTime": _iso(end),
        "status": status,
        "scope": scope,
        "reviewers": copy.deepcopy(definition.get("reviewers") or []),
        "fallbackReviewers": copy.deepcopy(definition.get("fallbackReviewers") or []),
    }


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
