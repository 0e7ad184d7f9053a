"""The worker's second look: what it reads about a guest right before acting, and whether the planned action
still holds at that instant (or an interrupted attempt only needs finishing)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from lifecycle.models import (
    DirectoryUser,
    GuestRecord,
)
from lifecycle.services import Services
from lifecycle.sweep.model import Action, NoticeRecord, PlannedAction, Rule, Skip
from lifecycle.sweep.ports import SponsoredGuestReads, SweepPorts
from lifecycle.sweep.rules import Decision, SweepPolicy, decide


@dataclass(slots=True)
class Observed:
    """What the worker reads right before acting: the guest, its ledger row and its last sponsor notice."""

    user: DirectoryUser | None
    record: GuestRecord | None
    notice: NoticeRecord | None = None
    assignment_end: datetime | None = None


@dataclass(frozen=True, slots=True)
class Step:
    """What to do with a planned action given what was observed: act, drop, or finish an earlier attempt."""

    kind: str  # "act", "drop", "finish"
    verdict: Decision | None = None
    code: str = ""
    why: str = ""


async def observe(planned: PlannedAction, services: Services, ports: SweepPorts, policy: SweepPolicy) -> Observed:
    """The guest, its ledger row, and where they matter its last notice and access package end, side by side."""
    guests = ports.guest_reads
    # The sponsor-gone rule is decided again on the guest's live sponsors; a read without them never confirms it.
    rests_on_sponsors = Rule.SPONSOR_GONE.value in (planned.rule.value, planned.evidence.get("stillEligibleBy"))
    sponsored = rests_on_sponsors and isinstance(guests, SponsoredGuestReads)
    reads: dict[str, Awaitable[Any]] = {
        "user": guests.get_guest_with_sponsors(planned.object_id) if sponsored else guests.get_user(planned.object_id),
        "record": services.guests.get(planned.object_id),
    }
    if policy.notices_anywhere:
        reads["notice"] = ports.runs.notice(planned.object_id)
    expiries = ports.expiries
    if expiries is not None and rests_on_end_date(planned):
        reads["assignment_end"] = expiries.end_date_of(planned.object_id)
    found = dict(zip(reads, await asyncio.gather(*reads.values()), strict=True))
    return Observed(**found)


def rests_on_end_date(planned: PlannedAction) -> bool:
    """Whether the plan used an end date: only then can an access package assignment change the answer
    (an end date only adds a rule; the due date of a notice is the end date only when that rule names it)."""
    return Rule.PAST_END_DATE.value in (planned.rule.value, planned.evidence.get("stillEligibleBy"))


def next_step(planned: PlannedAction, seen: Observed, stage: str | None, policy: SweepPolicy, now: datetime) -> Step:
    """Decide again, at ``now``, whether the planned action still holds; resume an interrupted attempt."""
    user = seen.user
    if planned.action is Action.DELETE and user is None and stage == "deleting":
        return Step("finish")
    if user is None:
        return Step("drop", code="guest-not-found", why="the guest no longer exists")
    if planned.action is Action.DISABLE and stage == "disabling" and user.account_enabled is False:
        return Step("finish")
    if planned.action is Action.NOTIFY_SPONSOR and stage == "notifying" and notice_sent(planned, seen.notice):
        return Step("finish")
    if planned.action is Action.SPONSOR_REASSIGN and stage == "reassigning" and gone_marked(seen.record):
        return Step("finish")
    if planned.action is Action.SPONSOR_GONE_ENDED and stage == "clearing" and not gone_marked(seen.record):
        return Step("finish")
    hint = planned_activity(planned) if user.sign_in_activity is None else None
    verdict = decide(user, seen.record, policy, now, seen.assignment_end, activity_hint=hint, notice=seen.notice)
    if not isinstance(verdict, Decision) or verdict.action is not planned.action:
        code, why = why_stale(planned, user, verdict)
        return Step("drop", code=code, why=why)
    if planned.action is Action.NOTIFY_SPONSOR and verdict.due != planned.due:
        return Step("drop", code="due-date-moved", why="the guest's due date moved; a later run plans a new notice")
    return Step("act", verdict=verdict)


def gone_marked(record: GuestRecord | None) -> bool:
    return record is not None and record.sponsor_gone_since is not None


def notice_sent(planned: PlannedAction, notice: NoticeRecord | None) -> bool:
    return notice is not None and notice.due == planned.due


def planned_activity(planned: PlannedAction) -> datetime | None:
    """The plan's view of the last sign-in, for a directory read that does not carry signInActivity."""
    if planned.evidence.get("baseline") != "lastSuccessfulSignIn":
        return None
    since = planned.evidence.get("inactiveSince")
    return datetime.fromisoformat(since) if since else None


def why_stale(planned: PlannedAction, user: DirectoryUser, verdict: object) -> tuple[str, str]:
    if not user.is_guest:
        return "no-longer-a-guest", "the user is no longer a guest"
    if planned.action is Action.DELETE and user.account_enabled is not False:
        return "re-enabled", "the guest was re-enabled after this product disabled it"
    if planned.action is Action.DISABLE and user.account_enabled is False:
        return "already-disabled", "the guest was disabled by someone else meanwhile"
    if isinstance(verdict, Decision):
        return "different-action", f"the guest now calls for {verdict.action.value}, not {planned.action.value}"
    if verdict is Skip.AWAITING_NOTICE_LEAD:
        return "awaiting-notice-lead", "the sponsor notice is younger than its lead time"
    if verdict is not None:
        return f"now-{verdict}", f"the guest is now left alone: {verdict}"
    return "no-longer-eligible", "no rule holds any more (signed in, extended, or rules changed)"
