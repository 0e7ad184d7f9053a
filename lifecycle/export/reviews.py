"""Access review definitions as the desired state's ``guestReview``, ``partnerReview`` and each partner's
``reviewGroupId``.

A definition is read as the governance planner compares it (lifecycle.governance.reviews undoes what Graph
rewrites when it stores one), so an exported review plans no update, let alone a recreate, of the review it
came from. A definition the format cannot hold is named in a comment and left out: exported approximately,
the governance job would rewrite or recreate it, losing its instances and decisions.
"""

from __future__ import annotations

import re
from typing import Any

from lifecycle.governance.review_bodies import ALL_GROUPS_QUERY, GUEST_QUERY
from lifecycle.governance.reviews import normal_definition, normal_query

REVIEW_KEY = re.compile(r"\[governance-key: ([^\]]+)\]")
GUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
USER_REVIEWER = re.compile(rf"^/users/({GUID})$")
GROUP_REVIEWER = re.compile(rf"^/groups/({GUID})/transitiveMembers$")
PARTNER_SCOPE = re.compile(
    rf"^/groups/({GUID})/transitiveMembers/microsoft\.graph\.user\?\$filter=\(userType eq 'Guest'\)$"
)
APPLY_ACTIONS = {
    "#microsoft.graph.removeAccessApplyAction": "removeAccess",
    "#microsoft.graph.disableAndDeleteUserApplyAction": "disableAndDelete",
}


def export_reviews(
    reviews: list[dict[str, Any]], partners: dict[str, Any], governed: dict[str, dict[str, Any]], notes: list[str]
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    guest: dict[str, Any] | None = None
    partner_review: dict[str, Any] | None = None
    for definition in sorted(reviews, key=lambda d: str(d.get("displayName"))):
        normal = normal_definition(definition)
        label = f"access review {definition.get('displayName')!r} ({definition.get('id')})"
        marker = REVIEW_KEY.search(str(definition.get("descriptionForAdmins") or ""))
        scope = normal_query((normal.get("scope") or {}).get("query"))
        enumeration = normal_query((normal.get("instanceEnumerationScope") or {}).get("query"))
        if scope == normal_query(GUEST_QUERY) and enumeration == normal_query(ALL_GROUPS_QUERY):
            if guest is not None:
                notes.append(f"not exported: {label}; guestReview already holds another review of every guest")
                continue
            settings, problems = _review_settings(normal, str(definition.get("displayName") or ""), None)
            if problems:
                notes.append(f"not exported: {label}: {'; '.join(problems)}")
            else:
                guest = settings
            continue
        match = PARTNER_SCOPE.match(str(scope)) if enumeration is None else None
        key = _review_partner(definition, marker, partners)
        if match is None or key is None:
            notes.append(f"not exported: {label}; its scope is neither every guest nor one partner's group")
            continue
        partner_name = partners[key]["displayName"]
        suffix = f": {partner_name}"
        name = str(definition.get("displayName") or "")
        if not name.endswith(suffix):
            notes.append(f"not exported: {label}; a partner review is named '<partnerReview name>{suffix}'")
            continue
        settings, problems = _review_settings(normal, name.removesuffix(suffix), match.group(1))
        if not problems and partner_review is not None and settings != partner_review:
            problems.append("its settings differ from the other partner reviews' (partnerReview is one setting)")
        if problems or governed[key].get("reviewGroupId"):
            notes.append(f"DECIDE: not exported: {label}: {'; '.join(problems) or 'a second review of the partner'}")
            continue
        partner_review = settings
        governed[key]["reviewGroupId"] = match.group(1)
    return guest, partner_review


def _review_partner(definition: dict[str, Any], marker: re.Match[str] | None, partners: dict[str, Any]) -> str | None:
    if marker and marker.group(1).startswith("review/partner/"):
        key = marker.group(1).removeprefix("review/partner/")
        if key in partners:
            return key
    name = str(definition.get("displayName") or "")
    return next((k for k, p in partners.items() if name.endswith(f": {p['displayName']}")), None)


def _review_settings(
    normal: dict[str, Any], display_name: str, group_id: str | None
) -> tuple[dict[str, Any], list[str]]:
    """ReviewSettings from a definition normalised as the planner compares it, and what the format cannot hold."""
    problems: list[str] = []
    settings = normal.get("settings") or {}
    recurrence = settings.get("recurrence") or {}
    pattern, span = recurrence.get("pattern") or {}, recurrence.get("range") or {}
    if pattern.get("type") not in ("weekly", "absoluteMonthly") or not 1 <= int(pattern.get("interval") or 0) <= 12:
        problems.append(f"recurrence {pattern.get('type')} every {pattern.get('interval')}")
    if span.get("type") != "noEnd":
        problems.append(f"a recurrence that ends ({span.get('type')})")
    duration = int(settings.get("instanceDurationInDays") or 0)
    if not 1 <= duration <= 180:
        problems.append(f"instanceDurationInDays {duration}")
    actions = [APPLY_ACTIONS.get(str(a.get("@odata.type"))) for a in settings.get("applyActions") or []]
    if len(actions) != 1 or actions[0] is None:
        problems.append("applyActions other than one removeAccess or disableAndDelete")
    decision = settings.get("defaultDecision") or "None"
    if bool(settings.get("defaultDecisionEnabled")) != (decision != "None"):
        enabled = settings.get("defaultDecisionEnabled")
        problems.append(f"defaultDecision {decision} with defaultDecisionEnabled {enabled}")
    if not (settings.get("mailNotificationsEnabled") and settings.get("reminderNotificationsEnabled")):
        problems.append("mail or reminder notifications off (the format keeps them on)")
    reviewers = [_reviewer(r, group_id) for r in normal.get("reviewers") or []]
    fallback = [_reviewer(r, group_id) for r in normal.get("fallbackReviewers") or []]
    if None in reviewers or None in fallback:
        problems.append("reviewers the format cannot name")
    if not 1 <= len(display_name) <= 256 or len(str(normal.get("descriptionForReviewers") or "")) > 256:
        problems.append("a name or description longer than the format allows")
    exported = {
        "displayName": display_name,
        "descriptionForReviewers": normal.get("descriptionForReviewers") or "",
        "recurrence": pattern.get("type"),
        "interval": pattern.get("interval"),
        "startDate": str(span.get("startDate") or "")[:10],
        "instanceDurationDays": duration,
        "reviewers": reviewers,
        "fallbackReviewers": fallback,
        "autoApply": bool(settings.get("autoApplyDecisionsEnabled")),
        "defaultDecision": decision,
        "applyAction": actions[0] if len(actions) == 1 else None,
        "recommendations": bool(settings.get("recommendationsEnabled")),
        "justificationRequired": bool(settings.get("justificationRequiredOnApproval")),
    }
    return exported, problems


def _reviewer(scope: dict[str, Any], group_id: str | None) -> dict[str, str] | None:
    query = str(scope.get("query") or "")
    if match := USER_REVIEWER.match(query):
        return {"kind": "user", "id": match.group(1)}
    if match := GROUP_REVIEWER.match(query):
        return {"kind": "group", "id": match.group(1)}
    if query == ("./owners" if group_id is None else f"/groups/{group_id}/owners"):
        return {"kind": "groupOwners"}
    if query in ("./manager", "./sponsors") and scope.get("queryRoot") == "decisions":
        return {"kind": query.removeprefix("./")}
    return None
