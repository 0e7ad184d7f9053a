"""Raw JSON through the SDK's request adapter (same auth, budget and error mapping as typed calls).

Used where the SDK's models get in the way: an explicit ``null`` ("inherit the default") that a model
would drop, beta resources the v1.0 SDK has no model for, and durations kiota would serialise in a form
Graph refuses.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from kiota_abstractions.method import Method
from kiota_abstractions.request_information import RequestInformation
from msgraph import GraphServiceClient
from msgraph.generated.models.o_data_errors.o_data_error import ODataError

from graph.errors import graph_call
from graph.origin import GraphOrigin

ERRORS: dict[str, Any] = {"XXX": ODataError}


class RawGraph:
    def __init__(self, client: GraphServiceClient) -> None:
        self._adapter = client.request_adapter
        self.v1 = self._adapter.base_url.rstrip("/")
        self._origin = GraphOrigin.of(self.v1)

    async def send(self, method: Method, url: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
        info = RequestInformation(method)
        info.url = url
        info.headers.try_add("Accept", "application/json")
        for name, value in (headers or {}).items():
            info.headers.try_add(name, value)
        if body is not None:
            info.set_stream_content(json.dumps(body).encode(), "application/json")
        raw = await graph_call(lambda: self._adapter.send_primitive_async(info, "bytes", ERRORS))
        return json.loads(raw) if raw else None

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
