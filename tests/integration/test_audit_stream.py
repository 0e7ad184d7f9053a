"""The audit stream: rows written through the AuditLog port reach the Logs Ingestion API with the stream's
columns, through the real client library, and a failing ingestion endpoint never fails the write.

The ingestion endpoint is a loopback stand-in (Starlette over TLS with a throwaway certificate) that
accepts the documented POST {endpoint}/dataCollectionRules/{ruleId}/streams/{stream}?api-version=... and
records each request; the table side is Azurite.
"""

from __future__ import annotations

import datetime as dt
import gzip
import ipaddress
import json
import re
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import structlog
import uvicorn
from azure.core.credentials import AccessToken
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from adapters.audit_stream import (
    COLUMNS,
    AuditStreamTarget,
    StreamedAuditLog,
    logs_ingestion_client,
)
from adapters.tables import TableAuditLog, TableState
from app.bootstrap import _audit_stream
from config.errors import SettingsError
from config.settings import load_settings
from lifecycle.models import AuditEntry
from tenantsim.server import bind_socket

RULE_ID = "dcr-7c1e5f0a9b2d4e6f8a0b1c2d3e4f5a6b"
STREAM = "Custom-GuestLifecycleAudit"
AT = dt.datetime(2026, 12, 6, 2, 14, 5, 123456, tzinfo=dt.UTC)


# --- the ingestion endpoint's stand-in -------------------------------------------------------------------


@dataclass
class Ingestion:
    url: str
    ca_file: str
    requests: list[dict[str, Any]] = field(default_factory=list)
    answer: int = 204


class FakeCredential:
    """An async token credential that hands out a fixed token and records the scopes it was asked for."""

    def __init__(self) -> None:
        self.scopes: list[tuple[str, ...]] = []

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.scopes.append(scopes)
        return AccessToken("ingestion-token", int(time.time()) + 3600)

    async def close(self) -> None:
        return None


def _certificate(directory: Path) -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "ingestion.pem", directory / "ingestion.key"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return str(cert_file), str(key_file)


