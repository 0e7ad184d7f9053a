"""The chaos soak: the whole local stack, worker processes and every fault kind, then the invariants.

    python -m tests.chaos.soak --tickets N --guests M --seed S [--json]

Starts Azurite and tenantsim (seeded with M generated guests and deletion traps), worker processes on
the `onboarding` and `guest-actions` queues, and a concurrent Table writer. From one seed it injects:
Graph 429 (Retry-After), 503, 504, connection resets, slow answers, replication delay and an outage
(tenantsim); duplicate deliveries, lost locks, workers SIGKILLed right after a Graph write and from
outside, a replay killed between its send and its removal, ETag conflicts and an Azurite restart (the
harness). Meanwhile it pushes N tickets, runs the sweep in enforce mode (approving the brake), a
redemption reset and a policy drift apply. Then it heals the faults, restarts the workers, replays the
dead letters, drains, and checks the invariants (tests/chaos/invariants.py) against tenantsim's state.

Prints one JSON line; exit 0 only with zero violations and every fault kind injected at least once.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import yaml

from app.bootstrap import bootstrap
from config.settings import load_settings
from lifecycle.ledger import operations
from lifecycle.models import GuestRecord, GuestState, OutboundMessage
from lifecycle.onboarding.submission import ticket_message
from lifecycle.services import Services
from tenantsim.client import TenantSimAdmin
from tenantsim.stack import LocalStack
from tenantsim.tokens import DEFAULT_APP_ID
from tests.chaos import scenario
from tests.chaos.events import count_events
from tests.chaos.invariants import Evidence, check_all

GRAPH_FAULTS = ("429", "503", "504", "reset", "outage", "slow", "replication-delay")
HARNESS_FAULTS = (
    "duplicate-delivery",
    "lost-lock",
    "kill-after-graph-write",
    "kill-from-outside",
    "replay-killed-after-send",
    "etag-conflict",
    "azurite-restart",
)
QUEUES = ("onboarding", "guest-actions")
PYTHON = sys.executable
OPERATOR = "soak@contoso.com"


@dataclass(frozen=True)
class SoakConfig:
    tickets: int
    guests: int
    seed: int
    workers_per_queue: int = 2
    # The queue lock (PT2M in Azure); the workers compress the product's waits by the same factor.
    lock_seconds: int = 12
    kill_rate: float = 0.01  # per Graph write in a worker: SIGKILL right after it returned
    stall_rate: float = 0.01  # per Graph write: stall past the lock, so another worker takes the message
    fault_rate: float = 0.02  # Graph 429 at this rate; 503, 504 and resets at half of it each
    compression: float = 10.0  # tenantsim's throttling windows
    outage_seconds: float = 6.0
    settle_seconds: float = 900.0  # the longest wait for the queues to empty, per phase


@dataclass
class Run:
    """What one soak run collects on its way to the verdict."""

    config: SoakConfig
    tenant: scenario.Tenant
    env: dict[str, str]
    scratch: Path
    tickets: list[scenario.Ticket] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    phases: dict[str, float] = field(default_factory=dict)
    jobs: dict[str, Any] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)
    stack: LocalStack | None = None

    def phase(self, name: str) -> None:
        self.phases[name] = round(time.monotonic() - self.started, 1)


class Workers:
    """The worker subprocesses (and, with chaos, the concurrent Table writer); killable and replaceable."""

    def __init__(self, run: Run, *, chaos: bool) -> None:
        self.run, self.chaos = run, chaos
        self.stop_file = run.scratch / f"stop-{time.monotonic_ns()}"
        self.processes: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.others: list[subprocess.Popen[bytes]] = []
        self.spawned = 0

    def start(self) -> Workers:
        for queue in QUEUES:
            for _ in range(self.run.config.workers_per_queue):
                self._spawn(queue)
        if self.chaos:
            argv = ["-m", "tests.chaos.toucher", *self._common(), "--seed", str(self.run.config.seed)]
            self.others.append(self._popen(argv))
        return self

    def _common(self) -> list[str]:
        return ["--events", str(self.run.scratch / "events"), "--stop-file", str(self.stop_file)]

    def _popen(self, argv: list[str]) -> subprocess.Popen[bytes]:
        with (self.run.scratch / "workers.log").open("ab") as log:
            return subprocess.Popen([PYTHON, *argv], env=self.run.env, stdout=log, stderr=log, stdin=subprocess.DEVNULL)

    def _spawn(self, queue: str) -> None:
        config = self.run.config
        self.spawned += 1
        argv = ["-m", "tests.chaos.worker", "--queue", queue, *self._common()]
        argv += ["--seed", str(config.seed * 1000 + self.spawned), "--lock-seconds", str(config.lock_seconds)]
        if self.chaos:
            argv += ["--kill-rate", str(config.kill_rate), "--stall-rate", str(config.stall_rate)]
            argv += ["--probe-rate", "0.5"]
            if self.spawned == 1:
                # The worker's pid seeds its draws, so the rate alone may kill nobody in a small run:
                # the first chaos worker dies for certain after one of its first Graph writes.
                argv += ["--kill-at", str(random.Random(f"kill-at:{config.seed}").randint(2, 6))]
            elif self.spawned in (2, 3):
                # Likewise a lost lock: the next chaos worker of each queue stalls past its lock for certain
                # after one of its first Graph writes, so another worker takes the message over.
                argv += ["--stall-at", str(random.Random(f"stall-at:{config.seed}:{self.spawned}").randint(1, 3))]
        self.processes.append((queue, self._popen(argv)))

    def respawn_dead(self) -> int:
        """Replace workers that died (a SIGKILL after a Graph write), as the host would; returns how many."""
        dead = [(q, p) for q, p in self.processes if p.poll() is not None]
        for queue, process in dead:
            self.processes.remove((queue, process))
            self._spawn(queue)
        return len(dead)

    def kill_one(self, rng: random.Random) -> None:
        alive = [p for _q, p in self.processes if p.poll() is None]
        if alive:
            victim = rng.choice(alive)
            with contextlib.suppress(ProcessLookupError):
                victim.send_signal(signal.SIGKILL)
            victim.wait()

    @property
    def restarts(self) -> int:
        return self.spawned - len(QUEUES) * self.run.config.workers_per_queue

    def stop(self) -> None:
        self.stop_file.touch()
        deadline = time.monotonic() + 30
        for process in [p for _q, p in self.processes] + self.others:
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


class GraphFaults:
    """tenantsim's fault settings over the run; sums the slow answers it counted under each setting."""

    def __init__(self, admin: TenantSimAdmin, config: SoakConfig) -> None:
        self.admin, self.config = admin, config
        self.slowed = 0
        self.rng = random.Random(f"faults:{config.seed}")

    def inject(self, *, outage: bool = False) -> None:
        self._collect_slowed()
        rate = self.config.fault_rate
        self._put(
            rates={"429": rate, "503": rate / 2, "504": rate / 2, "reset": rate / 2},
            retryAfterSeconds=1,
            latencyMs=150,
            jitterMs=100,
            slowRate=0.03,
            outage=outage,
            seed=self.rng.randrange(2**31),
        )

    def heal(self) -> None:
        self._collect_slowed()
        self._put()
        self.admin.configure(replicationDelaySeconds=0)

    def _put(self, **faults: Any) -> None:
        response = self.admin._http.put("/faults", json=faults)
        if response.status_code != 200:
            raise RuntimeError(f"tenantsim refused the fault settings {faults}: {response.text}")

    def _collect_slowed(self) -> None:
        self.slowed += int(self.admin._http.get("/faults").json().get("slowed", 0))


