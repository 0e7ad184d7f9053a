"""An httpx transport under the Graph SDK that spends the throttling budget (graph.budget) for every request.

It sits below the SDK's middleware, so every gateway built by graph.client goes through it unchanged:
before a request it waits for the request's budget classes (or, past ``max_wait``, refuses at once with
ThrottledError so a queue worker reschedules instead of sleeping), after it feeds Graph's throttling
headers back, including each item's headers inside a ``$batch`` answer. It never retries: the product does.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx

from graph.budget import (
    HEADER_LIMIT_PERCENTAGE,
    HEADER_THROTTLE_INFORMATION,
    HEADER_THROTTLE_SCOPE,
    BudgetClass,
    BudgetWaitTooLong,
    GraphBudget,
    WaitLimit,
    binding_class,
    request_costs,
    throttled_class,
)
from lifecycle.errors import ThrottledError

UNKNOWN_CALLER = ("unknown-tenant", "unknown-app")
DEFAULT_RETRY_AFTER = 2.0


class BudgetedTransport(httpx.AsyncBaseTransport):
    def __init__(
        self, inner: httpx.AsyncBaseTransport, budget: GraphBudget, *, max_wait: float | WaitLimit | None = None
    ) -> None:
        self._inner = inner
        self.budget = budget
        self.max_wait = max_wait
        self._callers: dict[str, tuple[str, str]] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        tenant, app = self._caller(request.headers.get("authorization"))
        path = _below_version(request.url.path)
        batch_items = _batch_items(request) if path == "/$batch" and request.method == "POST" else None
        if batch_items is None:
            costs = request_costs(request.method, path, dict(request.url.params))
        else:
            costs = _summed([item_costs for _, item_costs in batch_items.values()])
        try:
            await self.budget.acquire(tenant, app, costs, self.max_wait)
        except BudgetWaitTooLong as exc:
            raise ThrottledError(
                f"held back by the {exc.budget_class} budget for {exc.wait_seconds:.2f}s",
                retry_after=exc.wait_seconds,
                status=429,
                code="BudgetExhausted",
            ) from None
        concurrency = self.budget.concurrency(tenant, app)
        await concurrency.enter()
        pressure = False
        try:
            response = await self._inner.handle_async_request(request)
            if batch_items is None and not costs:
                # A service outside the modelled buckets: its answers say nothing about them.
                pressure = response.status_code == 429
            elif batch_items is None:
                pressure = self._feedback(tenant, app, binding_class(costs), response.status_code, response.headers)
            else:
                response, pressure = await self._batch_feedback(tenant, app, request, response, batch_items)
            return response
        finally:
            await concurrency.leave(pressure=pressure)

    async def aclose(self) -> None:
        await self._inner.aclose()

    def _feedback(self, tenant: str, app: str, budget_class: BudgetClass, status: int, headers: Any) -> bool:
        """Tell the budget what Graph said; True when Graph is at or over its limit (shrink concurrency)."""
        lowered = {str(k).lower(): str(v) for k, v in headers.items()}
        if status == 429:
            throttled = _throttled_class(lowered, budget_class)
            self.budget.throttle(tenant, app, throttled, _retry_after(lowered.get("retry-after")))
            return True
        if status >= 500:
            return False
        level = _float(lowered.get(HEADER_LIMIT_PERCENTAGE))
        self.budget.observe(tenant, app, budget_class, level)
        return level is not None and level >= 1.0

    async def _batch_feedback(
        self,
        tenant: str,
        app: str,
        request: httpx.Request,
        response: httpx.Response,
        items: dict[str, tuple[BudgetClass, dict[BudgetClass, int]]],
    ) -> tuple[httpx.Response, bool]:
        body = await response.aread()
        rebuilt = httpx.Response(response.status_code, headers=response.headers, content=body, request=request)
        if response.status_code != 200:
            return rebuilt, self._feedback(tenant, app, BudgetClass.WRITES, response.status_code, response.headers)
        try:
            answers = json.loads(body).get("responses", [])
        except ValueError:
            return rebuilt, False
        pressure = False
        for answer in answers:
            item = items.get(str(answer.get("id", "")).lower())
            if item is None:
                continue
            status = int(answer.get("status", 0))
            pressure |= self._feedback(tenant, app, item[0], status, answer.get("headers") or {})
        return rebuilt, pressure

    def _caller(self, authorization: str | None) -> tuple[str, str]:
        """(tenant, app) from the bearer token's claims; the token was issued to us, so no verification here."""
        if not authorization:
            return UNKNOWN_CALLER
        cached = self._callers.get(authorization)
        if cached is None:
            cached = caller_of(authorization)
            if len(self._callers) > 64:
                self._callers.clear()
            self._callers[authorization] = cached
        return cached


def caller_of(authorization: str) -> tuple[str, str]:
    """(tenant, app) of an ``Authorization: Bearer`` header, the key of the caller's budgets."""
    try:
        payload = authorization.split(" ", 1)[1].split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return str(claims.get("tid") or UNKNOWN_CALLER[0]), str(
            claims.get("appid") or claims.get("azp") or UNKNOWN_CALLER[1]
        )
    except (IndexError, ValueError, AttributeError):
        return UNKNOWN_CALLER


def _below_version(path: str) -> str:
    """``/v1.0/users/1`` -> ``/users/1``."""
    parts = path.split("/", 2)
    return "/" + parts[2] if len(parts) > 2 else path


def _batch_items(request: httpx.Request) -> dict[str, tuple[BudgetClass, dict[BudgetClass, int]]] | None:
    try:
        requests = json.loads(request.content).get("requests", [])
    except (ValueError, AttributeError, httpx.RequestNotRead):
        return None
    items = {}
    for item in requests:
        url = httpx.URL("/" + str(item.get("url", "")).lstrip("/"))
        costs = request_costs(str(item.get("method", "GET")), url.path, dict(url.params))
        items[str(item.get("id", "")).lower()] = (binding_class(costs), costs)
    return items


def _summed(all_costs: list[dict[BudgetClass, int]]) -> dict[BudgetClass, int]:
    total: dict[BudgetClass, int] = {}
    for costs in all_costs:
        for budget_class, units in costs.items():
            total[budget_class] = total.get(budget_class, 0) + units
    return total


def _throttled_class(headers: dict[str, str], fallback: BudgetClass) -> BudgetClass:
    return throttled_class(headers.get(HEADER_THROTTLE_INFORMATION), headers.get(HEADER_THROTTLE_SCOPE), fallback)


def _retry_after(raw: str | None) -> float:
    value = _float(raw)
    return max(0.0, value) if value is not None else DEFAULT_RETRY_AFTER


def _float(raw: str | None) -> float | None:
    try:
        return float(raw) if raw is not None else None
    except ValueError:
        return None