@pytest.fixture
def ingestion(tmp_path: Path) -> Iterator[Ingestion]:
    cert_file, key_file = _certificate(tmp_path)
    sock = bind_socket("127.0.0.1", 0)
    state = Ingestion(url=f"https://127.0.0.1:{sock.getsockname()[1]}", ca_file=cert_file)

    async def upload(request: Request) -> Response:
        raw = await request.body()
        body = gzip.decompress(raw) if request.headers.get("content-encoding") == "gzip" else raw
        state.requests.append(
            {
                "rule_id": request.path_params["rule_id"],
                "stream": request.path_params["stream"],
                "api_version": request.query_params.get("api-version"),
                "authorization": request.headers.get("authorization"),
                "content_type": request.headers.get("content-type"),
                "rows": json.loads(body),
            }
        )
        if state.answer >= 400:
            return JSONResponse({"error": {"code": "Forbidden", "message": "refused"}}, status_code=state.answer)
        return Response(status_code=state.answer)

    app = Starlette(routes=[Route("/dataCollectionRules/{rule_id}/streams/{stream}", upload, methods=["POST"])])
    server = uvicorn.Server(
        uvicorn.Config(
            app, log_level="warning", access_log=False, lifespan="off", ssl_certfile=cert_file, ssl_keyfile=key_file
        )
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the ingestion stand-in did not start"
        time.sleep(0.05)
    try:
        yield state
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture
async def table(azurite: Any, unique_prefix: str) -> AsyncIterator[TableAuditLog]:
    settings = load_settings(azurite.env | {"LIFECYCLE_TABLE_PREFIX": unique_prefix})
    state = TableState.from_settings(settings)
    await state.ensure_tables()
    try:
        yield state.audit
    finally:
        await state.close()


def _entry(**changes: Any) -> AuditEntry:
    values: dict[str, Any] = {
        "at": AT,
        "action": "guest.disabled",
        "target": "0b7e3c52-3f1a-4d1e-9d55-6f8f7c1a2b3c",
        "reason": "rule inactive (run sweep:2026-12-06)",
        "key": "sweep:disable:0b7e3c52-3f1a-4d1e-9d55-6f8f7c1a2b3c:2026-12-06",
        "run_id": "sweep:2026-12-06",
        "details": {"rule": "inactive", "evidence": {"lastSignIn": "2026-06-01"}},
    }
    return AuditEntry(**(values | changes))


def _stream(table: TableAuditLog, url: str, credential: FakeCredential, **options: Any) -> StreamedAuditLog:
    target = AuditStreamTarget(endpoint=url, rule_id=RULE_ID, stream=STREAM)
    return StreamedAuditLog(table, logs_ingestion_client(target, credential, **options), target, timeout=20)


async def _rows(table: TableAuditLog) -> list[AuditEntry]:
    return [entry async for entry in table.entries()]


# --- the stream ----------------------------------------------------------------------------------------


async def test_an_audit_row_arrives_at_the_ingestion_api_with_the_stream_columns(
    ingestion: Ingestion, table: TableAuditLog
) -> None:
    credential = FakeCredential()
    audit = _stream(table, ingestion.url, credential, connection_verify=ingestion.ca_file)
    try:
        await audit.record(_entry())
    finally:
        await audit.close()

    [sent] = ingestion.requests
    assert (sent["rule_id"], sent["stream"]) == (RULE_ID, STREAM)
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", sent["api_version"] or "")
    assert sent["authorization"] == "Bearer ingestion-token"
    assert credential.scopes == [("https://monitor.azure.com/.default",)]
    [row] = sent["rows"]
    assert tuple(row) == COLUMNS
    assert row == {
        "TimeGenerated": "2026-12-06T02:14:05.123456+00:00",
        "Action": "guest.disabled",
        "Target": "0b7e3c52-3f1a-4d1e-9d55-6f8f7c1a2b3c",
        "Reason": "rule inactive (run sweep:2026-12-06)",
        "Actor": "guest-lifecycle",
        "Key": "sweep:disable:0b7e3c52-3f1a-4d1e-9d55-6f8f7c1a2b3c:2026-12-06",
        "RunId": "sweep:2026-12-06",
        "Details": {"rule": "inactive", "evidence": {"lastSignIn": "2026-06-01"}},
    }
    # The table keeps its row: the stream is a copy, the table the record.
    assert [entry.action for entry in await _rows(table)] == ["guest.disabled"]


async def test_an_unreachable_endpoint_does_not_fail_the_write_and_keeps_the_table_row(table: TableAuditLog) -> None:
    closed = bind_socket("127.0.0.1", 0)
    url = f"https://127.0.0.1:{closed.getsockname()[1]}"
    closed.close()  # nothing listens there any more
    audit = _stream(table, url, FakeCredential())
    try:
        with structlog.testing.capture_logs() as logs:
            await audit.record(_entry(action="sweep.braked", target="sweep:2026-12-06", key=None))
    finally:
        await audit.close()

    assert [entry.action for entry in await _rows(table)] == ["sweep.braked"]
    [warning] = [entry for entry in logs if entry["event"] == "audit.stream.failed"]
    assert warning["log_level"] == "warning" and warning["action"] == "sweep.braked" and warning["rows"] == 1


async def test_an_endpoint_that_refuses_the_rows_does_not_fail_the_write(
    ingestion: Ingestion, table: TableAuditLog
) -> None:
    ingestion.answer = 403  # e.g. the identity lacks Monitoring Metrics Publisher on the rule
    audit = _stream(table, ingestion.url, FakeCredential(), connection_verify=ingestion.ca_file)
    try:
        with structlog.testing.capture_logs() as logs:
            await audit.record(_entry())
    finally:
        await audit.close()

    assert ingestion.requests and [entry.action for entry in await _rows(table)] == ["guest.disabled"]
    assert [entry["rows"] for entry in logs if entry["event"] == "audit.stream.failed"] == [1]


# --- the settings and the wiring -----------------------------------------------------------------------


def test_the_stream_is_wired_only_when_the_settings_name_an_endpoint(table: TableAuditLog) -> None:
    assert _audit_stream(table, FakeCredential(), environ={}) is None
    assert _audit_stream(table, FakeCredential(), environ={"LIFECYCLE_AUDIT_INGESTION_ENDPOINT": ""}) is None
    streamed = _audit_stream(
        table,
        FakeCredential(),
        environ={
            "LIFECYCLE_AUDIT_INGESTION_ENDPOINT": "https://audit-dce.westeurope-1.ingest.monitor.azure.com/",
            "LIFECYCLE_AUDIT_INGESTION_RULE_ID": RULE_ID,
            "LIFECYCLE_AUDIT_INGESTION_STREAM": STREAM,
        },
    )
    assert isinstance(streamed, StreamedAuditLog)


@pytest.mark.parametrize(
    ("environ", "complaint"),
    [
        ({"LIFECYCLE_AUDIT_INGESTION_ENDPOINT": "https://dce.example.ingest.monitor.azure.com"}, "RULE_ID"),
        (
            {"LIFECYCLE_AUDIT_INGESTION_ENDPOINT": "http://dce.example", "LIFECYCLE_AUDIT_INGESTION_RULE_ID": RULE_ID},
            "https://",
        ),
    ],
)
def test_an_endpoint_without_its_rule_or_over_plain_http_is_a_settings_error(
    environ: dict[str, str], complaint: str
) -> None:
    with pytest.raises(SettingsError, match=complaint):
        AuditStreamTarget.from_environ(environ)
