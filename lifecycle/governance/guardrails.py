"""Desired states the governance job refuses to apply, and ones it applies with a warning."""

from __future__ import annotations

from config.desired_state import DesiredState, ReviewSettings
from lifecycle.governance.ports import REVIEWS
from lifecycle.plans import Change, Plan, Refusal


def refusals(state: DesiredState) -> list[Refusal]:
    found: list[Refusal] = []
    governance = state.governance
    for name, review in (("guestReview", governance.guest_review), ("partnerReview", governance.partner_review)):
        if review is not None and _removes_everyone_unreviewed(review):
            found.append(
                Refusal(
                    "review-without-reviewers",
                    f"governance.{name} auto-applies a default Deny but names no reviewers or fallback reviewers: "
                    "every guest in scope would lose access without anyone having looked",
                )
            )
    for key, settings in governance.partners.items():
        partner = state.partners[key]
        if settings.expiration.days and settings.expiration.days > partner.max_engagement_days:
            found.append(
                Refusal(
                    "policy-outlives-engagement",
                    f"governance.partners.{key}.expiration is {settings.expiration.days} days, longer than the "
                    f"partner's maxEngagementDays ({partner.max_engagement_days})",
                )
            )
        if settings.review_group_id and governance.partner_review is None:
            found.append(
                Refusal(
                    "partner-review-without-settings",
                    f"governance.partners.{key}.reviewGroupId is set but governance.partnerReview is missing",
                )
            )
    return found


def warnings(state: DesiredState) -> list[str]:
    found = []
    catalog = state.governance.catalog.display_name
    for key, settings in state.governance.partners.items():
        package = state.partners[key].access_package
        if settings.group_memberships and (package is None or package.catalog != catalog):
            found.append(
                f"governance.partners.{key}.groupMemberships is ignored: the partner has no access package in "
                f"the {catalog!r} catalog to grant them"
            )
        if settings.request_policy and settings.approval_by_sponsor and not settings.fallback_approvers:
            found.append(
                f"governance.partners.{key}: sponsor approval has no fallbackApprovers; requests from guests "
                "without a sponsor wait until they are denied automatically"
            )
    return found


def _removes_everyone_unreviewed(review: ReviewSettings) -> bool:
    return (
        review.auto_apply and review.default_decision == "Deny" and not (review.reviewers or review.fallback_reviewers)
    )


def recreate_warnings(plan: Plan, approved: frozenset[str]) -> list[str]:
    """The recreate brake, said up front: which review enforce would hold, and how an operator releases it."""
    found = []
    for action in plan.actions:
        if action.resource == REVIEWS and action.change is Change.RECREATE:
            if action.key in approved:
                found.append(f"{action.key}: recreate approved by an operator for this run ({action.reason})")
            else:
                found.append(
                    f"{action.key}: enforce holds this recreate until an operator approves it "
                    f"(apply governance --approve-recreate {action.key}): {action.reason}"
                )
    return found
