"""Sponsor notices on the local stack: the notice rows on Azurite, and a run whose events land on a Storage
queue once per guest and due date, however often the work is delivered."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import jsonschema
import pytest
from azure.data.tables.aio import TableServiceClient

from adapters.sweep_runs import TableSweepRuns
from app.bootstrap import bootstrap
from app.schemas import SCHEMAS
from config.desired_state import DeletionBrake, SponsorNotice, load_desired_state
from config.settings import SAMPLE_DESIRED_STATE, load_settings
from graph.credentials import TenantSimCredential
from graph.permissions import GRANTED
from lifecycle.ledger.worker import drain
from lifecycle.sweep import entry
from lifecycle.sweep.model import NoticeRecord
from lifecycle.sweep.runner import GUEST_ACTIONS_QUEUE, action_message
from tenantsim.client import TenantSimAdmin

pytestmark = pytest.mark.stack
NOTICES = "sponsor-notices"
DUE = datetime(2026, 12, 7, 9, 30, tzinfo=UTC)


@pytest.fixture
async def table_runs(azurite, unique_prefix):
    service = TableServiceClient.from_connection_string(azurite.tables_connection_string)
    store = TableSweepRuns(service.get_table_client(f"{unique_prefix}sweepruns"), service)
    await store.ensure_table()
    yield store
    await store.close()


async def test_the_table_store_keeps_the_last_notice_per_guest(table_runs):
    """A notice for a new due date replaces the guest's previous one; every guest's last notice streams back."""
    first = NoticeRecord("guest-1", DUE, DUE - timedelta(days=14), "sweep-2026-11-23", "sweep-notice:guest-1:a")
    await table_runs.record_notice(first)
    await table_runs.record_notice(NoticeRecord("guest-2", DUE, DUE - timedelta(days=10), "sweep-2026-11-27", "k2"))
    moved = NoticeRecord("guest-1", DUE + timedelta(days=30), DUE, "sweep-2026-12-07", "sweep-notice:guest-1:b")
    await table_runs.record_notice(moved)
    assert await table_runs.notice("guest-1") == moved
    assert await table_runs.notice("guest-3") is None
    assert sorted([n async for n in table_runs.notices()], key=lambda n: n.object_id) == [
        moved,
        await table_runs.notice("guest-2"),
    ]


async def _events(services) -> list[dict]:
    queue = services.settings.queue_name(NOTICES)
    found: list[dict] = []
    while batch := await services.transport.receive(queue, max_messages=32, lock_seconds=300):
        found.extend(json.loads(m.body) for m in batch)
    return found


async def test_a_run_with_notices_sends_one_event_per_guest_even_when_its_work_is_delivered_again(local_stack):
    """Over tenantsim with notices on: the run plans notices instead of disables; each lands on the notice
    queue once, schema-valid; re-sending every work item, and planning the next night, sends nothing more."""
    suffix = uuid.uuid4().hex[:8]
    settings = load_settings(
        {**local_stack.env, "LIFECYCLE_TABLE_PREFIX": f"sn{suffix}", "LIFECYCLE_QUEUE_PREFIX": f"sn{suffix}-"}
    )
    sample = load_desired_state(SAMPLE_DESIRED_STATE)
    lifecycle = sample.lifecycle.model_copy(
        update={
            "sponsor_notice": SponsorNotice(enabled=True, lead_days=14, queue=NOTICES),
            "deletion_brake": DeletionBrake(max_count=10_000, max_percent=100.0),
        }
    )
    desired = sample.model_copy(update={"lifecycle": lifecycle})
    with TenantSimAdmin(local_stack.tenantsim_url) as admin:
        admin.seed(builtin="fresh", guests=150, random_seed=5)
        credential = TenantSimCredential(local_stack.tenantsim_url, roles=GRANTED | {"GroupMember.Read.All"})
        services = await bootstrap(settings, credential=credential, desired=desired)
        try:
            summary = await entry.run_sweep(services, "enforce", run_id="sweep-notices")
            assert summary["notifySponsor"] > 0 and summary["disable"] == 0
            report = await drain(services, GUEST_ACTIONS_QUEUE, entry.handle_guest_action, idle_rounds=2)
            assert report.crashed == 0
            events = await _events(services)
            assert len(events) == len({e["noticeId"] for e in events}) == report.by_verdict["done"] > 0
            schema = SCHEMAS["sponsor-notice"]()
            for event in events:
                jsonschema.validate(event, schema)

            replayed = [
                action_message(a)
                async for page in entry.sweep_ports(services).runs.actions("sweep-notices")
                for a in page
            ]
            await services.transport.send(settings.queue_name(GUEST_ACTIONS_QUEUE), replayed)
            again = await drain(services, GUEST_ACTIONS_QUEUE, entry.handle_guest_action, idle_rounds=2)
            assert again.by_verdict == {"duplicate": len(replayed)}

            tomorrow = await entry.run_sweep(services, "plan", run_id="sweep-notices-next")
            assert tomorrow["notifySponsor"] == 0
            assert await _events(services) == []
        finally:
            await services.close()
        users = {u["id"]: u for u in admin.snapshot()["users"]}
        admin.seed(builtin="fresh", guests=300, random_seed=0)
    assert all(users[e["guestId"]]["accountEnabled"] is not False for e in events)
