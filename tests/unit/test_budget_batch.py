"""bench.graph_batch: per-item status, per-item Retry-After retries, and deferral at a deadline."""

from __future__ import annotations

import asyncio
import json
from collections import Counter

import httpx

from bench.graph_batch import BatchRequest, GraphBatch


class FakeGraphBatchEndpoint:
    """A $batch endpoint that refuses chosen item ids with 429 a given number of times."""

    def __init__(self, refusals: dict[str, int], retry_after: float = 0.01) -> None:
        self.refusals = dict(refusals)
        self.retry_after = retry_after
        self.seen: Counter[str] = Counter()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        answers = []
        for item in json.loads(request.content)["requests"]:
            self.seen[item["id"]] += 1
            if self.refusals.get(item["id"], 0) > 0:
                self.refusals[item["id"]] -= 1
                answers.append({"id": item["id"], "status": 429, "headers": {"Retry-After": str(self.retry_after)}})
            elif item["url"].endswith("/missing"):
                answers.append(
                    {"id": item["id"], "status": 404, "body": {"error": {"code": "Request_ResourceNotFound"}}}
                )
            else:
                answers.append({"id": item["id"], "status": 204})
        return httpx.Response(200, json={"responses": answers})


async def _token() -> str:
    return "token"


def _run(endpoint: FakeGraphBatchEndpoint, requests: list[BatchRequest], **kwargs: object) -> list:
    async def go() -> list:
        async with httpx.AsyncClient(transport=httpx.MockTransport(endpoint)) as http:
            batch = GraphBatch(http, "http://graph.test/v1.0", _token, size=20, backoff_seconds=0.01)
            return await batch.run(requests, **kwargs)  # type: ignore[arg-type]

    return asyncio.run(go())


def _disables(count: int) -> list[BatchRequest]:
    return [BatchRequest(f"u{n}", "PATCH", f"/users/u{n}", {"accountEnabled": False}) for n in range(count)]


def test_throttled_items_are_sent_again_until_they_succeed() -> None:
    """Items refused with 429 are retried in a later batch; every item ends 2xx and only refused ones repeat."""
    endpoint = FakeGraphBatchEndpoint({"u3": 2, "u25": 1})
    results = _run(endpoint, _disables(45))
    assert all(r.ok for r in results)
    assert endpoint.seen["u3"] == 3 and endpoint.seen["u25"] == 2 and endpoint.seen["u0"] == 1
    assert [r.id for r in results] == [f"u{n}" for n in range(45)]


def test_batches_hold_at_most_twenty_items() -> None:
    """45 items go out in batches of at most 20."""
    sizes: list[int] = []
    endpoint = FakeGraphBatchEndpoint({})

    def recording(request: httpx.Request) -> httpx.Response:
        sizes.append(len(json.loads(request.content)["requests"]))
        return endpoint(request)

    async def go() -> None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(recording)) as http:
            await GraphBatch(http, "http://graph.test/v1.0", _token).run(_disables(45))

    asyncio.run(go())
    assert sum(sizes) == 45 and max(sizes) == 20


def test_a_final_error_is_reported_per_item_not_retried() -> None:
    """A 404 item is settled with its own status after one attempt; its neighbours still succeed."""
    endpoint = FakeGraphBatchEndpoint({})
    requests = [*_disables(2), BatchRequest("gone", "PATCH", "/users/missing", {"accountEnabled": False})]
    results = {r.id: r for r in _run(endpoint, requests)}
    assert results["gone"].status == 404 and results["gone"].attempts == 1
    assert results["u0"].ok and results["u1"].ok


def test_items_still_throttled_at_the_deadline_come_back_deferred() -> None:
    """With a deadline, an item Graph keeps refusing is returned deferred with a retry time, not slept on."""
    endpoint = FakeGraphBatchEndpoint({"u1": 1000}, retry_after=5.0)
    results = {r.id: r for r in _run(endpoint, _disables(3), deadline_seconds=0.3)}
    assert results["u0"].ok and results["u2"].ok
    assert results["u1"].deferred and results["u1"].status == 429
    assert results["u1"].retry_after is not None and results["u1"].retry_after > 4.0
