"""The `guest-actions` worker's cost per action: how many state round trips a disable takes, and the
protected group read once per run however many messages arrive together."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta

from adapters.memory import MemorySweepRuns, MemoryWorkItems
from config.desired_state import DeletionBrake
from lifecycle.ledger.worker import drain
from lifecycle.models import DirectoryUser, SignInActivity, WorkStatus
from lifecycle.sweep import entry
from tests.builders import NOW, memory_services
from tests.fakes import FakeDirectory

QUEUE = "guest-actions"


class CountingWorkItems(MemoryWorkItems):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    async def get(self, key):
        self.calls.append("get")
        return await super().get(key)

    async def create(self, item):
        self.calls.append(f"create:{item.status.value}:{item.result.get('stage', '')}")
        return await super().create(item)

    async def save(self, item):
        self.calls.append(f"save:{item.status.value}")
        return await super().save(item)


class CountingGroups(FakeDirectory):
    def __init__(self) -> None:
        super().__init__()
        self.group_reads = 0

    async def group_member_ids(self, group_id: str) -> set[str]:
        self.group_reads += 1
        await asyncio.sleep(0)  # let the other messages of the batch reach the cache meanwhile
        return await super().group_member_ids(group_id)


def stale_guest(directory: FakeDirectory) -> DirectoryUser:
    user = directory.add_guest(f"g{len(directory.users)}@fabrikam.com")
    return directory.put(
        replace(
            user,
            sign_in_activity=SignInActivity(last_successful_sign_in=NOW - timedelta(days=120)),
            external_user_state_changed=NOW - timedelta(days=500),
        )
    )


def services_for(directory: FakeDirectory, work_items: MemoryWorkItems | None = None):
    services = memory_services(
        directory, sweep_runs=MemorySweepRuns(), **({"work_items": work_items} if work_items else {})
    )
    lifecycle = services.desired.lifecycle.model_copy(
        update={"deletion_brake": DeletionBrake(max_count=10_000, max_percent=100.0)}
    )
    services.desired = services.desired.model_copy(update={"lifecycle": lifecycle})
    return services


async def test_a_fresh_disable_claims_its_work_item_in_one_insert_and_never_reads_it():
    """The work item is inserted already at its 'disabling' step and saved once when done: no read, no
    separate claim and stage writes. The step is still on record before Graph is called."""
    directory = FakeDirectory()
    user = stale_guest(directory)
    work_items = CountingWorkItems()
    services = services_for(directory, work_items)
    await entry.run_sweep(services, "enforce")
    report = await drain(services, QUEUE, entry.handle_guest_action, idle_rounds=1)
    assert report.by_verdict == {"done": 1}
    assert work_items.calls == ["create:running:disabling", "save:done"]
    assert directory.writes == [("accountEnabled", user.id, False), ("revokeSignInSessions", user.id, None)]


async def test_a_stale_decision_is_recorded_done_in_one_insert():
    """A dropped action costs one work-item write: inserted as done with the reason it was dropped."""
    directory = FakeDirectory()
    user = stale_guest(directory)
    work_items = CountingWorkItems()
    services = services_for(directory, work_items)
    await entry.run_sweep(services, "enforce")
    directory.put(replace(directory.users[user.id], sign_in_activity=SignInActivity(last_successful_sign_in=NOW)))
    [outcome] = (await drain(services, QUEUE, entry.handle_guest_action, idle_rounds=1)).outcomes
    assert outcome.code == "dropped:no-longer-eligible"
    assert work_items.calls == ["create:done:"]
    item = await work_items.get(outcome.key)
    assert item is not None and item.status is WorkStatus.DONE and item.result["dropped"] == "no-longer-eligible"


async def test_the_protected_group_is_read_once_when_a_run_s_first_messages_arrive_together():
    """Sixteen actions of a new run handled at once share one read of the protected group."""
    directory = CountingGroups()
    for _ in range(16):
        stale_guest(directory)
    services = services_for(directory)
    await entry.run_sweep(services, "enforce")
    planning_reads = directory.group_reads
    report = await drain(services, QUEUE, entry.handle_guest_action, idle_rounds=1, concurrency=16)
    assert report.by_verdict == {"done": 16}
    assert directory.group_reads - planning_reads == 1
