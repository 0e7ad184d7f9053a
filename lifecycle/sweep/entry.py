"""The sweep's entry points, for function_app.py (timer, `guest-actions` trigger) and the CLI.

Each takes the Services bundle and returns plain data (a run summary or an Outcome). The sweep's own
ports (run store, guest reads, protected-group members, assignment end dates) are the bundle's
``SweepPorts``, built by the composition root (app.bootstrap.compose_services).
"""

from __future__ import annotations

import weakref
from typing import Any

import structlog

from lifecycle.ledger.outcomes import Outcome
from lifecycle.models import ReceivedMessage
from lifecycle.plans import Mode
from lifecycle.ports import Clock
from lifecycle.reset.items import KIND as RESET_KIND  # a reset run's messages share the guest-actions queue
from lifecycle.runs.model import DailyRun
from lifecycle.services import Services
from lifecycle.sweep import actions, runner
from lifecycle.sweep.ports import SweepPorts

log = structlog.get_logger(__name__)

GUEST_ACTIONS_QUEUE = runner.GUEST_ACTIONS_QUEUE


_gates: weakref.WeakKeyDictionary[SweepPorts, actions.RunGate] = weakref.WeakKeyDictionary()


def sweep_ports(services: Services) -> SweepPorts:
    """The bundle's sweep ports; a bundle built without a run store has none, and the sweep cannot run."""
    ports = services.jobs.find(SweepPorts)
    if ports is None:
        raise RuntimeError("services carry no sweep run store; the composition root builds it")
    return ports


def _gate(ports: SweepPorts, clock: Clock | None = None) -> actions.RunGate:
    """One gate per bundle's ports: it caches which runs are released (for RUN_STATUS_TTL, so a halt is seen
    within it), for the worker's per-message check."""
    if ports not in _gates:
        _gates[ports] = actions.RunGate(ports, clock)
    return _gates[ports]


async def run_sweep(services: Services, mode: Mode | str, run_id: str | None = None) -> dict[str, Any]:
    """Plan (and in enforce mode brake-check and fan out) the run; returns its summary."""
    run = await runner.run_sweep(services, sweep_ports(services), Mode(mode), run_id)
    return run.summary()


async def approve(services: Services, run_id: str, approver: str) -> dict[str, Any]:
    """Release a braked run (raises runner.SweepError when the run is not braked)."""
    runs = sweep_ports(services).runs
    return (await runner.approve(services, runs, run_id, approver)).summary()


async def halt(services: Services, run_id: str, operator: str, why: str) -> dict[str, Any]:
    """Stop a dispatched run's writes (raises runner.SweepError when the run is not under way)."""
    return (await runner.halt(services, sweep_ports(services).runs, run_id, operator, why)).summary()


async def resume(services: Services, run_id: str, operator: str) -> dict[str, Any]:
    """Let a halted run go on: fanned out again (raises runner.SweepError when it is neither halted nor under way)."""
    return (await runner.resume(services, sweep_ports(services).runs, run_id, operator)).summary()


async def show(services: Services, run_id: str, limit: int = 50) -> dict[str, Any] | None:
    """The run's summary and its first ``limit`` planned actions; None for an unknown run id."""
    runs = sweep_ports(services).runs
    run = await runs.get(run_id)
    if run is None:
        return None
    listed: list[dict[str, Any]] = []
    async for page in runs.actions(run_id):
        listed.extend(a.to_json() for a in page[: limit - len(listed)])
        if len(listed) >= limit:
            break
    return {**run.summary(), "plan": listed}


async def list_runs(services: Services) -> list[dict[str, Any]]:
    runs = sweep_ports(services).runs
    return [run.summary() async for run in runs.runs()]


async def on_timer(services: Services, past_due: bool) -> dict[str, Any]:
    """The nightly timer: the occurrence's run id makes a late or repeated fire land on the same run."""
    if past_due:
        log.warning("sweep.timer.past-due")
    mode = services.desired.lifecycle.scheduled_mode
    summary = await run_sweep(services, mode)
    log.info("sweep.run", **summary_line(summary))
    return summary


async def handle_guest_action(message: ReceivedMessage, services: Services) -> Outcome:
    """One `guest-actions` message: a sweep action, or (kind ``redemption-reset``) one guest of a reset run, which
    shares the queue, its trigger and its concurrency (one worker per guest either way)."""
    if message.kind == RESET_KIND:
        from lifecycle.reset.entry import handle_reset_action

        return await handle_reset_action(message, services)
    return await actions.handle_guest_action(message, services, _gate(sweep_ports(services), services.clock))


def summary_line(summary: dict[str, Any]) -> dict[str, Any]:
    names = ("runId", "mode", "status", "totalGuests", "disable", "delete", "notifySponsor", "dispatched")
    return {k: summary.get(k, 0) for k in names} | {"braked": summary["brake"]["tripped"]}


async def drain_actions(services: Services, concurrency: int = 16) -> dict[str, int]:
    """Local runs: work the `guest-actions` queue until it is empty (the Functions trigger does this in Azure)."""
    from lifecycle.ledger.worker import drain

    report = await drain(services, GUEST_ACTIONS_QUEUE, handle_guest_action, concurrency=concurrency)
    counts: dict[str, int] = {}
    for outcome in report.outcomes:
        name = outcome.code if outcome.code.startswith("dropped:") else outcome.verdict.value
        counts[name] = counts.get(name, 0) + 1
    if report.crashed:
        counts["crashed"] = report.crashed
    return counts


async def run_locally(services: Services, mode: Mode | str, run_id: str | None = None) -> dict[str, Any]:
    """``run guest-sweep``: the run, then (when it was fanned out) the local worker over its actions."""
    summary = await run_sweep(services, mode, run_id)
    if summary["status"] == "dispatched":
        summary["worker"] = await drain_actions(services)
    return summary


async def approve_locally(services: Services, run_id: str, approver: str) -> dict[str, Any]:
    summary = await approve(services, run_id, approver)
    summary["worker"] = await drain_actions(services)
    return summary


async def resume_locally(services: Services, run_id: str, operator: str) -> dict[str, Any]:
    """``resume``: the run fanned out again, then the local worker over its actions."""
    summary = await resume(services, run_id, operator)
    if summary["status"] == "dispatched":
        summary["worker"] = await drain_actions(services)
    return summary


__all__ = [
    "DailyRun",
    "approve",
    "approve_locally",
    "halt",
    "handle_guest_action",
    "on_timer",
    "resume",
    "resume_locally",
    "run_sweep",
    "show",
    "sweep_ports",
]
