"""Claiming a run: exactly one caller plans a scheduled occurrence; a crashed or interrupted one is taken over."""

from __future__ import annotations

from datetime import timedelta

from lifecycle.errors import StateConflictError
from lifecycle.plans import Mode
from lifecycle.runs.model import DailyRun, RunStatus
from lifecycle.runs.ports import RunStore
from lifecycle.services import Services

# The reason of a run whose planning a transient Graph error stopped; it resumes from its last page.
INTERRUPTED = "planning interrupted"


async def claim_run(
    services: Services, runs: RunStore, run_id: str, mode: Mode, stale: timedelta
) -> tuple[DailyRun, bool]:
    """The run row, and whether this caller must plan it (False: somebody planned or is planning it).

    A failed run, or one left planning longer than ``stale``, is taken over; it resumes from its cursor
    when its planner recorded one, else starts over. Shared by the sweep and redemption-reset runs.
    """
    now = services.clock.now()
    existing = await runs.get(run_id)
    if existing is None:
        try:
            return await runs.create(DailyRun(run_id, mode, RunStatus.PLANNING, started=now, updated=now)), True
        except StateConflictError:
            existing = await runs.get(run_id)
            assert existing is not None
            return existing, False
    abandoned = existing.status is RunStatus.PLANNING and (existing.updated or existing.started) + stale <= now
    interrupted = existing.status is RunStatus.FAILED and existing.reason.startswith(INTERRUPTED)
    if existing.status is RunStatus.FAILED or abandoned:
        if not ((abandoned or interrupted) and existing.cursor):
            # Start over. A resumed run keeps its start: it is the instant every guest is judged at.
            existing.started, existing.cursor, existing.pages = now, None, 0
            existing.total_guests, existing.actions, existing.skipped = 0, {}, {}
            existing.warnings, existing.sponsor_coverage = {}, {}
        existing.status, existing.mode, existing.updated = RunStatus.PLANNING, mode, now
        existing.reason = ""
        try:
            return await runs.save(existing), True
        except StateConflictError:
            latest = await runs.get(run_id)
            assert latest is not None
            return latest, False
    return existing, False
