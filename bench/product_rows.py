"""The product's rows of bench.graph_budget_bench: the deployed handlers, not a client written for the benchmark.

Each worker process is what one Functions instance is: services built by ``app.bootstrap`` (real Table state in
Azurite, the Storage-queue transport standing in for Service Bus, the Graph client with the shared budget lease
in Table Storage), then the queue worker (``lifecycle.ledger.worker.drain``) feeding the same handler the
Functions trigger calls: ``lifecycle.onboarding.handler.handle_ticket`` for the invitations,
``lifecycle.sweep.entry.handle_guest_action`` for the sweep's disables. Retries the handlers ask for are
scheduled on the queue, as in Azure.

The parent prepares a row the way the product's users would: onboard tickets on the `onboarding` queue, or a
sweep run planned, approved past the deletion brake and fanned out on `guest-actions`. That preparation is
not timed.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

ONBOARDING_QUEUE = "onboarding"
PARTNER_DOMAINS = (
    ("fabrikam", "fabrikam.com"),
    ("northwind", "northwindtraders.com"),
    ("adatum", "adatum.com"),
)
SPONSOR = "megan.bowen@contoso.com"
OPTED_OUT_DOMAINS = ("woodgrovebank.com",)  # the sample desired state's partner without the inactivity rule


def row_env(stack_env: dict[str, str], graph_root: str, row: str) -> dict[str, str]:
    """The app settings of a row's instances: the local stack, the in-process tenantsim, a fresh state."""
    return {
        **stack_env,
        "LIFECYCLE_GRAPH_BASE_URL": f"{graph_root}/v1.0",
        "LIFECYCLE_GRAPH_BETA_URL": f"{graph_root}/beta",
        "LIFECYCLE_GRAPH_CREDENTIAL": "tenantsim",
        "LIFECYCLE_LOG_LEVEL": "WARNING",
        "LIFECYCLE_LOG_FORMAT": "console",
        "LIFECYCLE_TABLE_PREFIX": f"b{row}",
        "LIFECYCLE_QUEUE_PREFIX": f"b{row}-",
    }


def onboard_tickets(emails: list[str], run: str) -> list[dict[str, Any]]:
    """One valid onboard ticket per address (the address's domain names the partner)."""
    end = (datetime.now(UTC) + timedelta(days=60)).date().isoformat()
    partners = {domain: partner for partner, domain in PARTNER_DOMAINS}
    return [
        {
            "schemaVersion": 1,
            "kind": "onboard",
            "ticketId": f"BENCH-{run}-{n:05d}",
            "email": email,
            "displayName": f"Bench Guest {n:05d}",
            "partner": partners[email.rsplit("@", 1)[1]],
            "sponsor": SPONSOR,
            "endDate": end,
            "sendInvitation": False,
        }
        for n, email in enumerate(emails)
    ]


def invitation_addresses(count: int, tag: str) -> list[str]:
    return [f"bench.{tag}.{n}@{PARTNER_DOMAINS[n % len(PARTNER_DOMAINS)][1]}" for n in range(count)]


def sweep_targets(sim: Any, count: int) -> list[str]:
    """``count`` guests made due for disabling (enabled, redeemed, no sign-in for 200 days); every other guest
    is made active, so the sweep plans exactly these. Protected and opted-out guests are never chosen."""
    from tenantsim.seed import PROTECTED_GROUP_ID

    now = datetime.now(UTC)
    recent, stale = _iso(now - timedelta(days=3)), _iso(now - timedelta(days=200))
    protected = set(sim.directory.groups.get(PROTECTED_GROUP_ID, {}).get("members", ()))
    chosen: list[str] = []
    for user_id, record in sorted(sim.directory.users.items()):
        data = record.data
        if data.get("userType") != "Guest":
            continue
        mail = str(data.get("mail") or "").lower()
        due = len(chosen) < count and user_id not in protected and not mail.endswith(OPTED_OUT_DOMAINS)
        if due:
            chosen.append(user_id)
        last = stale if due else recent
        data.update(
            accountEnabled=True,
            externalUserState="Accepted",
            externalUserStateChangeDateTime=data.get("externalUserStateChangeDateTime") or data.get("createdDateTime"),
            signInActivity={
                "lastSignInDateTime": last,
                "lastSignInRequestId": "",
                "lastNonInteractiveSignInDateTime": last,
                "lastNonInteractiveSignInRequestId": "",
                "lastSuccessfulSignInDateTime": last,
                "lastSuccessfulSignInRequestId": "",
            },
        )
    if len(chosen) < count:
        raise SystemExit(f"only {len(chosen)} guests can be made due; ask for fewer disables")
    return chosen


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def prepare_row(env: dict[str, str], workload: str, items: list[str], row: str) -> dict[str, Any]:
    """Put the row's work on its queue as the product's users would; returns what the preparation saw."""
    from app.bootstrap import bootstrap
    from config.settings import load_settings
    from lifecycle.onboarding.submission import submit_documents
    from lifecycle.sweep import entry

    services = await bootstrap(load_settings(env))
    try:
        if workload == "invitations":
            await submit_documents(services, ONBOARDING_QUEUE, onboard_tickets(items, row))
            return {"queued": len(items)}
        run_id = f"bench-{row}"
        planned = await entry.run_sweep(services, "enforce", run_id=run_id)
        if planned["status"] == "braked":
            await entry.approve(services, run_id, "bench@contoso.com")
        return {"queued": planned["disable"], "planned": {k: planned[k] for k in ("disable", "delete")}}
    finally:
        await services.close()


