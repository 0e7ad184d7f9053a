"""Raw JSON requests to Graph, with the same token, budget, connection pool and error mapping as typed calls.

Used where the SDK's models get in the way (an explicit ``null`` that a model would drop, beta resources
the v1.0 SDK has no model for, durations kiota would serialise in a form Graph refuses) and on every hot
path. A client built by graph.client carries a DirectHttp: the request goes onto the client's own transport
(graph.budget_transport over graph.pool) without kiota's request adapter and middleware: 6-9 % less CPU per
ticket or disable (bench.graph_budget_bench, one process at 64 at a time). The middleware adds nothing
these requests need: retries are off (graph.client), redirects are not followed for Graph's JSON API, and the
token comes from the same origin-bound provider. Any other client goes through its request adapter.
"""

from __future__ import annotations

import json
import re
import uuid
import weakref
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
from kiota_abstractions.authentication import AccessTokenProvider
from kiota_abstractions.method import Method
from kiota_abstractions.request_information import RequestInformation
from msgraph import GraphServiceClient
from msgraph.generated.models.o_data_errors.o_data_error import ODataError

from graph.errors import error_of_response, graph_call
from graph.origin import GraphOrigin

ERRORS: dict[str, Any] = {"XXX": ODataError}
_ENCODED_DOLLAR = re.compile(r"(^|&)%24", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class DirectHttp:
    """An httpx client on the Graph client's transport, and the token provider its request adapter uses."""

    http: httpx.AsyncClient
    tokens: AccessTokenProvider


_DIRECT: weakref.WeakKeyDictionary[GraphServiceClient, DirectHttp] = weakref.WeakKeyDictionary()


def attach_direct(client: GraphServiceClient, direct: DirectHttp) -> None:
    _DIRECT[client] = direct


def _direct_of(client: GraphServiceClient) -> DirectHttp | None:
    try:
        return _DIRECT.get(client)
    except TypeError:  # not a client graph.client built (a test's stand-in)
        return None


def _decoded_names(url: str) -> str:
    """``%24filter`` as ``$filter`` in query parameter names, as kiota's ParametersNameDecodingHandler sends
    them (the product builds queries with urlencode, which encodes the dollar)."""
    path, mark, query = url.partition("?")
    return path + mark + _ENCODED_DOLLAR.sub(r"\1$", query) if mark else url


class RawGraph:
    def __init__(self, client: GraphServiceClient) -> None:
        self._adapter = client.request_adapter
        self._direct = _direct_of(client)
        self.v1 = self._adapter.base_url.rstrip("/")
        self._origin = GraphOrigin.of(self.v1)

    async def send(self, method: Method, url: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
        if self._direct is not None:
            return await graph_call(lambda: self._send_direct(self._direct, method, url, body, headers))
        info = RequestInformation(method)
        info.url = url
        info.headers.try_add("Accept", "application/json")
        for name, value in (headers or {}).items():
            info.headers.try_add(name, value)
        if body is not None:
            info.set_stream_content(json.dumps(body).encode(), "application/json")
        raw = await graph_call(lambda: self._adapter.send_primitive_async(info, "bytes", ERRORS))
        return json.loads(raw) if raw else None

    @staticmethod
    async def _send_direct(
        direct: DirectHttp, method: Method, url: str, body: Any, headers: dict[str, str] | None
    ) -> Any:
        token = await direct.tokens.get_authorization_token(url)
        # client-request-id, as the SDK's telemetry handler sends it: what Microsoft support asks for.
        sent = {"Accept": "application/json", "client-request-id": str(uuid.uuid4()), **(headers or {})}
        if token:
            sent["Authorization"] = f"Bearer {token}"
        content = None
        if body is not None:
            content, sent["Content-Type"] = json.dumps(body).encode(), "application/json"
        response = await direct.http.request(method.value, _decoded_names(url), content=content, headers=sent)
        if response.status_code >= 300:
            raise error_of_response(response.status_code, dict(response.headers), response.content)
        return json.loads(response.content) if response.content else None

    async def collection(
        self, url: str, headers: dict[str, str] | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """Every item of a collection (the first ``limit`` when given), following @odata.nextLink; a next link is
        followed only under the Graph origin and the version root (``/v1.0``, ``/beta``) of ``url``."""
        root = "/" + urlsplit(url).path.lstrip("/").split("/", 1)[0]
        items: list[dict[str, Any]] = []
        next_url: str | None = url
        while next_url and (limit is None or len(items) < limit):
            page = await self.send(Method.GET, next_url, headers=headers) or {}
            items.extend(page.get("value") or [])
            link = page.get("@odata.nextLink")
            next_url = self._origin.check_link(link, root=root, what="@odata.nextLink") if link else None
        return items if limit is None else items[:limit]
