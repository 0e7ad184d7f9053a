"""The daily guest-report job: collect the posture, record today's snapshot, write the report to the store.

Each run writes ``YYYY-MM-DD/guest-posture.html`` (and ``.md``) first, then ``latest.html`` and ``latest.md``:
``latest`` is never newer than a dated copy, and the day's copy is overwritten by a second run that day
(idempotent by day). A run that fails replaces ``latest.html`` with a page that says when and why and names
the last dated copy, so yesterday's report never looks current; the error is raised again so the Functions
host records a failed execution (the failed-timer alert pages on it).
"""

from __future__ import annotations

import html
from datetime import datetime, timedelta
from typing import Any

import structlog

from lifecycle import report
from lifecycle.ledger.status import record_run
from lifecycle.reporting.files import FAILURE_TITLE
from lifecycle.reporting.ports import ReportPorts, ReportStore
from lifecycle.services import Services

log = structlog.get_logger(__name__)

JOB = "guest-report"
HTML = "text/html; charset=utf-8"
MARKDOWN = "text/markdown; charset=utf-8"


def report_ports(services: Services) -> ReportPorts:
    ports = services.jobs.find(ReportPorts)
    if ports is None:
        raise RuntimeError(
            "services carry no report store: set LIFECYCLE_REPORTS_ENDPOINT (or a local tables connection string)"
        )
    return ports


def dated_names(day: datetime) -> dict[str, str]:
    stamp = day.date().isoformat()
    return {"html": f"{stamp}/guest-posture.html", "markdown": f"{stamp}/guest-posture.md"}


LATEST = {"html": "latest.html", "markdown": "latest.md"}


async def write_daily(services: Services) -> dict[str, Any]:
    """Write today's report (dated copy, then latest) and record the run; returns where they are."""
    store = report_ports(services).store
    started = services.clock.now()
    try:
        posture = await report.collect(services)
        await report.record_snapshot(services, posture)
        texts = {"html": report.to_html(posture), "markdown": report.to_markdown(posture)}
        dated = dated_names(posture.generated)
        written = {}
        for kind, name in dated.items():
            written[name] = await store.put(name, texts[kind].encode("utf-8"), HTML if kind == "html" else MARKDOWN)
        for kind, name in LATEST.items():
            written[name] = await store.put(name, texts[kind].encode("utf-8"), HTML if kind == "html" else MARKDOWN)
    except Exception as error:
        log.exception("report.failed")
        await _failure_notice(store, started, f"{type(error).__name__}: {error}")
        await record_run(services, JOB, {"status": "failed", "error": f"{type(error).__name__}: {error}"[:300]})
        raise
    summary = {
        "status": "ok",
        "guests": len(posture.guests.rows),
        "latest": written[LATEST["html"]],
        "dated": written[dated["html"]],
        **{state: count for state, count in posture.totals.items()},
    }
    await record_run(services, JOB, summary)
    log.info("report.written", guests=summary["guests"], latest=summary["latest"])
    return {**summary, "written": written}


async def _failure_notice(store: ReportStore, when: datetime, error: str) -> None:
    """latest.html says the report failed and points at yesterday's dated copy; the dated copies stay."""
    previous = dated_names(when - timedelta(days=1))["html"]
    text = (
        f"The guest-posture report of {when:%Y-%m-%d %H:%M} UTC failed: {error}. Nothing here is current; "
        f"the last report written before it is {previous} (if that day's run succeeded)."
    )
    page = (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>Guest posture report failed</title>'
        f"</head><body>\n<h1>{FAILURE_TITLE}</h1>\n<p>{html.escape(text)}</p>\n</body></html>\n"
    )
    try:
        await store.put(LATEST["html"], page.encode("utf-8"), HTML)
    except Exception:  # the store itself may be what failed: the raised error says so
        log.exception("report.failure-notice-not-written")


async def on_timer(services: Services, past_due: bool) -> dict[str, Any]:
    if past_due:
        log.warning("report.timer.past-due")
    return await write_daily(services)
