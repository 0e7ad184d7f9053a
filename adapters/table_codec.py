"""Entity <-> dataclass mapping for the Table Storage adapters.

Datetimes are stored as UTC ``Edm.DateTime``; dicts and lists as JSON strings. A string property holds
at most 64 KiB (UTF-16), so oversized JSON is cut down in a way that keeps it valid JSON: history keeps
its newest entries, other documents keep a readable head and a marker.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

# 64 KiB per string property, counted in UTF-16 bytes; keep headroom for the marker.
MAX_PROPERTY_BYTES = 60_000


def utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment.isoformat()} cannot be stored; use an aware UTC time")
    return moment.astimezone(UTC)


def read_utc(value: Any) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise TypeError(f"expected a datetime property, got {type(value).__name__}")
    moment = (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)
    # The SDK hands back a datetime subclass; the core only ever sees plain datetimes.
    return datetime(
        moment.year,
        moment.month,
        moment.day,
        moment.hour,
        moment.minute,
        moment.second,
        moment.microsecond,
        tzinfo=UTC,
    )


def read_required_utc(value: Any) -> datetime:
    """A datetime property the adapter always writes; a row without it is a broken row, not a missing value."""
    moment = read_utc(value)
    if moment is None:
        raise TypeError("expected a datetime property, found none")
    return moment


def _size(text: str) -> int:
    return len(text.encode("utf-16-le"))


def dump_json(value: Any) -> str:
    """``value`` as JSON that fits one property; a document that does not fit is replaced by its head."""
    text = json.dumps(value, separators=(",", ":"), default=str, ensure_ascii=False)
    if _size(text) <= MAX_PROPERTY_BYTES:
        return text
    head = truncate_text(text, MAX_PROPERTY_BYTES // 2)
    return json.dumps({"truncated": True, "originalBytes": _size(text), "head": head}, ensure_ascii=False)


def dump_history(history: list[dict[str, Any]]) -> str:
    """The newest history entries that fit one property, oldest dropped first with a marker entry."""
    kept = list(history)
    dropped = 0
    while True:
        document = ([{"truncated": dropped}] if dropped else []) + kept
        text = json.dumps(document, separators=(",", ":"), default=str, ensure_ascii=False)
        if _size(text) <= MAX_PROPERTY_BYTES:
            return text
        if not kept:
            return dump_json(document)
        # Drop in chunks so a very long history does not cost one encode per entry.
        step = max(1, len(kept) // 10)
        kept = kept[step:]
        dropped += step


def load_json(text: Any, default: Any) -> Any:
    if text is None or text == "":
        return default
    return json.loads(text)


def split_text(text: str, max_bytes: int = MAX_PROPERTY_BYTES) -> list[str]:
    """``text`` in pieces that each fit one string property, for a value that must be kept whole."""
    if _size(text) <= max_bytes:
        return [text]
    pieces, start, size = [], 0, 0
    for index, char in enumerate(text):
        width = 4 if ord(char) > 0xFFFF else 2
        if size + width > max_bytes:
            pieces.append(text[start:index])
            start, size = index, 0
        size += width
    pieces.append(text[start:])
    return pieces


def truncate_text(text: str, max_bytes: int = MAX_PROPERTY_BYTES) -> str:
    if _size(text) <= max_bytes:
        return text
    marker = "...[truncated]"
    budget = (max_bytes - _size(marker)) // 2
    cut = text[:budget]
    while _size(cut) > max_bytes - _size(marker):  # characters outside the BMP take two units
        cut = cut[:-1]
    return cut + marker
