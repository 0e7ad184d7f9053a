"""An on-call replay that dies: it sends the copy of a dead letter, then is SIGKILLed before removing it.

    python -m tests.chaos.replayer --events DIR --kill-after N

Replays every dead letter of both queues; the Nth removal that follows a send kills the process.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from pathlib import Path

from app.bootstrap import bootstrap
from config.settings import load_settings
from lifecycle.ledger import operations
from tests.chaos.events import EventLog
from tests.chaos.wrappers import KillingReplay


async def run(args: argparse.Namespace) -> None:
    events = EventLog(args.events, "replayer")
    services = await bootstrap(load_settings({**os.environ, "LIFECYCLE_LOG_LEVEL": "ERROR"}))
    services.transport = KillingReplay(services.transport, events, args.kill_after)
    try:
        for queue in ("onboarding", "guest-actions"):
            await operations.replay(
                services, queue, operations.Selector(), dry_run=False, operator="soak-replayer", lock_seconds=5
            )
    finally:
        await services.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos.replayer")
    parser.add_argument("--events", type=Path, required=True)
    parser.add_argument("--kill-after", type=int, default=1)
    asyncio.run(run(parser.parse_args(argv)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
