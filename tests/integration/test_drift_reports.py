"""Drift report stores: the Table adapter on Azurite and the memory fake keep the same rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from adapters.drift_reports import CHUNK, TableDriftReports
from adapters.memory import MemoryDriftReports
from lifecycle.drift.report import DriftReport
from tests.builders import LOCAL_ENV

pytestmark = pytest.mark.stack
AT = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def _report(run_id: str, hours: int, markdown: str = "## plan\n") -> DriftReport:
    return DriftReport(
        run_id=run_id,
        at=AT + timedelta(hours=hours),
        mode="enforce",
        exit_code=2,
        drift=3,
        failed=1,
        document={"runId": run_id, "actions": [{"key": "default"}]},
        markdown=markdown,
    )


async def _table_store(azurite, prefix: str) -> TableDriftReports:
    from config.settings import load_settings

    env = {**LOCAL_ENV, "LIFECYCLE_TABLES_CONNECTION_STRING": azurite.tables_connection_string}
    store = TableDriftReports.from_settings(load_settings({**env, "LIFECYCLE_TABLE_PREFIX": prefix}))
    await store.ensure_table()
    return store


async def test_reports_round_trip_newest_first_on_azurite_and_in_memory(azurite, unique_prefix):
    """Saved reports come back whole (a markdown larger than one property too), by run id and newest first."""
    big = "| row |\n" * (CHUNK // 4)
    table = await _table_store(azurite, unique_prefix)
    try:
        for store in (table, MemoryDriftReports()):
            await store.save(_report("older", 0))
            await store.save(_report("newer", 1, markdown=big))
            assert [r.run_id for r in await store.recent()] == ["newer", "older"]
            fetched = await store.get("newer")
            assert fetched == _report("newer", 1, markdown=big)
            assert await store.get("missing") is None
    finally:
        await table.close()
