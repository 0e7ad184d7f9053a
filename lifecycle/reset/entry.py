"""Redemption reset's entry points, for function_app.py (daily timer, ``reset-redemption`` tickets) and the CLI.

The run store is the sweep's (``lifecycle.sweep.entry.runs_for``). The provider lookup is taken from
``services.provider_lookup`` (bootstrap attaches ``graph.tenants.GraphProviderLookup``), or from the
directory itself when it answers the lookup's questions.
"""

from __future__ import annotations

from typing import Any

import structlog

from lifecycle.ledger.outcomes import Outcome
from lifecycle.models import WorkItem
from lifecycle.plans import Mode
from lifecycle.reset import runs as reset_runs
from lifecycle.reset import tickets
from lifecycle.reset.planner import BLOCKED_SKIP
from lifecycle.reset.ports import ProviderLookup
from lifecycle.reset.runs import ResetRunError
from lifecycle.services import Services
from lifecycle.sweep.entry import runs_for
from lifecycle.tickets import ResetRedemptionTicket

log = structlog.get_logger(__name__)


def use_lookup(services: Services, lookup: ProviderLookup) -> Services:
    services.provider_lookup = lookup  # type: ignore[attr-defined]
    return services


def lookup_for(services: Services) -> ProviderLookup:
    attached = getattr(services, "provider_lookup", None)
    if isinstance(attached, ProviderLookup):
        return attached
    if isinstance(services.directory, ProviderLookup):
        return services.directory
    raise ResetRunError(
        "no identity-provider lookup is configured (services.provider_lookup); refusing to guess a provider"
    )


async def run_reset_detection(services: Services, mode: Mode | str, run_id: str | None = None) -> dict[str, Any]:
    """Detect (and in enforce mode brake-check and reset) the day's run; returns its summary."""
    runs = await runs_for(services)
    run = await reset_runs.run_detection(services, runs, lookup_for(services), Mode(mode), run_id)
    return run.summary()


async def approve_reset_run(services: Services, run_id: str, approver: str) -> dict[str, Any]:
    """Release a braked run (raises ResetRunError when the run is not a braked reset run)."""
    runs = await runs_for(services)
    return (await reset_runs.approve(services, runs, run_id, approver)).summary()


async def on_timer(services: Services, past_due: bool) -> dict[str, Any]:
    if past_due:
        log.warning("reset.timer.past-due")
    # Switched off (no User.ReadWrite.All): the daily run still plans, so the audit shows who would be reset.
    mode = services.settings.reset_mode if services.settings.reset_enabled else Mode.PLAN
    summary = await run_reset_detection(services, mode)
    log.info("reset.run", **{k: summary[k] for k in ("runId", "mode", "status", "totalGuests", "dispatched")})
    return summary


async def handle_reset_ticket(
    ticket: ResetRedemptionTicket, item: WorkItem, services: Services, raw: bytes, fingerprint: str
) -> Outcome:
    """The ``reset-redemption`` ticket handler, same shape as lifecycle.onboarding.guest_tickets' handlers."""
    runs = await runs_for(services)
    lookup = lookup_for(services) if ticket.domain else None
    return await tickets.handle(ticket, item, services, raw, fingerprint, runs, lookup)


def format_summary(summary: dict[str, Any]) -> str:
    lines = [
        f"redemption reset {summary['runId']} ({summary['mode']}): {summary['status']}",
        f"  partner guests examined: {summary['totalGuests']}   reset: {summary['dispatched']}",
    ]
    lines += [f"    {name:<40} {count:>7}" for name, count in summary["actions"].items()]
    if summary["skipped"]:
        lines.append("  left alone:")
        lines += [f"    {name:<40} {count:>7}" for name, count in summary["skipped"].items()]
    if blocked := summary["skipped"].get(BLOCKED_SKIP):
        lines.append(
            f"  {blocked} guest(s) not reset: their domain's new Entra tenant is not allowed inbound by the"
            " desired state; set the partner's tenantId, apply policy drift, and run again"
        )
    if summary["brake"]["tripped"]:
        lines.append(f"  brake: TRIPPED ({summary['brake']['reason']})")
    if summary["reason"]:
        lines.append(f"  {summary['reason']}")
    return "\n".join(lines)