# ---------------------------------------------------------------- inside a worker process


async def handlers_worker(task: Any, timing: dict[str, float]) -> tuple[Any, Any]:
    """Build one instance's services; return (the run, the barrier) as bench.graph_budget_bench expects."""
    from app.bootstrap import bootstrap
    from config.settings import load_settings
    from graph.budget import BudgetClass, GraphBudget
    from graph.budget_transport import caller_of
    from lifecycle.ledger.outcomes import Verdict
    from lifecycle.ledger.worker import drain
    from lifecycle.onboarding.handler import handle_ticket
    from lifecycle.sweep import entry

    budget = GraphBudget(quotas=dict(task.quotas))
    services = await bootstrap(load_settings(task.env), graph_budget=budget, queue_slots=task.concurrency)
    lease = budget.coordinator
    credential = _credential_of(services)
    token = (await credential.get_token(services.settings.graph_scope)).token
    tenant, app = caller_of(f"Bearer {token}")
    sweep = task.workload == "sweep"
    classes = [BudgetClass.RESOURCE_UNITS, BudgetClass.WRITES] if sweep else [BudgetClass.INVITATIONS]
    # Join the lease before reporting ready; beat once more after every worker has (the barrier).
    await budget.prepare(tenant, app, classes)
    queue, handle = ("guest-actions", entry.handle_guest_action) if sweep else (ONBOARDING_QUEUE, handle_ticket)
    finished: list[tuple[float, str]] = []

    async def timed(message: Any, services: Any) -> Any:
        outcome = await handle(message, services)
        finished.append((time.monotonic(), _kind(outcome, Verdict)))
        return outcome

    async def run() -> dict[str, Any]:
        seen = round(1 / min(lease.shares().values())) if lease is not None and lease.shares() else None
        remaining = max(0.0, timing["deadline_at"] - time.monotonic())
        crashed = 0
        try:
            report = await asyncio.wait_for(
                drain(
                    services,
                    queue,
                    timed,
                    concurrency=task.concurrency,
                    idle_rounds=3,
                    wait_for_delayed_seconds=remaining,
                ),
                timeout=remaining,
            )
            crashed = report.crashed
        except TimeoutError:
            pass
        kinds = Counter(kind for _, kind in finished)
        done_at = [at for at, kind in finished if kind == "ok"]
        outcome: Counter[str] = Counter(ok=kinds["ok"])
        for kind, count in kinds.items():
            if kind.startswith("lost"):
                outcome[kind] = count
        if crashed:
            outcome["lost:crashed"] = crashed
        report_ = {
            "ok": kinds["ok"],
            "lost": sum(v for k, v in outcome.items() if k.startswith("lost")),
            "finished": max(done_at) if done_at else time.monotonic(),
            "why_lost": {k: v for k, v in outcome.items() if k.startswith("lost")},
            "instances_seen": seen,
            "retries": kinds["retry"],
            "dropped": kinds["dropped"],
        }
        report_["unfinished"] = len(task.items) - report_["ok"] - report_["lost"]
        await services.close()
        return report_

    async def barrier() -> None:
        # Every worker beats once the start is given, then counts again: a row its owner last rewrote while
        # this worker waited for the others to start may look older than the lease and go uncounted, and a
        # worker that counts too few instances overspends its first burst (the start is 1 s after the go).
        assert lease is not None
        await lease.refresh()
        await asyncio.sleep(0.5)
        await lease.refresh()

    return run, (barrier if lease is not None else None)


def _kind(outcome: Any, verdict: Any) -> str:
    """ok, retry (rescheduled: not final), dropped (a disable the re-check dropped) or lost:<why>."""
    if outcome.verdict is verdict.RETRY:
        return "retry"
    if outcome.verdict in (verdict.DONE, verdict.DUPLICATE):
        return "dropped" if str(outcome.code).startswith("dropped") else "ok"
    return f"lost:{outcome.verdict.value}:{outcome.code}"


def _credential_of(services: Any) -> Any:
    from graph.credentials import TenantSimCredential, simulator_root
    from graph.permissions import granted

    settings = services.settings
    return TenantSimCredential(
        simulator_root(settings.graph_base_url), roles=granted(redemption_reset=settings.reset_enabled)
    )
