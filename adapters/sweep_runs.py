"""Stores for sweep runs: Table Storage and an in-memory fake with the same semantics.

One table. The run header is a row in partition ``runs``; a run's actions are rows in their own
partition (``a-<run id>``, row key ``<object id>-<action>``), written in entity-group transactions of
at most 100 and read back one service page at a time, so neither side ever holds a whole plan. The last
sponsor notice per guest is a row in partition ``notices`` (row key the object id): one row per guest,
however often its due date moves.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError
from azure.data.tables import UpdateMode

from adapters.table_codec import dump_json, load_json, read_required_utc, read_utc, utc
from adapters.table_keys import encode_key
from adapters.tables import SingleTableStore
from lifecycle.errors import StateConflictError
from lifecycle.plans import Mode
from lifecycle.runs.model import BrakeState, DailyRun, HaltState, RunStatus
from lifecycle.sweep.model import Action, NoticeRecord, PlannedAction

RUNS_PARTITION = "runs"
NOTICES_PARTITION = "notices"
TRANSACTION_LIMIT = 100  # entity-group transactions: at most 100 operations, one partition
PAGE_SIZE = 1000


def actions_partition(run_id: str) -> str:
    return f"a-{encode_key(run_id)}"


def action_row_key(action: PlannedAction) -> str:
    return row_key_of(action.object_id, action.action)


def row_key_of(object_id: str, action: Action) -> str:
    return encode_key(f"{object_id}-{action.value}")


def run_entity(run: DailyRun) -> dict[str, Any]:
    entity = {
        "PartitionKey": RUNS_PARTITION,
        "RowKey": encode_key(run.run_id),
        "runId": run.run_id,
        "mode": run.mode.value,
        "status": run.status.value,
        "started": utc(run.started),
        "updated": utc(run.updated),
        "planned": utc(run.planned),
        "dispatchedAt": utc(run.dispatched_at),
        "totalGuests": run.total_guests,
        "actions": dump_json(run.actions),
        "skipped": dump_json(run.skipped),
        "dispatched": run.dispatched,
        "brake": dump_json(run.brake.to_json()),
        "reason": run.reason,
        "cursor": run.cursor,
        "pages": run.pages,
        "warnings": dump_json(run.warnings),
        "sponsorCoverage": dump_json(run.sponsor_coverage) if run.sponsor_coverage else None,
        "halt": dump_json(run.halt.to_json()) if run.halt is not None else None,
    }
    return {name: value for name, value in entity.items() if value is not None}


def run_from_entity(entity: Any, etag: str) -> DailyRun:
    return DailyRun(
        run_id=entity["runId"],
        mode=Mode(entity["mode"]),
        status=RunStatus(entity["status"]),
        started=read_required_utc(entity["started"]),
        updated=read_utc(entity.get("updated")),
        planned=read_utc(entity.get("planned")),
        dispatched_at=read_utc(entity.get("dispatchedAt")),
        total_guests=int(entity.get("totalGuests", 0)),
        actions=load_json(entity.get("actions"), {}),
        skipped=load_json(entity.get("skipped"), {}),
        dispatched=int(entity.get("dispatched", 0)),
        brake=BrakeState.from_json(load_json(entity.get("brake"), {})),
        reason=entity.get("reason", ""),
        cursor=entity.get("cursor") or None,
        pages=int(entity.get("pages", 0)),
        warnings=load_json(entity.get("warnings"), {}),
        sponsor_coverage=load_json(entity.get("sponsorCoverage"), {}),
        halt=HaltState.from_json(load_json(entity.get("halt"), {})) if entity.get("halt") else None,
        etag=etag,
    )


def action_entity(action: PlannedAction) -> dict[str, Any]:
    return {
        "PartitionKey": actions_partition(action.run_id),
        "RowKey": action_row_key(action),
        "runId": action.run_id,
        "objectId": action.object_id,
        "action": action.action.value,
        "rule": action.rule.value,
        "partner": action.partner or "",
        "evidence": dump_json(action.evidence),
        "dueDate": utc(action.due),
        "sponsorIds": dump_json(list(action.sponsor_ids)) if action.sponsor_ids else None,
    }


def action_from_entity(entity: Any) -> PlannedAction:
    due = read_utc(entity.get("dueDate"))
    return PlannedAction.from_json(
        {
            "runId": entity["runId"],
            "objectId": entity["objectId"],
            "action": entity["action"],
            "rule": entity["rule"],
            "partner": entity.get("partner") or None,
            "evidence": load_json(entity.get("evidence"), {}),
            "dueDate": due.isoformat() if due else None,
            "sponsorIds": load_json(entity.get("sponsorIds"), []),
        }
    )


def notice_entity(notice: NoticeRecord) -> dict[str, Any]:
    return {
        "PartitionKey": NOTICES_PARTITION,
        "RowKey": encode_key(notice.object_id),
        "objectId": notice.object_id,
        "dueDate": utc(notice.due),
        "notifiedAt": utc(notice.notified),
        "runId": notice.run_id,
        "key": notice.key,
    }


def notice_from_entity(entity: Any) -> NoticeRecord:
    return NoticeRecord(
        object_id=entity["objectId"],
        due=read_required_utc(entity["dueDate"]),
        notified=read_required_utc(entity["notifiedAt"]),
        run_id=entity.get("runId") or "",
        key=entity.get("key") or "",
    )


class TableSweepRuns(SingleTableStore):
    TABLE = "sweepruns"

    async def get(self, run_id: str) -> DailyRun | None:
        try:
            entity = await self._table.get_entity(RUNS_PARTITION, encode_key(run_id))
        except HttpResponseError as error:
            if error.status_code == 404:
                return None
            raise
        return run_from_entity(entity, entity.metadata["etag"])

    async def create(self, run: DailyRun) -> DailyRun:
        try:
            metadata = await self._table.create_entity(run_entity(run))
        except HttpResponseError as error:
            if error.status_code == 409:
                raise StateConflictError(f"sweep run {run.run_id} already exists") from error
            raise
        return replace(run, etag=str(metadata["etag"]))

    async def save(self, run: DailyRun) -> DailyRun:
        if run.etag is None:
            raise ValueError("save needs the etag of the version it replaces (from get or create)")
        try:
            metadata = await self._table.update_entity(
                run_entity(run), mode=UpdateMode.REPLACE, etag=run.etag, match_condition=MatchConditions.IfNotModified
            )
        except HttpResponseError as error:
            if error.status_code in (404, 412):
                raise StateConflictError(f"sweep run {run.run_id} changed since it was read") from error
            raise
        return replace(run, etag=str(metadata["etag"]))

    async def add_actions(self, run_id: str, actions: Sequence[PlannedAction]) -> None:
        for start in range(0, len(actions), TRANSACTION_LIMIT):
            chunk = actions[start : start + TRANSACTION_LIMIT]
            await self._table.submit_transaction(
                [("upsert", _without_none(action_entity(a)), {"mode": "replace"}) for a in chunk]
            )

    async def actions(self, run_id: str) -> AsyncIterator[list[PlannedAction]]:
        pages = self._table.query_entities(
            "PartitionKey eq @pk", parameters={"pk": actions_partition(run_id)}, results_per_page=PAGE_SIZE
        ).by_page()
        async for page in pages:
            # A page may be empty and still carry a continuation token; keep reading.
            batch = [action_from_entity(entity) async for entity in page]
            if batch:
                yield batch

    async def planned_action(self, run_id: str, object_id: str, action: Action) -> PlannedAction | None:
        try:
            entity = await self._table.get_entity(actions_partition(run_id), row_key_of(object_id, action))
        except HttpResponseError as error:
            if error.status_code == 404:
                return None
            raise
        return action_from_entity(entity)

    async def runs(self) -> AsyncIterator[DailyRun]:
        async for entity in self._table.query_entities("PartitionKey eq @pk", parameters={"pk": RUNS_PARTITION}):
            yield run_from_entity(entity, entity.metadata["etag"])

    async def notice(self, object_id: str) -> NoticeRecord | None:
        try:
            entity = await self._table.get_entity(NOTICES_PARTITION, encode_key(object_id))
        except HttpResponseError as error:
            if error.status_code == 404:
                return None
            raise
        return notice_from_entity(entity)

    async def record_notice(self, notice: NoticeRecord) -> None:
        await self._table.upsert_entity(notice_entity(notice), mode=UpdateMode.REPLACE)

    async def notices(self) -> AsyncIterator[NoticeRecord]:
        pages = self._table.query_entities(
            "PartitionKey eq @pk", parameters={"pk": NOTICES_PARTITION}, results_per_page=PAGE_SIZE
        )
        async for entity in pages:
            yield notice_from_entity(entity)


def _without_none(entity: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in entity.items() if value is not None}
