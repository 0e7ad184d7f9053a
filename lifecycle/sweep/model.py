"""The sweep's data: a run, its planned actions, and the reasons a guest is left alone."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


class Action(enum.StrEnum):
    NOTIFY_SPONSOR = "notify-sponsor"
    DISABLE = "disable"
    DELETE = "delete"


class Rule(enum.StrEnum):
    PAST_END_DATE = "past-end-date"
    INACTIVE = "inactive"
    INVITATION_NOT_REDEEMED = "invitation-not-redeemed"
    DISABLED_PAST_GRACE = "disabled-past-grace"


class Skip(enum.StrEnum):
    """Why a guest that is listed is never touched, whatever its data says."""

    NOT_A_GUEST = "not-a-guest"
    EXCLUDED_OBJECT = "excluded-object"
    PROTECTED_GROUP = "protected-group"
    PARTNER_OPT_OUT = "partner-opt-out"
    DISABLED_ELSEWHERE = "disabled-not-by-this-product"
    IN_GRACE = "disabled-in-grace"
    # Due, and its sponsor was told, but the notice is younger than the lead time: disabled on a later run.
    AWAITING_NOTICE_LEAD = "awaiting-sponsor-notice-lead"


class Mode(enum.StrEnum):
    PLAN = "plan"
    ENFORCE = "enforce"


class RunStatus(enum.StrEnum):
    PLANNING = "planning"
    PLANNED = "planned"  # plan mode: stops here
    BRAKED = "braked"  # enforce mode, brake tripped: waits for an operator's approval
    DISPATCHING = "dispatching"
    DISPATCHED = "dispatched"
    FAILED = "failed"


# The tenant holds no Microsoft Entra ID P1/P2 licence, so Graph refuses signInActivity: the run plans every
# other rule and leaves the inactivity rule out, saying so.
SIGN_IN_ACTIVITY_UNAVAILABLE = "sign-in-activity-unavailable"
SIGN_IN_ACTIVITY_UNAVAILABLE_MESSAGE = (
    "the inactivity rule did not run: Graph refused signInActivity because the tenant holds no Microsoft Entra ID "
    "P1 or P2 licence (Authentication_RequestFromNonPremiumTenantOrB2CTenant); the other rules ran. License the "
    "tenant to have inactive guests found"
)


def notice_key(object_id: str, due: datetime) -> str:
    """The work-item key of a sponsor notice: one per guest and due date, whichever run planned it."""
    return f"sweep-notice:{object_id}:{due.astimezone(UTC):%Y%m%dT%H%M%SZ}"


@dataclass(frozen=True, slots=True)
class PlannedAction:
    """One decision of a run: what to do to which guest, by which rule, on what evidence.

    A sponsor notice also carries the instant the guest becomes due (``due``) and its sponsors.
    """

    run_id: str
    object_id: str
    action: Action
    rule: Rule
    partner: str | None = None
    evidence: dict[str, Any] = field(default_factory=dict)
    due: datetime | None = None
    sponsor_ids: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        """The work-item key: a replayed fan-out of the same run deduplicates on it.

        A notice is keyed by guest and due date instead of by run, so a later run that plans the same
        notice again (its worker had not finished yet) never sends a second event.
        """
        if self.action is Action.NOTIFY_SPONSOR and self.due is not None:
            return notice_key(self.object_id, self.due)
        return f"sweep:{self.run_id}:{self.object_id}:{self.action.value}"

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "runId": self.run_id,
            "objectId": self.object_id,
            "action": self.action.value,
            "rule": self.rule.value,
            "partner": self.partner,
            "evidence": self.evidence,
        }
        if self.due is not None:
            data["dueDate"] = self.due.astimezone(UTC).isoformat()
        if self.sponsor_ids:
            data["sponsorIds"] = list(self.sponsor_ids)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PlannedAction:
        due = data.get("dueDate")
        action = Action(data["action"])
        if action is Action.NOTIFY_SPONSOR and not due:
            raise ValueError("a notify-sponsor action needs its dueDate")
        return cls(
            run_id=str(data["runId"]),
            object_id=str(data["objectId"]),
            action=action,
            rule=Rule(data["rule"]),
            partner=data.get("partner"),
            evidence=dict(data.get("evidence") or {}),
            due=_aware(datetime.fromisoformat(due)) if due else None,
            sponsor_ids=tuple(str(s) for s in data.get("sponsorIds") or ()),
        )


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class NoticeRecord:
    """The last sponsor notice sent for a guest: for which due date, and when it went out."""

    object_id: str
    due: datetime
    notified: datetime
    run_id: str = ""
    key: str = ""


@dataclass(slots=True)
class BrakeState:
    tripped: bool = False
    reason: str = ""
    affected: int = 0
    total: int = 0
    max_count: int = 0
    max_percent: float = 0.0
    approved_by: str | None = None
    approved_at: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "tripped": self.tripped,
            "reason": self.reason,
            "affected": self.affected,
            "total": self.total,
            "maxCount": self.max_count,
            "maxPercent": self.max_percent,
            "approvedBy": self.approved_by,
            "approvedAt": self.approved_at.isoformat() if self.approved_at else None,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BrakeState:
        approved = data.get("approvedAt")
        return cls(
            tripped=bool(data.get("tripped", False)),
            reason=str(data.get("reason", "")),
            affected=int(data.get("affected", 0)),
            total=int(data.get("total", 0)),
            max_count=int(data.get("maxCount", 0)),
            max_percent=float(data.get("maxPercent", 0.0)),
            approved_by=data.get("approvedBy"),
            approved_at=datetime.fromisoformat(approved) if approved else None,
        )


@dataclass(slots=True)
class SweepRun:
    """A run's header row: its status, the counts per rule and action, and the brake."""

    run_id: str
    mode: Mode
    status: RunStatus
    started: datetime
    updated: datetime | None = None
    planned: datetime | None = None
    dispatched_at: datetime | None = None
    total_guests: int = 0
    actions: dict[str, int] = field(default_factory=dict)  # "disable/inactive" -> count
    skipped: dict[str, int] = field(default_factory=dict)  # Skip value -> count
    dispatched: int = 0
    brake: BrakeState = field(default_factory=BrakeState)
    reason: str = ""
    # Where planning stopped: the next page's link (None: from the start) and the pages already planned.
    cursor: str | None = None
    pages: int = 0
    # What the run could not do and why, by code (e.g. SIGN_IN_ACTIVITY_UNAVAILABLE): shown with its summary.
    warnings: dict[str, str] = field(default_factory=dict)
    etag: str | None = None

    @property
    def sign_in_activity_known(self) -> bool:
        """Whether the run read signInActivity (False: planned without the inactivity rule)."""
        return SIGN_IN_ACTIVITY_UNAVAILABLE not in self.warnings

    @property
    def affected(self) -> int:
        """Guests the run would act on: every planned action except a sponsor notice, which touches nobody."""
        return sum(self.actions.values()) - self.count_of(Action.NOTIFY_SPONSOR)

    def count_of(self, action: Action) -> int:
        return sum(n for name, n in self.actions.items() if name.split("/")[0] == action.value)

    def summary(self) -> dict[str, Any]:
        return {
            "runId": self.run_id,
            "mode": self.mode.value,
            "status": self.status.value,
            "started": self.started.isoformat(),
            "planned": self.planned.isoformat() if self.planned else None,
            "dispatchedAt": self.dispatched_at.isoformat() if self.dispatched_at else None,
            "totalGuests": self.total_guests,
            "disable": self.count_of(Action.DISABLE),
            "delete": self.count_of(Action.DELETE),
            "notifySponsor": self.count_of(Action.NOTIFY_SPONSOR),
            "actions": dict(sorted(self.actions.items())),
            "skipped": dict(sorted(self.skipped.items())),
            "dispatched": self.dispatched,
            "brake": self.brake.to_json(),
            "reason": self.reason,
            "warnings": [{"code": code, "message": message} for code, message in sorted(self.warnings.items())],
        }
