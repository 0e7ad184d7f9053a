"""Redemption reset's entry points, for function_app.py (daily timer, ``reset-redemption`` tickets, a reset run's
messages on `guest-actions`) and the CLI.

Reset's own ports are the bundle's ``ResetPorts`` (the sweep's run store, the protected group's members,
the identity-provider lookup: ``graph.tenants.GraphProviderLookup`` in Azure), built by the composition
root (app.bootstrap.compose_services).
"""

from __future__ import annotations

from typing import Any

import structlog

from lifecycle.ledger.outcomes import Outcome
from lifecycle.models import ReceivedMessage, WorkItem
from lifecycle.plans import Mode
from lifecycle.reset import fanout, tickets
from lifecycle.reset import runs as reset_runs
from lifecycle.reset.ports import ProviderLookup, ResetPorts
from lifecycle.reset.runs import ResetRunError
from lifecycle.reset.worker import handle_reset_message
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
    """Detect (and in enforce mode brake-check and fan out) the day's run; returns its summary at once: the
    `guest-actions` worker resets the guests."""
    ports = reset_ports(services)
    run = await reset_runs.run_detection(services, ports, lookup_for(ports), Mode(mode), run_id)
    return run.summary()


async def approve_reset_run(services: Services, run_id: str, approver: str) -> dict[str, Any]:
    """Release a braked run and fan it out (raises ResetRunError when the run is not a braked reset run)."""
    runs = reset_ports(services).runs
    return (await reset_runs.approve(services, runs, run_id, approver)).summary()


async def halt_reset_run(services: Services, run_id: str, operator: str, why: str) -> dict[str, Any]:
    """Stop a dispatched run's resets (raises ResetRunError when the run is not under way)."""
    return (await reset_runs.halt(services, reset_ports(services).runs, run_id, operator, why)).summary()


async def resume_reset_run(services: Services, run_id: str, operator: str) -> dict[str, Any]:
    """Let a halted run go on: dispatched again (raises ResetRunError when it is neither halted nor under way)."""
    return (await reset_runs.resume(services, reset_ports(services).runs, run_id, operator)).summary()


async def handle_reset_action(message: ReceivedMessage, services: Services) -> Outcome:
    """One guest of a fanned-out run (a `guest-actions` message of kind ``redemption-reset``)."""
    return await handle_reset_message(message, services, reset_ports(services).runs)


async def show(services: Services, run_id: str, limit: int = 50) -> dict[str, Any] | None:
    """The run's summary, where its resets stand (``progress``) and its first ``limit`` planned guests with
    their state; None for an unknown run id."""
    from lifecycle.reset.items import items_of

    run = await reset_ports(services).runs.get(run_id)
    if run is None:
        return None
    items = sorted(await items_of(services, run_id), key=lambda i: i.key)
    listed = [
        {
            **i.result.get("planned", {}),
            "status": i.status.value,
            "outcome": i.result.get("skipped") or ("reset" if i.status.value == "done" else None),
            "error": (i.last_error or {}).get("message"),
        }
        for i in items[:limit]
    ]
    return {**await fanout.progress_summary(services, run), "plan": listed}


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
