"""Governance's entry points for function_app.py (the daily timer) and the CLI.

The Graph gateway is the bundle's ``GovernancePorts.graph`` (graph.governance.GraphGovernance in Azure and
on a local stack, a fake in tests); the composition root builds it, the core never does.
"""

from __future__ import annotations

from typing import Any

import structlog

from lifecycle.governance.job import Mode, run_governance
from lifecycle.governance.ports import GovernancePorts
from lifecycle.services import Services

log = structlog.get_logger(__name__)


def governance_ports(services: Services) -> GovernancePorts:
    ports = services.jobs.find(GovernancePorts)
    if ports is None:
        raise RuntimeError("services carry no governance_graph; the composition root must attach GraphGovernance")
    return ports


def scheduled_mode(services: Services) -> Mode:
    """Enforce when the app setting (LIFECYCLE_GOVERNANCE_MODE) or the desired-state file asks for it."""
    asked = (services.settings.governance_mode, services.desired.governance.scheduled_mode)
    return "enforce" if "enforce" in asked else "plan"


async def run_with_services(
    services: Services, mode: Mode, approved_recreates: frozenset[str] = frozenset()
) -> dict[str, Any]:
    """The timer never approves a review recreate; an operator does, per review key, from the CLI."""
    return await run_governance(
        governance_ports(services).graph,
        desired=services.desired,
        audit=services.audit,
        clock=services.clock,
        mode=mode,
        approved_recreates=approved_recreates,
    )


async def on_timer(services: Services, past_due: bool) -> dict[str, Any]:
    if past_due:
        log.warning("governance.timer.past-due")
    return await run_with_services(services, scheduled_mode(services))
