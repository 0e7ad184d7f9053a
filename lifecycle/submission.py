"""Putting tickets on a queue: what a ticketing system does, for local runs and bulk tools."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lifecycle.models import OutboundMessage
from lifecycle.services import Services
from lifecycle.work import fingerprint_of


def read_documents(path: Path) -> list[Any]:
    text = path.read_text(encoding="utf-8").strip()
    if text.startswith("["):
        return list(json.loads(text))
    if text.startswith("{") and "\n{" not in text:
        return [json.loads(text)]
    return [json.loads(line) for line in text.splitlines() if line.strip() and not line.lstrip().startswith("//")]


def ticket_message(document: Any) -> OutboundMessage:
    body = json.dumps(document, separators=(",", ":")).encode()
    ticket_id = document.get("ticketId") if isinstance(document, dict) else None
    key = f"ticket:{ticket_id}" if isinstance(ticket_id, str) else f"body:{fingerprint_of(body)}"
    return OutboundMessage(body=body, message_id=f"{key}|{fingerprint_of(body)[:12]}"[:128], key=key, kind="ticket")


async def submit_documents(services: Services, logical_queue: str, documents: list[Any]) -> int:
    messages = [ticket_message(d) for d in documents]
    await services.transport.send(services.settings.queue_name(logical_queue), messages)
    return len(messages)
