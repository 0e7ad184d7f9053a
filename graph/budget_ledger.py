"""The BudgetLedger port: one heartbeat row per process and budget scope, readable by every instance.

The real adapter keeps the rows in Table Storage (adapters.budget_ledger); MemoryBudgetLedger is
the fake for tests and single-process runs. ``version`` must change on every heartbeat (Table Storage's
ETag does): graph.budget_lease judges a row alive by seeing its version change, never by comparing clocks
across machines.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class LedgerRow:
    member: str
    version: str
    spent: float  # units the member booked between its last two heartbeats
    waiting: float = 0.0  # the most units that waited for their turn at once in that time (demand beyond its share)


class BudgetLedger(Protocol):
    async def beat(self, scope: str, member: str, spent: float, waiting: float = 0.0) -> None:
        """Write (create or replace) ``member``'s row in ``scope``; its version changes."""
        ...

    async def rows(self, scope: str) -> list[LedgerRow]: ...

    async def remove(self, scope: str, member: str) -> None:
        """Delete ``member``'s row; a row already gone is not an error."""
        ...


class MemoryBudgetLedger:
    """The in-memory BudgetLedger; ``fail`` makes every call raise (a storage outage)."""

    def __init__(self) -> None:
        self.scopes: dict[str, dict[str, LedgerRow]] = {}
        self.fail: Exception | None = None
        self._versions = itertools.count(1)

    def _check(self) -> None:
        if self.fail is not None:
            raise self.fail

    async def beat(self, scope: str, member: str, spent: float, waiting: float = 0.0) -> None:
        self._check()
        self.scopes.setdefault(scope, {})[member] = LedgerRow(member, str(next(self._versions)), spent, waiting)

    async def rows(self, scope: str) -> list[LedgerRow]:
        self._check()
        return list(self.scopes.get(scope, {}).values())

    async def remove(self, scope: str, member: str) -> None:
        self._check()
        self.scopes.get(scope, {}).pop(member, None)