async def _retrying(what: str, action, attempts: int = 8, pause: float = 3.0) -> Any:
    """A job as its timer runs it: a run that failed is simply run again later."""
    for attempt in range(1, attempts + 1):
        try:
            return await action()
        except Exception as error:
            if attempt == attempts:
                raise RuntimeError(f"{what} kept failing: {error!r}") from error
            await asyncio.sleep(pause)
    return None


def _message(ticket: scenario.Ticket, index: int) -> OutboundMessage:
    """The ticketing system's message; a duplicate is the same ticket sent again (another broker id)."""
    if ticket.ticket_id is None:
        return OutboundMessage(ticket.body, f"soak-raw-{index}", f"body:{index}", "ticket")
    message = ticket_message(json.loads(ticket.body))
    suffix = "|again" if ticket.duplicate else ""
    return OutboundMessage(ticket.body, message.message_id + suffix, message.key, "ticket")


async def _send(services: Services, queue: str, messages: list[OutboundMessage]) -> None:
    name = services.settings.queue_name(queue)
    for start in range(0, len(messages), 200):
        chunk = messages[start : start + 200]
        await _retrying(f"sending to {queue}", lambda chunk=chunk: services.transport.send(name, chunk))


async def _seed_ledger(services: Services, tenant: scenario.Tenant) -> None:
    """The rows this product wrote in earlier nights: the guests it disabled, and when."""
    for row in tenant.ledger:
        event = {"at": row["disabled"].isoformat(), "event": "disabled", "rule": "inactive", "run": "before-soak"}
        await services.guests.save(
            GuestRecord(
                row["objectId"],
                row["email"],
                row["partner"],
                GuestState.DISABLED,
                disabled=row["disabled"],
                updated=row["disabled"],
                history=[event],
            )
        )


