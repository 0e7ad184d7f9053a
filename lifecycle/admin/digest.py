"""The digest of a plan: what the operator saw and confirmed, so that apply acts only on that same plan."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any


def plan_digest(command: str, args: dict[str, Any], rows: Sequence[dict[str, Any]] | None) -> str:
    """sha256 over the command, its normalised arguments and every row of its list of changes.

    Rows are compared whole (names, reasons, message ids): a plan that differs in anything the operator was
    shown is another plan. ``None`` (a plan a guardrail refuses) has a digest of its own.
    """
    canonical = json.dumps(
        {"command": command, "args": args, "rows": rows},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()
