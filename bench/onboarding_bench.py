"""Benchmark: onboarding tickets through the local stack against tenantsim's invitation throttle.

    .venv/bin/python -m bench.onboarding_bench [--tickets 2000] [--compression 1] [--processes 2]
                                               [--drains 2] [--concurrency 32] [--profile FILE] [--json]

Starts the local stack (Azurite; tenantsim with throttling on), puts ``--tickets`` valid onboard tickets
for new addresses of the four partners on the `onboarding` queue, then drains it with the product's
worker (``lifecycle.ledger.worker.drain``, the handler ``lifecycle.onboarding.handler.handle_ticket``) in
``--processes`` worker processes, as the Functions host scales out, until every ticket is settled. Graph
limits invitations to 150 per 5 s per tenant: a ceiling of 30 tickets/s, times ``--compression`` when
tenantsim's windows are compressed (the factor is printed with the figures).

Reports tickets/s as a fraction of that ceiling:

* raw: every finished ticket, from the start of the drain to the last settlement;
* steady state: the tickets finished between the 10th and the 90th percentile of completion times,
  less what was left of the bucket's initial burst when that window opened, so neither the start (the
  burst, clients warming up) nor the tail (the last retries waiting out a Retry-After) counts;
* the whole run without the initial burst: (finished - 150) over the whole drain (the strictest).

Duplicates are counted from tenantsim's own state, not the product's ledger: guests per address and live
access-package assignments per guest. Also printed: 429 answers, outcomes by verdict, Graph requests per
ticket, and CPU seconds of the product's processes, tenantsim and Azurite during the drain. ``--profile``
(single process only) writes a cProfile of the drain.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import multiprocessing
import os
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from app.bootstrap import bootstrap
from config.settings import load_settings
from graph.budget import GraphBudget
from graph.client import build_graph_client
from graph.credentials import TenantSimCredential
from graph.entitlement import GraphAccessPackages
from graph.permissions import GRANTED
from graph.users import GraphDirectory
from lifecycle.ledger.outcomes import Outcome, Verdict
from lifecycle.ledger.worker import drain
from lifecycle.models import ReceivedMessage
from lifecycle.onboarding.handler import handle_ticket
from lifecycle.onboarding.submission import submit_documents
from lifecycle.services import Services
from tenantsim.client import TenantSimAdmin
from tenantsim.stack import LocalStack
from tenantsim.throttling import INVITE_QUOTA, INVITE_WINDOW_SECONDS

QUEUE = "onboarding"
PARTNER_DOMAINS = (
    ("fabrikam", "fabrikam.com"),
    ("northwind", "northwindtraders.com"),
    ("woodgrove", "woodgrovebank.com"),
    ("adatum", "adatum.com"),
)
SPONSOR = "megan.bowen@contoso.com"
EM = "/v1.0/identityGovernance/entitlementManagement"
STEADY_FROM, STEADY_TO = 0.10, 0.90


def tickets(count: int, run: str) -> list[dict[str, Any]]:
    """``count`` valid onboard tickets for addresses no guest has yet, spread over the partners."""
    end = (datetime.now(UTC) + timedelta(days=60)).date().isoformat()
    documents = []
    for n in range(count):
        partner, domain = PARTNER_DOMAINS[n % len(PARTNER_DOMAINS)]
        documents.append(
            {
                "schemaVersion": 1,
                "kind": "onboard",
                "ticketId": f"BENCH-{run}-{n:05d}",
                "email": f"bench.{run}.{n:05d}@{domain}",
                "displayName": f"Bench Guest {n:05d}",
                "partner": partner,
                "sponsor": SPONSOR,
                "endDate": end,
                "sendInvitation": False,
            }
        )
    return documents


class Timed:
    """The product's handler, recording when each outcome was reached."""

    def __init__(self) -> None:
        self.finished: list[tuple[float, Outcome]] = []

    async def __call__(self, message: ReceivedMessage, services: Services) -> Outcome:
        outcome = await handle_ticket(message, services)
        self.finished.append((time.time(), outcome))
        return outcome


async def build_services(stack_env: dict[str, str], compression: float, run: str) -> Services:
    env = {
        **stack_env,
        "LIFECYCLE_LOG_LEVEL": "WARNING",
        "LIFECYCLE_LOG_FORMAT": "console",
        "LIFECYCLE_TABLE_PREFIX": f"bench{run}",
        "LIFECYCLE_QUEUE_PREFIX": f"bench{run}-",
    }
    settings = load_settings(env)
    credential = TenantSimCredential(env["TENANTSIM_URL"], roles=GRANTED)
    # The product's pacing must know tenantsim's windows are compressed, as it knows Graph's in Azure.
    budget = GraphBudget.time_compressed(compression) if compression != 1 else None
    client = build_graph_client(credential=credential, base_url=settings.graph_base_url, budget=budget)
    return await bootstrap(
        settings,
        credential=credential,
        directory=GraphDirectory(client),
        access_packages=GraphAccessPackages(client),
    )


