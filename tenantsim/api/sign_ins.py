"""Sign-in logs (/auditLogs/signIns): the evidence of what a report-only Conditional Access policy would have done.

tenantsim does not evaluate policies: tests add sign-in events (with the per-policy results Entra would have
recorded) through the inspection API, and Graph's reading rules apply to them:

- list and page, newest first, ``$top`` up to 1,000 (signin-list.md);
- ``$filter`` on ``createdDateTime ge`` and ``appliedConditionalAccessPolicies/any(p:p/id eq '...')`` (the
  applied policy's ``id`` supports ``eq``: appliedconditionalaccesspolicy.md), alone or joined by ``and``;
- the ``reportOnly*`` results are evolvable enum members: without ``Prefer: include-unknown-enum-members``
  they read ``unknownFutureValue`` (appliedconditionalaccesspolicy.md);
- the applied policies are returned only to callers that may read Conditional Access data (the same page);
- AuditLog.Read.All, and Directory.Read.All too while the page's known issue stands (knob
  ``signInListNeedsDirectoryRead``); a tenant without Entra ID P1/P2 is refused like signInActivity.
"""

from __future__ import annotations

import copy
import re
import uuid
import weakref
from datetime import datetime
from typing import Any

from tenantsim import permissions
from tenantsim.api.users import require_premium_for_sign_in_activity
from tenantsim.directory import Directory
from tenantsim.errors import bad_request, denied, unsupported_query
from tenantsim.runtime import Call, GraphResponse

MAX_PAGE = 1000
REPORT_ONLY = frozenset({"reportOnlySuccess", "reportOnlyFailure", "reportOnlyNotApplied", "reportOnlyInterrupted"})
RESULTS = frozenset({"success", "failure", "notApplied", "notEnabled", "unknown", "unknownFutureValue"} | REPORT_ONLY)
_SINCE = re.compile(r"^createdDateTime ge (\d{4}-\d\d-\d\dT[\d:.]+Z)$")
_POLICY = re.compile(r"^appliedConditionalAccessPolicies/any\((\w+):\s*\1/id eq '([^']*)'\)$")

_events: weakref.WeakKeyDictionary[Directory, list[dict[str, Any]]] = weakref.WeakKeyDictionary()


def events_of(directory: Directory) -> list[dict[str, Any]]:
    if directory not in _events:
        _events[directory] = []
    return _events[directory]


def add_events(directory: Directory, events: Any, now: str) -> list[dict[str, Any]]:
    """Inspection hook: record sign-ins as Entra would have logged them."""
    if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
        raise bad_request("'signIns' must be a list of sign-in objects.")
    added = []
    for event in events:
        applied = event.get("appliedConditionalAccessPolicies") or []
        if any(not isinstance(a, dict) or a.get("result") not in RESULTS for a in applied):
            raise bad_request(f"each applied policy needs a result among {', '.join(sorted(RESULTS))}.")
        stored = {"id": str(uuid.uuid4()), "createdDateTime": now, "conditionalAccessStatus": "notApplied", **event}
        stored["appliedConditionalAccessPolicies"] = copy.deepcopy(applied)
        added.append(stored)
    events_of(directory).extend(added)
    return added


def _instant(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _matches(call: Call) -> list[dict[str, Any]]:
    expression = call.request.query.get("$filter", "").strip()
    since: datetime | None = None
    policy: str | None = None
    for clause in (c.strip() for c in re.split(r"\s+and\s+", expression) if c.strip()) if expression else ():
        if found := _SINCE.match(clause):
            since = _instant(found.group(1))
        elif found := _POLICY.match(clause):
            policy = found.group(2)
        else:
            raise unsupported_query(f"Unsupported filter clause on sign-ins: {clause}")
    events = sorted(events_of(call.sim.directory), key=lambda e: e["createdDateTime"], reverse=True)
    return [
        e
        for e in events
        if (since is None or _instant(e["createdDateTime"]) >= since)
        and (policy is None or any(a.get("id") == policy for a in e["appliedConditionalAccessPolicies"]))
    ]


def _view(call: Call, event: dict[str, Any], reads_ca: bool) -> dict[str, Any]:
    shown = copy.deepcopy(event)
    if not reads_ca:
        shown["appliedConditionalAccessPolicies"] = []
        return shown
    evolvable = "include-unknown-enum-members" in call.request.headers.get("prefer", "")
    for applied in shown["appliedConditionalAccessPolicies"]:
        if applied["result"] in REPORT_ONLY and not evolvable:
            applied["result"] = "unknownFutureValue"
    return shown


def list_sign_ins(call: Call) -> GraphResponse:
    call.require("auditLogs.signIns")
    if call.sim.config.sign_in_list_needs_directory_read and not permissions.is_allowed(
        "auditLogs.signIns.directory", call.caller.roles
    ):
        raise denied()
    require_premium_for_sign_in_activity(call)
    query = call.request.query
    unknown = sorted(k for k in query if k.startswith("$") and k not in {"$filter", "$top", "$skiptoken"})
    if unknown:
        raise unsupported_query(f"Query option '{unknown[0]}' is not supported on sign-ins by this simulator.")
    try:
        top = int(query.get("$top", MAX_PAGE))
        skip = int(query.get("$skiptoken", 0))
    except ValueError as exc:
        raise bad_request("$top must be an integer; $skiptoken must be one this simulator issued.") from exc
    if not 1 <= top <= MAX_PAGE:
        raise bad_request(f"$top must be between 1 and {MAX_PAGE}.")
    reads_ca = permissions.is_allowed("conditionalAccess.read", call.caller.roles)
    matches = _matches(call)
    body: dict[str, Any] = {
        "@odata.context": call.context_url("auditLogs/signIns"),
        "value": [_view(call, e, reads_ca) for e in matches[skip : skip + top]],
    }
    if skip + top < len(matches):
        body["@odata.nextLink"] = call.next_link({"$top": str(top), "$skiptoken": str(skip + top)})
    return GraphResponse(200, body)
