"""A monotonic clock that moves only when a test moves it (the Graph budget reads seconds, not datetimes)."""

from __future__ import annotations


class MonotonicClock:
    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now