async def drain_until_settled(services: Services, args: argparse.Namespace, timed: Timed) -> int:
    """``args.drains`` concurrent drains of the queue until nothing is left, scheduled retries included."""
    reports = await asyncio.gather(
        *(
            drain(
                services,
                QUEUE,
                timed,
                concurrency=args.concurrency,
                idle_rounds=3,
                wait_for_delayed_seconds=args.timeout,
            )
            for _ in range(args.drains)
        )
    )
    return sum(r.crashed for r in reports)


def worker_process(stack_env: dict[str, str], args: argparse.Namespace, run: str, go: Any, results: Any) -> None:
    """One more worker process (as the Functions host scales out): bootstrap, wait for the start, drain."""

    async def work() -> tuple[list[tuple[float, str, str]], int]:
        services = await build_services(stack_env, args.compression, run)
        timed = Timed()
        try:
            results.put(("ready", None))
            await asyncio.get_running_loop().run_in_executor(None, go.wait)
            crashed = await drain_until_settled(services, args, timed)
        finally:
            await services.close()
        return [(at, o.verdict.value, o.code) for at, o in timed.finished], crashed

    results.put(("done", asyncio.run(work())))


def run_processes(stack: LocalStack, args: argparse.Namespace, run: str) -> tuple[list[tuple[float, str, str]], int]:
    context = multiprocessing.get_context("spawn")
    go, results = context.Event(), context.Queue()
    workers = [
        context.Process(target=worker_process, args=(stack.env, args, run, go, results)) for _ in range(args.processes)
    ]
    for worker in workers:
        worker.start()
    for _ in workers:
        assert results.get(timeout=120)[0] == "ready"
    go.set()
    finished: list[tuple[float, str, str]] = []
    crashed = 0
    for _ in workers:
        _kind, (outcomes, lost) = results.get(timeout=args.timeout + 120)
        finished += outcomes
        crashed += lost
    for worker in workers:
        worker.join()
    return finished, crashed


async def measure(stack: LocalStack, args: argparse.Namespace) -> dict[str, Any]:
    run = uuid.uuid4().hex[:6]
    admin = TenantSimAdmin(stack.tenantsim_url, timeout=120)
    admin.configure(throttlingEnabled=True, timeCompression=args.compression)
    services = await build_services(stack.env, args.compression, run)
    documents = tickets(args.tickets, run)
    try:
        await submit_documents(services, QUEUE, documents)
        admin.reset_counters()
        cpu_before = cpu_seconds(stack)
        started = time.time()
        if args.processes > 1:
            finished, crashed = await asyncio.to_thread(run_processes, stack, args, run)
        else:
            timed = Timed()
            profiler = cProfile.Profile() if args.profile else None
            if profiler:
                profiler.enable()
            crashed = await drain_until_settled(services, args, timed)
            if profiler:
                profiler.disable()
                profiler.dump_stats(args.profile)
            finished = [(at, o.verdict.value, o.code) for at, o in timed.finished]
        elapsed = max((at for at, _, _ in finished), default=started) - started  # to the last settlement
        cpu = {name: round(after - cpu_before[name], 1) for name, after in cpu_seconds(stack).items()}
        counters = admin.counters()
        waiting, dead = await services.transport.depth(services.settings.queue_name(QUEUE))
    finally:
        await services.close()
    emails = {d["email"] for d in documents}
    duplicates = count_duplicates(admin, emails)
    admin.close()

    ceiling = INVITE_QUOTA / INVITE_WINDOW_SECONDS * args.compression
    done_times = sorted(at - started for at, verdict, _ in finished if verdict == Verdict.DONE.value)
    verdicts = Counter(verdict for _, verdict, _ in finished)
    retry_codes = Counter(code for _, verdict, code in finished if verdict == Verdict.RETRY.value)
    raw_rate = len(done_times) / elapsed if elapsed else 0.0
    steady_rate = _steady_rate(done_times, ceiling)
    after_burst = max(len(done_times) - INVITE_QUOTA, 0) / elapsed if elapsed else 0.0
    return {
        "benchmark": "onboarding",
        "tickets": args.tickets,
        "compression": args.compression,
        "ceilingTicketsPerSecond": ceiling,
        "processes": args.processes,
        "drains": args.drains,
        "concurrencyPerDrain": args.concurrency,
        "wallSeconds": round(elapsed, 2),
        "done": len(done_times),
        "ticketsPerSecond": round(raw_rate, 2),
        "fractionOfCeiling": round(raw_rate / ceiling, 3),
        "steadyTicketsPerSecond": round(steady_rate, 2),
        "steadyFractionOfCeiling": round(steady_rate / ceiling, 3),
        "fractionOfCeilingAfterBurst": round(after_burst / ceiling, 3),
        "throttled429": sum(counters["throttledByScope"].values()),
        "invitationsSent": counters["invitations"],
        "graphRequestsPerTicket": round(counters["requests"] / max(len(done_times), 1), 2),
        "outcomes": dict(verdicts),
        "retryCodes": dict(retry_codes),
        "cpuSecondsDuringDrain": cpu,
        "crashed": crashed,
        "leftOnQueue": waiting,
        "deadLettered": dead,
        **duplicates,
    }


