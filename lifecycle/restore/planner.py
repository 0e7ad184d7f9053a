"""The plan for one guest of an undo: pure, from what the run recorded and what holds now.

A run's action is undone only while the guest is as the run left it. Whatever happened since, by a person or
by another of this product's paths, wins: a guest someone re-enabled, restored, renamed, re-addressed,
promoted, or that a ticket or a later run acted on, is refused with the reason, never overwritten.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from config.desired_state import DeletionBrake
from lifecycle.models import DirectoryUser, GuestRecord
from lifecycle.restore.model import ALREADY_RESTORED, GuestRestore, RunAction, Seen, Step
from lifecycle.runs import brake
from lifecycle.runs.model import BrakeState
from lifecycle.sweep.applied import snapshot
from lifecycle.sweep.model import Action

# Compared with the guest as the worker saw it right before acting. userPrincipalName is left out for a
# guest in deleted items: Entra may rename a deleted object's UPN so that the name can be reused.
LIVE_FIELDS = ("displayName", "mail", "userPrincipalName", "userType")
DELETED_FIELDS = ("displayName", "mail", "userType")
# The worker records a delete after Graph's call returns: a deletedDateTime this much later is another delete.
DELETE_SLACK = timedelta(minutes=10)
SWEEP_EVENTS = {Action.DISABLE: "disabled", Action.DELETE: "deleted"}
# Ledger events that change nothing about the guest: an undo, and a sponsor's attestation (evidence only).
NOT_CHANGES = frozenset({"restored", "attested"})


def plan_guest(undo: RunAction, seen: Seen, now: datetime) -> GuestRestore:
    """The steps that put the guest back as it was before ``undo``, or why it is left alone."""
    current = seen.user or (seen.deleted.user if seen.deleted is not None else None)
    name = _name(current, seen.record, undo)
    mail = (current.mail if current is not None else None) or (seen.record.email if seen.record else None)
    if seen.finished:
        return GuestRestore(undo, name, mail, code=ALREADY_RESTORED, reason="this run's undo of this guest is done")
    ours = {Step(s) for s in seen.progress.get("done") or ()}
    steps, refusal = _undo_delete(undo, seen, ours) if undo.action is Action.DELETE else _undo_disable(seen, ours)
    refusal = refusal or acted_on_since(undo, seen.record)
    if refusal is None:
        changed = changed_fields(undo.before, current, deleted=seen.user is None)
        if changed:
            refusal = ("changed-since-run", f"{', '.join(changed)} changed since the run")
    if refusal is not None:
        return GuestRestore(undo, name, mail, code=refusal[0], reason=refusal[1])
    reassign, end, notes = _reassignment(seen, now, ours)
    if undo.action is Action.DELETE:
        notes = (*notes, _still_disabled(undo, seen.record))
    return GuestRestore(undo, name, mail, (*steps, *reassign), end, notes=notes)


def _undo_delete(undo: RunAction, seen: Seen, ours: set[Step]) -> tuple[tuple[Step, ...], tuple[str, str] | None]:
    if seen.user is not None:
        if Step.RESTORE in ours:
            return (), None  # this undo's own earlier attempt restored it: go on with the rest
        return (), ("restored-since", "the guest is back in the directory: it was restored after the run")
    if seen.deleted is None:
        return (), (
            "purged",
            "no longer in deleted items: Entra deletes a user for good 30 days after its deletion "
            "(or someone purged it); it cannot be restored",
        )
    deleted = seen.deleted.deleted
    if undo.at is not None and deleted is not None and deleted > undo.at + DELETE_SLACK:
        return (), ("deleted-again", f"deleted again on {deleted.isoformat()}, after the run: not this run's delete")
    return (Step.RESTORE,), None


def _undo_disable(seen: Seen, ours: set[Step]) -> tuple[tuple[Step, ...], tuple[str, str] | None]:
    if seen.user is None:
        if seen.deleted is not None:
            return (), ("deleted-since", "deleted after the run: undo the run that deleted it first")
        return (), ("guest-not-found", "neither in the directory nor in deleted items")
    if seen.user.account_enabled is not False:
        if Step.ENABLE in ours:
            return (), None
        return (), ("re-enabled-since", "the guest was re-enabled after the run: nothing to undo")
    return (Step.ENABLE,), None


def acted_on_since(undo: RunAction, record: GuestRecord | None) -> tuple[str, str] | None:
    """A ledger event after the run's own, other than an undo: a ticket, a reset, or another run's action
    that no undo has taken back."""
    if record is None:
        return None
    history = record.history
    mine = [
        i for i, h in enumerate(history) if h.get("run") == undo.run_id and h.get("event") == SWEEP_EVENTS[undo.action]
    ]
    if not mine:
        return None  # the run's entry was trimmed from a long history: Graph's state still decides
    later = history[mine[-1] + 1 :]
    undone = {h.get("run") for h in later if h.get("event") == "restored"}
    for event in later:
        name = event.get("event")
        if name in NOT_CHANGES:
            continue
        if event.get("run") and name in SWEEP_EVENTS.values():
            if event["run"] in undone:
                continue
            return "acted-on-since", f"{name} by run {event['run']} on {event.get('at')}: undo that run first"
        origin = f"ticket {event['ticket']}" if event.get("ticket") else (event.get("origin") or "another path")
        return "changed-since-run", f"{name} on {event.get('at')} by {origin}, after the run"
    return None


def changed_fields(before: dict[str, Any] | None, current: DirectoryUser | None, *, deleted: bool) -> list[str]:
    """The properties that differ from the guest as the run saw it (none when the run kept no snapshot)."""
    if not before or current is None:
        return []
    now = snapshot(current)
    fields = DELETED_FIELDS if deleted else LIVE_FIELDS
    return [f for f in fields if f in before and _same(before[f]) != _same(now.get(f))]


def _same(value: Any) -> Any:
    return value.casefold() if isinstance(value, str) else value


def _reassignment(
    seen: Seen, now: datetime, ours: set[Step]
) -> tuple[tuple[Step, ...], datetime | None, tuple[str, ...]]:
    """Re-request the partner's package until the recorded end date, when the guest lost it and one exists."""
    if seen.package is None or Step.REASSIGN in ours:
        return (), None, ()
    if seen.assignment_known and seen.assignment is not None:
        return (), None, ()
    end = seen.record.end_date if seen.record is not None else None
    if end is None:
        return (), None, ("no end date is recorded for the guest: its access package is not re-requested",)
    if end <= now:
        return (
            (),
            None,
            (
                f"its recorded end date ({end.date().isoformat()}) has passed: the access package is not re-requested "
                "(extend the guest by ticket)",
            ),
        )
    return (Step.REASSIGN,), end, ()


def _still_disabled(undo: RunAction, record: GuestRecord | None) -> str:
    earlier = (
        next(
            (h for h in reversed(record.history) if h.get("event") == "disabled" and h.get("run") != undo.run_id),
            None,
        )
        if record is not None
        else None
    )
    by = f" by run {earlier['run']}" if earlier and earlier.get("run") else ""
    return f"restored as the run found it, disabled{by}: undo that run (or offboard) to decide its access"


def _name(current: DirectoryUser | None, record: GuestRecord | None, undo: RunAction) -> str:
    if current is not None and current.display_name:
        return current.display_name
    before = (undo.before or {}).get("displayName")
    return str(before) if before else (record.email if record is not None and record.email else undo.object_id)


def brake_state(plans: Sequence[GuestRestore], total: int, limits: DeletionBrake) -> BrakeState:
    """The sweep's brake over the guests this undo would write to, against the run's guest count."""
    affected = sum(1 for p in plans if p.acts)
    return brake.evaluate(affected, max(total, len(plans)), limits)
