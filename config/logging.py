"""structlog, configured once per process and routed through stdlib logging.

The Functions Python worker forwards records from the root stdlib logger to the host, tagged with the
invocation, so structlog renders the event (JSON in production) and hands the string to stdlib logging
instead of printing it itself.
"""

from __future__ import annotations

import logging
import sys

import structlog

_configured = False


def configure_logging(*, json: bool = True, level: str = "INFO") -> None:
    global _configured
    shared = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
    ]
    renderer = (
        [
            # Tracebacks as data, without frame locals: locals can hold tokens and personal data.
            structlog.processors.ExceptionRenderer(structlog.tracebacks.ExceptionDictTransformer(show_locals=False)),
            structlog.processors.JSONRenderer(),
        ]
        if json
        else [structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())]
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
