"""The daily guest-report job: what it writes where, a second run the same day, and a run that fails."""

from __future__ import annotations

from datetime import timedelta

import pytest

from adapters.memory import MemorySweepRuns
from adapters.report_blobs import MemoryReportStore
from lifecycle.jobs import BY_NAME
from lifecycle.reporting import entry
from lifecycle.reporting.files import FAILURE_TITLE
from tests.builders import memory_services
from tests.report_tenant import report_tenant


async def _tenant_with_store():
    store = MemoryReportStore()
    tenant = await report_tenant(report_store=store)
    return tenant.services, store


def test_the_job_is_declared_once_as_a_daily_timer_that_runs_after_the_nights_jobs():
    """guest-report: a timer on its own schedule setting, runnable on demand, after sweep, governance, reset."""
    job = BY_NAME["guest-report"]
    assert (job.function, job.trigger, job.schedule_setting, job.on_demand) == (
        "guest_report",
        "timer",
        "LIFECYCLE_REPORT_SCHEDULE",
        True,
    )
    hour = lambda name: tuple(int(x) for x in reversed(BY_NAME[name].default_schedule.split()[:3]))  # noqa: E731
    assert all(hour("guest-report") > hour(name) for name in ("guest-sweep", "governance", "redemption-reset"))


async def test_a_run_writes_the_dated_copy_and_latest_in_html_and_markdown_and_records_itself():
    """Four documents, HTML as HTML; latest equals the day's copy; the run is in the audit trail with its counts."""
    services, store = await _tenant_with_store()
    summary = await entry.write_daily(services)
    day = services.clock.now().date().isoformat()
    assert set(store.documents) == {"latest.html", "latest.md", f"{day}/guest-posture.html", f"{day}/guest-posture.md"}
    assert store.documents["latest.html"] == store.documents[f"{day}/guest-posture.html"]
    assert store.documents["latest.html"][0].startswith("text/html")
    assert store.documents["latest.md"][0].startswith("text/markdown")
    assert b"Lena Fischer" in store.documents["latest.html"][1]
    assert (summary["status"], summary["guests"], summary["latest"]) == ("ok", 9, "memory://reports/latest.html")
    runs = [e.details async for e in services.audit.entries() if e.action == "job.run"]
    assert [(r["job"], r["status"], r["guests"]) for r in runs] == [("guest-report", "ok", 9)]


async def test_a_second_run_the_same_day_replaces_that_days_copy_and_a_new_day_adds_one():
    """Idempotent by day: the dated copy is overwritten, not duplicated; tomorrow gets its own."""
    services, store = await _tenant_with_store()
    await entry.write_daily(services)
    await entry.write_daily(services)
    assert len(store.documents) == 4
    services.clock.advance(timedelta(days=1))  # type: ignore[attr-defined]
    await entry.write_daily(services)
    assert len([name for name in store.documents if name.endswith("/guest-posture.html")]) == 2


async def test_a_failed_run_leaves_latest_saying_so_keeps_the_dated_copies_and_raises():
    """When the report cannot be written, latest.html says when and why (never yesterday's page looking
    current), yesterday's dated copy stays, the failure is recorded and the error reaches the host."""
    services, store = await _tenant_with_store()
    await entry.write_daily(services)
    yesterday = services.clock.now().date().isoformat()
    services.clock.advance(timedelta(days=1))  # type: ignore[attr-defined]
    store.fail_on = f"{services.clock.now().date().isoformat()}/guest-posture.html"
    with pytest.raises(OSError, match="storage refused"):
        await entry.write_daily(services)
    latest = store.documents["latest.html"][1].decode()
    assert FAILURE_TITLE in latest and "storage refused" in latest
    assert f"{yesterday}/guest-posture.html" in latest and f"{yesterday}/guest-posture.html" in store.documents
    runs = [e.details async for e in services.audit.entries() if e.action == "job.run"]
    assert runs[-1]["status"] == "failed" and "storage refused" in runs[-1]["error"]


async def test_without_a_report_store_the_job_refuses_and_names_the_setting():
    """A bundle built without a store (no endpoint, no local connection string) says what to set."""
    services = memory_services(sweep_runs=MemorySweepRuns())
    with pytest.raises(RuntimeError, match="LIFECYCLE_REPORTS_ENDPOINT"):
        await entry.write_daily(services)
