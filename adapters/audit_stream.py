"""The audit trail's second copy: every audit row also goes to a Log Analytics custom table.

Table Storage stays the record (the CLI's `show`, the report and the ledger read it); the stream is what the
workspace's alert rules and workbook read (infra/modules/auditstream.bicep, auditrules.bicep). Rows go
through the Logs Ingestion API with the real client library (azure-monitor-ingestion) and the app's managed
identity, which holds Monitoring Metrics Publisher on the data collection rule.

A failed or slow send never fails the product's work: the table row is written first, and a send that
fails, times out or is refused leaves a warning (`audit.stream.failed`) and nothing else. Each row is sent
when it is written, as a list of one that the library gzips; rows are not held back to batch across calls,
since a recycled worker would lose what it held and the port writes one row at a time.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, Self

import structlog

from adapters.table_codec import utc
from config.errors import SettingsError
from lifecycle.models import AuditEntry
from lifecycle.ports import AuditLog

log = structlog.get_logger(__name__)

ENDPOINT_SETTING = "LIFECYCLE_AUDIT_INGESTION_ENDPOINT"
RULE_ID_SETTING = "LIFECYCLE_AUDIT_INGESTION_RULE_ID"
STREAM_SETTING = "LIFECYCLE_AUDIT_INGESTION_STREAM"
# The stream declared in infra/modules/auditstream.bicep, with the columns audit_row produces.
DEFAULT_STREAM = "Custom-GuestLifecycleAudit"
COLUMNS = ("TimeGenerated", "Action", "Target", "Reason", "Actor", "Key", "RunId", "Details")
SEND_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class AuditStreamTarget:
    """Where the rows go: the ingestion endpoint, the data collection rule's immutable id, the stream."""

    endpoint: str
    rule_id: str
    stream: str = DEFAULT_STREAM

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Self | None:
        """The target the app settings name, or None when no endpoint is set (the stream is off)."""
        source = os.environ if environ is None else environ
        endpoint = source.get(ENDPOINT_SETTING, "").strip()
        if not endpoint:
            return None
        rule_id = source.get(RULE_ID_SETTING, "").strip()
        if not rule_id:
            raise SettingsError(f"{ENDPOINT_SETTING} is set but {RULE_ID_SETTING} is not: the audit stream needs both")
        if not endpoint.startswith("https://"):
            raise SettingsError(f"{ENDPOINT_SETTING} must be an https:// URL, not {endpoint!r}")
        return cls(endpoint=endpoint.rstrip("/"), rule_id=rule_id, stream=source.get(STREAM_SETTING) or DEFAULT_STREAM)


class LogsUploader(Protocol):
    """The part of azure.monitor.ingestion.aio.LogsIngestionClient the stream uses."""

    async def upload(
        self,
        rule_id: str,
        stream_name: str,
        logs: list[MutableMapping[str, Any]],
        *,
        on_error: Callable[[Any], Awaitable[None]] | None = None,
    ) -> None: ...

    async def close(self) -> None: ...


def audit_row(entry: AuditEntry) -> dict[str, Any]:
    """One audit entry in the stream's columns (COLUMNS, the DCR's stream declaration)."""
    at = utc(entry.at)
    assert at is not None
    return {
        "TimeGenerated": at.isoformat(),
        "Action": entry.action,
        "Target": entry.target,
        "Reason": entry.reason,
        "Actor": entry.actor,
        "Key": entry.key,
        "RunId": entry.run_id,
        "Details": entry.details,
    }


class StreamedAuditLog:
    """The AuditLog port over the table and the stream: the table row first, then the send, whose failure
    is logged and swallowed."""

    def __init__(
        self,
        table: AuditLog,
        client: LogsUploader,
        target: AuditStreamTarget,
        *,
        timeout: float = SEND_TIMEOUT_SECONDS,
    ) -> None:
        self._table = table
        self._client = client
        self._target = target
        self._timeout = timeout

    async def record(self, entry: AuditEntry) -> None:
        await self._table.record(entry)
        await self._send([audit_row(entry)], entry.action)

    def entries(self, since: datetime | None = None) -> AsyncIterator[AuditEntry]:
        return self._table.entries(since)

    async def close(self) -> None:
        await self._client.close()

    async def _send(self, rows: list[MutableMapping[str, Any]], action: str) -> None:
        refused: list[Any] = []

        async def on_error(failure: Any) -> None:  # azure.monitor.ingestion.LogsUploadError
            refused.append(failure)

        try:
            async with asyncio.timeout(self._timeout):
                await self._client.upload(self._target.rule_id, self._target.stream, rows, on_error=on_error)
        except Exception as error:  # the table row is kept; the stream is a copy and must not fail the work
            _warn(action, len(rows), error)
            return
        for failure in refused:
            _warn(action, len(getattr(failure, "failed_logs", rows)), getattr(failure, "error", failure))


def _warn(action: str, rows: int, error: object) -> None:
    log.warning("audit.stream.failed", action=action, rows=rows, error=f"{type(error).__name__}: {error}"[:500])


def logs_ingestion_client(target: AuditStreamTarget, credential: Any, **client_options: Any) -> LogsUploader:
    """The real client library on ``target``'s endpoint with ``credential`` (the app's managed identity).

    One retry at most: a send that keeps failing is logged, not waited on, since the caller's work waits.
    """
    from azure.monitor.ingestion.aio import LogsIngestionClient

    options = {"retry_total": 1, "retry_backoff_factor": 0.5} | client_options
    return LogsIngestionClient(endpoint=target.endpoint, credential=credential, **options)  # type: ignore[return-value]
