"""Access package assignment end dates for the sweep's "past end date" rule, over raw Graph JSON.

``GET /identityGovernance/entitlementManagement/assignments`` with ``$filter=state eq '...'`` and
``$expand=target`` (the documented way to see each assignment's target object id); the end is the
assignment's ``schedule.expiration.endDateTime``. Two states count: ``delivered`` (live) and ``expired``
(the end has passed; ``expiredDateTime`` stands in when the schedule carries no end). The filter spells
the enum members as the accessPackageAssignment page lists them; the list page's example writes
``'Delivered'``, so the service takes either casing, but only the members' own spelling is listed.

A guest's end is the latest end of its assignments, and it has none while a live assignment never
expires. Planning reads every assignment once, page by page as Graph serves them, and keeps only the
object id and one instant per guest that has an end; the worker reads one guest's assignments by
``$filter=target/objectId eq '...'``. Needs EntitlementManagement.Read.All (ReadWrite.All covers it).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from kiota_abstractions.method import Method
from msgraph import GraphServiceClient

from graph.odata import quote as odata_quote
from graph.raw import RawGraph

ASSIGNMENTS = "/identityGovernance/entitlementManagement/assignments"
COUNTED_STATES = ("delivered", "expired")


class GraphAssignmentExpiries:
    def __init__(self, client: GraphServiceClient, page_size: int | None = None) -> None:
        self._raw = RawGraph(client)
        self._url = f"{self._raw.v1}{ASSIGNMENTS}"
        # None: Graph chooses the page size (server-driven paging through @odata.nextLink).
        self._top = f"&$top={page_size}" if page_size else ""

    async def end_dates(self) -> dict[str, datetime]:
        ends: dict[str, datetime | _Never] = {}
        for state in COUNTED_STATES:
            async for assignment in self._stream(f"state eq '{state}'"):
                _fold(ends, assignment)
        return {object_id: end for object_id, end in ends.items() if isinstance(end, datetime)}

    async def end_date_of(self, object_id: str) -> datetime | None:
        ends: dict[str, datetime | _Never] = {}
        async for assignment in self._stream(f"target/objectId eq {odata_quote(object_id)}"):
            if assignment.get("state") in COUNTED_STATES:
                _fold(ends, assignment)
        end = ends.get(object_id)
        return end if isinstance(end, datetime) else None

    async def _stream(self, odata_filter: str) -> AsyncIterator[dict[str, Any]]:
        """Assignments matching ``odata_filter``, one Graph page held at a time."""
        url: str | None = f"{self._url}?$filter={quote(odata_filter, safe='')}&$expand=target{self._top}"
        while url:
            page = await self._raw.send(Method.GET, url) or {}
            for assignment in page.get("value") or ():
                yield assignment
            url = page.get("@odata.nextLink")


class _Never:
    """A live assignment without an end: the guest has no end date from entitlement management."""


NEVER = _Never()


def _fold(ends: dict[str, datetime | _Never], assignment: dict[str, Any]) -> None:
    """Merge one assignment into the per-guest ends: the latest end wins, and a live one without an end wins
    over all."""
    object_id = (assignment.get("target") or {}).get("objectId")
    if not object_id or ends.get(object_id) is NEVER:
        return
    end = end_of(assignment)
    if end is None:
        if assignment.get("state") == "delivered":
            ends[object_id] = NEVER
        return
    current = ends.get(object_id)
    ends[object_id] = end if not isinstance(current, datetime) else max(current, end)


def end_of(assignment: dict[str, Any]) -> datetime | None:
    """When the assignment ends or ended; None for one whose schedule never ends.

    An expired assignment ended when it expired (``expiredDateTime``), which is earlier than its schedule's
    end when an administrator removed it; a live one ends at its schedule's ``endDateTime``.
    """
    expiration = (assignment.get("schedule") or {}).get("expiration") or {}
    end = _moment(expiration.get("endDateTime"))
    if assignment.get("state") == "expired":
        return _moment(assignment.get("expiredDateTime")) or end
    return end


def _moment(value: Any) -> datetime | None:
    if not value:
        return None
    moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
