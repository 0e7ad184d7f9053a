"""Benchmark: the guest sweep over tenantsim with 100,000 guests, 10,000 of them due for disabling.

    .venv/bin/python -m bench.sweep_bench [--guests 100000] [--disable 10000] [--compression 1.5]
                                          [--drains 2] [--concurrency 16] [--page-cap 500] [--plan-only] [--json]

Starts the local stack (Azurite, and tenantsim with throttling on and its windows compressed by
``--compression``), plans the sweep, enforces it (approving the braked run as an operator would), and
drains the `guest-actions` queue with several concurrent workers. The product's Graph budget is
compressed by the same factor, so it paces against the refill rate tenantsim really has.

The default compression (1.5x: 30 writes/s, 15 disables/s) is what the whole local pipeline (this
process, tenantsim and Azurite sharing two cores) sustains; above it the pipeline, not Graph's budget,
becomes the limit and the figure measures the machine instead of the product's pacing. Reports:

* write throughput as a fraction of tenantsim's write budget (3,000 writes per 150 s per app and
  tenant, so 20 x compression writes/s), both raw and without the initial burst a full bucket allows;
* the number of 429 answers;
* peak RSS of this process (the product side: planner, workers, clients; tenantsim and Azurite run in
  their own processes);
* CPU seconds and wall time of the planning step.

The seed is generated in a child process so its 100,000 dicts never count towards this process's RSS.

``--page-cap`` is the largest page tenantsim serves when signInActivity is selected (500 in Graph's current
documentation, 120 in older revisions: the planner asks for 500 and follows next links either way);
``--plan-only`` stops after planning, which is what the README's planning figures come from.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from app.bootstrap import bootstrap
from config.settings import load_settings
from graph.budget import GraphBudget
from graph.client import build_graph_client
from graph.credentials import TenantSimCredential
from graph.permissions import GRANTED
from lifecycle.ledger.worker import drain
from lifecycle.sweep import entry
from tenantsim.client import TenantSimAdmin
from tenantsim.stack import LocalStack
from tenantsim.throttling import WRITE_QUOTA, WRITE_WINDOW_SECONDS

WRITES_PER_DISABLE = 2  # PATCH accountEnabled, POST revokeSignInSessions
OPTED_OUT_DOMAINS = ("woodgrovebank.com",)


def make_seed(path: Path, guests: int, disable: int) -> None:
    """A seed where exactly ``disable`` guests are inactive and every other guest is active and enabled."""
    from tenantsim.seed import PROTECTED_GROUP_ID, build_seed

    document = build_seed(guests=guests, random_seed=7)
    now = datetime.fromisoformat(document["anchor"].replace("Z", "+00:00"))
    protected = set(next(g for g in document["groups"] if g["id"] == PROTECTED_GROUP_ID)["members"])
    recent, stale = _iso(now - timedelta(days=3)), _iso(now - timedelta(days=200))
    chosen = 0
    for user in document["users"]:
        if user["userType"] != "Guest":
            continue
        eligible = user["id"] not in protected and not user["mail"].endswith(OPTED_OUT_DOMAINS)
        due = eligible and chosen < disable
        chosen += due
        redeemed = user["externalUserStateChangeDateTime"] or user["createdDateTime"]
        user.update(accountEnabled=True, externalUserState="Accepted", externalUserStateChangeDateTime=redeemed)
        last = stale if due else recent
        user["signInActivity"] = {
            "lastSignInDateTime": last,
            "lastSignInRequestId": "",
            "lastNonInteractiveSignInDateTime": last,
            "lastNonInteractiveSignInRequestId": "",
            "lastSuccessfulSignInDateTime": last,
            "lastSuccessfulSignInRequestId": "",
        }
    if chosen != disable:
        raise SystemExit(f"only {chosen} guests could be made due; ask for fewer")
    path.write_text(json.dumps(document))


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def graph_ports(settings: Any, credential: Any, compression: float) -> dict[str, Any]:
    """The Graph ports bootstrap builds, on a client whose budget knows tenantsim's compressed windows.

    The product's budget paces against Graph's documented quotas; tenantsim compresses their windows, so
    the budget must be compressed by the same factor or it paces against a refill rate that is not there.
    """
    from graph.assignment_expiries import GraphAssignmentExpiries
    from graph.entitlement import GraphAccessPackages
    from graph.groups import GraphGroupMembers
    from graph.users import GraphDirectory, GraphSweepReads

    budget = GraphBudget.time_compressed(compression) if compression != 1 else None
    client = build_graph_client(credential=credential, base_url=settings.graph_base_url, budget=budget)
    return {
        "directory": GraphDirectory(client),
        "access_packages": GraphAccessPackages(client),
        "guest_reads": GraphSweepReads(client),
        "group_membership": GraphGroupMembers(client),
        "assignment_expiries": GraphAssignmentExpiries(client),
    }


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def measure(stack: LocalStack, args: argparse.Namespace) -> dict[str, Any]:
    settings = load_settings({**stack.env, "LIFECYCLE_LOG_LEVEL": "WARNING", "LIFECYCLE_LOG_FORMAT": "console"})
    credential = TenantSimCredential(stack.tenantsim_url, roles=GRANTED | {"GroupMember.Read.All"})
    services = await bootstrap(settings, credential=credential, **graph_ports(settings, credential, args.compression))
    admin = TenantSimAdmin(stack.tenantsim_url, timeout=60)
    try:
        admin.configure(signInActivityPageCap=args.page_cap)
        admin.reset_counters()
        cpu, wall = time.process_time(), time.perf_counter()
        planned = await entry.run_sweep(services, "plan", run_id="sweep-bench")
        plan_cpu, plan_wall = time.process_time() - cpu, time.perf_counter() - wall
        plan_rss = peak_rss_mb()
        plan_counters = admin.counters()
        planning = {
            "pageCap": args.page_cap,
            "cpuSeconds": round(plan_cpu, 2),
            "wallSeconds": round(plan_wall, 2),
            "graphRequests": plan_counters["requests"],
            "throttled429": sum(plan_counters["throttledByScope"].values()),
            "peakRssMb": round(plan_rss, 1),
            "compression": args.compression,
        }
        if args.plan_only:
            return {
                "bench": "sweep_planning",
                "guests": planned["totalGuests"],
                "planned": {"disable": planned["disable"], "delete": planned["delete"], "actions": planned["actions"]},
                "planning": planning,
                "peakRssMb": round(peak_rss_mb(), 1),
            }

        admin.reset_counters()
        braked = await entry.run_sweep(services, "enforce", run_id="sweep-bench")
        started = time.perf_counter()
        if braked["status"] == "braked":
            await entry.approve(services, "sweep-bench", "bench@contoso.com")
        outcomes = await _drain_until_empty(services, args.drains, args.concurrency)
        elapsed = time.perf_counter() - started
        counters = admin.counters()
    finally:
        admin.close()
        await services.close()

    rate = WRITE_QUOTA / WRITE_WINDOW_SECONDS * args.compression
    writes = counters["writes"]
    throttled = sum(counters["throttledByScope"].values())
    return {
        "guests": planned["totalGuests"],
        "planned": {"disable": planned["disable"], "delete": planned["delete"], "actions": planned["actions"]},
        "bench": "sweep",
        "brake": braked["brake"],
        "planning": planning,
        "enforcement": {
            "compression": args.compression,
            "drains": args.drains,
            "concurrencyPerDrain": args.concurrency,
            "wallSeconds": round(elapsed, 2),
            "successfulWrites": writes,
            "expectedWrites": planned["disable"] * WRITES_PER_DISABLE,
            "writeBudgetPerSecond": rate,
            "budgetFraction": round(writes / (elapsed * rate), 3),
            "budgetFractionAfterBurst": round(max(writes - WRITE_QUOTA, 0) / (elapsed * rate), 3),
            "throttled429": throttled,
            "outcomes": outcomes,
        },
        "peakRssMb": round(peak_rss_mb(), 1),
    }


async def _drain_until_empty(services, drains: int, concurrency: int) -> dict[str, int]:
    """Several workers drain the queue; delayed retries (429s) keep them going until the queue is empty."""
    queue = services.settings.queue_name(entry.GUEST_ACTIONS_QUEUE)
    totals: dict[str, int] = {}
    while True:
        reports = await asyncio.gather(
            *(
                drain(
                    services,
                    entry.GUEST_ACTIONS_QUEUE,
                    entry.handle_guest_action,
                    concurrency=concurrency,
                    idle_rounds=3,
                )
                for _ in range(drains)
            )
        )
        for report in reports:
            for verdict, count in report.by_verdict.items():
                totals[verdict] = totals.get(verdict, 0) + count
            totals["crashed"] = totals.get("crashed", 0) + report.crashed
        active, _dead = await services.transport.depth(queue)
        if active == 0:
            return totals
        await asyncio.sleep(0.5)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sweep_bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--guests", type=int, default=100_000)
    parser.add_argument("--disable", type=int, default=10_000)
    parser.add_argument("--compression", type=float, default=1.5, help="tenantsim time compression")
    parser.add_argument("--drains", type=int, default=2, help="concurrent queue workers")
    parser.add_argument("--concurrency", type=int, default=16, help="messages in flight per worker")
    parser.add_argument(
        "--page-cap", type=int, default=500, help="tenantsim's largest page with signInActivity selected (120 or 500)"
    )
    parser.add_argument("--plan-only", action="store_true", help="measure planning only (no enforcement)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--make-seed", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.make_seed:
        make_seed(args.make_seed, args.guests, args.disable)
        return 0

    with tempfile.TemporaryDirectory(prefix="sweep-bench-") as scratch:
        seed = Path(scratch) / "seed.json"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "bench.sweep_bench",
                "--make-seed",
                str(seed),
                "--guests",
                str(args.guests),
                "--disable",
                str(args.disable),
            ],
            check=True,
        )
        command = [
            sys.executable,
            "-m",
            "tenantsim",
            "serve",
            "--seed",
            str(seed),
            "--time-compression",
            str(args.compression),
        ]
        with LocalStack(tenantsim_command=command) as stack:
            result = asyncio.run(measure(stack, args))
    print(json.dumps(result) if args.json or args.plan_only else render(result))
    return 0


def render(result: dict[str, Any]) -> str:
    planning, enforcement = result["planning"], result["enforcement"]
    return "\n".join(
        [
            f"guests examined: {result['guests']}; planned disables: {result['planned']['disable']}",
            f"planning: {planning['cpuSeconds']} CPU s, {planning['wallSeconds']} s wall, "
            f"{planning['graphRequests']} Graph requests, peak RSS {planning['peakRssMb']} MB",
            f"enforcement: {enforcement['successfulWrites']} writes in {enforcement['wallSeconds']} s "
            f"(budget {enforcement['writeBudgetPerSecond']:.0f}/s at {enforcement['compression']}x)",
            f"  budget fraction: {enforcement['budgetFraction']} (without the initial burst: "
            f"{enforcement['budgetFractionAfterBurst']})",
            f"  429 answers: {enforcement['throttled429']}; outcomes: {enforcement['outcomes']}",
            f"peak RSS (this process): {result['peakRssMb']} MB",
        ]
    )


if __name__ == "__main__":
    raise SystemExit(main())
