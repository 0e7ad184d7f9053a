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
    # Every sponsor of the guest is gone: propose a replacement (an event) and start the sponsor-gone period.
    SPONSOR_REASSIGN = "sponsor-reassign"
    # A sponsor answers for the guest again, or the rule was switched off: the sponsor-gone period it was in ends
    # (the ledger mark is cleared; no Graph write), so a later loss starts a new period with a new event.
    SPONSOR_GONE_ENDED = "sponsor-gone-ended"


class Rule(enum.StrEnum):
    PAST_END_DATE = "past-end-date"
    INACTIVE = "inactive"
    INVITATION_NOT_REDEEMED = "invitation-not-redeemed"
    DISABLED_PAST_GRACE = "disabled-past-grace"
    # No sponsor attested the guest within the partner's attestationDays (attest tickets).
    ATTESTATION_OVERDUE = "attestation-overdue"
    # Every sponsor is gone (deleted, disabled, no longer a member) and nobody acted within sponsorGoneDays.
    SPONSOR_GONE = "sponsor-gone"


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
    # Restored by an undo of a run (``restore``) and still inside its cool-off: judged afresh once it ends.
    RESTORED_COOL_OFF = "restored-cool-off"


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
