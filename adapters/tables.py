"""Azure Table Storage adapters for the WorkItems, GuestLedger, AuditLog and Rejections ports.

Keys never hold raw UPNs or free text: everything goes through table_keys.encode_key, and the original
value is kept as a property. Writes use ETags (If-Match) so lost updates surface as StateConflictError.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, ClassVar, Self

from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableClient, TableServiceClient

from adapters.sdk_options import sdk_client_options
from adapters.table_codec import (
    dump_history,
    dump_json,
    load_json,
    read_required_utc,
    read_utc,
    split_text,
    truncate_text,
    utc,
)
from adapters.table_keys import bucket_of, encode_key
from config.settings import Settings
from lifecycle.errors import StateConflictError
from lifecycle.models import (
    AuditEntry,
    GuestRecord,
    GuestState,
    Rejection,
    WorkItem,
    WorkStatus,
)

Entity = dict[str, Any]


def _without_none(entity: Entity) -> Entity:
    return {name: value for name, value in entity.items() if value is not None}


async def _insert(table: TableClient, entity: Entity, what: str) -> str:
    try:
        metadata = await table.create_entity(_without_none(entity))
    except HttpResponseError as error:
        if error.status_code == 409:
            raise StateConflictError(f"{what} already exists") from error
        raise
    return str(metadata["etag"])


async def _replace(table: TableClient, entity: Entity, etag: str, what: str) -> str:
    try:
        metadata = await table.update_entity(
            _without_none(entity),
            mode=UpdateMode.REPLACE,
            etag=etag,
            match_condition=MatchConditions.IfNotModified,
        )
    except HttpResponseError as error:
        # 412: another writer won; 404: the row was deleted since it was read.
        if error.status_code in (404, 412):
            raise StateConflictError(f"{what} changed since it was read") from error
        raise
    return str(metadata["etag"])


async def _read(table: TableClient, partition_key: str, row_key: str) -> Any:
    try:
        return await table.get_entity(partition_key, row_key)
    except HttpResponseError as error:
        if error.status_code == 404:
            return None
        raise


class TableWorkItems:
    """One row per work item; partitioned into stable buckets of the key, row key the encoded key."""

    def __init__(self, table: TableClient) -> None:
        self._table = table

    @staticmethod
    def _entity(item: WorkItem) -> Entity:
        return {
            "PartitionKey": bucket_of(item.key),
            "RowKey": encode_key(item.key),
            "key": item.key,
            "kind": item.kind,
            "status": item.status.value,
            "attempts": item.attempts,
            "runId": item.run_id,
            "partner": item.partner,
            "created": utc(item.created),
            "updated": utc(item.updated),
            "lastError": dump_json(item.last_error) if item.last_error is not None else None,
            "result": dump_json(item.result),
            "contentHash": item.content_hash,
        }

    @staticmethod
    def _item(entity: Any) -> WorkItem:
        return WorkItem(
            key=entity["key"],
            kind=entity["kind"],
            status=WorkStatus(entity["status"]),
            attempts=int(entity.get("attempts", 0)),
            run_id=entity.get("runId"),
            partner=entity.get("partner"),
            created=read_utc(entity.get("created")),
            updated=read_utc(entity.get("updated")),
            last_error=load_json(entity.get("lastError"), None),
            result=load_json(entity.get("result"), {}),
            etag=entity.metadata["etag"],
            content_hash=entity.get("contentHash") or None,
        )

    async def get(self, key: str) -> WorkItem | None:
        entity = await _read(self._table, bucket_of(key), encode_key(key))
        return self._item(entity) if entity is not None else None

    async def create(self, item: WorkItem) -> WorkItem:
        etag = await _insert(self._table, self._entity(item), f"work item {item.key!r}")
        return replace(item, etag=etag)

    async def save(self, item: WorkItem) -> WorkItem:
        if item.etag is None:
            raise ValueError("save needs the etag of the version it replaces (from get or create)")
        etag = await _replace(self._table, self._entity(item), item.etag, f"work item {item.key!r}")
        return replace(item, etag=etag)

    async def query(self, status: WorkStatus | None = None, kind: str | None = None) -> AsyncIterator[WorkItem]:
        """Work items by status and/or kind (a full-table query: for operators, not hot paths)."""
        clauses, parameters = [], {}
        if status is not None:
            clauses.append("status eq @status")
            parameters["status"] = status.value
        if kind is not None:
            clauses.append("kind eq @kind")
            parameters["kind"] = kind
        pages = (
            self._table.query_entities(" and ".join(clauses), parameters=parameters)
            if clauses
            else self._table.list_entities()
        )
        async for entity in pages:
            yield self._item(entity)


class TableGuestLedger:
    def __init__(self, table: TableClient) -> None:
        self._table = table

    @staticmethod
    def _entity(record: GuestRecord) -> Entity:
        return {
            "PartitionKey": bucket_of(record.object_id),
            "RowKey": encode_key(record.object_id),
            "objectId": record.object_id,
            "email": record.email,
            "partner": record.partner,
            "state": record.state.value,
            "sponsor": record.sponsor,
            "ticketId": record.ticket_id,
            "endDate": utc(record.end_date),
            "invited": utc(record.invited),
            "disabled": utc(record.disabled),
            "updated": utc(record.updated),
            "history": dump_history(record.history),
            "rearmUntil": utc(record.rearm_until),
            "attested": utc(record.attested),
            "attestedBy": record.attested_by,
            "sponsorGoneSince": utc(record.sponsor_gone_since),
        }

    @staticmethod
    def _record(entity: Any) -> GuestRecord:
        return GuestRecord(
            object_id=entity["objectId"],
            email=entity["email"],
            partner=entity["partner"],
            state=GuestState(entity["state"]),
            sponsor=entity.get("sponsor"),
            ticket_id=entity.get("ticketId"),
            end_date=read_utc(entity.get("endDate")),
            invited=read_utc(entity.get("invited")),
            disabled=read_utc(entity.get("disabled")),
            updated=read_utc(entity.get("updated")),
            history=load_json(entity.get("history"), []),
            etag=entity.metadata["etag"],
            rearm_until=read_utc(entity.get("rearmUntil")),
            attested=read_utc(entity.get("attested")),
            attested_by=entity.get("attestedBy"),
            sponsor_gone_since=read_utc(entity.get("sponsorGoneSince")),
        )

    async def get(self, object_id: str) -> GuestRecord | None:
        entity = await _read(self._table, bucket_of(object_id), encode_key(object_id))
        return self._record(entity) if entity is not None else None

    async def save(self, record: GuestRecord) -> GuestRecord:
        what = f"guest {record.object_id}"
        if record.etag is None:
            etag = await _insert(self._table, self._entity(record), what)
        else:
            etag = await _replace(self._table, self._entity(record), record.etag, what)
        return replace(record, history=load_json(dump_history(record.history), []), etag=etag)

    async def all(self) -> AsyncIterator[GuestRecord]:
        async for entity in self._table.list_entities():
            yield self._record(entity)


def _audit_row_key(at: datetime) -> str:
    # Time first so rows sort by time, then a random suffix so two entries in the same microsecond differ.
    return f"{at:%Y%m%dT%H%M%S.%fZ}-{uuid.uuid4().hex[:12]}"


class TableAuditLog:
    """Partitioned by UTC day; row keys sort by time."""

    def __init__(self, table: TableClient) -> None:
        self._table = table

    async def record(self, entry: AuditEntry) -> None:
        at = utc(entry.at)
        assert at is not None
        entity = {
            "PartitionKey": f"{at:%Y%m%d}",
            "RowKey": _audit_row_key(at),
            "at": at,
            "action": entry.action,
            "target": entry.target,
            "reason": truncate_text(entry.reason),
            "actor": entry.actor,
            "key": entry.key,
            "runId": entry.run_id,
            "details": dump_json(entry.details),
        }
        await self._table.create_entity(_without_none(entity))

    async def entries(self, since: datetime | None = None) -> AsyncIterator[AuditEntry]:
        floor = utc(since)
        pages = (
            self._table.list_entities()
            if floor is None
            else self._table.query_entities(
                "PartitionKey ge @day and RowKey ge @from",
                parameters={"day": f"{floor:%Y%m%d}", "from": f"{floor:%Y%m%dT%H%M%S.%fZ}"},
            )
        )
        async for entity in pages:
            yield AuditEntry(
                at=read_required_utc(entity["at"]),
                action=entity["action"],
                target=entity["target"],
                reason=entity["reason"],
                actor=entity["actor"],
                key=entity.get("key"),
                run_id=entity.get("runId"),
                details=load_json(entity.get("details"), {}),
            )


class TableRejections:
    """One row per (kind, key): recording the same rejection again replaces it."""

    def __init__(self, table: TableClient) -> None:
        self._table = table

    async def record(self, rejection: Rejection) -> None:
        entity = {
            "PartitionKey": encode_key(rejection.kind),
            "RowKey": encode_key(rejection.key),
            "key": rejection.key,
            "kind": rejection.kind,
            "code": rejection.code,
            "message": truncate_text(rejection.message),
            "at": utc(rejection.at),
            "details": dump_json(rejection.details),
        }
        # The whole message, over as many properties as it needs (raw, raw1, ...): a rejected message is
        # settled, so this row is the only copy left. work.reject caps it well inside the 1 MiB entity.
        for index, piece in enumerate(split_text(rejection.raw)):
            entity[f"raw{index or ''}"] = piece
        await self._table.upsert_entity(_without_none(entity), mode=UpdateMode.REPLACE)

    async def all(self) -> AsyncIterator[Rejection]:
        async for entity in self._table.list_entities():
            yield Rejection(
                key=entity["key"],
                kind=entity["kind"],
                code=entity["code"],
                message=entity["message"],
                at=read_required_utc(entity["at"]),
                details=load_json(entity.get("details"), {}),
                raw="".join(_pieces(entity, "raw")),
            )


def _pieces(entity: dict[str, Any], name: str) -> list[str]:
    pieces, index = [], 0
    while (piece := entity.get(f"{name}{index or ''}")) is not None:
        pieces.append(piece)
        index += 1
    return pieces


def table_service(settings: Settings, credential: Any = None) -> tuple[TableServiceClient, Any]:
    """The TableServiceClient the settings name, and the credential it created (None if it was given one)."""
    if settings.tables_connection_string is not None:
        connection = settings.tables_connection_string.get_secret_value()
        return TableServiceClient.from_connection_string(connection, **sdk_client_options()), None
    owned = None
    if credential is None:
        from azure.identity.aio import DefaultAzureCredential

        credential = owned = DefaultAzureCredential(managed_identity_client_id=settings.managed_identity_client_id)
    service = TableServiceClient(endpoint=str(settings.tables_endpoint), credential=credential, **sdk_client_options())
    return service, owned


class SingleTableStore:
    """A store kept in one table named ``{prefix}{TABLE}``. The app hands it a table client of its shared
    service (app.bootstrap); ``from_settings`` gives tools and tests a store with its own client."""

    TABLE: ClassVar[str]

    def __init__(self, table: TableClient, service: TableServiceClient | None = None) -> None:
        self._table = table
        self._service = service

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        service, _ = table_service(settings)
        return cls(service.get_table_client(f"{settings.table_prefix}{cls.TABLE}"), service)

    async def ensure_table(self) -> None:
        if self._service is not None:
            await self._service.create_table_if_not_exists(self._table.table_name)

    async def close(self) -> None:
        await self._table.close()
        if self._service is not None:
            await self._service.close()


@dataclass
class TableState:
    """The four stores over one TableServiceClient. Build once per process; close on shutdown."""

    service: TableServiceClient
    table_names: tuple[str, str, str, str]
    work_items: TableWorkItems
    guests: TableGuestLedger
    audit: TableAuditLog
    rejections: TableRejections
    clients: tuple[TableClient, ...] = ()
    owned_credential: Any = None

    @classmethod
    def from_settings(cls, settings: Settings, credential: Any = None) -> TableState:
        service, owned = table_service(settings, credential)
        state = cls.for_service(service, settings.table_prefix)
        state.owned_credential = owned
        return state

    @classmethod
    def for_service(cls, service: TableServiceClient, prefix: str) -> TableState:
        names = (f"{prefix}workitems", f"{prefix}guests", f"{prefix}audit", f"{prefix}rejections")
        work_items, guests, audit, rejections = (service.get_table_client(name) for name in names)
        return cls(
            service=service,
            table_names=names,
            work_items=TableWorkItems(work_items),
            guests=TableGuestLedger(guests),
            audit=TableAuditLog(audit),
            rejections=TableRejections(rejections),
            clients=(work_items, guests, audit, rejections),
        )

    async def ensure_tables(self) -> None:
        for name in self.table_names:
            await self.service.create_table_if_not_exists(name)

    async def close(self) -> None:
        for client in self.clients:
            await client.close()
        await self.service.close()
        if self.owned_credential is not None:
            await self.owned_credential.close()
