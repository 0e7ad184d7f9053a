"""The shared lease through the real Table Storage adapter, on Azurite: instances see each other's
heartbeat rows, split the bucket, hand it back on close, and keep working when storage is unreachable."""

from __future__ import annotations

import asyncio

import pytest
from azure.data.tables.aio import TableServiceClient

from adapters.budget_ledger import TableBudgetLedger
from config.settings import load_settings
from graph.budget import BudgetClass, GraphBudget
from graph.budget_lease import BudgetLease, scope_name
from tests.builders import LOCAL_ENV

KEY = ("3f2d6a1e-tenant", "app/with#odd?chars", BudgetClass.INVITATIONS)
COSTS = {BudgetClass.INVITATIONS: 1}


def _ledger(connection_string: str, prefix: str) -> TableBudgetLedger:
    env = {**LOCAL_ENV, "LIFECYCLE_TABLES_CONNECTION_STRING": connection_string, "LIFECYCLE_TABLE_PREFIX": prefix}
    return TableBudgetLedger.from_settings(load_settings(env))


async def _instance(connection_string: str, prefix: str, name: str) -> tuple[GraphBudget, BudgetLease]:
    ledger = _ledger(connection_string, prefix)
    await ledger.ensure_table()
    budget = GraphBudget()
    return budget, BudgetLease(ledger, member=name).attach(budget)


def test_instances_split_the_bucket_through_table_storage_and_hand_it_back(azurite, unique_prefix) -> None:
    async def run() -> tuple[list[float], list[str], float, list[str]]:
        instances = [await _instance(azurite.tables_connection_string, unique_prefix, f"host:{n}") for n in range(3)]
        for budget, _ in instances:
            await budget.acquire(*KEY[:2], COSTS)
        for _, lease in instances:
            await lease.refresh()
        shares = [budget.budget(*KEY).share for budget, _ in instances]
        reader = instances[0][1].ledger
        members = sorted(row.member for row in await reader.rows(scope_name(KEY)))
        for _, lease in instances[1:]:
            await lease.close()
            await lease.ledger.close()
        first_budget, first_lease = instances[0]
        await first_lease.refresh()
        alone = first_budget.budget(*KEY).share
        await first_lease.close()
        left = [row.member for row in await reader.rows(scope_name(KEY))]
        await reader.close()
        return shares, members, alone, left

    shares, members, alone, left = asyncio.run(run())
    assert shares == pytest.approx([1 / 3] * 3)
    assert members == ["host:0", "host:1", "host:2"]
    assert alone == 1.0
    assert left == []


def test_every_heartbeat_changes_the_rows_version(azurite, unique_prefix) -> None:
    """Liveness rests on the ETag changing with each heartbeat, even when nothing else in the row does."""

    async def run() -> list[str]:
        ledger = _ledger(azurite.tables_connection_string, unique_prefix)
        await ledger.ensure_table()
        versions = []
        for _ in range(3):
            await ledger.beat("scope", "member", 0.0)
            (row,) = await ledger.rows("scope")
            versions.append(row.version)
        await ledger.remove("scope", "member")
        await ledger.remove("scope", "member")  # already gone: not an error
        await ledger.close()
        return versions

    versions = asyncio.run(run())
    assert len(set(versions)) == 3


def test_unreachable_storage_leaves_pacing_to_the_headers(unique_prefix) -> None:
    """A ledger pointing at a closed port: requests still go, with the whole bucket, within the join timeout."""
    closed = (
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
        "AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;"
        "TableEndpoint=http://127.0.0.1:9/devstoreaccount1;"
    )

    async def run() -> tuple[float, float]:
        ledger = TableBudgetLedger(TableServiceClient.from_connection_string(closed).get_table_client("graphbudget"))
        budget = GraphBudget()
        lease = BudgetLease(ledger, member="m", join_timeout=1.0).attach(budget)
        loop = asyncio.get_running_loop()
        started = loop.time()
        await budget.acquire(*KEY[:2], COSTS)
        elapsed = loop.time() - started
        share = budget.budget(*KEY).share
        await lease.close()
        await ledger.close()
        return elapsed, share

    elapsed, share = asyncio.run(run())
    assert elapsed < 2.0
    assert share == 1.0
