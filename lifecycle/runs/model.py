"""The braked daily run the sweep and the redemption reset share: its status, its brake, its header row."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from lifecycle.plans import Mode

# A sponsor notice touches nobody: it does not count against the brake.
NOTIFY_SPONSOR = "notify-sponsor"
SPONSOR_REASSIGN = "sponsor-reassign"
# Planned actions that write to no guest in Graph (an event, a ledger mark): the brake does not count them.
NO_GUEST_WRITE = (NOTIFY_SPONSOR, SPONSOR_REASSIGN, "sponsor-gone-ended")
# The tenant holds no Microsoft Entra ID P1/P2 licence, so Graph refuses signInActivity: the run plans every
# other rule and leaves the inactivity rule out, saying so.
SIGN_IN_ACTIVITY_UNAVAILABLE = "sign-in-activity-unavailable"
SIGN_IN_ACTIVITY_UNAVAILABLE_MESSAGE = (
    "the inactivity rule did not run: Graph refused signInActivity because the tenant holds no Microsoft Entra ID "
    "P1 or P2 licence (Authentication_RequestFromNonPremiumTenantOrB2CTenant); the other rules ran. License the "
    "tenant to have inactive guests found"
)

# The reason of a dispatched run whose worker met a missing permission: the rest of its work waits, queued, for
# the same run id to be dispatched again once the permission is granted.
STOPPED = "stopped"


class RunStatus(enum.StrEnum):
    PLANNING = "planning"
    PLANNED = "planned"  # plan mode: stops here
    BRAKED = "braked"  # enforce mode, brake tripped: waits for an operator's approval
    DISPATCHING = "dispatching"
    DISPATCHED = "dispatched"
    # An operator's stop of a dispatched run: its workers write nothing until it is resumed (lifecycle.runs.halt).
    HALTED = "halted"
    FAILED = "failed"


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
class HaltState:
    """Who stopped a dispatched run, when and why, and who resumed it last (kept after the resume, for the record)."""

    halted_by: str | None = None
    halted_at: datetime | None = None
    reason: str = ""
    resumed_by: str | None = None
    resumed_at: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "haltedBy": self.halted_by,
            "haltedAt": self.halted_at.isoformat() if self.halted_at else None,
            "reason": self.reason,
            "resumedBy": self.resumed_by,
            "resumedAt": self.resumed_at.isoformat() if self.resumed_at else None,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> HaltState:
        halted, resumed = data.get("haltedAt"), data.get("resumedAt")
        return cls(
            halted_by=data.get("haltedBy"),
            halted_at=datetime.fromisoformat(halted) if halted else None,
            reason=str(data.get("reason", "")),
            resumed_by=data.get("resumedBy"),
            resumed_at=datetime.fromisoformat(resumed) if resumed else None,
        )


@dataclass(slots=True)
class DailyRun:
    """A braked daily run's header row (the sweep's and the redemption reset's): its status, the counts per
    rule and action (``"disable/inactive"``, ``"reset/google->entra"``), the brake, where planning stopped."""

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
    # Sponsor coverage found while planning (the sweep): counts per finding and a few guests each.
    sponsor_coverage: dict[str, Any] = field(default_factory=dict)
    # Set once an operator halted the run (lifecycle.runs.halt); None for a run never halted.
    halt: HaltState | None = None
    etag: str | None = None

    @property
    def sign_in_activity_known(self) -> bool:
        """Whether the run read signInActivity (False: planned without the inactivity rule)."""
        return SIGN_IN_ACTIVITY_UNAVAILABLE not in self.warnings

    @property
    def affected(self) -> int:
        """Guests the run would act on: every planned action except those that touch nobody (a sponsor notice, a
        sponsor-reassign event, the end of a sponsor-gone period)."""
        return sum(self.actions.values()) - sum(self.count_of(action) for action in NO_GUEST_WRITE)

    def count_of(self, action: str) -> int:
        return sum(n for name, n in self.actions.items() if name.split("/")[0] == str(action))

    def summary(self) -> dict[str, Any]:
        data = {
            "runId": self.run_id,
            "mode": self.mode.value,
            "status": self.status.value,
            "started": self.started.isoformat(),
            "planned": self.planned.isoformat() if self.planned else None,
            "dispatchedAt": self.dispatched_at.isoformat() if self.dispatched_at else None,
            "totalGuests": self.total_guests,
            "disable": self.count_of("disable"),
            "delete": self.count_of("delete"),
            "notifySponsor": self.count_of(NOTIFY_SPONSOR),
            "sponsorReassign": self.count_of(SPONSOR_REASSIGN),
            "actions": dict(sorted(self.actions.items())),
            "skipped": dict(sorted(self.skipped.items())),
            "dispatched": self.dispatched,
            "brake": self.brake.to_json(),
            "reason": self.reason,
            "warnings": [{"code": code, "message": message} for code, message in sorted(self.warnings.items())],
        }
        if self.halt is not None:
            data["halt"] = self.halt.to_json()
        if self.sponsor_coverage:
            data["sponsorCoverage"] = {k: v for k, v in self.sponsor_coverage.items() if k != "pending"}
        return data
