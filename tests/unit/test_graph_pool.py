"""graph.pool: Graph's connections as several small pools, each request to the least busy one."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from graph.pool import ShardedTransport


class _HeldServer:
    """Inner transports whose answers wait until the test lets them go; counts what each one was sent."""

    def __init__(self) -> None:
        self.go = asyncio.Event()
        self.sent: list[int] = []

    def factory(self) -> httpx.AsyncBaseTransport:
        shard = len(self.sent)
        self.sent.append(0)

        async def answer(request: httpx.Request) -> httpx.Response:
            self.sent[shard] += 1
            await self.go.wait()
            if request.url.path == "/fail":
                raise httpx.ConnectError("refused", request=request)
            # A body still to be read, as from a socket (content= or json= would arrive already read).
            return httpx.Response(200, stream=httpx.ByteStream(b'{"shard": %d}' % shard))

        return httpx.MockTransport(answer)


async def test_requests_in_flight_are_spread_evenly_over_the_shards() -> None:
    server = _HeldServer()
    transport = ShardedTransport(shards=4, factory=server.factory)
    async with httpx.AsyncClient(transport=transport, base_url="http://graph.test") as client:
        calls = [asyncio.ensure_future(client.get(f"/users/{n}")) for n in range(16)]
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert transport.open == [4, 4, 4, 4]
        server.go.set()
        answers = await asyncio.gather(*calls)
    assert sorted(a.json()["shard"] for a in answers) == sorted([0, 1, 2, 3] * 4)
    assert server.sent == [4, 4, 4, 4]


async def test_a_shard_is_released_when_the_body_is_closed_and_when_the_request_fails() -> None:
    server = _HeldServer()
    server.go.set()
    transport = ShardedTransport(shards=2, factory=server.factory)
    async with httpx.AsyncClient(transport=transport, base_url="http://graph.test") as client:
        async with client.stream("GET", "/users/1") as streamed:
            assert transport.open == [1, 0]  # the connection is held while the body is open
            await streamed.aread()
        assert transport.open == [0, 0]
        with pytest.raises(httpx.ConnectError):
            await client.get("/fail")
        assert transport.open == [0, 0]
        # Every later request still finds the least busy shard: nothing leaked.
        assert (await client.get("/users/2")).status_code == 200
        assert transport.open == [0, 0]


def test_a_transport_without_shards_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one shard"):
        ShardedTransport(shards=0)


def test_the_budget_lets_out_at_once_as_many_requests_as_the_pools_hold() -> None:
    from graph.budget import MAX_IN_FLIGHT
    from graph.pool import CONNECTIONS_PER_SHARD, SHARDS

    assert SHARDS * CONNECTIONS_PER_SHARD == MAX_IN_FLIGHT


async def test_the_in_flight_cap_starts_open_shrinks_under_pressure_and_grows_back() -> None:
    from graph.budget import MAX_IN_FLIGHT, GraphBudget

    cap = GraphBudget().concurrency("tenant", "app")
    assert cap.limit == MAX_IN_FLIGHT  # a full queue is not held back before Graph has said anything
    await cap.enter()
    await cap.leave(pressure=True)
    assert cap.limit < MAX_IN_FLIGHT
    shrunk = cap.limit
    for _ in range(200):
        await cap.enter()
        await cap.leave(pressure=False)
    assert shrunk < cap.limit <= MAX_IN_FLIGHT
