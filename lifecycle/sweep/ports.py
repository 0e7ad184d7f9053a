"""Ports the sweep needs beyond lifecycle.ports: its run store, its guest reads and two optional lookups.

``SweepPorts`` is the sweep's bundle of them, built by the composition root and held in ``Services.jobs``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

from lifecycle.errors import LifecycleError
from lifecycle.models import DirectoryUser, SponsorRef
from lifecycle.runs.model import DailyRun
from lifecycle.sweep.model import Action, NoticeRecord, PlannedAction


class SignInActivityUnavailable(LifecycleError):
    """Graph refused signInActivity because the tenant holds no Microsoft Entra ID P1 or P2 licence.

    Raised by guest reads whose select names signInActivity; the same read without it succeeds.
    """


class SweepRuns(Protocol):
    """Runs, their planned actions (many: stored as rows, written and read page by page)."""

    async def get(self, run_id: str) -> DailyRun | None: ...

    async def create(self, run: DailyRun) -> DailyRun:
        """Insert; raises StateConflictError if the run id exists (a double-fired timer lands here)."""
        ...

    async def save(self, run: DailyRun) -> DailyRun:
        """Replace, guarded by ``run.etag``; raises StateConflictError when another writer won."""
        ...

    async def add_actions(self, run_id: str, actions: Sequence[PlannedAction]) -> None:
        """Store one page of actions; writing the same action again replaces it (re-planning is safe)."""
        ...

    def actions(self, run_id: str) -> AsyncIterator[list[PlannedAction]]:
        """The run's actions, page by page, in a stable order."""
        ...

    async def planned_action(self, run_id: str, object_id: str, action: Action) -> PlannedAction | None:
        """The stored action of ``run_id`` for this guest and action (a point read), or None: what the plan
        really holds, whatever a queue message claims."""
        ...

    def runs(self) -> AsyncIterator[DailyRun]: ...

    async def notice(self, object_id: str) -> NoticeRecord | None:
        """The last sponsor notice sent for the guest (its due date and when), if any."""
        ...

    async def record_notice(self, notice: NoticeRecord) -> None:
        """Keep ``notice`` as the guest's last notice (replaces the previous one: one row per guest)."""
        ...

    def notices(self) -> AsyncIterator[NoticeRecord]:
        """Every guest's last notice, streamed (the planner indexes them once per run)."""
        ...


@runtime_checkable
class GroupMembership(Protocol):
    """Transitive user members of a group (the protected group is small: a set is fine)."""

    async def group_member_ids(self, group_id: str) -> set[str]: ...


@runtime_checkable
class AssignmentExpiries(Protocol):
    """Access package assignment end dates: a guest's latest end, absent when a live assignment never ends."""

    async def end_dates(self) -> Mapping[str, datetime]:
        """Every guest's end, from one streamed pass over the tenant's assignments (once per planning run)."""
        ...

    async def end_date_of(self, object_id: str) -> datetime | None:
        """One guest's end, read right before acting on a decision that rests on it."""
        ...


@runtime_checkable
class ResumableGuestReads(Protocol):
    """Guest pages with the link to the next one, so an interrupted enumeration continues where it stopped."""

    def guest_pages(
        self, select: Sequence[str], page_size: int, start: str | None = None
    ) -> AsyncIterator[tuple[list[DirectoryUser], str | None]]: ...


@runtime_checkable
class SponsorStates(Protocol):
    """Guest pages that can expand each guest's sponsors (``"sponsors"`` named in the select), and the state of
    sponsors an expansion left without it, looked up in bulk."""

    async def sponsor_states(self, ids: Sequence[str]) -> Mapping[str, SponsorRef]: ...


@runtime_checkable
class SponsoredGuestReads(Protocol):
    """One guest re-read with its sponsors and their state (the sponsor-gone rule's second look), and a user's
    manager (the replacement a sponsor-reassign event proposes)."""

    async def get_guest_with_sponsors(self, user_id: str) -> DirectoryUser | None: ...

    async def manager_of(self, user_id: str) -> str | None:
        """The object id of the user's manager when it is an enabled member; None otherwise or when none."""
        ...


@runtime_checkable
class GuestReads(Protocol):
    """The two directory reads the sweep makes in bulk; the Directory port satisfies it."""

    def list_guests(self, select: Sequence[str], page_size: int = 999) -> AsyncIterator[list[DirectoryUser]]: ...

    async def get_user(self, user_id: str) -> DirectoryUser | None: ...


@dataclass(frozen=True, eq=False)
class SweepPorts:
    """What the sweep plans and acts through, besides the kernel's ports.

    ``guest_reads`` lists and re-reads guests (graph.users.GraphSweepReads in Azure; the Directory port
    also serves). ``membership`` lists the protected group's members; without it a configured protected group
    stops the run. ``expiries`` gives access package assignment end dates; without it they are not consulted.
    """

    runs: SweepRuns
    guest_reads: GuestReads
    membership: GroupMembership | None = None
    expiries: AssignmentExpiries | None = None
