"""A soak worker process: drain loops on one queue, with the chaos wrappers around its ports.

    python -m tests.chaos.worker --queue onboarding --events DIR --stop-file PATH [--seed N] ...

It runs until the stop file exists. Storage errors (Azurite restarting) end a drain; the loop starts the
next one. The queue lock and the work-item lease are both ``--lock-seconds`` (in Azure both are the
queues' PT2M), so a killed or stalled attempt is taken over after that long.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import time
from pathlib import Path

from app.bootstrap import bootstrap
from config.settings import load_settings
from lifecycle.ledger import work
from lifecycle.ledger.worker import drain
from lifecycle.onboarding import access
from lifecycle.onboarding.holds import release_due
from lifecycle.services import Services
from tests.chaos.events import EventLog
from tests.chaos.wrappers import ConflictCounting, KillingGraph, LockWatching, WriteCount

HOLD_TIMER_SECONDS = 5.0


async def build(args: argparse.Namespace, events: EventLog) -> Services:
    settings = load_settings({**os.environ, "LIFECYCLE_LOG_LEVEL": "ERROR"})
    services = await bootstrap(settings)
    rng = random.Random(f"{args.seed}:{os.getpid()}")
    chaos = {
        "kill_rate": args.kill_rate,
        "stall_rate": args.stall_rate,
        "stall_seconds": args.lock_seconds * 1.5,
        "kill_at": args.kill_at,
        "stall_at": args.stall_at,
        "writes": WriteCount(),
    }
    services.directory = KillingGraph(services.directory, events, rng, probe_rate=args.probe_rate, **chaos)
    services.access_packages = KillingGraph(services.access_packages, events, rng, **chaos)
    services.work_items = ConflictCounting(services.work_items, events, "work_items")
    services.guests = ConflictCounting(services.guests, events, "guests")
    services.transport = LockWatching(services.transport, events)
    return services


def compress_timings(lock_seconds: float) -> None:
    """Run the product's waits on the soak's clock: the queue lock is PT2M in Azure and ``lock_seconds``
    here, so the lease, the busy re-check, the backoffs and the assignment polls shrink by the same factor
    (tenantsim compresses its throttling windows likewise). Decisions stay the product's own."""
    scale = lock_seconds / work.LEASE_SECONDS
    work.LEASE_SECONDS = float(lock_seconds)
    work.BUSY_RECHECK_SECONDS *= scale
    work.BACKOFF_BASE_SECONDS *= scale
    work.BACKOFF_CAP_SECONDS *= scale
    access.POLL_BASE_SECONDS *= scale
    access.POLL_CAP_SECONDS *= scale


async def run(args: argparse.Namespace) -> None:
    events = EventLog(args.events, f"worker-{args.queue}")
    compress_timings(args.lock_seconds)
    services = await build(args, events)
    handler = _handler(args.queue)
    stop = Path(args.stop_file)
    holds_checked = 0.0
    try:
        while not stop.exists():  # noqa: ASYNC240 - one stat per drain round
            try:
                if args.queue == "onboarding" and time.monotonic() - holds_checked > HOLD_TIMER_SECONDS:
                    await release_due(services)  # the hold_release timer, on the soak's clock
                    holds_checked = time.monotonic()
                report = await drain(
                    services, args.queue, handler, concurrency=args.concurrency, lock_seconds=args.lock_seconds
                )
                if report.crashed:
                    events.record("handler-crashed", count=report.crashed)
                if not report.outcomes:
                    await asyncio.sleep(0.5)
            except Exception as error:  # storage down or a fault outside a handler: start over
                events.record("drain-error", error=type(error).__name__)
                await asyncio.sleep(1.0)
    finally:
        await services.close()


def _handler(queue: str):
    if queue == "onboarding":
        from lifecycle.onboarding.handler import handle_ticket

        return handle_ticket
    from lifecycle.sweep.entry import handle_guest_action

    return handle_guest_action


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos.worker")
    parser.add_argument("--queue", choices=("onboarding", "guest-actions"), required=True)
    parser.add_argument("--events", type=Path, required=True)
    parser.add_argument("--stop-file", required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--kill-rate", type=float, default=0.0)
    parser.add_argument("--kill-at", type=int, default=0, help="die for certain after this Graph write (0: never)")
    parser.add_argument("--stall-rate", type=float, default=0.0)
    parser.add_argument("--stall-at", type=int, default=0, help="stall past the lock after this Graph write (0: never)")
    parser.add_argument("--probe-rate", type=float, default=0.0)
    parser.add_argument("--lock-seconds", type=int, default=120)
    parser.add_argument("--concurrency", type=int, default=8)
    asyncio.run(run(parser.parse_args(argv)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