async def _jobs(run: Run, services: Services, admin: TenantSimAdmin) -> None:
    """Tonight's sweep (enforced, brake approved), the partner's redemption reset, the policy drift apply."""
    from lifecycle.drift.entry import run_policy_drift
    from lifecycle.reset.entry import approve_reset_run, run_reset_detection
    from lifecycle.sweep import entry as sweep

    seed = run.config.seed

    async def sweep_run() -> dict[str, Any]:
        summary = await sweep.run_sweep(services, "enforce", run_id=f"sweep-soak-{seed}")
        if summary["status"] == "braked":
            summary = await sweep.approve(services, summary["runId"], OPERATOR)
        if summary["status"] != "dispatched":
            raise RuntimeError(f"sweep ended {summary['status']}: {summary.get('reason')}")
        return summary

    async def reset_run() -> dict[str, Any]:
        summary = await run_reset_detection(services, "enforce", f"reset-soak-{seed}")
        if summary["status"] == "braked":
            summary = await approve_reset_run(services, summary["runId"], OPERATOR)
        return summary

    async def drift_apply() -> int:
        return len((await run_policy_drift(services, "enforce")).drift)

    summary = await _retrying("the sweep", sweep_run)
    run.jobs["sweep"] = {k: summary[k] for k in ("totalGuests", "disable", "delete", "dispatched")}
    admin.set_identity_provider(scenario.RESET_DOMAIN, "AzureAD", scenario.RESET_TENANT)
    summary = await _retrying("the redemption reset", reset_run)
    run.jobs["reset"] = {k: summary.get(k) for k in ("status", "totalGuests", "dispatched", "actions")}
    run.jobs["drift"] = {"beforeApply": await _retrying("policy drift", drift_apply)}


