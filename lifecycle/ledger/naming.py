"""Who a decision touches, by name: the guests behind a plan's rows, the work items an operator's words
name (a key, a ticket id, an email or an object id), the dead letters a replay or purge would take."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from lifecycle.dates import shown_end
from lifecycle.jobs import CONSUMED_QUEUES
from lifecycle.ledger.operations import Selector
from lifecycle.services import Services

GUEST_COLUMNS = ("objectId", "displayName", "mail", "partner", "sponsor", "rule", "dueDate")
_NAME_SELECT = ("id", "displayName", "mail", "userType")


async def name_guests(services: Services, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``rows`` (each with an ``objectId``) with the guest's display name, mail, partner, sponsor and due day.

    Bulk reads only: the guest ledger once, then the directory's lean guest pages until every id is named
    (never one Graph call per guest). What the row already says (the plan's partner, rule) wins; a guest
    neither read knows keeps its object id and empty names.
    """
    wanted = {str(r["objectId"]) for r in rows if r.get("objectId")}
    records = {}
    if wanted:
        async for record in services.guests.all():
            if record.object_id in wanted:
                records[record.object_id] = record
    names: dict[str, Any] = {}
    reads = services.directory  # the Directory port lists guests page by page too
    if wanted:
        async for page in reads.list_guests(_NAME_SELECT):
            names.update({u.id: u for u in page if u.id in wanted})
            if len(names) == len(wanted):
                break
    named = []
    for row in rows:
        object_id = str(row.get("objectId") or "")
        record, user = records.get(object_id), names.get(object_id)
        due = row.get("dueDate") or (record.end_date.isoformat() if record and record.end_date else None)
        named.append(
            {
                **row,
                "displayName": row.get("displayName") or (user.display_name if user else None),
                "mail": row.get("mail") or (user.mail if user else None) or (record.email if record else None),
                "partner": row.get("partner") or (record.partner if record else None),
                "sponsor": row.get("sponsor") or (record.sponsor if record else None),
                "dueDate": shown_end(datetime.fromisoformat(due)) if due else None,
            }
        )
    return named


async def resolve_keys(services: Services, wanted: str) -> list[str]:
    """The work-item keys ``wanted`` names: a key as stored, a ticket id, an email or a guest's object id.

    An email or an object id is looked up in the guest ledger (its ticket) and among the work items (the
    ticket an onboarding that never made a guest carried); the keys come back in a stable order.
    """
    text = wanted.strip()
    if await services.work_items.get(text) is not None:
        return [text]
    if await services.work_items.get(f"ticket:{text}") is not None:
        return [f"ticket:{text}"]
    lowered = text.lower()
    by_mail = "@" in text
    keys: set[str] = set()
    async for record in services.guests.all():
        if (by_mail and record.email.lower() == lowered) or record.object_id.lower() == lowered:
            tickets = {record.ticket_id, *(str(h["ticket"]) for h in record.history if h.get("ticket"))}
            keys.update(f"ticket:{t}" for t in tickets if t)
    async for item in services.work_items.query():
        ticket = item.result.get("ticket")
        ticket = _ticket_of(ticket.encode()) if isinstance(ticket, str) else ticket or {}
        mail = str(ticket.get("email") or item.result.get("email") or "").lower()
        object_id = str(item.result.get("objectId") or "").lower()
        if (by_mail and mail == lowered) or (not by_mail and object_id == lowered):
            keys.add(item.key)
    if by_mail:  # a ticket that failed before it made a guest says its address only in its message
        for logical in CONSUMED_QUEUES:
            for message in await services.transport.peek_dead_letters(services.settings.queue_name(logical), 100):
                if message.key and str(_ticket_of(message.body).get("email") or "").lower() == lowered:
                    keys.add(message.key)
    return sorted(keys)


async def dead_letter_rows(services: Services, logical_queue: str, selector: Selector) -> list[dict[str, Any]]:
    """What a replay or purge would touch, before it does: each selected dead letter with its ticket's guest."""
    queue = services.settings.queue_name(logical_queue)
    rows = []
    for message in await services.transport.peek_dead_letters(queue, 100):
        if not selector.matches_message(message):
            continue
        ticket = _ticket_of(message.body)
        rows.append(
            {
                "key": message.key or f"message:{message.message_id}",
                "messageId": message.message_id,
                "kind": message.kind or ticket.get("kind"),
                "mail": ticket.get("email"),
                "displayName": ticket.get("displayName"),
                "partner": ticket.get("partner"),
                "sponsor": ticket.get("sponsor"),
                "dueDate": ticket.get("endDate"),
                "reason": message.dead_letter_reason,
            }
        )
    return rows


def _ticket_of(body: bytes) -> dict[str, Any]:
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return {}
    return document if isinstance(document, dict) else {}
