"""Benchmark: how much of Graph's throttling budget the product uses, beside two naive ways of calling Graph.

    .venv/bin/python -m bench.graph_budget_bench [--disables 600] [--invitations 1800] [--workers 1,4,8]
                                                  [--strategies sequential,unbounded,product] [--concurrency N]

One tenantsim (throttling on, documented quotas) serves every row; each row runs ``workers`` processes that
share the tenant's budget, as Functions instances fed by Service Bus would. Rows run at Graph's own refill
rate: every window and every bucket is shrunk by the same factor, so only the first full bucket is smaller.

* ``sequential``: one call at a time per process through the SDK, with the SDK's default RetryHandler;
* ``unbounded``: every item at once per process through the SDK, with the SDK's default RetryHandler: as
  many requests in flight as the connection pool has connections (256 per process), no pacing. Requests
  wait for a connection in a semaphore under the SDK, not in httpx's pool, whose queue is scanned per
  connection on every request added or removed: 10,000 calls queued there spend minutes of CPU before the
  first request goes out, which measures httpx, not Graph's throttling (``unbounded-pool`` keeps that);
* ``product``: the deployed handlers (bench.product_rows): services from app.bootstrap with the budget lease
  in Azurite's Table Storage, the local queue worker, ``handle_ticket`` or ``handle_guest_action``, each
  process handling host.json's maxConcurrentCalls messages at a time (``product@N``: N at a time);
* ``batch``: bench.graph_batch over graph.budget_transport with the lease (``headers-only``: without it);
  no job sends $batch, so these are not run by default.

Workloads: a sweep disabling guests (the peers PATCH accountEnabled; the product also revokes sessions, two
writes) and a wave of invitations (the product onboards a ticket per invitation). A latency model
(tenantsim's fault injector) delays every HTTP request. Each row has a deadline (a multiple of the fastest
possible time); items not finished by then are ``unfinished``, items given up on are ``lost``. The default
sizes make a row last about a minute at the bucket's pace: its fixed start (the first messages' reads before
their first write or invitation, about a second) and end (an onboarding ticket's three requests after its
invitation) then weigh a few hundredths, where rows of 20 s lost a tenth to them whatever the pacing did.

Prints one JSON line per row. ``budget_used`` is what reached the tenant in the bucket that binds (writes
or invitations) over what that bucket allowed during the row's wall time, starting full (capacity + refill
x wall). ``lost`` is checked against the tenant's state, not only the workers' word; ``cpu_ms_per_item``
is the CPU of the row's worker processes per item done.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import multiprocessing
import os
import queue
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from graph.budget import DOCUMENTED_QUOTAS, BudgetClass, Quota

REDIRECT = "https://myapps.microsoft.com"
CONNECTIONS = 256  # per process, for the naive peers' SDK client
INVITE_DOMAIN = "fabrikam.com"


@dataclass(frozen=True, slots=True)
class Workload:
    """One workload at one pace: every window ``compression`` times shorter and every bucket ``quota_scale``
    times its documented size. With ``quota_scale`` = 1 / ``compression`` the refill is Graph's own (30
    invitations/s, 20 writes/s) and only the first full bucket, and so the burst, is smaller."""

    name: str
    count: int
    compression: float
    latency_ms: float
    jitter_ms: float
    costs: dict[BudgetClass, int]
    quota_scale: float = 1.0

    @property
    def binding(self) -> BudgetClass:
        return BudgetClass.INVITATIONS if BudgetClass.INVITATIONS in self.costs else BudgetClass.WRITES

    def scaled(self, quota: Quota) -> Quota:
        return Quota(quota.capacity * self.quota_scale, quota.window_seconds / self.compression)

    def quotas(self) -> dict[BudgetClass, Quota]:
        return {k: self.scaled(DOCUMENTED_QUOTAS[k]) for k in self.costs}

    def product_quotas(self) -> dict[BudgetClass, Quota]:
        """What the product's budget must assume: the documented quotas at this workload's pace."""
        return {k: self.scaled(q) for k, q in DOCUMENTED_QUOTAS.items()}

    def units_allowed(self, seconds: float) -> float:
        """Units of the binding class its bucket lets through in ``seconds``, starting full."""
        quota = self.scaled(DOCUMENTED_QUOTAS[self.binding])
        return quota.capacity + quota.refill_per_second * seconds

    def allowed_within(self, seconds: float, *, tenant_users: int) -> float:
        """Items the budget lets through in ``seconds`` from full buckets: the scarcest bucket decides."""
        quotas = self.quotas()
        if BudgetClass.RESOURCE_UNITS in quotas:
            # graph.budget assumes the small-tenant quota; the benchmark tenant is large (> 500 users).
            size = 8000 if tenant_users > 500 else 5000 if tenant_users >= 50 else 3500
            quotas[BudgetClass.RESOURCE_UNITS] = self.scaled(
                Quota(size, DOCUMENTED_QUOTAS[BudgetClass.RESOURCE_UNITS].window_seconds)
            )
        return min((q.capacity + q.refill_per_second * seconds) / self.costs[k] for k, q in quotas.items())

    def fastest_seconds(self, *, tenant_users: int) -> float:
        low, high = 0.0, 1.0
        while self.allowed_within(high, tenant_users=tenant_users) < self.count:
            high *= 2
        for _ in range(40):
            middle = (low + high) / 2
            low, high = (
                (middle, high) if self.allowed_within(middle, tenant_users=tenant_users) < self.count else (low, middle)
            )
        return high


@dataclass(frozen=True, slots=True)
class WorkerTask:
    strategy: str
    workload: str
    root: str
    items: list[str]
    compression: float
    tables: str = ""  # Azurite's connection string (the $batch client's lease)
    lease_table: str = ""
    env: dict[str, str] | None = None  # the product's app settings (its rows run the deployed handlers)
    quotas: tuple[tuple[BudgetClass, Quota], ...] = ()  # the product's budget at the workload's pace
    concurrency: int = 32  # messages one product instance handles at once
    profile_dir: str = ""  # write a cProfile of each worker's run here (the CPU work's before/after)


# ---------------------------------------------------------------- worker processes


def worker_main(task: WorkerTask, results: Any, ready: Any, go: Any) -> None:
    try:
        asyncio.run(_worker(task, results, ready, go))
    except BaseException as exc:  # tell the parent at once instead of leaving it waiting for "ready"
        import traceback

        ready.put(f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}")
        raise


async def _worker(task: WorkerTask, results: Any, ready: Any, go: Any) -> None:
    from config.logging import configure_logging
    from graph.credentials import TenantSimCredential

    configure_logging(json=False, level="WARNING")  # stdout carries the JSON lines only

    timing: dict[str, float] = {}
    if task.strategy == "product":
        from bench.product_rows import handlers_worker

        runner, barrier = await handlers_worker(task, timing)
    else:
        credential = TenantSimCredential(task.root)
        await credential.get_token("https://graph.microsoft.com/.default")
        run = _batch if task.strategy in ("batch", "headers-only") else _naive
        runner, barrier = await run(task, credential, timing)
    ready.put(True)
    # Off the event loop: the budget lease keeps beating while the other workers start (a loop blocked here let
    # the first workers' rows look stale to the last ones, which then counted too few instances and overspent).
    timing["start_at"], timing["deadline_at"] = await asyncio.to_thread(go.get)
    if barrier is not None:
        await barrier()
    await asyncio.sleep(max(0.0, timing["start_at"] - time.monotonic()))
    profiler = cProfile.Profile() if task.profile_dir else None
    cpu_before = time.process_time()
    if profiler is not None:
        profiler.enable()
    report = await runner()
    # CPU seconds spent during the run: near wall time means the worker was CPU-starved, not paced.
    report["cpu_s"] = round(time.process_time() - cpu_before, 2)
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(Path(task.profile_dir) / f"{task.strategy}-{task.workload}-{os.getpid()}.prof")
    results.put(report)
    results.close()
    results.join_thread()
    # Leave at once: thousands of cancelled SDK calls would otherwise take minutes to unwind.
    os._exit(0)


Runner = tuple[Callable[[], Any], Callable[[], Any] | None]  # the run, and what to do once all are ready


async def _naive(task: WorkerTask, credential: Any, timing: dict[str, float]) -> Runner:
    from kiota_authentication_azure.azure_identity_authentication_provider import (
        AzureIdentityAuthenticationProvider,
    )
    from msgraph import GraphRequestAdapter, GraphServiceClient
    from msgraph.generated.models.invitation import Invitation
    from msgraph.generated.models.user import User
    from msgraph_core import GraphClientFactory

    limits = httpx.Limits(max_connections=CONNECTIONS, max_keepalive_connections=CONNECTIONS)
    transport: httpx.AsyncBaseTransport = httpx.AsyncHTTPTransport(limits=limits)
    if task.strategy == "unbounded":
        transport = _ConnectionSlots(transport, CONNECTIONS)
    http = GraphClientFactory.create_with_default_middleware(
        client=httpx.AsyncClient(timeout=httpx.Timeout(120.0, pool=None), transport=transport)
    )
    auth = AzureIdentityAuthenticationProvider(credential, scopes=["https://graph.microsoft.com/.default"])
    adapter = GraphRequestAdapter(auth, client=http)
    adapter.base_url = task.root + "/v1.0"
    client = GraphServiceClient(request_adapter=adapter)
    outcome: Counter[str] = Counter()
    finished_at = [time.monotonic()]

    async def one(item: str) -> None:
        try:
            if task.workload == "sweep":
                await client.users.by_user_id(item).patch(User(account_enabled=False))
            else:
                await client.invitations.post(
                    Invitation(
                        invited_user_email_address=item, invite_redirect_url=REDIRECT, send_invitation_message=False
                    )
                )
            outcome["ok"] += 1
        except Exception as exc:  # the SDK gave up (429 after its retries, 5xx, ...): the item is lost
            outcome[f"lost:{getattr(exc, 'response_status_code', type(exc).__name__)}"] += 1
        finished_at[0] = time.monotonic()

    async def sequential() -> dict[str, Any]:
        for item in task.items:
            if time.monotonic() >= timing["deadline_at"]:
                break
            await one(item)
        return _report(outcome, len(task.items), finished_at[0])

    async def unbounded() -> dict[str, Any]:
        jobs = [asyncio.ensure_future(one(item)) for item in task.items]
        await asyncio.wait(jobs, timeout=max(0.0, timing["deadline_at"] - time.monotonic()))
        for job in jobs:
            job.cancel()
        return _report(outcome, len(task.items), finished_at[0])

    return (sequential if task.strategy == "sequential" else unbounded), None


class _ConnectionSlots(httpx.AsyncBaseTransport):
    """At most ``slots`` requests handed to the pool at once; the others wait here, in O(1) per request."""

    def __init__(self, inner: httpx.AsyncBaseTransport, slots: int) -> None:
        self._inner = inner
        self._slots = asyncio.Semaphore(slots)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        async with self._slots:
            response = await self._inner.handle_async_request(request)
            await response.aread()
            return response

    async def aclose(self) -> None:
        await self._inner.aclose()


async def _batch(task: WorkerTask, credential: Any, timing: dict[str, float]) -> Runner:
    from azure.data.tables.aio import TableServiceClient

    from adapters.budget_ledger import TableBudgetLedger
    from bench.graph_batch import BatchRequest, GraphBatch, suggested_batch_size
    from graph.budget import GraphBudget
    from graph.budget_lease import BudgetLease
    from graph.budget_transport import caller_of
    from graph.client import budgeted_transport

    budget = GraphBudget(quotas=dict(task.quotas))
    http = httpx.AsyncClient(timeout=httpx.Timeout(120.0), transport=budgeted_transport(budget=budget, max_wait=None))

    async def bearer() -> str:
        return (await credential.get_token("https://graph.microsoft.com/.default")).token

    lease: BudgetLease | None = None
    if task.strategy == "batch":
        service = TableServiceClient.from_connection_string(task.tables)
        ledger = TableBudgetLedger(service.get_table_client(task.lease_table), service)
        await ledger.ensure_table()
        lease = BudgetLease(ledger).attach(budget)
        tenant, app = caller_of(f"Bearer {await bearer()}")
        sweep = task.workload == "sweep"
        classes = [BudgetClass.RESOURCE_UNITS, BudgetClass.WRITES] if sweep else [BudgetClass.INVITATIONS]
        # Join before reporting ready; beat once more after every worker has (the barrier): all start knowing n.
        await budget.prepare(tenant, app, classes)

    if task.workload == "sweep":
        size = suggested_batch_size(budget.quotas[BudgetClass.WRITES])
        requests = [BatchRequest(item, "PATCH", f"/users/{item}", {"accountEnabled": False}) for item in task.items]
    else:
        size = suggested_batch_size(budget.quotas[BudgetClass.INVITATIONS])
        requests = [
            BatchRequest(
                str(n),
                "POST",
                "/invitations",
                {"invitedUserEmailAddress": item, "inviteRedirectUrl": REDIRECT, "sendInvitationMessage": False},
            )
            for n, item in enumerate(task.items)
        ]
    batch = GraphBatch(http, task.root + "/v1.0", bearer, size=size, senders=4)

    async def run() -> dict[str, Any]:
        # How many instances this one counted when it started (1 / share of the binding class).
        seen = round(1 / min(lease.shares().values())) if lease is not None else None
        results = await batch.run(requests, deadline_seconds=max(0.0, timing["deadline_at"] - time.monotonic()))
        finished = time.monotonic()
        if lease is not None:
            # Leave at once, as a Functions instance shutting down does: the others take the share back.
            await lease.close()
            await lease.ledger.close()  # type: ignore[attr-defined]
        outcome: Counter[str] = Counter()
        for result in results:
            outcome["ok" if result.ok else "unfinished" if result.deferred else f"lost:{result.status}"] += 1
        report = _report(outcome, len(task.items), finished)
        report["unfinished"] = outcome["unfinished"]
        report["instances_seen"] = seen
        return report

    return run, (lease.refresh if lease is not None else None)


def _report(outcome: Counter[str], total: int, finished: float) -> dict[str, Any]:
    lost = sum(v for k, v in outcome.items() if k.startswith("lost"))
    return {
        "ok": outcome["ok"],
        "lost": lost,
        "unfinished": total - outcome["ok"] - lost,
        "finished": finished,
        "why_lost": {k: v for k, v in outcome.items() if k.startswith("lost")},
    }


# ---------------------------------------------------------------- the parent


WRITES_PER_DISABLE = {
    "product": 2
}  # the product's disable also revokes the guest's sessions (POST revokeSignInSessions)


def run_row(
    sim_server: Any,
    storage: Any,
    workload: Workload,
    strategy: str,
    workers: int,
    deadline_factor: float,
    concurrency: int = 32,
    profile_dir: str = "",
    timeline: bool = False,
) -> dict[str, Any]:
    sim = sim_server.simulator
    tag = f"{strategy}{workers}{uuid.uuid4().hex[:6]}"
    admin = httpx.Client(base_url=sim_server.url, timeout=120)
    admin.put("/_tenantsim/faults", json={})
    env: dict[str, str] | None = None
    prepared: dict[str, Any] = {}
    if strategy == "product":
        from bench.product_rows import invitation_addresses, prepare_row, row_env, sweep_targets

        env = row_env(storage.env, sim_server.url, tag)
        admin.put("/_tenantsim/config", json={"throttlingEnabled": False})
        items = (
            sweep_targets(sim, workload.count)
            if workload.name == "sweep"
            else invitation_addresses(workload.count, tag)
        )
        prepared = asyncio.run(prepare_row(env, workload.name, items, tag))
    else:
        items = _prepare(sim, workload, tag)
    # Setting the config empties every bucket's history: each row starts with full buckets.
    admin.put(
        "/_tenantsim/config",
        json={"throttlingEnabled": True, "timeCompression": workload.compression, "quotaScale": workload.quota_scale},
    )
    admin.put("/_tenantsim/faults", json={"latencyMs": workload.latency_ms, "jitterMs": workload.jitter_ms, "seed": 7})
    admin.post("/_tenantsim/reset-counters")
    users = len(sim.directory.users)
    per_item = WRITES_PER_DISABLE.get(strategy, 1) if workload.name == "sweep" else 1
    fastest = _fastest_seconds(workload, workload.count * per_item)
    context = multiprocessing.get_context("spawn")
    results, ready, go = context.Queue(), context.Queue(), context.Queue()
    processes = []
    lease_table = f"bench{uuid.uuid4().hex[:12]}graphbudget"
    quotas = tuple(workload.product_quotas().items())
    for n in range(workers):
        share = items if strategy == "product" else items[n::workers]  # the product's instances share one queue
        task = WorkerTask(
            strategy,
            workload.name,
            sim_server.url,
            share,
            workload.compression,
            storage.tables_connection_string,
            lease_table,
            env,
            quotas,
            concurrency,
            profile_dir,
        )
        process = context.Process(target=worker_main, args=(task, results, ready, go), daemon=True)
        process.start()
        processes.append(process)
    # Workers import and authenticate first; the clock starts once all of them are ready.
    for _ in processes:
        answer = ready.get(timeout=180)
        if answer is not True:
            for process in processes:
                process.terminate()
            raise RuntimeError(f"a {strategy} worker failed before the start: {answer}")
    start_at = time.monotonic() + 1.0
    deadline_at = start_at + fastest * deadline_factor + 5.0
    throttled_times: list[float] = []
    binding_times = _record_binding_times(sim, workload, throttled_times)
    for _ in processes:
        go.put((start_at, deadline_at))
    reports = []
    try:
        for _ in processes:
            reports.append(results.get(timeout=max(1.0, deadline_at - time.monotonic()) + 60))
    except queue.Empty:
        for process in processes:
            process.terminate()
    for process in processes:
        process.join(10)
    sim.__dict__.pop("handle", None)  # the class's own again
    counters = sim.counters
    landed = _landed(sim, workload, items)
    throttled = sum(counters.throttled.values())
    units = counters.invitations if workload.name == "invitations" else counters.writes
    admin.put("/_tenantsim/faults", json={})
    admin.close()
    row: dict[str, Any] = {
        "bench": "graph_budget",
        "workload": workload.name,
        "strategy": strategy,
        "workers": workers,
        "items": workload.count,
    }
    if len(reports) < workers:
        # A worker whose event loop is still busy (an unbounded peer can spend minutes of CPU in httpx's
        # connection pool before its first request) cannot say what it did: count it in the tenant.
        wall = deadline_at - start_at
        row.update(
            ok=landed,
            landed=landed,
            lost=None,
            unfinished=workload.count - landed,
            error=f"{workers - len(reports)} of {workers} worker(s) did not report by the deadline + 60 s; "
            "figures from the tenant's state",
        )
    else:
        finished = [r["finished"] for r in reports if r["ok"] or r["lost"]]
        wall = (max(finished) if finished else deadline_at) - start_at
        ok, lost = sum(r["ok"] for r in reports), sum(r["lost"] for r in reports)
        row.update(ok=ok, landed=landed, lost=lost, unfinished=max(0, workload.count - ok - lost))
    cpu = [r.get("cpu_s", 0.0) for r in reports]
    row.update(
        # What reached the tenant in the bucket that binds (writes or invitations), over what it allowed.
        budget_class=workload.binding.value,
        units=units,
        budget_used=round(units / workload.units_allowed(wall), 3),
        **_start_and_tail(workload, units, wall, [t - start_at for t in binding_times]),
        requests=counters.requests,
        throttled_429=throttled,
        throttled_share=round(throttled / counters.requests, 4) if counters.requests else 0.0,
        wall_s=round(wall, 2),
        fastest_s=round(fastest, 2),
        compression=workload.compression,
        quota_scale=workload.quota_scale,
        refill_per_s=round(workload.scaled(DOCUMENTED_QUOTAS[workload.binding]).refill_per_second, 2),
        latency_ms=workload.latency_ms,
        why_lost=_merged(r["why_lost"] for r in reports),
        worker_cpu_s_max=max(cpu, default=None),
        # CPU of the product's processes per item done: what one instance can sustain is 1 / this, per core.
        cpu_ms_per_item=round(1000 * sum(cpu) / row["ok"], 2) if row["ok"] and cpu else None,
        lease_instances_seen=sorted({r["instances_seen"] for r in reports if r.get("instances_seen")}),
        users=users,
    )
    if strategy == "product":
        row.update(
            concurrency=concurrency,
            deployed=concurrency == deployed_concurrency(),
            retries=sum(r.get("retries", 0) for r in reports),
            dropped=sum(r.get("dropped", 0) for r in reports),
            prepared=prepared,
        )
    if timeline:
        row["binding_per_s"] = _per_second([t - start_at for t in binding_times], wall)
        row["throttled_per_s"] = _per_second([t - start_at for t in throttled_times], wall)
    return row


def _per_second(times: list[float], wall: float) -> list[int]:
    """How many of ``times`` fall in each second of the row: where a row lost its pace, or drew its 429s."""
    counts = [0] * (int(wall) + 1)
    for moment in times:
        if 0 <= moment < len(counts):
            counts[int(moment)] += 1
    return counts


def _record_binding_times(sim: Any, workload: Workload, throttled: list[float] | None = None) -> list[float]:
    """When each request of the binding class reached the tenant and was let through (monotonic seconds); when
    each was answered 429 goes to ``throttled``."""
    times: list[float] = []
    handle = sim.handle

    def recorded(request: Any) -> Any:
        response = handle(request)
        if _binds(workload, request.method, request.path):
            if response.status < 400:
                times.append(time.monotonic())
            elif response.status == 429 and throttled is not None:
                throttled.append(time.monotonic())
        return response

    sim.handle = recorded
    return times


def _binds(workload: Workload, method: str, path: str) -> bool:
    if workload.binding is BudgetClass.INVITATIONS:
        return method == "POST" and path.rstrip("/") == "/invitations"
    return method != "GET"  # tenantsim's own count of writes


def _start_and_tail(workload: Workload, units: int, wall: float, times: list[float]) -> dict[str, Any]:
    """How long the row ran before its first binding request and after its last, and the budget used it could
    have reached with that start and end: every unit between them at the bucket's pace (``ceiling``)."""
    if not times:
        return {}
    quota = workload.scaled(DOCUMENTED_QUOTAS[workload.binding])
    first, tail = min(times), max(0.0, wall - max(times))
    between = max(0.0, (units - quota.capacity) / quota.refill_per_second)
    return {
        "first_binding_s": round(first, 2),
        "after_last_binding_s": round(tail, 2),
        "ceiling": round(units / workload.units_allowed(first + between + tail), 3),
    }


