"""Graph's connections: several small httpcore pools instead of one large one.

httpcore's pool re-examines every connection it holds each time a request is added or removed
(``_assign_requests_to_connections``: an expiry check with a ``getpeername``/``poll`` per idle connection, and
a count of all connections per idle one), so its cost per request grows with the square of the pool's size. One
pool of 64 connections took about a quarter of a worker's CPU under a full queue (bench.graph_budget_bench
``--profile-dir``). The same connections as pools of 8 keep that scan small; a request goes to the pool
with the fewest requests in hand, so none queues inside a pool while another has a free connection.

There are 16 pools (128 connections): an instance starting 64 messages at once sends two or three reads per
ticket side by side (onboarding's sponsor, address and package); with 64 connections the package's reads
queued behind the others' and the first invitation left 0.3 s later (one process at 64 at a time, the
benchmark's first binding request at 1.56 s against 1.23-1.28 s with 128).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx

SHARDS = 16
CONNECTIONS_PER_SHARD = 8


def small_pool(connections: int = CONNECTIONS_PER_SHARD) -> httpx.AsyncBaseTransport:
    """One pool; every connection may stay open between requests (the budget bounds how many are in use)."""
    return httpx.AsyncHTTPTransport(
        limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    )


class ShardedTransport(httpx.AsyncBaseTransport):
    """Requests spread over ``shards`` transports, each to the one with the fewest requests still open.

    A request holds its connection until its response body is closed, so the count is released then, not when
    the headers arrive.
    """

    def __init__(self, shards: int = SHARDS, factory: Callable[[], httpx.AsyncBaseTransport] = small_pool) -> None:
        if shards < 1:
            raise ValueError("a sharded transport needs at least one shard")
        self._shards = [factory() for _ in range(shards)]
        self.open = [0] * shards  # requests each shard holds (sent, body not yet closed)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        index = self.open.index(min(self.open))
        self.open[index] += 1
        try:
            response = await self._shards[index].handle_async_request(request)
        except BaseException:
            self.open[index] -= 1
            raise
        response.stream = _Released(response.stream, lambda: self._release(index))
        return response

    def _release(self, index: int) -> None:
        self.open[index] -= 1

    async def aclose(self) -> None:
        for shard in self._shards:
            await shard.aclose()


class _Released(httpx.AsyncByteStream):
    """A response body that calls ``release`` once when it is closed."""

    def __init__(self, stream: httpx.SyncByteStream | httpx.AsyncByteStream, release: Callable[[], None]) -> None:
        self._stream = stream
        self._release: Callable[[], None] | None = release

    async def __aiter__(self) -> AsyncIterator[bytes]:
        assert isinstance(self._stream, httpx.AsyncByteStream)
        async for chunk in self._stream:
            yield chunk

    async def aclose(self) -> None:
        try:
            assert isinstance(self._stream, httpx.AsyncByteStream)
            await self._stream.aclose()
        finally:
            release, self._release = self._release, None
            if release is not None:
                release()