async def _chaos(run: Run, services: Services, admin: TenantSimAdmin, faults: GraphFaults) -> Workers:
    """Faults on, chaos workers, the tickets and the jobs, an outage, kills and an Azurite restart."""
    config, rng = run.config, random.Random(f"soak:{run.config.seed}")
    # Assignment requests move on in the background, read or not, as Graph processes them: a request sent by a
    # worker killed before recording it still delivers, and only the product's own care keeps it the only one.
    admin.configure(replicationDelaySeconds=2.0, assignmentRequestProcessing="background")
    faults.inject()
    workers = Workers(run, chaos=True).start()

    first = scenario.first_wave(config.tickets, config.seed, run.tenant, run.tenant.anchor)
    duplicates = scenario.duplicates(first, config.seed)
    run.counts["duplicate-delivery"] += len(duplicates)
    batch = first + duplicates
    rng.shuffle(batch)
    await _send(services, "onboarding", [_message(t, i) for i, t in enumerate(batch)])
    run.tickets += batch

    await _jobs(run, services, admin)
    run.phase("jobsDone")
    second = scenario.second_wave(first, config.seed, run.tenant.anchor)
    await _send(services, "onboarding", [_message(t, 100_000 + i) for i, t in enumerate(second)])
    run.tickets += second

    await _outage(admin, faults, workers, config.outage_seconds)
    for _ in range(2):
        workers.kill_one(rng)
        run.counts["kill-from-outside"] += 1
        workers.respawn_dead()
        await asyncio.sleep(2)
    assert run.stack is not None
    run.stack.restart_azurite()
    run.counts["azurite-restart"] += 1
    run.phase("chaosDone")
    await _work_until_quiet(services, workers, config.settle_seconds)
    run.phase("chaosDrained")
    return workers


async def _outage(admin: TenantSimAdmin, faults: GraphFaults, workers: Workers, seconds: float, least: int = 5) -> None:
    """Graph down for ``seconds``, and on until the product has run into it ``least`` times. Workers killed
    meanwhile are replaced, as the host would: otherwise an outage could fall while every worker of a queue
    lies dead, and an outage nobody met proves nothing."""
    faults.inject(outage=True)
    for tick in range(int(42 * seconds)):  # at most about 20 times as long
        workers.respawn_dead()
        if tick >= 2 * seconds and admin.counters()["faultsByKind"].get("outage", 0) >= least:
            break
        await asyncio.sleep(0.5)
    faults.inject()


