"""The sweep on the local stack: its run store on Azurite, and a whole run over tenantsim."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import pytest
from azure.data.tables.aio import TableServiceClient

from adapters.sweep_runs import TableSweepRuns
from app.bootstrap import bootstrap
from graph.credentials import TenantSimCredential
from graph.permissions import GRANTED
from lifecycle.errors import StateConflictError
from lifecycle.ledger.worker import drain
from lifecycle.plans import Mode
from lifecycle.runs.model import DailyRun, RunStatus
from lifecycle.sweep import entry
from lifecycle.sweep.model import Action, PlannedAction, Rule
from tenantsim.client import TenantSimAdmin
from tenantsim.seed import PROTECTED_GROUP_ID, build_seed

pytestmark = pytest.mark.stack
STARTED = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)


@pytest.fixture
async def table_runs(azurite, unique_prefix):
    service = TableServiceClient.from_connection_string(azurite.tables_connection_string)
    store = TableSweepRuns(service.get_table_client(f"{unique_prefix}sweepruns"), service)
    await store.ensure_table()
    yield store
    await store.close()


async def test_the_table_store_guards_runs_with_etags_and_refuses_a_second_create(table_runs):
    """A run id is created once; a save from a stale read is refused, a fresh one lands."""
    run = await table_runs.create(DailyRun("sweep-2026-11-24", Mode.PLAN, RunStatus.PLANNING, started=STARTED))
    with pytest.raises(StateConflictError):
        await table_runs.create(DailyRun("sweep-2026-11-24", Mode.ENFORCE, RunStatus.PLANNING, started=STARTED))
    stale = await table_runs.get("sweep-2026-11-24")
    run.status, run.actions, run.total_guests = RunStatus.PLANNED, {"disable/inactive": 2}, 7
    run.cursor, run.pages = "https://graph.microsoft.com/v1.0/users?$skiptoken=abc", 3
    saved = await table_runs.save(run)
    assert stale is not None
    with pytest.raises(StateConflictError):
        await table_runs.save(stale)
    again = await table_runs.get("sweep-2026-11-24")
    assert again is not None and again.status is RunStatus.PLANNED and again.actions == {"disable/inactive": 2}
    assert again.started == STARTED and again.etag == saved.etag
    assert (again.cursor, again.pages) == ("https://graph.microsoft.com/v1.0/users?$skiptoken=abc", 3)
    assert [r.run_id async for r in table_runs.runs()] == ["sweep-2026-11-24"]


async def test_the_table_store_writes_actions_in_transactions_and_streams_them_back(table_runs):
    """250 actions (three transactions) come back once each, with evidence, even when written twice."""
    actions = [
        PlannedAction("sweep-x", str(uuid.uuid4()), Action.DISABLE, Rule.INACTIVE, "fabrikam", {"inactiveDays": 90})
        for _ in range(250)
    ]
    await table_runs.add_actions("sweep-x", actions)
    await table_runs.add_actions("sweep-x", actions[:120])
    await table_runs.add_actions("sweep-y", actions[:3])
    read = [a async for page in table_runs.actions("sweep-x") for a in page]
    assert sorted(read, key=lambda a: a.object_id) == sorted(actions, key=lambda a: a.object_id)


def _prefixes() -> dict[str, str]:
    suffix = uuid.uuid4().hex[:8]
    return {"LIFECYCLE_TABLE_PREFIX": f"sw{suffix}", "LIFECYCLE_QUEUE_PREFIX": f"sw{suffix}-"}


async def _services(stack, roles):
    from config.settings import load_settings

    settings = load_settings({**stack.env, **_prefixes()})
    credential = TenantSimCredential(stack.tenantsim_url, roles=roles)
    return await bootstrap(settings, credential=credential)


@pytest.fixture
def fresh_tenant(local_stack):
    with TenantSimAdmin(local_stack.tenantsim_url) as admin:
        admin.seed(builtin="fresh", guests=300, random_seed=0)
        admin.reset_counters()
        yield admin
        admin.seed(builtin="fresh", guests=300, random_seed=0)


async def test_without_permission_to_read_the_protected_group_the_sweep_refuses_to_plan(local_stack, fresh_tenant):
    """Graph answers 403 for the protected group: the run fails closed with the reason, nothing is touched."""
    services = await _services(local_stack, GRANTED - {"GroupMember.ReadBasic.All"})
    try:
        summary = await entry.run_sweep(services, "enforce", run_id="sweep-no-groups")
    finally:
        await services.close()
    assert summary["status"] == "failed" and PROTECTED_GROUP_ID in summary["reason"]
    assert fresh_tenant.counters()["writes"] == 0


async def test_a_whole_sweep_over_tenantsim_plans_brakes_and_after_approval_disables(local_stack, fresh_tenant):
    """Plan, enforce (braked), approve, drain: the planned guests are disabled in Graph, the protected are not."""
    services = await _services(local_stack, GRANTED)
    try:
        planned = await entry.run_sweep(services, "plan", run_id="sweep-stack")
        assert planned["status"] == "planned" and planned["totalGuests"] == 300
        assert planned["skipped"].get("protected-group", 0) >= 1
        braked = await entry.run_sweep(services, "enforce", run_id="sweep-stack")
        assert braked["status"] == "braked"
        approved = await entry.approve(services, "sweep-stack", "oncall@contoso.com")
        assert approved["dispatched"] == planned["disable"] + planned["delete"] > 0
        report = await drain(services, "guest-actions", entry.handle_guest_action, idle_rounds=2)
        shown = await entry.show(services, "sweep-stack", limit=10_000)
    finally:
        await services.close()
    assert report.crashed == 0 and report.by_verdict["done"] == approved["dispatched"]
    users = {u["id"]: u for u in fresh_tenant.snapshot()["users"]}
    disabled = {a["objectId"] for a in shown["plan"] if a["action"] == "disable"}
    assert all(users[i]["accountEnabled"] is False for i in disabled)
    protected = next(g for g in fresh_tenant.snapshot()["groups"] if g["id"] == PROTECTED_GROUP_ID)["members"]
    assert all(users[i]["accountEnabled"] is not False or i not in disabled for i in protected)
    assert not set(protected) & disabled
    assert all(u["userType"] == "Guest" for i, u in users.items() if i in disabled)


async def test_a_guest_in_a_group_nested_in_the_protected_group_is_protected_too(local_stack, fresh_tenant):
    """The exclusion reads the protected group's transitive members: a guest the sweep would disable is
    left alone once it sits in a group inside the protected group, and nothing else changes."""
    document = build_seed(300, 0, "fresh", datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0))
    fresh_tenant.seed(document)
    services = await _services(local_stack, GRANTED)
    try:
        before = await entry.run_sweep(services, "plan", run_id="nested-before")
        planned = (await entry.show(services, "nested-before", limit=10_000))["plan"]
        target = next(a["objectId"] for a in planned if a["action"] == "disable")
        nested = "5c0f7e2a-9d41-4b8e-a6c3-2f1e0d9b8a77"
        document["groups"].append({**document["groups"][0], "id": nested, "displayName": "Retained vendors"})
        document["groups"][-1]["members"] = [target]
        protected = next(g for g in document["groups"] if g["id"] == PROTECTED_GROUP_ID)
        protected["members"] = [*protected["members"], nested]
        fresh_tenant.seed(document)
        after = await entry.run_sweep(services, "plan", run_id="nested-after")
        replanned = (await entry.show(services, "nested-after", limit=10_000))["plan"]
    finally:
        await services.close()
    assert target not in {a["objectId"] for a in replanned}
    assert after["skipped"]["protected-group"] == before["skipped"]["protected-group"] + 1
    assert len(replanned) == len(planned) - 1


async def test_a_tenant_without_a_p1_p2_licence_is_swept_by_every_rule_but_inactivity(local_stack, fresh_tenant):
    """Graph refuses signInActivity without a licence: the run plans the other rules, warns why the inactivity
    rule did not run, and its workers re-check and act without signInActivity. Licensed, the same tenant has
    inactive guests and no warning."""
    services = await _services(local_stack, GRANTED | {"GroupMember.Read.All"})
    try:
        licensed = await entry.run_sweep(services, "plan", run_id="sweep-licensed")
        fresh_tenant.configure(entraIdPremium=False)
        unlicensed = await entry.run_sweep(services, "plan", run_id="sweep-unlicensed")
        await entry.run_sweep(services, "enforce", run_id="sweep-unlicensed")
        approved = await entry.approve(services, "sweep-unlicensed", "oncall@contoso.com")
        report = await drain(services, "guest-actions", entry.handle_guest_action, idle_rounds=2)
        shown = await entry.show(services, "sweep-unlicensed", limit=10_000)
    finally:
        fresh_tenant.configure(entraIdPremium=True)
        await services.close()
    assert licensed["warnings"] == [] and licensed["actions"].get("disable/inactive", 0) > 0
    assert unlicensed["status"] == "planned" and unlicensed["totalGuests"] == 300
    assert [w["code"] for w in unlicensed["warnings"]] == ["sign-in-activity-unavailable"]
    assert "P1 or P2" in unlicensed["warnings"][0]["message"]
    assert not any(name.endswith("/inactive") for name in unlicensed["actions"])
    assert unlicensed["actions"].get("disable/invitation-not-redeemed", 0) > 0
    assert {a["rule"] for a in shown["plan"]} <= {"past-end-date", "invitation-not-redeemed", "disabled-past-grace"}
    assert report.crashed == 0 and report.by_verdict["done"] == approved["dispatched"] > 0
    users = {u["id"]: u for u in fresh_tenant.snapshot()["users"]}
    assert all(users[a["objectId"]]["accountEnabled"] is False for a in shown["plan"] if a["action"] == "disable")


async def test_an_approved_sweep_halted_mid_way_writes_nothing_more_and_its_resume_finishes_it(
    local_stack, fresh_tenant
):
    """Approved, a few disables land, on-call halts the run from another process: once the workers' cached status
    is past its TTL every remaining message completes with run-halted, the rest of the guests stay enabled in
    tenantsim with no finished work item, and the undo of the halted run finds what it did so far. The resume
    disables each of the rest, and no guest is written to twice."""
    from collections import Counter

    from config.settings import load_settings
    from lifecycle.ledger.settle import process
    from lifecycle.models import WorkStatus
    from lifecycle.restore.entry import plan_restore
    from lifecycle.runs.halt import RUN_HALTED, RUN_STATUS_TTL

    settings = load_settings({**local_stack.env, **_prefixes()})

    def bundle():
        return bootstrap(settings, credential=TenantSimCredential(local_stack.tenantsim_url, roles=GRANTED))

    def patched() -> Counter[str]:
        return Counter(r["path"].rsplit("/", 1)[-1] for r in fresh_tenant.requests() if r["method"] == "PATCH")

    worker, on_call = await bundle(), await bundle()  # two processes: the function app and the operator's shell
    try:
        await entry.run_sweep(worker, "enforce", run_id="sweep-halt")
        approved = await entry.approve(on_call, "sweep-halt", "oncall@contoso.com")
        queue = worker.settings.queue_name("guest-actions")
        worked = 0
        while len(patched()) < 2 and worked < 30:  # a few disables land before the halt
            [message] = await worker.transport.receive(queue, max_messages=1)
            assert (await process(queue, message, entry.handle_guest_action, worker)).verdict.value == "done"
            worked += 1
        early = set(patched())
        halted = await entry.halt(on_call, "sweep-halt", "oncall@contoso.com", "partner sign-in data missing")
        assert halted["status"] == "halted"
        await asyncio.sleep(RUN_STATUS_TTL.total_seconds() + 0.5)  # the worker's cached status expires
        writes_at_halt = fresh_tenant.counters()["writes"]
        held = await drain(worker, "guest-actions", entry.handle_guest_action, idle_rounds=2)
        assert held.crashed == 0 and {o.code for o in held.outcomes} == {RUN_HALTED}
        assert len(held.outcomes) == approved["dispatched"] - worked
        assert fresh_tenant.counters()["writes"] == writes_at_halt
        assert await worker.transport.depth(queue) == (0, 0)
        for outcome in held.outcomes:
            item = await worker.work_items.get(outcome.key)
            assert item is None or item.status is not WorkStatus.DONE
        shown = await entry.show(on_call, "sweep-halt", limit=10_000)
        users = {u["id"]: u for u in fresh_tenant.snapshot()["users"]}
        disables = {a["objectId"] for a in shown["plan"] if a["action"] == "disable"}
        rest = disables - early
        assert rest and all(users[i]["accountEnabled"] is not False for i in rest)
        undo = await plan_restore(on_call, "sweep-halt")
        assert {g.undo.object_id for g in undo.guests} == early

        resumed = await entry.resume(on_call, "sweep-halt", "oncall@contoso.com")
        assert resumed["status"] == "dispatched"
        finished = await drain(worker, "guest-actions", entry.handle_guest_action, idle_rounds=2)
        assert finished.crashed == 0 and RUN_HALTED not in {o.code for o in finished.outcomes}
    finally:
        await worker.close()
        await on_call.close()
    users = {u["id"]: u for u in fresh_tenant.snapshot()["users"]}
    assert all(users[i]["accountEnabled"] is False for i in disables)
    assert set(patched()) == disables and max(patched().values()) == 1
