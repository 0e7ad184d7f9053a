"""The one spelling of the keys a desired-state file and a ticket give things (partners, lifecycle policies): a
lowercase slug of up to 63 characters, usable in Table keys, queue message ids and command lines as it is."""

from __future__ import annotations

import re
from collections.abc import Iterable

KEY = r"[a-z0-9][a-z0-9-]{0,62}"
KEY_PATTERN = rf"^{KEY}$"
_KEY = re.compile(KEY_PATTERN)


def bad_keys(keys: Iterable[str]) -> list[str]:
    """The keys that are not slugs, in the order given."""
    return [k for k in keys if not _KEY.match(k)]
