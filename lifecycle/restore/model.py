"""The data of an undo: what a run did to a guest, what holds now, and the plan for that guest."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from lifecycle.models import AccessPackageTarget, AssignmentInfo, DirectoryUser, GuestRecord
from lifecycle.restore.ports import DeletedUser
from lifecycle.sweep.model import Action

KIND = "guest-restore"


class Step(enum.StrEnum):
    RESTORE = "restore"  # POST /directory/deletedItems/{id}/restore
    ENABLE = "enable"  # PATCH accountEnabled true
    REASSIGN = "reassign"  # re-request the partner's access package until the recorded end date


def restore_key(run_id: str, object_id: str) -> str:
    """The work-item key of one guest's undo: a second restore of the same run finds it done."""
    return f"restore:{run_id}:{object_id}"


@dataclass(frozen=True, slots=True)
class RunAction:
    """What the run did to one guest, as its work item recorded it once the action was carried out."""

    run_id: str
    object_id: str
    action: Action
    rule: str
    partner: str | None
    key: str  # the sweep's work-item key
    at: datetime | None  # when the worker recorded it done
    before: dict[str, Any] | None = None  # the guest as the worker saw it right before acting


@dataclass(slots=True)
class Seen:
    """What holds now, read right before planning (and again right before acting)."""

    user: DirectoryUser | None  # the live object; None when it is not in /users
    deleted: DeletedUser | None = None
    record: GuestRecord | None = None
    package: AccessPackageTarget | None = None  # the partner's package, when it has one
    assignment: AssignmentInfo | None = None  # the guest's live assignment of it
    assignment_known: bool = False  # False: not looked up (a deleted guest's assignments are read after restore)
    progress: dict[str, Any] = field(default_factory=dict)  # an earlier, unfinished attempt's work-item result
    finished: bool = False  # this guest's undo of this run is done already


@dataclass(frozen=True, slots=True)
class GuestRestore:
    """The plan for one guest: the steps, or why it is refused, and what cannot be undone."""

    undo: RunAction
    name: str
    mail: str | None
    steps: tuple[Step, ...] = ()
    end: datetime | None = None  # the recorded end date a re-requested assignment gets
    code: str = ""  # refused: why, machine-readable; "already-restored" when the work is done
    reason: str = ""
    notes: tuple[str, ...] = ()  # what is not undone, and why

    @property
    def object_id(self) -> str:
        return self.undo.object_id

    @property
    def key(self) -> str:
        return restore_key(self.undo.run_id, self.undo.object_id)

    @property
    def refused(self) -> bool:
        return bool(self.code) and self.code != ALREADY_RESTORED

    @property
    def acts(self) -> bool:
        return not self.code and bool(self.steps)

    def to_json(self) -> dict[str, Any]:
        return {
            "objectId": self.object_id,
            "displayName": self.name,
            "mail": self.mail,
            "partner": self.undo.partner,
            "undo": self.undo.action.value,
            "rule": self.undo.rule,
            "steps": [s.value for s in self.steps],
            "endDate": self.end.isoformat() if self.end else None,
            "status": "refused" if self.refused else (self.code or "planned"),
            "code": self.code or None,
            "reason": self.reason or None,
            "notes": list(self.notes),
            "key": self.key,
        }


ALREADY_RESTORED = "already-restored"