def deployed_concurrency() -> int:
    """Messages one Functions instance handles at once: host.json's Service Bus maxConcurrentCalls."""
    host = json.loads((Path(__file__).resolve().parents[1] / "host.json").read_text())
    return int(host["extensions"]["serviceBus"]["maxConcurrentCalls"])


def _fastest_seconds(workload: Workload, units: int) -> float:
    """The shortest time the binding bucket allows for ``units``: the full bucket at once, then the refill."""
    quota = workload.scaled(DOCUMENTED_QUOTAS[workload.binding])
    return max(0.0, units - quota.capacity) / quota.refill_per_second + 1.0


def _prepare(sim: Any, workload: Workload, tag: str) -> list[str]:
    """Reset the tenant for a row: the sweep's targets enabled again; fresh addresses for invitations."""
    if workload.name == "sweep":
        guests = sorted(u for u, record in sim.directory.users.items() if record.data.get("userType") == "Guest")
        targets = guests[: workload.count]
        for user_id in targets:
            sim.directory.users[user_id].data["accountEnabled"] = True
        return targets
    return [f"bench.{tag}.{n}@{INVITE_DOMAIN}" for n in range(workload.count)]


def _landed(sim: Any, workload: Workload, items: list[str]) -> int:
    users = sim.directory.users
    if workload.name == "sweep":
        return sum(1 for user_id in items if users[user_id].data.get("accountEnabled") is False)
    wanted = {item.lower() for item in items}
    return sum(1 for record in users.values() if str(record.data.get("mail", "")).lower() in wanted)


