"""One contract for each state port, run against the in-memory fake and the Table Storage adapter."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from adapters.memory import MemoryAuditLog, MemoryGuestLedger, MemoryRejections, MemoryWorkItems
from adapters.tables import TableState
from config.settings import load_settings
from lifecycle.errors import StateConflictError
from lifecycle.models import AuditEntry, GuestRecord, GuestState, Rejection, WorkItem, WorkStatus

T0 = datetime(2026, 3, 1, 23, 59, 58, 123456, tzinfo=UTC)
HOSTILE_KEYS = [
    "onboarding/ticket-1",
    "onboarding\\ticket-1",
    "jane_contoso.com#EXT#@tenant.onmicrosoft.com",
    "what?why",
    "tab\there",
    "nul\x00and\x1fand\x7fand\x9f",
    "tilde~7E~",
    "percent%2Fencoded",
    "quote'and\"double",
    "ünïcødé 🙂 key",
    " leading and trailing ",
]


@dataclass
class State:
    work_items: Any
    guests: Any
    audit: Any
    rejections: Any


@pytest.fixture(params=["memory", "tables"])
async def state(request: pytest.FixtureRequest, unique_prefix: str) -> AsyncIterator[State]:
    if request.param == "memory":
        yield State(MemoryWorkItems(), MemoryGuestLedger(), MemoryAuditLog(), MemoryRejections())
        return
    stack = request.getfixturevalue("azurite")
    settings = load_settings(stack.env | {"LIFECYCLE_TABLE_PREFIX": unique_prefix})
    tables = TableState.from_settings(settings)
    await tables.ensure_tables()
    try:
        yield State(tables.work_items, tables.guests, tables.audit, tables.rejections)
    finally:
        await tables.close()


def work_item(key: str = "sweep:disable:user-1:2026-03-01", **changes: Any) -> WorkItem:
    item = WorkItem(
        key=key,
        kind="guest.disable",
        status=WorkStatus.QUEUED,
        run_id="run-1",
        partner="contoso",
        created=T0,
        updated=T0,
        result={"planned": ["disable"], "count": 1},
    )
    return replace(item, **changes)


async def collect(iterator: AsyncIterator[Any]) -> list[Any]:
    return [value async for value in iterator]


class TestWorkItems:
    async def test_unknown_key_reads_as_none(self, state: State) -> None:
        """Reading a key that was never created returns None."""
        assert await state.work_items.get("never-created") is None

    async def test_created_item_reads_back_field_for_field(self, state: State) -> None:
        """A created item reads back with every field, datetimes as the same instant in UTC."""
        plus_two = timezone(timedelta(hours=2))
        item = work_item(
            created=T0.astimezone(plus_two), last_error={"type": "ThrottledError", "status": 429}, attempts=2
        )
        created = await state.work_items.create(item)
        read = await state.work_items.get(item.key)
        assert read is not None and read.etag == created.etag and read.etag
        assert replace(read, etag=None) == replace(item, created=T0)
        assert read.created is not None and read.created.utcoffset() == timedelta(0)

    async def test_the_content_hash_round_trips_and_a_row_without_one_reads_as_none(self, state: State) -> None:
        """The hash a ticket's item was begun for is stored with it; rows from before it read as None."""
        await state.work_items.create(work_item(key="ticket:A", content_hash="0f" * 16))
        await state.work_items.create(work_item(key="ticket:B"))
        hashed, legacy = await state.work_items.get("ticket:A"), await state.work_items.get("ticket:B")
        assert hashed is not None and hashed.content_hash == "0f" * 16
        assert legacy is not None and legacy.content_hash is None
        saved = await state.work_items.save(replace(legacy, content_hash="a1" * 16))
        assert (await state.work_items.get("ticket:B")).content_hash == "a1" * 16 and saved.etag

    async def test_creating_an_existing_key_conflicts(self, state: State) -> None:
        """Creating the same idempotency key twice raises StateConflictError."""
        await state.work_items.create(work_item())
        with pytest.raises(StateConflictError):
            await state.work_items.create(work_item(status=WorkStatus.RUNNING))

    async def test_save_with_current_etag_wins_and_stale_etag_conflicts(self, state: State) -> None:
        """Of two writers holding the same etag, the second one's save raises StateConflictError."""
        created = await state.work_items.create(work_item())
        first = await state.work_items.save(replace(created, status=WorkStatus.RUNNING, attempts=1))
        assert first.etag != created.etag
        with pytest.raises(StateConflictError):
            await state.work_items.save(replace(created, status=WorkStatus.DONE))
        read = await state.work_items.get(created.key)
        assert read is not None and read.status == WorkStatus.RUNNING and read.etag == first.etag

    async def test_save_without_etag_is_refused(self, state: State) -> None:
        """Saving an item that carries no etag is a programming error, not a blind overwrite."""
        await state.work_items.create(work_item())
        with pytest.raises(ValueError, match="etag"):
            await state.work_items.save(work_item(status=WorkStatus.DONE))

    async def test_save_of_a_missing_row_conflicts(self, state: State) -> None:
        """Saving with an etag for a row that does not exist raises StateConflictError."""
        with pytest.raises(StateConflictError):
            await state.work_items.save(work_item(etag="W/\"datetime'2026-03-01T00%3A00%3A00Z'\""))

    async def test_hostile_keys_are_stored_and_read_by_the_same_key(self, state: State) -> None:
        """Keys with characters Table keys forbid round-trip, and each stays its own row."""
        for number, key in enumerate(HOSTILE_KEYS):
            await state.work_items.create(work_item(key, attempts=number))
        for number, key in enumerate(HOSTILE_KEYS):
            read = await state.work_items.get(key)
            assert read is not None and read.key == key and read.attempts == number

    async def test_very_long_keys_sharing_a_prefix_stay_distinct(self, state: State) -> None:
        """Keys too long for a Table key are still unique rows and read back by the full key."""
        first, second = "x/" * 700 + "first", "x/" * 700 + "second"
        await state.work_items.create(work_item(first, attempts=1))
        await state.work_items.create(work_item(second, attempts=2))
        read_first, read_second = await state.work_items.get(first), await state.work_items.get(second)
        assert read_first is not None and (read_first.key, read_first.attempts) == (first, 1)
        assert read_second is not None and (read_second.key, read_second.attempts) == (second, 2)

    async def test_query_filters_by_status_and_kind(self, state: State) -> None:
        """query() returns the items with the asked status and kind, and only those."""
        await state.work_items.create(work_item("a", status=WorkStatus.FAILED))
        await state.work_items.create(work_item("b", status=WorkStatus.DONE))
        await state.work_items.create(work_item("c", status=WorkStatus.FAILED, kind="onboarding"))
        failed = {item.key for item in await collect(state.work_items.query(status=WorkStatus.FAILED))}
        failed_disables = await collect(state.work_items.query(status=WorkStatus.FAILED, kind="guest.disable"))
        assert failed == {"a", "c"}
        assert [item.key for item in failed_disables] == ["a"]
        assert len(await collect(state.work_items.query())) == 3


