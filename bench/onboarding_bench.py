"""Benchmark: onboarding tickets through the local stack against tenantsim's invitation throttle.

    .venv/bin/python -m bench.onboarding_bench [--tickets 2000] [--compression 1] [--drains 2]
                                               [--concurrency 32] [--profile FILE] [--json]

Starts the local stack (Azurite; tenantsim with throttling on), puts ``--tickets`` valid onboard tickets
for new addresses of the four partners on the `onboarding` queue, then drains it with the product's
worker (``lifecycle.worker.drain``, the handler ``lifecycle.onboarding.handle_ticket``) until every
ticket is settled. Graph limits invitations to 150 per 5 s per tenant: a ceiling of 30 tickets/s, times
``--compression`` when tenantsim's windows are compressed (the factor is printed with the figures).

Reports tickets/s as a fraction of that ceiling:

* raw: every finished ticket over the whole drain, from the first receive to the last settlement;
* steady state: the finished tickets between the 10th and the 90th percentile of completion times over
  that interval, so neither the start (the bucket's initial burst of 150, clients warming up) nor the
  tail (the last retries waiting out their Retry-After) counts.

Duplicates are counted from tenantsim's own state, not the product's ledger: guests per address and live
access-package assignments per guest. Also printed: 429 answers, outcomes by verdict and the Graph and
queue traffic per ticket.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from config.settings import load_settings
from graph.budget import GraphBudget
from graph.client import build_graph_client
from graph.credentials import TenantSimCredential
from graph.directory import GraphDirectory
from graph.entitlement import GraphAccessPackages
from graph.permissions import GRANTED
from lifecycle.bootstrap import bootstrap
from lifecycle.models import ReceivedMessage
from lifecycle.onboarding import handle_ticket
from lifecycle.outcomes import Outcome, Verdict
from lifecycle.services import Services
from lifecycle.submission import submit_documents
from lifecycle.worker import drain
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
        self.finished.append((time.perf_counter(), outcome))
        return outcome


async def build_services(stack: LocalStack, compression: float, run: str) -> Services:
    env = {
        **stack.env,
        "LIFECYCLE_LOG_LEVEL": "WARNING",
        "LIFECYCLE_LOG_FORMAT": "console",
        "LIFECYCLE_TABLE_PREFIX": f"bench{run}",
        "LIFECYCLE_QUEUE_PREFIX": f"bench{run}-",
    }
    settings = load_settings(env)
    credential = TenantSimCredential(stack.tenantsim_url, roles=GRANTED)
    # The product's pacing must know tenantsim's windows are compressed, as it knows Graph's in Azure.
    budget = GraphBudget.time_compressed(compression) if compression != 1 else None
    client = build_graph_client(credential=credential, base_url=settings.graph_base_url, budget=budget)
    return await bootstrap(
        settings,
        credential=credential,
        directory=GraphDirectory(client),
        access_packages=GraphAccessPackages(client),
    )


async def measure(stack: LocalStack, args: argparse.Namespace) -> dict[str, Any]:
    run = uuid.uuid4().hex[:6]
    admin = TenantSimAdmin(stack.tenantsim_url, timeout=120)
    admin.configure(throttlingEnabled=True, timeCompression=args.compression)
    services = await build_services(stack, args.compression, run)
    documents = tickets(args.tickets, run)
    timed = Timed()
    try:
        await submit_documents(services, QUEUE, documents)
        admin.reset_counters()
        cpu_before = cpu_seconds(stack)
        profiler = cProfile.Profile() if args.profile else None
        if profiler:
            profiler.enable()
        started = time.perf_counter()
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
        elapsed = time.perf_counter() - started
        cpu = {name: round(after - cpu_before[name], 1) for name, after in cpu_seconds(stack).items()}
        if profiler:
            profiler.disable()
            profiler.dump_stats(args.profile)
        counters = admin.counters()
        waiting, dead = await services.transport.depth(services.settings.queue_name(QUEUE))
    finally:
        await services.close()
    emails = {d["email"] for d in documents}
    duplicates = count_duplicates(admin, emails)
    admin.close()

    ceiling = INVITE_QUOTA / INVITE_WINDOW_SECONDS * args.compression
    done_times = sorted(at - started for at, o in timed.finished if o.verdict is Verdict.DONE)
    verdicts = Counter(o.verdict.value for _, o in timed.finished)
    retry_codes = Counter(o.code for _, o in timed.finished if o.verdict is Verdict.RETRY)
    raw_rate = len(done_times) / elapsed if elapsed else 0.0
    steady_rate = _steady_rate(done_times)
    return {
        "benchmark": "onboarding",
        "tickets": args.tickets,
        "compression": args.compression,
        "ceilingTicketsPerSecond": ceiling,
        "drains": args.drains,
        "concurrencyPerDrain": args.concurrency,
        "wallSeconds": round(elapsed, 2),
        "done": len(done_times),
        "ticketsPerSecond": round(raw_rate, 2),
        "fractionOfCeiling": round(raw_rate / ceiling, 3),
        "steadyTicketsPerSecond": round(steady_rate, 2),
        "steadyFractionOfCeiling": round(steady_rate / ceiling, 3),
        "throttled429": sum(counters["throttledByScope"].values()),
        "invitationsSent": counters["invitations"],
        "graphRequestsPerTicket": round(counters["requests"] / max(len(done_times), 1), 2),
        "outcomes": dict(verdicts),
        "retryCodes": dict(retry_codes),
        "cpuSecondsDuringDrain": cpu,
        "crashed": sum(r.crashed for r in reports),
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


def _steady_rate(done_times: list[float]) -> float:
    if len(done_times) < 20:
        return 0.0
    first = done_times[int(len(done_times) * STEADY_FROM)]
    last = done_times[int(len(done_times) * STEADY_TO) - 1]
    finished = int(len(done_times) * STEADY_TO) - int(len(done_times) * STEADY_FROM)
    return finished / (last - first) if last > first else 0.0


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
    parser.add_argument("--drains", type=int, default=2, help="concurrent queue workers")
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
            f"  429 answers: {result['throttled429']}; outcomes {result['outcomes']}; retries {result['retryCodes']}",
            f"  duplicates in tenantsim: {result['duplicateGuests']} guests, "
            f"{result['duplicateAssignments']} assignments ({result['guests']} guests, "
            f"{result['guestsWithAssignment']} with their package)",
        ]
    )


if __name__ == "__main__":
    raise SystemExit(main())