def cpu_seconds(stack: LocalStack) -> dict[str, float]:
    """CPU seconds (user + system) used so far by this process, tenantsim and Azurite."""
    assert stack.simulator is not None and stack.azurite is not None
    ticks = os.sysconf("SC_CLK_TCK")
    pids = {"product": os.getpid(), "tenantsim": stack.simulator.process.process.pid}
    pids["azurite"] = stack.azurite.process.process.pid
    used = {}
    for name, pid in pids.items():
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        # utime, stime, cutime, cstime (fields 14-17; Azurite runs node under a launcher, counted as children)
        used[name] = sum(int(v) for v in fields[11:15]) / ticks
    return used


def _steady_rate(done_times: list[float], ceiling: float) -> float:
    """Tickets/s between the 10th and 90th percentile completions, without the initial burst.

    Graph's invitation bucket starts full (150), so a fast start can run above the ceiling for a while.
    Whatever was left of the burst when the window opens (the bucket level then, one invitation per
    finished ticket) is taken off the window's count, as if all of it was spent inside the window.
    """
    if len(done_times) < 20:
        return 0.0
    first, last = int(len(done_times) * STEADY_FROM), int(len(done_times) * STEADY_TO) - 1
    opened, closed = done_times[first], done_times[last]
    if closed <= opened:
        return 0.0
    burst_left = max(0.0, min(INVITE_QUOTA, INVITE_QUOTA + ceiling * opened - (first + 1)))
    return max(0.0, last - first - burst_left) / (closed - opened)


def count_duplicates(admin: TenantSimAdmin, emails: set[str]) -> dict[str, int]:
    """Guests per address and live assignments per guest, as tenantsim holds them."""
    per_email = Counter(
        user["mail"] for user in admin.snapshot()["users"] if user.get("mail") in emails and user["userType"] == "Guest"
    )
    guest_ids = {
        user["id"] for user in admin.snapshot()["users"] if user.get("mail") in emails and user["userType"] == "Guest"
    }
    per_guest = Counter(a["target"]["objectId"] for a in _assignments(admin) if a["target"]["objectId"] in guest_ids)
    return {
        "guests": len(per_email),
        "duplicateGuests": sum(n - 1 for n in per_email.values()),
        "guestsWithAssignment": len(per_guest),
        "duplicateAssignments": sum(n - 1 for n in per_guest.values()),
    }


def _assignments(admin: TenantSimAdmin) -> list[dict[str, Any]]:
    headers = admin.auth_headers(["EntitlementManagement.Read.All"])
    url: str | None = f"{admin.base_url}{EM}/assignments?$expand=target&$top=500"
    found: list[dict[str, Any]] = []
    with httpx.Client(timeout=60) as http:
        while url:
            page = http.get(url, headers=headers)
            page.raise_for_status()
            body = page.json()
            found += [a for a in body["value"] if a["state"] in {"delivering", "delivered", "partiallyDelivered"}]
            url = body.get("@odata.nextLink")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.onboarding_bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--tickets", type=int, default=2000)
    parser.add_argument("--compression", type=float, default=1.0, help="tenantsim time compression")
    parser.add_argument("--processes", type=int, default=2, help="worker processes (each with its own drains)")
    parser.add_argument("--drains", type=int, default=2, help="concurrent queue workers per process")
    parser.add_argument("--concurrency", type=int, default=32, help="messages in flight per worker")
    parser.add_argument("--timeout", type=float, default=600.0, help="give up waiting for retries after this")
    parser.add_argument("--profile", type=Path, help="write a cProfile of the drain to this file")
    parser.add_argument("--json", action="store_true", help="one JSON line (the default prints a summary too)")
    args = parser.parse_args(argv)
    with LocalStack() as stack:
        result = asyncio.run(measure(stack, args))
    if not args.json:
        print(render(result))
    print(json.dumps(result, separators=(",", ":")))
    return 0 if result["duplicateGuests"] == 0 and result["duplicateAssignments"] == 0 else 1


def render(result: dict[str, Any]) -> str:
    return "\n".join(
        [
            f"{result['done']} of {result['tickets']} tickets done in {result['wallSeconds']} s "
            f"(ceiling {result['ceilingTicketsPerSecond']:.0f} tickets/s at compression {result['compression']})",
            f"  raw: {result['ticketsPerSecond']} tickets/s = {result['fractionOfCeiling']} of the ceiling",
            f"  steady state: {result['steadyTicketsPerSecond']} tickets/s = "
            f"{result['steadyFractionOfCeiling']} of the ceiling",
            f"  whole run without the initial burst of {INVITE_QUOTA}: {result['fractionOfCeilingAfterBurst']}",
            f"  429 answers: {result['throttled429']}; outcomes {result['outcomes']}; retries {result['retryCodes']}",
            f"  duplicates in tenantsim: {result['duplicateGuests']} guests, "
            f"{result['duplicateAssignments']} assignments ({result['guests']} guests, "
            f"{result['guestsWithAssignment']} with their package)",
        ]
    )


if __name__ == "__main__":
    raise SystemExit(main())
