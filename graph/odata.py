"""OData helpers. Values are always quoted and escaped: user input can never widen a $filter."""

from __future__ import annotations


def quote(value: str) -> str:
    """An OData string literal: single quotes, with embedded quotes doubled."""
    if any(ord(ch) < 0x20 for ch in value):
        raise ValueError("control characters are not allowed in an OData literal")
    return "'" + value.replace("'", "''") + "'"
