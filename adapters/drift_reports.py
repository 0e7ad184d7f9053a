"""Stores for drift reports (Table Storage and an in-memory fake), and the wiring of drift's ports.

One table, one partition ``reports``; the row key starts with the inverted run time so a plain query
lists the newest run first. A string property holds at most 64 KiB, so the JSON document and the
markdown are split across numbered properties and joined on read.
"""

from __future__ import annotations

import json
from typing import Any

from azure.core.exceptions import HttpResponseError

from adapters.table_codec import read_required_utc, utc
from adapters.table_keys import encode_key
from adapters.tables import SingleTableStore
from lifecycle.drift.report import DriftReport

PARTITION = "reports"
CHUNK = 30_000  # characters per property: 60,000 UTF-16 bytes, under the 64 KiB limit
MAX_CHUNKS = 15  # an entity holds at most 1 MiB
LATEST = 10**13  # milliseconds; 10^13 ms is in the year 2286


def row_key(report: DriftReport) -> str:
    inverted = LATEST - int(report.at.timestamp() * 1000)
    return encode_key(f"{inverted:013d}-{report.run_id}")


def _split(name: str, text: str) -> dict[str, str]:
    parts = [text[i : i + CHUNK] for i in range(0, len(text), CHUNK)] or [""]
    if len(parts) > MAX_CHUNKS:
        parts = parts[:MAX_CHUNKS]
        parts[-1] = parts[-1][: CHUNK - 40] + "\n[truncated: report too large]"
    return {f"{name}{index}": part for index, part in enumerate(parts)}


def _join(entity: Any, name: str) -> str:
    parts, index = [], 0
    while f"{name}{index}" in entity:
        parts.append(entity[f"{name}{index}"])
        index += 1
    return "".join(parts)


def to_entity(report: DriftReport) -> dict[str, Any]:
    return {
        "PartitionKey": PARTITION,
        "RowKey": row_key(report),
        "runId": report.run_id,
        "at": utc(report.at),
        "mode": report.mode,
        "exitCode": report.exit_code,
        "drift": report.drift,
        "failed": report.failed,
        **_split("document", json.dumps(report.document, separators=(",", ":"))),
        **_split("markdown", report.markdown),
    }


def from_entity(entity: Any) -> DriftReport:
    document = _join(entity, "document")
    try:
        parsed = json.loads(document)
    except ValueError:
        parsed = {"truncated": document[:1000]}
    return DriftReport(
        run_id=entity["runId"],
        at=read_required_utc(entity["at"]),
        mode=entity["mode"],
        exit_code=int(entity["exitCode"]),
        drift=int(entity["drift"]),
        failed=int(entity["failed"]),
        document=parsed,
        markdown=_join(entity, "markdown"),
    )


class TableDriftReports(SingleTableStore):
    TABLE = "driftreports"

    async def save(self, report: DriftReport) -> None:
        await self._table.upsert_entity(to_entity(report))

    async def get(self, run_id: str) -> DriftReport | None:
        query = self._table.query_entities(
            "PartitionKey eq @pk and runId eq @run", parameters={"pk": PARTITION, "run": run_id}
        )
        async for entity in query:
            return from_entity(entity)
        return None

    async def recent(self, limit: int = 20) -> list[DriftReport]:
        found: list[DriftReport] = []
        try:
            query = self._table.query_entities(
                "PartitionKey eq @pk", parameters={"pk": PARTITION}, results_per_page=min(limit, 1000)
            )
            async for entity in query:
                found.append(from_entity(entity))
                if len(found) >= limit:
                    break
        except HttpResponseError as error:
            if error.status_code != 404:
                raise
        return found
