"""Redemption reset's entry points, for function_app.py (daily timer, ``reset-redemption`` tickets) and the CLI.

Reset's own ports are the bundle's ``ResetPorts`` (the sweep's run store, the protected group's members,
the identity-provider lookup: ``graph.tenants.GraphProviderLookup`` in Azure), built by the composition
root (app.bootstrap.compose_services).
"""

from __future__ import annotations

from typing import Any

import structlog

from lifecycle.ledger.outcomes import Outcome
from lifecycle.models import WorkItem
from lifecycle.plans import Mode
from lifecycle.reset import runs as reset_runs
from lifecycle.reset import tickets
from lifecycle.reset.ports import ProviderLookup, ResetPorts
from lifecycle.reset.runs import ResetRunError
from lifecycle.services import Services
from lifecycle.tickets import ResetRedemptionTicket

log = structlog.get_logger(__name__)


def reset_ports(services: Services) -> ResetPorts:
    """The bundle's reset ports; a bundle built without a run store has none, and reset cannot run."""
    ports = services.jobs.find(ResetPorts)
    if ports is None:
        raise RuntimeError("services carry no sweep run store; the composition root builds it")
    return ports


def lookup_for(ports: ResetPorts) -> ProviderLookup:
    if ports.lookup is None:
        raise ResetRunError("no identity-provider lookup is configured (provider_lookup); refusing to guess a provider")
    return ports.lookup


async def run_reset_detection(services: Services, mode: Mode | str, run_id: str | None = None) -> dict[str, Any]:
    """Detect (and in enforce mode brake-check and reset) the day's run; returns its summary."""
    ports = reset_ports(services)
    run = await reset_runs.run_detection(services, ports, lookup_for(ports), Mode(mode), run_id)
    return run.summary()


async def approve_reset_run(services: Services, run_id: str, approver: str) -> dict[str, Any]:
    """Release a braked run (raises ResetRunError when the run is not a braked reset run)."""
    runs = reset_ports(services).runs
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
    ports = reset_ports(services)
    if ticket.domain:
        lookup_for(ports)  # a domain ticket without a lookup is the deployment's error, not the ticket's
    return await tickets.handle(ticket, item, services, raw, fingerprint, ports)
