"""``python -m lifecycle.drift``: the policy drift walk-through used by ``make run``.

Plans against the tenant the settings point at, applies the plan, and plans again, printing each run
as markdown. Exits 0 when nothing writable is left to change (Conditional Access findings are report
only: an administrator fixes those), 1 otherwise.
"""

from __future__ import annotations

import asyncio

from app.bootstrap import bootstrap
from lifecycle.drift.entry import render, run_policy_drift
from lifecycle.drift.report import WRITABLE_CHANGES


async def walk_through() -> int:
    services = await bootstrap()
    try:
        for title, mode in (("before", "plan"), ("apply", "enforce"), ("after", "plan")):
            run = await run_policy_drift(services, mode)
            print(f"# policy drift: {title}\n\n{render(run)}")
        left = [a for a in run.drift if a.change in WRITABLE_CHANGES]
        return 0 if not left and not run.refusals else 1
    finally:
        await services.close()


if __name__ == "__main__":
    raise SystemExit(asyncio.run(walk_through()))
