"""What a handler decided for one message; the entry point turns it into a settlement."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class Verdict(enum.StrEnum):
    DONE = "done"  # the work happened (or had already happened): complete the message
    HELD = "held"  # accepted but not due yet (notBefore): parked in the job ledger, complete the message
    DUPLICATE = "duplicate"  # a replay or redelivery of finished work: complete, change nothing
    REJECTED = "rejected"  # bad input or refused by policy, recorded with a reason: complete, never retry
    RETRY = "retry"  # transient failure: reschedule a copy after retry_after, complete the original
    FAILED = "failed"  # not the input's fault and not transient (e.g. a missing permission): dead-letter


@dataclass(frozen=True, slots=True)
class Outcome:
    key: str
    verdict: Verdict
    code: str = ""
    message: str = ""
    retry_after: float | None = None
    detail: dict[str, Any] = field(default_factory=dict)
