"""The run rows a braked daily run needs: get, create once, replace under an ETag."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from lifecycle.runs.model import DailyRun


class RunStore(Protocol):
    async def get(self, run_id: str) -> DailyRun | None: ...

    async def create(self, run: DailyRun) -> DailyRun:
        """Insert; raises StateConflictError if the run id exists (a double-fired timer lands here)."""
        ...

    async def save(self, run: DailyRun) -> DailyRun:
        """Replace, guarded by ``run.etag``; raises StateConflictError when another writer won."""
        ...

    def runs(self) -> AsyncIterator[DailyRun]:
        """Every run row (status reads them to flag braked and interrupted runs)."""
        ...