def guest(object_id: str = "0b7e3c52-3f1a-4d1e-9d55-6f8f7c1a2b3c", **changes: Any) -> GuestRecord:
    record = GuestRecord(
        object_id=object_id,
        email="jane@contoso.com",
        partner="contoso",
        state=GuestState.INVITED,
        sponsor="owner@example.com",
        ticket_id="T-1",
        end_date=T0 + timedelta(days=90),
        invited=T0,
        history=[{"at": T0.isoformat(), "event": "invited"}],
    )
    return replace(record, **changes)


class TestGuestLedger:
    async def test_new_guest_is_inserted_and_reads_back(self, state: State) -> None:
        """A record without an etag is inserted and reads back field for field."""
        saved = await state.guests.save(guest())
        read = await state.guests.get(guest().object_id)
        assert read is not None and saved.etag and read.etag == saved.etag
        assert replace(read, etag=None) == guest()

    async def test_inserting_a_known_guest_conflicts(self, state: State) -> None:
        """Saving without an etag when the guest already exists raises StateConflictError."""
        await state.guests.save(guest())
        with pytest.raises(StateConflictError):
            await state.guests.save(guest(state=GuestState.ACTIVE))

    async def test_update_with_stale_etag_conflicts(self, state: State) -> None:
        """A replace with an etag another writer has superseded raises StateConflictError."""
        inserted = await state.guests.save(guest())
        await state.guests.save(replace(inserted, state=GuestState.DISABLED, disabled=T0))
        with pytest.raises(StateConflictError):
            await state.guests.save(replace(inserted, state=GuestState.ACTIVE))
        read = await state.guests.get(inserted.object_id)
        assert read is not None and read.state == GuestState.DISABLED and read.disabled == T0

    async def test_the_re_arm_marker_of_a_restored_guest_reads_back_and_streams(self, state: State) -> None:
        """rearmUntil (set by an undo, read by the sweep's ledger scan) round-trips through get and all()."""
        until = T0 + timedelta(days=7)
        await state.guests.save(guest(state=GuestState.ACTIVE, rearm_until=until))
        read = await state.guests.get(guest().object_id)
        assert read is not None and read.rearm_until == until
        assert [r.rearm_until for r in await collect(state.guests.all())] == [until]

    async def test_the_last_attestation_reads_back(self, state: State) -> None:
        """Who attested and when (an attest ticket) round-trip through the guest ledger."""
        await state.guests.save(guest(attested=T0, attested_by="5f0c6a2e-8d7b-4c1e-9a3f-2b4d6e8f0a1c"))
        read = await state.guests.get(guest().object_id)
        assert read is not None and (read.attested, read.attested_by) == (T0, "5f0c6a2e-8d7b-4c1e-9a3f-2b4d6e8f0a1c")

    async def test_the_sponsor_gone_mark_reads_back_and_streams(self, state: State) -> None:
        """sponsorGoneSince (set by the sponsor-reassign worker, read by the sweep's ledger scan) round-trips."""
        await state.guests.save(guest(sponsor_gone_since=T0))
        read = await state.guests.get(guest().object_id)
        assert read is not None and read.sponsor_gone_since == T0
        assert [r.sponsor_gone_since for r in await collect(state.guests.all())] == [T0]

    async def test_all_lists_every_guest(self, state: State) -> None:
        """all() yields every record in the ledger."""
        ids = [f"00000000-0000-0000-0000-00000000000{n}" for n in range(5)]
        for object_id in ids:
            await state.guests.save(guest(object_id))
        assert sorted(record.object_id for record in await collect(state.guests.all())) == ids

    async def test_oversized_history_keeps_the_newest_entries(self, state: State) -> None:
        """A history beyond the 64 KiB property limit is saved with its newest entries and a marker."""
        history = [{"event": f"touch-{n}", "note": "n" * 200} for n in range(1000)]
        saved = await state.guests.save(guest(history=history))
        read = await state.guests.get(saved.object_id)
        assert read is not None and read.history == saved.history
        assert read.history[-1] == history[-1]
        assert read.history[0]["truncated"] > 0
        assert len(read.history) - 1 + read.history[0]["truncated"] == len(history)


