"""graph.raw's direct requests: onto the Graph client's own transport without the SDK's middleware, with the
same token, origin check and error mapping as the SDK's path."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from azure.core.credentials import AccessToken
from kiota_abstractions.method import Method

from graph.client import build_graph_client
from graph.origin import UntrustedLinkError
from graph.raw import RawGraph
from lifecycle.errors import BadRequestError, NotFoundError, ThrottledError, TransientGraphError

BASE = "http://127.0.0.1:8123/v1.0"


class _Credential:
    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken("app-token", 4_102_444_800)


def _raw(answer) -> tuple[RawGraph, list[httpx.Request]]:
    sent: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return answer(request)

    client = build_graph_client(credential=_Credential(), base_url=BASE, transport=httpx.MockTransport(record))
    return RawGraph(client), sent


async def test_a_request_carries_the_token_a_request_id_and_its_query_names_as_graph_documents_them() -> None:
    raw, sent = _raw(lambda request: httpx.Response(200, json={"id": "u1"}))
    answer = await raw.send(Method.PATCH, f"{BASE}/users/u1?%24select=id", {"accountEnabled": False})

    assert answer == {"id": "u1"}
    [request] = sent
    assert str(request.url) == f"{BASE}/users/u1?$select=id"
    assert request.headers["authorization"] == "Bearer app-token"
    assert request.headers["content-type"] == "application/json" and request.content == b'{"accountEnabled": false}'
    assert request.headers["client-request-id"]


async def test_no_content_is_none() -> None:
    raw, _ = _raw(lambda request: httpx.Response(204))
    assert await raw.send(Method.DELETE, f"{BASE}/users/u1") is None


@pytest.mark.parametrize(
    ("answer", "error", "code"),
    [
        (
            httpx.Response(404, json={"error": {"code": "Request_ResourceNotFound", "message": "gone"}}),
            NotFoundError,
            "Request_ResourceNotFound",
        ),
        (
            httpx.Response(400, json={"error": {"code": "Request_BadRequest", "message": "no"}}),
            BadRequestError,
            "Request_BadRequest",
        ),
        (httpx.Response(503, text="upstream down"), TransientGraphError, None),
    ],
)
async def test_an_error_answer_becomes_the_products_error_with_graphs_code(answer, error, code) -> None:
    raw, _ = _raw(lambda request: answer)
    with pytest.raises(error) as raised:
        await raw.send(Method.GET, f"{BASE}/users/u1")
    assert raised.value.code == code and raised.value.status == answer.status_code


async def test_a_429_keeps_its_retry_after_and_request_id() -> None:
    refusal = httpx.Response(
        429,
        headers={"Retry-After": "7", "request-id": "r-1"},
        json={"error": {"code": "TooManyRequests", "message": "slow down"}},
    )
    raw, _ = _raw(lambda request: refusal)
    with pytest.raises(ThrottledError) as raised:
        await raw.send(Method.POST, f"{BASE}/invitations", {})
    assert raised.value.retry_after == 7.0 and raised.value.request_id == "r-1"


async def test_a_url_off_the_graph_origin_is_refused_before_anything_is_sent() -> None:
    raw, sent = _raw(lambda request: httpx.Response(200, json={}))
    with pytest.raises(UntrustedLinkError):
        await raw.send(Method.GET, "http://127.0.0.1:9999/v1.0/users")
    assert sent == []
