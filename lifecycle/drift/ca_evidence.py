"""What a report-only guest Conditional Access policy would have done, from the sign-in logs.

Entra evaluates a policy in ``enabledForReportingButNotEnforced`` at every sign-in and records the result per
policy: ``reportOnlyFailure`` (it would have blocked the sign-in), ``reportOnlyInterrupted`` (it would have
asked for more, such as MFA), ``reportOnlySuccess`` and ``reportOnlyNotApplied``
(appliedconditionalaccesspolicy.md). Results Graph did not spell out (``unknownFutureValue``) are counted
apart, and logs that cannot be read make the evidence say so instead of counting nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

import structlog

from config.desired_state import GuestConditionalAccess
from lifecycle.errors import GraphError

log = structlog.get_logger(__name__)

REPORT_ONLY = "enabledForReportingButNotEnforced"
WOULD_BLOCK, WOULD_PROMPT = "reportOnlyFailure", "reportOnlyInterrupted"


class SignInEvidence(Protocol):
    async def sign_ins_for_policy(self, policy_id: str, since: datetime) -> list[dict[str, Any]]:
        """Sign-ins since ``since`` that evaluated the policy, with the ``reportOnly*`` results spelled out."""
        ...


@dataclass(frozen=True, slots=True)
class Evidence:
    """What a report-only policy would have done, from the sign-in logs; ``unreadable`` says why it is unknown."""

    days: int
    blocked_sign_ins: int = 0
    blocked_users: int = 0
    prompted_sign_ins: int = 0
    unknown_results: int = 0
    unreadable: str | None = None

    def sentence(self) -> str:
        if self.unreadable:
            return f"cannot tell what it would have blocked: {self.unreadable}"
        text = (
            f"in the last {self.days} days it would have blocked {self.blocked_sign_ins} sign-in(s) by "
            f"{self.blocked_users} guest(s) and asked for more in {self.prompted_sign_ins}"
        )
        if self.unknown_results:
            text += f"; {self.unknown_results} result(s) were not spelled out by Graph"
        return text

    def as_dict(self) -> dict[str, Any]:
        return {
            "days": self.days,
            "blockedSignIns": self.blocked_sign_ins,
            "blockedUsers": self.blocked_users,
            "promptedSignIns": self.prompted_sign_ins,
            "unknownResults": self.unknown_results,
            "unreadable": self.unreadable,
        }


def evidence_from(sign_ins: list[dict[str, Any]], policy_id: str, days: int) -> Evidence:
    blocked: list[str] = []
    prompted = unknown = 0
    for sign_in in sign_ins:
        for applied in sign_in.get("appliedConditionalAccessPolicies") or []:
            if applied.get("id") != policy_id:
                continue
            result = applied.get("result")
            if result == WOULD_BLOCK:
                blocked.append(str(sign_in.get("userId")))
            elif result == WOULD_PROMPT:
                prompted += 1
            elif result in {"unknownFutureValue", "unknown", None}:
                unknown += 1
    return Evidence(days, len(blocked), len(set(blocked)), prompted, unknown)


@dataclass
class CaSnapshot:
    policies: list[dict[str, Any]] | None  # None when Conditional Access could not be read
    evidence: dict[str, Evidence] = field(default_factory=dict)  # by policy id, report-only policies only


async def read_evidence(
    wanted: GuestConditionalAccess,
    policies: list[dict[str, Any]] | None,
    sign_ins: SignInEvidence | None,
    now: datetime,
) -> CaSnapshot:
    snapshot = CaSnapshot(policies)
    names = {p.display_name for p in (wanted.require_mfa, wanted.block_legacy_authentication) if p}
    since = now - timedelta(days=wanted.evidence_days)
    for policy in policies or []:
        if policy.get("displayName") not in names or policy.get("state") != REPORT_ONLY:
            continue
        policy_id = str(policy.get("id"))
        if sign_ins is None:
            snapshot.evidence[policy_id] = Evidence(wanted.evidence_days, unreadable="no sign-in log reader")
            continue
        try:
            found = await sign_ins.sign_ins_for_policy(policy_id, since)
        except GraphError as exc:
            reason = f"the sign-in logs could not be read ({exc.status} {exc.code or type(exc).__name__})"
            log.warning("drift.conditional-access.evidence-unreadable", policy=policy_id, **exc.describe())
            snapshot.evidence[policy_id] = Evidence(wanted.evidence_days, unreadable=reason)
            continue
        snapshot.evidence[policy_id] = evidence_from(found, policy_id, wanted.evidence_days)
    return snapshot
