"""The in-memory twin of the drift-report store (adapters.drift_reports), through the same codec."""

from __future__ import annotations

from typing import Any

from adapters.drift_reports import from_entity, row_key, to_entity
from lifecycle.drift.report import DriftReport


class MemoryDriftReports:
    """The fake: rows kept as the Table adapter stores them, so the round trip is the same."""

    def __init__(self) -> None:
        self._rows: dict[str, dict[str, Any]] = {}

    async def save(self, report: DriftReport) -> None:
        self._rows[row_key(report)] = to_entity(report)

    async def get(self, run_id: str) -> DriftReport | None:
        return next((from_entity(r) for r in self._rows.values() if r["runId"] == run_id), None)

    async def recent(self, limit: int = 20) -> list[DriftReport]:
        return [from_entity(self._rows[k]) for k in sorted(self._rows)[:limit]]

    async def close(self) -> None:
        return None
