"""Putting tickets on a queue: what a ticketing system does, for local runs and bulk tools."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lifecycle import progress
from lifecycle.errors import InputError
from lifecycle.ledger.work import fingerprint_of
from lifecycle.models import OutboundMessage
from lifecycle.services import Services


def read_documents(path: Path) -> list[Any]:
    """The tickets in ``path``: a JSON object, an array of them, or JSON lines (``//`` lines are comments).

    A file that is none of these raises InputError naming the file, the line and the column."""
    try:
        text = path.read_text(encoding="utf-8").strip()
    except UnicodeDecodeError as exc:
        raise InputError(f"{path.name} is not UTF-8 text (byte {exc.start})") from None
    try:
        if text.startswith("["):
            return list(json.loads(text))
        if text.startswith("{") and "\n{" not in text:
            return [json.loads(text)]
        return [
            _line(line, number)
            for number, line in enumerate(text.splitlines(), start=1)
            if line.strip() and not line.lstrip().startswith("//")
        ]
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{path.name} is not JSON (an object, an array or JSON lines): {exc.msg} at line {exc.lineno} "
            f"column {exc.colno}"
        ) from None
    except _LineError as exc:
        raise InputError(
            f"{path.name} line {exc.number} is not JSON: {exc.error.msg} at column {exc.error.colno}"
        ) from None


class _LineError(Exception):
    def __init__(self, number: int, error: json.JSONDecodeError) -> None:
        super().__init__(str(error))
        self.number, self.error = number, error


def _line(line: str, number: int) -> Any:
    try:
        return json.loads(line)
    except json.JSONDecodeError as exc:
        raise _LineError(number, exc) from None


def ticket_message(document: Any) -> OutboundMessage:
    body = json.dumps(document, separators=(",", ":")).encode()
    ticket_id = document.get("ticketId") if isinstance(document, dict) else None
    key = f"ticket:{ticket_id}" if isinstance(ticket_id, str) else f"body:{fingerprint_of(body)}"
    return OutboundMessage(body=body, message_id=f"{key}|{fingerprint_of(body)[:12]}"[:128], key=key, kind="ticket")


SEND_CHUNK = 100  # tickets per send: the progress moves, and an interrupted run says how many went out


async def submit_documents(services: Services, logical_queue: str, documents: list[Any]) -> int:
    messages = [ticket_message(d) for d in documents]
    queue = services.settings.queue_name(logical_queue)
    with progress.step(f"sending tickets to {logical_queue}", total=len(messages), unit="ticket") as sent:
        for start in range(0, len(messages), SEND_CHUNK):
            chunk = messages[start : start + SEND_CHUNK]
            await services.transport.send(queue, chunk)
            sent.advance(len(chunk))
    return len(messages)
