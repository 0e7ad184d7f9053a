"""structlog, configured once per process and routed through stdlib logging.

The Functions Python worker forwards records from the root stdlib logger to the host, tagged with the
invocation, so structlog renders the event (JSON in production) and hands the string to stdlib logging
instead of printing it itself.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
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


def configure_logging(*, json: bool = True, level: str = "INFO") -> None:
    global _configured
    shared = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        redact_secrets,
    ]
    renderer = (
        [
            # Tracebacks as data, without frame locals: locals can hold tokens and personal data.
            structlog.processors.ExceptionRenderer(structlog.tracebacks.ExceptionDictTransformer(show_locals=False)),
            structlog.processors.JSONRenderer(),
        ]
        if json
        else [
            # Rich tracebacks render frame locals by default; a caller's locals can hold its Authorization header.
            structlog.dev.ConsoleRenderer(
                colors=sys.stderr.isatty(),
                exception_formatter=structlog.dev.RichTracebackFormatter(show_locals=False),
            )
        ]
    )
    structlog.configure(
        processors=[*shared, *renderer],
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
