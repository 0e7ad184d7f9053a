"""Translate SDK and transport failures into the product's exceptions (lifecycle.errors)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import TypeVar

import httpx
from kiota_abstractions.api_error import APIError
from msgraph.generated.models.o_data_errors.o_data_error import ODataError

from lifecycle.errors import (
    AuthenticationError,
    BadRequestError,
    ConflictError,
    GraphError,
    NotFoundError,
    PermissionDeniedError,
    ThrottledError,
    TransientGraphError,
)

T = TypeVar("T")
DEFAULT_RETRY_AFTER = 2.0
CONFLICT_CODES = {"Conflict", "ObjectConflict", "Request_MultipleObjectsWithSameKeyValue"}


def map_graph_error(exc: BaseException) -> GraphError:
    if isinstance(exc, GraphError):
        return exc
    if isinstance(exc, httpx.TransportError):
        return TransientGraphError(f"transport failure talking to Graph: {type(exc).__name__}: {exc}")
    if not isinstance(exc, APIError):
        raise TypeError(f"not a Graph failure: {exc!r}") from exc

    code, message, request_id = _odata_details(exc)
    return mapped_error(exc.response_status_code, dict(exc.response_headers or {}), code, message, request_id)


def error_of_response(status: int, headers: dict[str, str], body: bytes) -> GraphError:
    """A Graph error answer read straight off the wire (graph.raw's direct requests): the same mapping."""
    code, message, request_id = None, body.decode("utf-8", "replace")[:500], None
    try:
        error = (json.loads(body) or {}).get("error") if body else None
    except ValueError:
        error = None
    if isinstance(error, dict):
        inner = error.get("innerError") or error.get("innererror") or {}
        code, message = error.get("code"), str(error.get("message") or "")
        request_id = inner.get("request-id") if isinstance(inner, dict) else None
    return mapped_error(status, headers, code, message, request_id)


def mapped_error(
    status: int | None, raw_headers: dict[str, object], code: str | None, message: str, request_id: str | None
) -> GraphError:
    headers = {k.lower(): v for k, v in raw_headers.items()}
    request_id = request_id or _first(headers.get("request-id"))
    kwargs = {"status": status, "code": code, "request_id": request_id}
    text = f"Graph answered {status} {code or ''}: {message}".strip()

    if status == 429:
        return ThrottledError(text, retry_after=_retry_after(headers), **kwargs)
    if status in (500, 502, 503, 504) or status is None:
        return TransientGraphError(text, retry_after=_retry_after(headers), **kwargs)
    if status == 401:
        return AuthenticationError(text, **kwargs)
    if status == 403:
        return PermissionDeniedError(text, **kwargs)
    if status == 404:
        return NotFoundError(text, **kwargs)
    if status == 409 or code in CONFLICT_CODES:
        return ConflictError(text, **kwargs)
    if status == 400:
        return BadRequestError(text, **kwargs)
    return GraphError(text, **kwargs)


def _odata_details(exc: APIError) -> tuple[str | None, str, str | None]:
    if isinstance(exc, ODataError) and exc.error is not None:
        inner = exc.error.inner_error
        return exc.error.code, exc.error.message or "", inner.request_id if inner else None
    return None, exc.message or str(exc), None


def _retry_after(headers: dict[str, object]) -> float:
    raw = _first(headers.get("retry-after"))
    try:
        return max(0.0, float(raw)) if raw is not None else DEFAULT_RETRY_AFTER
    except ValueError:
        return DEFAULT_RETRY_AFTER


def _first(value: object) -> str | None:
    if isinstance(value, list | tuple | set):
        return str(next(iter(value))) if value else None
    return str(value) if value is not None else None


async def graph_call(operation: Callable[[], Awaitable[T]]) -> T:
    try:
        return await operation()
    except Exception as exc:  # every SDK/transport failure leaves as a lifecycle.errors.GraphError
        try:
            mapped = map_graph_error(exc)
        except TypeError:
            raise exc from None
        raise mapped from exc
