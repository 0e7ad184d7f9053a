"""Where the daily report is kept: a store of named documents the team can open (a blob container in Azure).

``ReportPorts`` is the report job's bundle, built by the composition root and held in ``Services.jobs``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class ReportStore(Protocol):
    async def put(self, name: str, content: bytes, content_type: str) -> str:
        """Write ``content`` under ``name``, replacing what was there; returns where a reader finds it."""
        ...


@dataclass(frozen=True, eq=False)
class ReportPorts:
    store: ReportStore
