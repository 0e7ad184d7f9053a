"""Local runs of a redemption reset (the command line, `make run`): the run, then the local worker over the
`guest-actions` queue it fanned out to, as the Functions trigger works it in Azure, then where the resets stand.

Apart from lifecycle.reset.entry because the local worker is the sweep's (one queue, two message kinds), and
the sweep's entry routes a reset message back to the reset's: this module is the one that sees both.
"""

from __future__ import annotations

from typing import Any

from lifecycle.plans import Mode
from lifecycle.reset import fanout
from lifecycle.reset.entry import approve_reset_run, reset_ports, resume_reset_run, run_reset_detection
from lifecycle.services import Services
from lifecycle.sweep.entry import drain_actions


async def _worked(services: Services, summary: dict[str, Any]) -> dict[str, Any]:
    """Local runs: when the run was fanned out, the local worker works `guest-actions` (the Functions trigger
    does it in Azure), then the run is settled from its work items."""
    if summary["status"] != "dispatched" or not summary["dispatched"]:
        return summary
    worker = await drain_actions(services)
    return {**await fanout.settle(services, reset_ports(services).runs, summary["runId"]), "worker": worker}


async def run_locally(services: Services, mode: Mode | str, run_id: str | None = None) -> dict[str, Any]:
    """``run redemption-reset``: the run, then (when it was fanned out) the local worker over its resets."""
    return await _worked(services, await run_reset_detection(services, mode, run_id))


async def approve_locally(services: Services, run_id: str, approver: str) -> dict[str, Any]:
    return await _worked(services, await approve_reset_run(services, run_id, approver))


async def resume_locally(services: Services, run_id: str, operator: str) -> dict[str, Any]:
    """``resume``: the halted run dispatched again, then the local worker over its resets."""
    return await _worked(services, await resume_reset_run(services, run_id, operator))