def entry(at: datetime, action: str = "guest.disable", **changes: Any) -> AuditEntry:
    return replace(
        AuditEntry(at=at, action=action, target="user-1", reason="inactive 120 days", details={"days": 120}),
        **changes,
    )


class TestAuditLog:
    async def test_entries_since_a_moment_come_in_time_order_across_days(self, state: State) -> None:
        """entries(since) yields the entries at or after ``since``, oldest first, over day boundaries."""
        moments = [T0 - timedelta(days=1), T0, T0 + timedelta(seconds=3), T0 + timedelta(days=2)]
        for moment in reversed(moments):
            await state.audit.record(entry(moment))
        assert [e.at for e in await collect(state.audit.entries(since=T0))] == moments[1:]
        assert [e.at for e in await collect(state.audit.entries())] == moments

    async def test_entries_at_the_same_instant_are_all_kept(self, state: State) -> None:
        """Two entries recorded for the same instant are two rows, not one overwriting the other."""
        await state.audit.record(entry(T0, action="guest.disable"))
        await state.audit.record(entry(T0, action="guest.delete", key="k-1", run_id="run-9"))
        read = await collect(state.audit.entries())
        assert sorted(e.action for e in read) == ["guest.delete", "guest.disable"]
        assert entry(T0, action="guest.delete", key="k-1", run_id="run-9") in read


def rejection(key: str = "ticket-1", kind: str = "onboarding", **changes: Any) -> Rejection:
    return replace(
        Rejection(key=key, kind=kind, code="domain-blocked", message="blocked", at=T0, raw='{"a":1}'), **changes
    )


class TestRejections:
    async def test_recording_the_same_rejection_twice_keeps_one_row(self, state: State) -> None:
        """Recording (kind, key) again leaves one row, holding the latest recording."""
        await state.rejections.record(rejection())
        await state.rejections.record(rejection(at=T0 + timedelta(minutes=5), details={"replayed": True}))
        assert await collect(state.rejections.all()) == [
            rejection(at=T0 + timedelta(minutes=5), details={"replayed": True})
        ]

    async def test_same_key_under_another_kind_is_another_row(self, state: State) -> None:
        """Rejections are keyed by kind and key together, with hostile characters in both."""
        await state.rejections.record(rejection("a/b#c?", kind="onboarding"))
        await state.rejections.record(rejection("a/b#c?", kind="reset/redemption"))
        assert sorted(r.kind for r in await collect(state.rejections.all())) == ["onboarding", "reset/redemption"]

    async def test_a_raw_message_beyond_one_property_is_kept_whole(self, state: State) -> None:
        """A rejected message is settled, so its row is the only copy: a payload over the 64 KiB property
        limit (here with characters outside the BMP, two UTF-16 units each) reads back unchanged."""
        raw = ("x" * 70_000) + ("\U0001f600" * 20_000) + "end"
        await state.rejections.record(rejection(raw=raw))
        (stored,) = await collect(state.rejections.all())
        assert stored.raw == raw
