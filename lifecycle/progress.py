"""How far long work has got, for whoever watches: a bar on the operator's terminal, nothing in the host.

The core reports steps (planning a sweep, fanning its actions out, working a queue, sending tickets) through
``step``; the watcher in force for the current context receives them. By default nobody watches and the calls
cost nothing. The command line installs a watcher around a command (``watching``) that draws the progress
and, when the operator presses Ctrl-C, can say what was done and what was left.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol, TypeVar

T = TypeVar("T")


@dataclass
class Step:
    """One piece of long work: ``done`` of ``total`` ``unit``s (``total`` None while it is not known)."""

    label: str
    total: int | None = None
    unit: str = "item"
    done: int = 0
    finished: bool = False
    # The run a step belongs to (a sweep or reset run id): resuming names it.
    run_id: str | None = None

    @property
    def left(self) -> int | None:
        return None if self.total is None else max(self.total - self.done, 0)

    def advance(self, count: int = 1) -> None:
        self.done += count
        if self.total is not None and self.done > self.total:
            self.total = self.done  # more arrived than counted at the start (retries, late messages)
        _current().updated(self)

    def each(self, items: Iterable[T]) -> Iterator[T]:
        """``items`` one by one, counting each once the loop's body is done with it (``continue`` included)."""
        for item in items:
            yield item
            self.advance()

    def grow(self, total: int) -> None:
        """The total became known (or larger)."""
        self.total = max(total, self.done)
        _current().updated(self)


class Watcher(Protocol):
    def started(self, step: Step) -> None: ...
    def updated(self, step: Step) -> None: ...
    def ended(self, step: Step) -> None: ...


class _Nobody:
    def started(self, step: Step) -> None:
        pass

    def updated(self, step: Step) -> None:
        pass

    def ended(self, step: Step) -> None:
        pass


_NOBODY = _Nobody()
_watcher: contextvars.ContextVar[Watcher | None] = contextvars.ContextVar("lifecycle_progress", default=None)


def _current() -> Watcher:
    return _watcher.get() or _NOBODY


def watched() -> bool:
    """Whether anybody watches: work that would cost a call only to size a bar (a queue's depth) asks first."""
    return _watcher.get() is not None


@contextlib.contextmanager
def step(label: str, total: int | None = None, unit: str = "item", run_id: str | None = None) -> Iterator[Step]:
    """A step of long work; ``finished`` is set only when the block ends without an exception, so an
    interrupted step reports how far it got."""
    current = Step(label, total, unit, run_id=run_id)
    watcher = _current()
    watcher.started(current)
    try:
        yield current
        current.finished = True
    finally:
        watcher.ended(current)


@contextlib.contextmanager
def watching(watcher: Watcher) -> Iterator[Watcher]:
    """``watcher`` receives the steps of this context (and of the asyncio tasks started from it)."""
    token = _watcher.set(watcher)
    try:
        yield watcher
    finally:
        _watcher.reset(token)
