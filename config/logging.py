"""structlog, configured once per process and routed through stdlib logging.

The Functions Python worker forwards records from the root stdlib logger to the host, tagged with the
invocation, so structlog renders the event (JSON in production) and hands the string to stdlib logging
instead of printing it itself.

Console mode (the command line, never the Functions host) splits the same events in two: every record at the
configured level goes to a log file (JSON lines unless ``LIFECYCLE_LOG_FORMAT=console``), and only warnings and
errors reach the terminal, rendered for a person. ``configure_console`` turns it on before anything logs;
``configure_logging``, called again by the composition root with the settings, then keeps that split.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

_configured = False
# Keys whose values are credentials wherever they appear in an event (headers, settings, claims).
SECRET_KEY = re.compile(r"authorization|token|secret|password|cookie|signature|connection_?string|api_?key", re.I)
REDACTED = "[redacted]"


def _redacted(value: Any, depth: int = 0) -> Any:
    if depth > 8:
        return value
    if isinstance(value, dict):
        return {k: REDACTED if _secret(k) else _redacted(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_redacted(v, depth + 1) for v in value)
    if isinstance(value, str) and value.lower().startswith(("bearer ", "basic ")):
        return value.split(" ", 1)[0] + " " + REDACTED
    return value


def _secret(key: object) -> bool:
    return isinstance(key, str) and bool(SECRET_KEY.search(key))


def redact_secrets(logger: object, method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Every renderer's input passes here: values under credential-like keys (at any depth) and values that
    are an Authorization header are replaced, so neither JSON nor the console ever prints them."""
    for key in list(event):
        event[key] = REDACTED if _secret(key) else _redacted(event[key])
    return event


@dataclass(frozen=True)
class ConsoleLogs:
    """Where a console run's logs go: ``file`` (None: nowhere) at the settings' level, the terminal from
    ``terminal_level`` up."""

    file: Path | None
    terminal_level: str = "WARNING"


_console: ConsoleLogs | None = None
_last: tuple[bool, str] = (True, "INFO")  # the renderer (JSON or not) and level of the last configuration
# The handlers console mode installed, so that reconfiguring replaces them instead of adding more.
_console_handlers: list[logging.Handler] = []


class _LazyFileHandler(logging.FileHandler):
    """A file handler that creates its folder (and the file) only when the first record arrives: a command
    that logs nothing leaves nothing behind."""

    def _open(self):  # type: ignore[no-untyped-def]
        Path(self.baseFilename).parent.mkdir(parents=True, exist_ok=True)
        return super()._open()


class _CurrentStderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time: while a progress bar is drawn, rich swaps in a proxy
    that prints the line above the bar instead of through it."""

    @property  # type: ignore[override]
    def stream(self):  # type: ignore[no-untyped-def]
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # type: ignore[no-untyped-def]
        pass


def configure_console(logs: ConsoleLogs, *, json: bool | None = None, level: str | None = None) -> None:
    """Console mode for the rest of the process: logs to ``logs.file``, only ``logs.terminal_level`` and up on
    stderr. The composition root's later ``configure_logging`` call keeps this split and sets the file's level;
    ``json`` and ``level`` left out keep what the last configuration chose."""
    global _console
    _console = logs
    configure_logging(json=_last[0] if json is None else json, level=level or _last[1])


def console_logs() -> ConsoleLogs | None:
    """The console split in force, or None (the Functions host, the default)."""
    return _console


def _shared_processors() -> list[Any]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        redact_secrets,
    ]


def _console_renderer(colors: bool) -> Any:
    # Rich tracebacks render frame locals by default; a caller's locals can hold its Authorization header.
    return structlog.dev.ConsoleRenderer(
        colors=colors, exception_formatter=structlog.dev.RichTracebackFormatter(show_locals=False)
    )


def _json_renderers() -> list[Any]:
    # Tracebacks as data, without frame locals: locals can hold tokens and personal data.
    return [
        structlog.processors.ExceptionRenderer(structlog.tracebacks.ExceptionDictTransformer(show_locals=False)),
        structlog.processors.JSONRenderer(),
    ]


def _configure_split(logs: ConsoleLogs, *, json: bool, level: str) -> None:
    """Console mode: structlog hands the event dict to stdlib, and each handler renders it its own way."""
    structlog.configure(
        processors=[*_shared_processors(), structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    root = logging.getLogger()
    for handler in _console_handlers:
        root.removeHandler(handler)
        handler.close()
    _console_handlers.clear()
    # Records from plain stdlib loggers (the SDKs) get the same fields before they are rendered.
    foreign = _shared_processors()
    terminal = _CurrentStderr()
    terminal.setLevel(logs.terminal_level)
    terminal.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                _console_renderer(colors=sys.stderr.isatty()),
            ],
            foreign_pre_chain=foreign,
        )
    )
    _console_handlers.append(terminal)
    if logs.file is not None:
        into_file = _LazyFileHandler(logs.file, encoding="utf-8", delay=True)
        into_file.setLevel(level)
        rendered = _json_renderers() if json else [_console_renderer(colors=False)]
        into_file.setFormatter(
            structlog.stdlib.ProcessorFormatter(
                processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *rendered],
                foreign_pre_chain=foreign,
            )
        )
        _console_handlers.append(into_file)
    for handler in _console_handlers:
        root.addHandler(handler)
    # The root lets through what either handler wants; each handler filters for itself.
    lowest = min(logging.getLevelName(level), logging.getLevelName(logs.terminal_level))
    root.setLevel(lowest if logs.file is not None else logging.getLevelName(logs.terminal_level))
    for noisy in ("azure", "httpx", "httpcore", "uvicorn.access", "msal"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))


def configure_logging(*, json: bool = True, level: str = "INFO") -> None:
    global _configured, _last
    _last = (json, level)
    if _console is not None:
        _configure_split(_console, json=json, level=level)
        _configured = True
        return
    renderer = _json_renderers() if json else [_console_renderer(colors=sys.stderr.isatty())]
    structlog.configure(
        processors=[*_shared_processors(), *renderer],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    root = logging.getLogger()
    root.setLevel(level)
    if not _configured and not root.handlers:
        # Outside the Functions host (CLI, local worker) nothing has installed a handler yet.
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        root.addHandler(handler)
    for noisy in ("azure", "httpx", "httpcore", "uvicorn.access", "msal"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
    _configured = True
