"""Table queries keep paging through empty pages that carry a continuation token.

The service returns such pages when a query crosses a partition boundary or hits its time limit;
Azurite never does, so a loopback server speaking the Table query protocol serves them here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from azure.data.tables.aio import TableServiceClient

from adapters.tables import TableState
from tenantsim.stack import azurite_connection_string

PREFIX = "paging"
TABLE = f"{PREFIX}guests"  # the guest ledger table for that prefix


def guest_entity(number: int) -> dict[str, Any]:
    return {
        "odata.etag": f"W/\"datetime'2026-03-01T00%3A00%3A0{number}Z'\"",
        "PartitionKey": "07",
        "RowKey": f"guest-{number}",
        "objectId": f"guest-{number}",
        "email": f"g{number}@contoso.com",
        "partner": "contoso",
        "state": "active",
        "history": "[]",
    }


# Each page: (entities, the continuation it hands out). Two empty pages sit between the real ones.
PAGES: list[tuple[list[dict[str, Any]], str | None]] = [
    ([guest_entity(1)], "p1"),
    ([], "p2"),
    ([], "p3"),
    ([guest_entity(2), guest_entity(3)], None),
]


@pytest.fixture
async def paging_server() -> AsyncIterator[tuple[int, list[str | None]]]:
    asked: list[str | None] = []

    async def query(request: web.Request) -> web.Response:
        token = request.query.get("NextPartitionKey")
        asked.append(token)
        index = 0 if token is None else int(token[1:])
        entities, continuation = PAGES[index]
        headers = {"x-ms-version": "2019-02-02"}
        if continuation is not None:
            headers |= {"x-ms-continuation-NextPartitionKey": continuation, "x-ms-continuation-NextRowKey": "r"}
        body = {"odata.metadata": f"http://127.0.0.1/devstoreaccount1/$metadata#{TABLE}", "value": entities}
        return web.json_response(
            body, headers=headers, content_type="application/json;odata=minimalmetadata;streaming=true"
        )

    app = web.Application()
    app.router.add_get(f"/devstoreaccount1/{TABLE}()", query)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield port, asked
    finally:
        await runner.cleanup()


async def test_listing_continues_over_empty_pages(paging_server: tuple[int, list[str | None]]) -> None:
    """all() yields the entities after two empty pages, following every continuation token."""
    port, asked = paging_server
    service = TableServiceClient.from_connection_string(azurite_connection_string(port, port, port))
    state = TableState.for_service(service, PREFIX)
    try:
        ids = [record.object_id async for record in state.guests.all()]
    finally:
        await state.close()
    assert ids == ["guest-1", "guest-2", "guest-3"]
    assert asked == [None, "p1", "p2", "p3"]
