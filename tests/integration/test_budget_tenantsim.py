"""The budget layer against tenantsim's throttling model: batches under a tight write quota, and the fail-fast
path a queue worker relies on."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from bench.graph_batch import BatchRequest, GraphBatch
from graph.budget import BudgetClass, GraphBudget
from graph.client import budgeted_transport, build_graph_client
from graph.credentials import TenantSimCredential
from graph.users import GraphDirectory
from lifecycle.errors import ThrottledError
from tenantsim.config import SimConfig
from tenantsim.server import TenantSimServer

COMPRESSION, QUOTA_SCALE = 100.0, 0.02  # write bucket: 60 writes, refilled at 40/s


@pytest.fixture(scope="module")
def sim() -> TenantSimServer:
    config = SimConfig(throttling_enabled=True, time_compression=COMPRESSION, quota_scale=QUOTA_SCALE)
    with TenantSimServer(guests=150, config=config) as server:
        yield server


def _budget() -> GraphBudget:
    budget = GraphBudget.time_compressed(COMPRESSION)
    budget.quotas = {k: type(q)(q.capacity * QUOTA_SCALE, q.window_seconds) for k, q in budget.quotas.items()}
    return budget


@pytest.mark.parametrize("in_request_order", [False, True], ids=["responses reordered", "responses in order"])
def test_a_batched_sweep_lands_every_disable_under_a_tight_write_quota(
    sim: TenantSimServer, in_request_order: bool
) -> None:
    """150 disables through bench.graph_batch over the budgeted transport all land, none lost, few refused, each
    result matched to its request by id whatever order the batch answers in (json-batching.md)."""
    sim.simulator.config.batch_responses_in_request_order = in_request_order
    directory = sim.simulator.directory
    guests = [u for u, r in directory.users.items() if r.data.get("userType") == "Guest"]
    for user_id in guests:
        directory.users[user_id].data["accountEnabled"] = True
    sim.simulator.throttler.reset()
    sim.simulator.counters = type(sim.simulator.counters)()
    credential = TenantSimCredential(sim.url)

    async def run() -> list:
        async def token() -> str:
            return (await credential.get_token("graph")).token

        transport = budgeted_transport(budget=_budget(), max_wait=None)
        async with httpx.AsyncClient(transport=transport) as http:
            batch = GraphBatch(http, f"{sim.url}/v1.0", token, size=3)
            requests = [BatchRequest(u, "PATCH", f"/users/{u}", {"accountEnabled": False}) for u in guests]
            return await batch.run(requests)

    results = asyncio.run(run())
    assert [r.id for r in results] == guests
    assert all(r.ok for r in results)
    assert all(directory.users[u].data["accountEnabled"] is False for u in guests)
    counters = sim.simulator.counters
    # A 60-write bucket leaves a 12-write margin above the pacing target, far less than Graph's real 600.
    assert sum(counters.throttled.values()) <= 0.25 * counters.requests


def test_a_paused_budget_fails_fast_with_throttled_error_instead_of_sleeping(sim: TenantSimServer) -> None:
    """With the write class paused for 30 s, a gateway write raises ThrottledError within milliseconds."""
    budget = GraphBudget()
    credential = TenantSimCredential(sim.url)
    client = build_graph_client(credential=credential, base_url=f"{sim.url}/v1.0", budget=budget, max_budget_wait=1.0)
    user_id = next(iter(sim.simulator.directory.users))

    async def run() -> float:
        directory = GraphDirectory(client)
        await directory.get_user(user_id)  # learn the caller's (tenant, app) from a real call
        (tenant, app, _), *_ = budget._budgets.keys()
        budget.budget(tenant, app, BudgetClass.WRITES).throttle(30.0)
        started = time.perf_counter()
        with pytest.raises(ThrottledError) as refused:
            await directory.set_account_enabled(user_id, False)
        assert refused.value.retry_after >= 30.0
        return time.perf_counter() - started

    assert asyncio.run(run()) < 0.5
