"""The in-memory twin of the daily-run store (adapters.sweep_runs): rows kept through the same codec."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any

from adapters.sweep_runs import (
    PAGE_SIZE,
    action_entity,
    action_from_entity,
    action_row_key,
    notice_entity,
    notice_from_entity,
    row_key_of,
    run_entity,
    run_from_entity,
)
from adapters.table_codec import utc
from lifecycle.errors import StateConflictError
from lifecycle.runs.model import DailyRun
from lifecycle.sweep.model import Action, NoticeRecord, PlannedAction

_etags = itertools.count(1)


class MemorySweepRuns:
    """The fake: rows kept as the Table adapter would store them (JSON and UTC round trips)."""

    def __init__(self, page_size: int = PAGE_SIZE) -> None:
        self._runs: dict[str, dict[str, Any]] = {}
        self._actions: dict[str, dict[str, dict[str, Any]]] = {}
        self._notices: dict[str, dict[str, Any]] = {}
        self._page_size = page_size

    @staticmethod
    def _stored(run: DailyRun) -> dict[str, Any]:
        return {**run_entity(run), "etag": f'W/"memory-run-{next(_etags)}"'}

    @staticmethod
    def _view(row: dict[str, Any]) -> DailyRun:
        return run_from_entity(StoredRow(row), row["etag"])

    async def get(self, run_id: str) -> DailyRun | None:
        row = self._runs.get(run_id)
        return self._view(row) if row else None

    async def create(self, run: DailyRun) -> DailyRun:
        if run.run_id in self._runs:
            raise StateConflictError(f"sweep run {run.run_id} already exists")
        self._runs[run.run_id] = self._stored(run)
        return self._view(self._runs[run.run_id])

    async def save(self, run: DailyRun) -> DailyRun:
        if run.etag is None:
            raise ValueError("save needs the etag of the version it replaces (from get or create)")
        current = self._runs.get(run.run_id)
        if current is None or current["etag"] != run.etag:
            raise StateConflictError(f"sweep run {run.run_id} changed since it was read")
        self._runs[run.run_id] = self._stored(run)
        return self._view(self._runs[run.run_id])

    async def add_actions(self, run_id: str, actions: Sequence[PlannedAction]) -> None:
        rows = self._actions.setdefault(run_id, {})
        for action in actions:
            rows[action_row_key(action)] = action_entity(action)

    async def actions(self, run_id: str) -> AsyncIterator[list[PlannedAction]]:
        rows = self._actions.get(run_id, {})
        keys = sorted(rows)
        for start in range(0, len(keys), self._page_size):
            yield [action_from_entity(StoredRow(rows[k])) for k in keys[start : start + self._page_size]]

    async def planned_action(self, run_id: str, object_id: str, action: Action) -> PlannedAction | None:
        row = self._actions.get(run_id, {}).get(row_key_of(object_id, action))
        return action_from_entity(StoredRow(row)) if row else None

    async def runs(self) -> AsyncIterator[DailyRun]:
        for run_id in sorted(self._runs):
            yield self._view(self._runs[run_id])

    async def notice(self, object_id: str) -> NoticeRecord | None:
        row = self._notices.get(object_id)
        return notice_from_entity(StoredRow(row)) if row else None

    async def record_notice(self, notice: NoticeRecord) -> None:
        self._notices[notice.object_id] = notice_entity(notice)

    async def notices(self) -> AsyncIterator[NoticeRecord]:
        for object_id in sorted(self._notices):
            yield notice_from_entity(StoredRow(self._notices[object_id]))

    async def close(self) -> None:
        return None


class StoredRow(dict[str, Any]):
    """A stored row read back: datetimes as the Table SDK returns them (UTC)."""

    def __init__(self, row: dict[str, Any]) -> None:
        super().__init__({k: (utc(v) if isinstance(v, datetime) else v) for k, v in row.items()})
