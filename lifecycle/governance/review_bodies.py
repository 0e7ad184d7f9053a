"""The access review definitions the desired state asks for, as the bodies Graph creates them from."""

from __future__ import annotations

from typing import Any

from config.desired_state import Reviewer, ReviewSettings
from lifecycle.governance.ports import REVIEWS
from lifecycle.governance.resource import KEY_MARKER, DesiredResource

GUEST_QUERY = "./members/microsoft.graph.user/?$count=true&$filter=(userType eq 'Guest')"
ALL_GROUPS_QUERY = "/groups?$filter=(groupTypes/any(c:c+eq+'Unified'))&$count=true"


def reviewer_scope(reviewer: Reviewer, group_id: str | None = None) -> dict[str, Any]:
    """``group_id``: the group a single-group review reviews. Its owners are /groups/{id}/owners; ./owners is
    documented for reviews of all groups only (accessreviews-reviewers-concept, example 4)."""
    query = {
        "user": f"/users/{reviewer.id}",
        "group": f"/groups/{reviewer.id}/transitiveMembers",
        "groupOwners": f"/groups/{group_id}/owners" if group_id else "./owners",
        "manager": "./manager",
        # Each guest's sponsors. Like ./manager, a query relative to each decision, so it carries queryRoot
        # "decisions" ("Because ./manager is a relative query, specify the queryRoot property with the value
        # decisions": https://learn.microsoft.com/graph/accessreviews-reviewers-concept).
        "sponsors": "./sponsors",
    }[reviewer.kind]
    scope: dict[str, Any] = {"query": query, "queryType": "MicrosoftGraph"}
    if reviewer.kind in ("manager", "sponsors"):
        scope["queryRoot"] = "decisions"
    return scope


def review_resource(
    key: str,
    review: ReviewSettings,
    name: str | None,
    query: str,
    enumeration: str | None = None,
    group_id: str | None = None,
) -> DesiredResource:
    apply_action = (
        "#microsoft.graph.disableAndDeleteUserApplyAction"
        if review.apply_action == "disableAndDelete"
        else "#microsoft.graph.removeAccessApplyAction"
    )
    body: dict[str, Any] = {
        "displayName": name or review.display_name,
        "descriptionForAdmins": f"Guest lifecycle governance. {KEY_MARKER.format(key)}",
        "descriptionForReviewers": review.description_for_reviewers,
        "scope": {
            "@odata.type": "#microsoft.graph.accessReviewQueryScope",
            "query": query,
            "queryType": "MicrosoftGraph",
        },
        "instanceEnumerationScope": (
            {
                "@odata.type": "#microsoft.graph.accessReviewQueryScope",
                "query": enumeration,
                "queryType": "MicrosoftGraph",
            }
            if enumeration
            else None
        ),
        "reviewers": [reviewer_scope(r, group_id) for r in review.reviewers],
        "fallbackReviewers": [reviewer_scope(r, group_id) for r in review.fallback_reviewers],
        "settings": {
            "mailNotificationsEnabled": True,
            "reminderNotificationsEnabled": True,
            "justificationRequiredOnApproval": review.justification_required,
            "defaultDecisionEnabled": review.default_decision != "None",
            "defaultDecision": review.default_decision,
            "instanceDurationInDays": review.instance_duration_days,
            "autoApplyDecisionsEnabled": review.auto_apply,
            "recommendationsEnabled": review.recommendations,
            "applyActions": [{"@odata.type": apply_action}],
            "recurrence": {
                "pattern": {"type": review.recurrence, "interval": review.interval},
                "range": {"type": "noEnd", "startDate": review.start_date.isoformat()},
            },
        },
    }
    managed = ("displayName", "descriptionForReviewers", "reviewers", "fallbackReviewers", "settings")
    return DesiredResource(
        REVIEWS,
        key,
        body,
        managed,
        fixed=("scope", "instanceEnumerationScope"),
        match={"marker": KEY_MARKER.format(key)},
    )