async def _heal(run: Run, services: Services, faults: GraphFaults) -> tuple[Workers, dict[str, int]]:
    """Faults off, clean workers, every dead letter replayed (the first replay dies between send and removal)."""
    faults.heal()
    await operations.reconcile_dead_letters(services)
    parked = scenario.parked_ticket(run.config.seed, run.tenant.anchor)
    await _park_dead_letter(services, parked)
    run.tickets.append(parked)
    dead = {"beforeReplay": await _dead_letters(services)}
    killed = await asyncio.create_subprocess_exec(
        PYTHON,
        "-m",
        "tests.chaos.replayer",
        "--events",
        str(run.scratch / "events"),
        "--kill-after",
        "1",
        env=run.env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _out, err = await killed.communicate()
    if killed.returncode != -signal.SIGKILL:
        raise RuntimeError(f"the replay meant to die ended with {killed.returncode}: {err[-2000:]!r}")
    workers = Workers(run, chaos=False).start()
    dead["replayed"] = len(await _replay_all(services))
    await _work_until_quiet(services, workers, run.config.settle_seconds)
    dead["afterReplay"] = await _dead_letters(services)
    workers.stop()
    run.phase("healedAndDrained")
    return workers, dead


async def _replay_all(services: Services, patience: float = 60.0) -> list[dict[str, Any]]:
    """Replay every dead letter; the one the killed replay held comes back once its lock runs out."""
    replayed: list[dict[str, Any]] = []
    deadline = time.monotonic() + patience
    while True:
        for queue in QUEUES:
            replayed += await operations.replay(
                services, queue, operations.Selector(), dry_run=False, operator=OPERATOR
            )
        if await _dead_letters(services) == 0 or time.monotonic() > deadline:
            return replayed
        await asyncio.sleep(2)


async def _park_dead_letter(services: Services, ticket: scenario.Ticket) -> None:
    """A ticket the broker gave up on before any attempt ran: the replay that gets killed has work to send."""
    queue = services.settings.queue_name("onboarding")
    await services.transport.send(queue, [_message(ticket, -1)])
    for _ in range(100):
        if batch := await services.transport.receive(queue, max_messages=1, lock_seconds=30):
            await services.transport.dead_letter(queue, batch[0], "MaxDeliveryCountExceeded", "parked by the soak")
            return
        await asyncio.sleep(0.2)
    raise RuntimeError("the ticket to park never arrived on the queue")


async def _dead_letters(services: Services) -> int:
    total = 0
    for queue in QUEUES:
        _active, dead = await services.transport.depth(services.settings.queue_name(queue))
        total += dead
    return total


async def _work_until_quiet(services: Services, workers: Workers, patience: float) -> None:
    """Wait until both queues stay empty (scheduled retries count), replacing workers that die."""
    quiet, deadline = 0, time.monotonic() + patience
    while time.monotonic() < deadline and quiet < 3:
        workers.respawn_dead()
        busy = [await _depth(services, q) for q in QUEUES]
        quiet = 0 if any(busy) else quiet + 1
        await asyncio.sleep(2)


async def _depth(services: Services, queue: str) -> int:
    try:
        active, _dead = await services.transport.depth(services.settings.queue_name(queue))
    except Exception:  # Azurite restarting: not quiet yet
        return 1
    return active


async def _drift_after(services: Services) -> tuple[int, int]:
    """The hourly drift timer fires again after the faults; then a plan: (fixable drift, report-only checks)."""
    from lifecycle.drift.entry import run_policy_drift
    from lifecycle.drift.report import WRITABLE_CHANGES

    await run_policy_drift(services, "enforce")
    plan = (await run_policy_drift(services, "plan")).drift
    fixable = sum(1 for action in plan if action.change in WRITABLE_CHANGES)
    return fixable, len(plan) - fixable


def _all_pages(admin: TenantSimAdmin, path: str) -> list[dict[str, Any]]:
    """A Graph collection read as an auditor would, every page."""
    token = admin.token(["EntitlementManagement.Read.All"])
    items: list[dict[str, Any]] = []
    url: str | None = f"{admin.base_url}/v1.0{path}"
    with httpx.Client(timeout=60, headers={"Authorization": f"Bearer {token}"}) as client:
        while url:
            response = client.get(url)
            response.raise_for_status()
            page = response.json()
            items.extend(page.get("value", []))
            url = page.get("@odata.nextLink")
    return items


async def _drive(run: Run) -> dict[str, Any]:
    # The soak resets redemptions: it runs as a deployment that opted in (and so holds User.ReadWrite.All).
    settings = load_settings({**run.env, "LIFECYCLE_LOG_LEVEL": "ERROR", "LIFECYCLE_RESET_ENABLED": "true"})
    services = await bootstrap(settings)
    assert run.stack is not None
    admin = TenantSimAdmin(run.stack.tenantsim_url, timeout=120)
    faults = GraphFaults(admin, run.config)
    try:
        # The sample desired state restricts invitations to admins and Guest Inviters and declares that the
        # product's identity holds the role (invitations.appHoldsGuestInviter; infra assigns it with
        # grant-graph-permissions --assign-guest-inviter): the simulated tenant has it assigned too.
        admin.configure(guestInviterAppIds=[DEFAULT_APP_ID])
        await _seed_ledger(services, run.tenant)
        before = admin.snapshot()
        admin.reset_counters()
        chaos_workers = await _chaos(run, services, admin, faults)
        chaos_workers.stop()
        clean_workers, dead = await _heal(run, services, faults)
        drift_after, report_only = await _drift_after(services)
        run.jobs["drift"] |= {"after": drift_after, "reportOnlyAfter": report_only}
        counters = admin.counters()
        evidence = Evidence(
            tenant=run.tenant,
            tickets=run.tickets,
            before=before,
            after=admin.snapshot(),
            requests=admin.requests(),
            assignments=_all_pages(
                admin, "/identityGovernance/entitlementManagement/assignments?$expand=target,accessPackage"
            ),
            audit=[e async for e in services.audit.entries(since=run.tenant.anchor - timedelta(days=1))],
            work_items={i.key: i async for i in services.work_items.query()},
            rejections=[r async for r in services.rejections.all()],
            drift_after=drift_after,
        )
    finally:
        admin.close()
        await services.close()
    events = count_events(run.scratch / "events")
    faults_seen = {kind: counters["faultsByKind"].get(kind, 0) for kind in ("429", "503", "504", "reset", "outage")}
    faults_seen["429"] += sum(counters["throttledByScope"].values())  # the throttling model's own 429s
    faults_seen |= {
        "slow": faults.slowed,
        "replication-delay": events["replication-delay-observed"],
        "duplicate-delivery": run.counts["duplicate-delivery"],
        "lost-lock": events["stall-past-lock"],
        "kill-after-graph-write": events["kill-after-graph-write"],
        "kill-from-outside": run.counts["kill-from-outside"],
        "replay-killed-after-send": events["replay-killed-after-send"],
        "etag-conflict": events["etag-touch"],
        "azurite-restart": run.counts["azurite-restart"],
    }
    violations = check_all(evidence)
    missing = sorted(kind for kind in (*GRAPH_FAULTS, *HARNESS_FAULTS) if not faults_seen.get(kind))
    tickets = {t.ticket_id for t in run.tickets if t.ticket_id}
    outcomes = Counter(i.status.value for k, i in evidence.work_items.items() if k.removeprefix("ticket:") in tickets)
    return {
        "ok": not violations and not missing,
        "seed": run.config.seed,
        "guests": run.config.guests,
        "messages": {
            "tickets": len({t.ticket_id or t.body for t in run.tickets}),
            "sent": len(run.tickets),
            "sweepActions": run.jobs["sweep"]["dispatched"],
            "graphRequests": counters["requests"],
            "graphWrites": counters["writes"],
        },
        "ticketOutcomes": dict(outcomes),
        "faults": faults_seen,
        "faultKindsMissing": missing,
        "observed": {
            "etagConflictsHitByProduct": events["etag-conflict-seen"],
            "settlementsWithLockLost": events["lock-lost"],
            "workerRestarts": chaos_workers.restarts + clean_workers.restarts,
        },
        **run.jobs,
        "deadLetters": dead,
        "invariantViolations": len(violations),
        "violations": violations[:50],
        "phases": run.phases,
    }


def soak(config: SoakConfig) -> dict[str, Any]:
    """One whole soak run; SOAK_KEEP=DIR keeps its seed, desired state, worker log and events there."""
    wall = time.monotonic()
    keep = os.environ.get("SOAK_KEEP")
    with tempfile.TemporaryDirectory(prefix="soak-") as temporary:
        scratch = Path(keep or temporary)
        scratch.mkdir(parents=True, exist_ok=True)
        tenant = scenario.build_tenant(config.guests, config.seed)
        seed_file = scratch / "seed.json"
        seed_file.write_text(json.dumps(tenant.document))
        desired = scratch / "desired-state.yaml"
        desired.write_text(yaml.safe_dump(scenario.desired_state(tenant), sort_keys=False))
        command = [PYTHON, "-m", "tests.chaos.simserver", "--seed", str(seed_file)]
        command += ["--time-compression", str(config.compression)]
        with LocalStack(tenantsim_command=command) as stack:
            env = {**os.environ, **stack.env, "LIFECYCLE_DESIRED_STATE": str(desired), "LIFECYCLE_LOG_LEVEL": "ERROR"}
            env["PYTHONPATH"] = str(scenario.SAMPLE_DESIRED.parents[1])
            run = Run(config, tenant, env, scratch, stack=stack)
            result = asyncio.run(_drive(run))
    result["wallSeconds"] = round(time.monotonic() - wall, 1)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos.soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--tickets", type=int, default=5000)
    parser.add_argument("--guests", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2, help="worker processes per queue")
    parser.add_argument("--json", action="store_true", help="the result as indented JSON instead of one line")
    args = parser.parse_args(argv)
    config = SoakConfig(tickets=args.tickets, guests=args.guests, seed=args.seed, workers_per_queue=args.workers)
    result = soak(config)
    print(json.dumps(result, indent=2) if args.json else json.dumps(result, separators=(",", ":")))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
