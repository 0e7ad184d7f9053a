"""The ``guestLifecyclePolicies`` section: Microsoft's own guest lifecycle policies (Lifecycle Workflows) as code.

Opt-in. Each policy is keyed by a slug (the key ``--approve-enable lifecycle-<key>`` names) and found in the
tenant by its display name. The shapes mirror Graph's v1.0 ``guestLifecyclePolicy``
(https://learn.microsoft.com/graph/api/resources/identitygovernance-guestlifecyclepolicy?view=graph-rest-1.0);
the limits are Microsoft's: at most 10 policies per subject type per tenant
(https://learn.microsoft.com/graph/api/resources/identitygovernance-lifecyclepolicy?view=graph-rest-1.0), at most
10 rules per policy and a rule grace period of 0 to 30 days
(https://learn.microsoft.com/graph/api/resources/identitygovernance-lifecyclepolicyrule?view=graph-rest-1.0), at
most 10 excluded groups per policy
(https://learn.microsoft.com/graph/api/resources/identitygovernance-allexcludinggroupssubjectset?view=graph-rest-1.0).
A policy's ``priority`` is its place in the tenant's priority configuration, where only the highest-priority matching
policy binds a guest
(https://learn.microsoft.com/graph/api/resources/identitygovernance-lifecyclepolicypriorityconfiguration?view=graph-rest-1.0).
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

from config.keys import bad_keys

MAX_POLICIES = 10
MAX_RULES = 10
MAX_EXCLUDED_GROUPS = 10
# Microsoft's published price of ID Governance for business guests: $0.75 per monthly governed identity
# (https://techcommunity.microsoft.com/blog/microsoft-entra-blog/microsoft-entra-id-governance-licensing-for-business-guests/3575579).
# The Learn page on guest licensing defers to the Azure pricing page; override it with the price on your agreement.
DEFAULT_PRICE_PER_GOVERNED_GUEST = 0.75

RuleType = Literal[
    "inactivity", "sponsorPresence", "periodicAttestation", "invitationRedemption", "accessPackageAssignmentRequired"
]
# The rules that take a number of days, and what Graph calls it.
DAYS_PROPERTY = {
    "inactivity": "lastActivityThresholdInDays",
    "periodicAttestation": "attestationIntervalInDays",
    "invitationRedemption": "invitationRedemptionThresholdInDays",
}
_GUID = re.compile(r"^[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)


class NativeRule(_Model):
    """One compliance rule; a guest violating any enabled rule is noncompliant."""

    type: RuleType
    # inactivity: days without activity; periodicAttestation: days between attestations; invitationRedemption: days
    # to redeem (1 to 30, https://learn.microsoft.com/graph/api/resources/identitygovernance-invitationredemptionrule).
    days: int | None = Field(None, ge=1)
    minimum_sponsors: int | None = Field(None, ge=1)  # sponsorPresence
    # The rule's own grace period; absent: the policy's applies.
    grace_period_days: int | None = Field(None, ge=0, le=30)
    enabled: bool = True

    @model_validator(mode="after")
    def _parameters_fit_the_type(self) -> NativeRule:
        takes_days = self.type in DAYS_PROPERTY
        if takes_days != (self.days is not None):
            raise ValueError(f"a {self.type} rule {'needs' if takes_days else 'takes no'} 'days'")
        if (self.type == "sponsorPresence") != (self.minimum_sponsors is not None):
            raise ValueError(f"'minimumSponsors' is for a sponsorPresence rule, and it needs one ({self.type})")
        if self.type == "invitationRedemption" and self.days is not None and self.days > 30:
            raise ValueError("an invitationRedemption rule takes 1 to 30 days")
        return self


class NativeAction(_Model):
    """What happens to a noncompliant guest once the grace period is over."""

    kind: Literal["disableOnly", "deleteOnly", "disableThenDelete"]
    delete_after_days: int | None = Field(None, ge=1)  # disableThenDelete: days between the disable and the delete

    @model_validator(mode="after")
    def _delete_days_only_for_two_steps(self) -> NativeAction:
        if (self.kind == "disableThenDelete") != (self.delete_after_days is not None):
            raise ValueError("deleteAfterDays is required for disableThenDelete, and only for it")
        return self


class NativeNotifications(_Model):
    offsets_days: tuple[int, ...] = ()  # days after noncompliance at which notices go out
    fallback_recipients: tuple[str, ...] = ()  # addresses used when no targeted recipient has one

    @field_validator("fallback_recipients")
    @classmethod
    def _addresses(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [v for v in value if not _EMAIL.match(v)]
        if bad:
            raise ValueError(f"not email addresses: {', '.join(bad)}")
        return tuple(dict.fromkeys(v.lower() for v in value))

    @field_validator("offsets_days")
    @classmethod
    def _offsets(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if any(v < 0 for v in value):
            raise ValueError("notification offsets are days after noncompliance (0 or more)")
        return tuple(sorted(set(value), reverse=True))


class NativePolicy(_Model):
    """One guest lifecycle policy. Created disabled; ``enabled`` is the goal, reached only by an operator's approval
    when the shadow evaluation trips the deletion brake, and never while a guest would be judged by both engines."""

    display_name: str = Field(min_length=1, max_length=256)
    description: str | None = Field(None, max_length=1024)
    enabled: bool = False
    # Who judges the guests in this policy's scope: native (the product's sweep stands down for them) or product
    # (the policy must leave them out). Undecided: the plan refuses to switch the policy on while they overlap.
    owner: Literal["native", "product"] | None = None
    # Group object ids or display names (resolved at plan time); the protected group is added to them.
    excluded_groups: tuple[str, ...] = Field((), max_length=MAX_EXCLUDED_GROUPS)
    rules: tuple[NativeRule, ...] = Field(min_length=1, max_length=MAX_RULES)
    action: NativeAction
    grace_period_days: int | None = Field(None, ge=0)
    notifications: NativeNotifications = NativeNotifications()
    # 1 binds first. Absent: the policy keeps its place below the policies that have one.
    priority: int | None = Field(None, ge=1, le=MAX_POLICIES)

    @field_validator("excluded_groups")
    @classmethod
    def _groups(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        cleaned = [v.strip().lower() if _GUID.match(v.strip()) else v.strip() for v in value]
        if any(not v for v in cleaned):
            raise ValueError("an excluded group is an object id or a display name, not empty")
        return tuple(dict.fromkeys(cleaned))

    @model_validator(mode="after")
    def _guardrails(self) -> NativePolicy:
        types = [r.type for r in self.rules]
        twice = sorted({t for t in types if types.count(t) > 1})
        if twice:
            raise ValueError(f"each rule type once per policy: {', '.join(twice)} appears more than once")
        if self.action.kind == "deleteOnly" and not self.grace_period_days:
            raise ValueError("a deleteOnly action needs gracePeriodDays of 1 or more: a delete is never immediate")
        return self

    @property
    def is_group_id(self) -> dict[str, bool]:
        return {g: bool(_GUID.match(g)) for g in self.excluded_groups}


class GuestLifecyclePolicies(_Model):
    """Opt-in: Microsoft's guest lifecycle policies as desired state (LifecyclePolicies-Guests.ReadWrite.All)."""

    price_per_governed_guest: float = Field(DEFAULT_PRICE_PER_GOVERNED_GUEST, ge=0)
    currency: str = Field("USD", pattern=r"^[A-Z]{3}$")
    policies: dict[str, NativePolicy] = Field(min_length=1, max_length=MAX_POLICIES)

    @field_validator("policies")
    @classmethod
    def _keys_and_names(cls, value: dict[str, NativePolicy]) -> dict[str, NativePolicy]:
        bad = bad_keys(value)
        if bad:
            raise ValueError(f"policy keys must be lowercase slugs: {', '.join(bad)}")
        names = [p.display_name for p in value.values()]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"policies are found by display name, so each is unique: {', '.join(twice)}")
        priorities = [p.priority for p in value.values() if p.priority is not None]
        if len(set(priorities)) != len(priorities):
            raise ValueError("each priority is given to one policy")
        return value
