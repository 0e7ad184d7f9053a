"""The guest_report timer function, called as the Functions host calls it."""

from __future__ import annotations

from azure.functions.timer import TimerRequest

import function_app
from adapters.report_blobs import MemoryReportStore
from app.bootstrap import use_services
from tests.report_tenant import report_tenant


async def test_the_timer_writes_the_report_to_the_store_even_when_it_fires_late():
    """A past-due fire still writes today's report (latest and the dated copy), as an on-time one does."""
    store = MemoryReportStore()
    tenant = await report_tenant(report_store=store)
    with use_services(tenant.services):
        await function_app.guest_report(TimerRequest(past_due=True))
    day = tenant.services.clock.now().date().isoformat()
    assert {"latest.html", f"{day}/guest-posture.html"} <= set(store.documents)
    assert b"Tom Okafor" in store.documents["latest.html"][1]
