"""What `make run` shows: the product's jobs once, end to end, against the local stack."""

from __future__ import annotations

from typing import Any

from lifecycle import operations
from lifecycle import report as posture_report
from lifecycle.examples import example_tickets
from lifecycle.services import Services
from lifecycle.submission import submit_documents


async def onboarding_step(services: Services, run_onboarding) -> dict[str, Any]:
    await submit_documents(services, "onboarding", example_tickets(services.clock.now()))
    return await run_onboarding(services, wait_for_delayed_seconds=60.0)


async def status_step(services: Services) -> dict[str, Any]:
    await operations.reconcile_dead_letters(services)
    return await operations.status(services)


async def report_step(services: Services, out) -> dict[str, Any]:
    posture = await posture_report.collect(services)
    await posture_report.record_snapshot(services, posture)
    out.mkdir(parents=True, exist_ok=True)
    html_path, md_path = out / "guest-posture.html", out / "guest-posture.md"
    html_path.write_text(posture_report.to_html(posture), encoding="utf-8")
    md_path.write_text(posture_report.to_markdown(posture), encoding="utf-8")
    return {"html": str(html_path), "markdown": str(md_path), "totals": dict(posture.totals)}