def _merged(parts: Any) -> dict[str, int]:
    total: Counter[str] = Counter()
    for part in parts:
        total.update(part)
    return dict(total)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.graph_budget_bench",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument("--disables", type=int, default=600, help="guests the sweep rows disable")
    parser.add_argument("--invitations", type=int, default=1800, help="invitations (onboard tickets) per row")
    parser.add_argument("--workers", default="1,4,8", help="worker processes per row, comma-separated")
    parser.add_argument(
        "--strategies",
        default="sequential,unbounded,product",
        help="sequential, unbounded, product (at host.json's maxConcurrentCalls), product@N (N at a time), "
        "batch, headers-only",
    )
    parser.add_argument("--workloads", default="sweep,invitations")
    parser.add_argument(
        "--sweep-compression",
        type=float,
        default=30.0,
        help="write windows this many times shorter and buckets as many times smaller: Graph's 20 writes/s",
    )
    parser.add_argument(
        "--invite-compression", type=float, default=2.0, help="the same for invitations: Graph's 30 invitations/s"
    )
    parser.add_argument("--latency-ms", type=float, default=100.0, help="latency of one request (invitations 2x)")
    parser.add_argument("--deadline-factor", type=float, default=1.5, help="row deadline, x the fastest time, + 5 s")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=deployed_concurrency(),
        help="messages one product instance handles at once (default: host.json's maxConcurrentCalls, as deployed);"
        " a strategy 'product@N' runs the product rows at N instead",
    )
    parser.add_argument(
        "--profile-dir", type=Path, help="write a cProfile of every worker's run here (profiling slows the rows)"
    )
    parser.add_argument(
        "--timeline",
        action="store_true",
        help="add each row's binding requests per second (binding_per_s) and those answered 429 (throttled_per_s)",
    )
    args = parser.parse_args(argv)
    if args.profile_dir:
        args.profile_dir.mkdir(parents=True, exist_ok=True)

    from tenantsim.config import SimConfig
    from tenantsim.seed import build_seed
    from tenantsim.server import TenantSimServer
    from tenantsim.stack import LocalStack

    workloads = {
        "sweep": Workload(
            "sweep",
            args.disables,
            args.sweep_compression,
            args.latency_ms,
            args.latency_ms / 3,
            {BudgetClass.RESOURCE_UNITS: 1, BudgetClass.WRITES: 1},
            quota_scale=1 / args.sweep_compression,
        ),
        "invitations": Workload(
            "invitations",
            args.invitations,
            args.invite_compression,
            2 * args.latency_ms,
            2 * args.latency_ms / 3,
            {BudgetClass.INVITATIONS: 1},
            quota_scale=1 / args.invite_compression,
        ),
    }
    seed = build_seed(max(args.disables * 2, 600), 0, "fresh")
    # Azurite holds the product's state, queues and lease; tenantsim runs in this process, the workers in theirs.
    with (
        LocalStack(tenantsim=False) as storage,
        TenantSimServer(seed, config=SimConfig(throttling_enabled=True)) as server,
    ):
        for name in args.workloads.split(","):
            for workers in (int(w) for w in args.workers.split(",")):
                for token in args.strategies.split(","):
                    strategy, _, at_once = token.partition("@")
                    concurrency = int(at_once) if at_once else args.concurrency
                    row = run_row(
                        server,
                        storage,
                        workloads[name],
                        strategy,
                        workers,
                        args.deadline_factor,
                        concurrency,
                        str(args.profile_dir or ""),
                        args.timeline,
                    )
                    print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
