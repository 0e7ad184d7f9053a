"""JSON batching for bulk Graph work: 20 requests per ``$batch``, each item settled on its own.

Kept with the benchmarks: no job sends ``$batch`` today (the guest-actions worker makes typed calls). Whether it
earns a place in a production path is the performance work's decision, measured on the deployed handlers.

Graph evaluates every item of a batch against the throttling limits individually and the SDKs do not
retry throttled items, so this does: a 429 item is sent again in a later batch once *its own*
``Retry-After`` has passed, a 503/504 item after its Retry-After or a backoff. Batching saves round trips,
not quota; the pacing is the budget's (graph.budget), applied by the transport under the httpx client.

With ``deadline_seconds`` (a queue worker must not sleep away its lock), the items still waiting at the
deadline come back as deferred with the time they may be retried, for the caller to reschedule.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import random
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx
import structlog

from graph.budget import Quota
from lifecycle.errors import GraphError

log = structlog.get_logger(__name__)

MAX_BATCH_SIZE = 20
RETRYABLE_STATUSES = frozenset({429, 503, 504})
TokenProvider = Callable[[], Awaitable[str]]


@dataclass(frozen=True, slots=True)
class BatchRequest:
    """One item: ``url`` is relative to the version root (``/users/{id}``)."""

    id: str
    method: str
    url: str
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        item: dict[str, Any] = {"id": self.id, "method": self.method, "url": self.url}
        headers = dict(self.headers)
        if self.body is not None:
            item["body"] = self.body
            headers.setdefault("Content-Type", "application/json")
        if headers:
            item["headers"] = headers
        return item


@dataclass(frozen=True, slots=True)
class BatchResult:
    """How an item ended. ``deferred`` items were still throttled at the deadline: retry after ``retry_after``."""

    id: str
    status: int
    body: Any = None
    attempts: int = 1
    deferred: bool = False
    retry_after: float | None = None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


@dataclass(slots=True)
class _Pending:
    request: BatchRequest
    due: float = 0.0
    attempts: int = 0
    last_status: int = 0


class _DueQueue:
    """Items ordered by the time they may be sent (first try: now; a retry: after its Retry-After)."""

    def __init__(self, items: list[_Pending]) -> None:
        self._order = itertools.count()
        self._heap = [(p.due, next(self._order), p) for p in items]
        heapq.heapify(self._heap)

    def __bool__(self) -> bool:
        return bool(self._heap)

    def push(self, item: _Pending) -> None:
        heapq.heappush(self._heap, (item.due, next(self._order), item))

    def pop_due(self, now: float, limit: int) -> list[_Pending]:
        due: list[_Pending] = []
        while self._heap and len(due) < limit and self._heap[0][0] <= now:
            due.append(heapq.heappop(self._heap)[2])
        return due

    def next_due(self, default: float) -> float:
        return self._heap[0][0] if self._heap else default

    def drain(self) -> list[_Pending]:
        items = [entry[2] for entry in self._heap]
        self._heap.clear()
        return items


def suggested_batch_size(quota: Quota) -> int:
    """Batch size for a budget class: 20, or fewer for a small bucket (invitations: 150), so one batch never
    takes more than a twentieth of the bucket at once and cannot overshoot the level the pacing holds."""
    return max(1, min(MAX_BATCH_SIZE, int(quota.capacity / 20)))


class GraphBatch:
    def __init__(
        self,
        http: httpx.AsyncClient,
        base_url: str,
        token: TokenProvider,
        *,
        size: int = MAX_BATCH_SIZE,
        senders: int = 4,
        max_attempts: int = 10,
        backoff_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if not 1 <= size <= MAX_BATCH_SIZE:
            raise ValueError(f"a batch holds 1 to {MAX_BATCH_SIZE} requests, not {size}")
        self._http = http
        self._url = base_url.rstrip("/") + "/$batch"
        self._token = token
        self.size = size
        self.senders = senders
        self.max_attempts = max_attempts
        self.backoff_seconds = backoff_seconds
        self._clock = clock
        self._sleep = sleep

    async def run(
        self, requests: Iterable[BatchRequest], *, deadline_seconds: float | None = None
    ) -> list[BatchResult]:
        """Send every request; returns one result per request, in the order given."""
        pending = [_Pending(r) for r in requests]
        order = [p.request.id for p in pending]
        if len({i.lower() for i in order}) != len(order):
            raise ValueError("batch request ids must be unique (case-insensitively)")
        deadline = None if deadline_seconds is None else self._clock() + deadline_seconds
        results: dict[str, BatchResult] = {}
        waiting = _DueQueue(pending)
        in_flight = 0
        wake = asyncio.Event()

        async def sender() -> None:
            nonlocal in_flight
            while True:
                now = self._clock()
                if deadline is not None and now >= deadline:
                    return
                due = waiting.pop_due(now, self.size)
                if not due:
                    if not waiting and in_flight == 0:
                        wake.set()
                        return
                    next_due = waiting.next_due(default=now + 0.05)
                    if deadline is not None:
                        next_due = min(next_due, deadline)
                    wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(wake.wait(), timeout=max(0.001, next_due - now))
                    continue
                in_flight += 1
                try:
                    await self._send(due, waiting, results)
                finally:
                    in_flight -= 1
                    wake.set()

        await asyncio.gather(*(sender() for _ in range(self.senders)))
        now = self._clock()
        for p in waiting.drain():
            results[p.request.id] = BatchResult(
                p.request.id, p.last_status or 429, None, p.attempts, deferred=True, retry_after=max(0.0, p.due - now)
            )
        return [results[i] for i in order]

    async def _send(self, items: list[_Pending], waiting: _DueQueue, results: dict[str, BatchResult]) -> None:
        for p in items:
            p.attempts += 1
        try:
            token = await self._token()
            response = await self._http.post(
                self._url,
                json={"requests": [p.request.as_json() for p in items]},
                headers={"Authorization": f"Bearer {token}"},
            )
        except (httpx.TransportError, GraphError) as exc:
            retry_after = getattr(exc, "retry_after", None)
            log.warning("graph.batch.failed", error=str(exc), items=len(items))
            self._requeue(items, waiting, results, 0, retry_after)
            return
        if response.status_code != 200:
            self._requeue(items, waiting, results, response.status_code, _header_seconds(response.headers))
            return
        by_id = {str(a.get("id", "")).lower(): a for a in response.json().get("responses", [])}
        for p in items:
            answer = by_id.get(p.request.id.lower())
            if answer is None:
                self._requeue([p], waiting, results, 0, None)
                continue
            status = int(answer.get("status", 0))
            if status in RETRYABLE_STATUSES:
                self._requeue([p], waiting, results, status, _header_seconds(answer.get("headers") or {}))
            else:
                results[p.request.id] = BatchResult(p.request.id, status, answer.get("body"), p.attempts)

    def _requeue(
        self,
        items: list[_Pending],
        waiting: _DueQueue,
        results: dict[str, BatchResult],
        status: int,
        retry_after: float | None,
    ) -> None:
        now = self._clock()
        for p in items:
            p.last_status = status
            if p.attempts >= self.max_attempts:
                results[p.request.id] = BatchResult(p.request.id, status or 503, None, p.attempts)
                continue
            delay = retry_after if retry_after is not None else self.backoff_seconds * 2 ** (p.attempts - 1)
            # Jitter, so items refused together (across instances too) do not all come back together.
            p.due = now + delay * (1.0 + 0.5 * random.random())
            waiting.push(p)


def _header_seconds(headers: Any) -> float | None:
    for name, value in headers.items():
        if str(name).lower() == "retry-after":
            try:
                return max(0.0, float(value))
            except ValueError:
                return None
    return None
