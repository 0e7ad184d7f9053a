"""Safe, reversible Table Storage keys.

PartitionKey and RowKey may not contain ``/ \\ # ?`` or control characters (U+0000-U+001F,
U+007F-U+009F) and are limited to 1 KiB. Entra guest UPNs contain ``#EXT#`` and idempotency keys are
free text, so every key goes through :func:`encode_key`. ``~`` is the escape character because it is
unreserved in URLs (the SDK puts keys into request paths); a forbidden character ``c`` becomes
``~XX`` (its code point in hex) and ``~`` itself becomes ``~7E``.
"""

from __future__ import annotations

import hashlib
import re

_ESCAPE = "~"
# Keys are compared as strings; stay well under the 1 KiB limit even for multi-byte text.
MAX_ENCODED_LENGTH = 400
_HASH_MARKER = "~~"  # never produced by escaping, so a hashed key cannot collide with a plain one
_ESCAPED = re.compile(r"~([0-9A-F]{2})")


def _must_escape(char: str) -> bool:
    code = ord(char)
    return char in "/\\#?~" or code <= 0x1F or 0x7F <= code <= 0x9F


def encode_key(key: str) -> str:
    """The Table-safe form of ``key``; reversible with :func:`decode_key` unless it had to be hashed."""
    if not key:
        raise ValueError("a table key must not be empty")
    encoded = "".join(f"{_ESCAPE}{ord(c):02X}" if _must_escape(c) else c for c in key)
    if len(encoded) <= MAX_ENCODED_LENGTH:
        return encoded
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()
    head = encoded[: MAX_ENCODED_LENGTH - len(digest) - len(_HASH_MARKER)]
    # Do not cut an escape sequence in half.
    cut = head.rfind(_ESCAPE, len(head) - 2)
    if cut != -1:
        head = head[:cut]
    return f"{head}{_HASH_MARKER}{digest}"


def is_hashed(encoded: str) -> bool:
    return _HASH_MARKER in encoded


def decode_key(encoded: str) -> str:
    if is_hashed(encoded):
        raise ValueError("a hashed key cannot be decoded; read the original from the entity")
    return _ESCAPED.sub(lambda match: chr(int(match.group(1), 16)), encoded)


def bucket_of(key: str, buckets: int = 64) -> str:
    """A stable partition bucket for ``key``, so point reads need nothing but the key."""
    return f"{int(hashlib.sha256(key.encode('utf-8')).hexdigest()[:8], 16) % buckets:02d}"
