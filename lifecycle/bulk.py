"""Bulk onboarding from a CSV: the product's own columns, or the Entra portal's bulk-invite template.

Each row becomes an onboard ticket with a deterministic ticket id (batch id + row number), so feeding the
same file twice submits the same tickets and the handler deduplicates them.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from config.desired_state import DesiredState
from lifecycle.onboarding_policy import check_onboard
from lifecycle.tickets import OnboardTicket, TicketRejection, parse_ticket

# The Entra portal's template names each column as "Label [name] Required"; the bracketed name counts.
ENTRA_COLUMNS = {
    "inviteeemail": "email",
    "inviteredirecturl": "redirectUrl",
    "sendemail": "sendInvitation",
    "customizedmessagebody": "message",
}
OWN_COLUMNS = {
    "ticketid": "ticketId",
    "email": "email",
    "displayname": "displayName",
    "partner": "partner",
    "sponsor": "sponsor",
    "enddate": "endDate",
    "notbefore": "notBefore",
    "redirecturl": "redirectUrl",
    "accesspackage": "accessPackage",
    "sendinvitation": "sendInvitation",
    "message": "message",
}
_BRACKETED = re.compile(r"\[([A-Za-z]+)\]")


@dataclass(frozen=True, slots=True)
class RowDefaults:
    sponsor: str | None = None
    partner: str | None = None
    end_date: date | None = None


@dataclass
class RowResult:
    row: int
    email: str
    ticket_id: str
    accepted: bool
    code: str = ""
    reason: str = ""
    document: dict[str, Any] = field(default_factory=dict)


def read_rows(path: Path) -> list[dict[str, str]]:
    text = path.read_text(encoding="utf-8-sig")
    lines = text.splitlines()
    if lines and lines[0].lower().startswith("version:"):
        text = "\n".join(lines[1:])
    reader = csv.DictReader(io.StringIO(text))
    columns = {header: _column(header) for header in reader.fieldnames or []}
    unknown = [h for h, c in columns.items() if c is None]
    if unknown:
        raise ValueError(f"unknown CSV column(s): {', '.join(unknown)}")
    return [{columns[h]: (v or "").strip() for h, v in raw.items() if h in columns} for raw in reader]


def _column(header: str) -> str | None:
    bracketed = _BRACKETED.search(header)
    name = (bracketed.group(1) if bracketed else header).strip().lower().replace(" ", "").replace("_", "")
    return ENTRA_COLUMNS.get(name) or OWN_COLUMNS.get(name)


def batch_id(path: Path) -> str:
    return "bulk-" + hashlib.sha256(path.read_bytes()).hexdigest()[:10]


def plan_rows(
    rows: list[dict[str, str]], desired: DesiredState, now: datetime, defaults: RowDefaults, batch: str
) -> list[RowResult]:
    results = []
    for number, row in enumerate(rows, start=1):
        document = _document(row, number, desired, defaults, batch)
        ticket = parse_ticket(_encode(document))
        if isinstance(ticket, TicketRejection):
            results.append(_result(number, document, False, ticket.code, ticket.message))
            continue
        assert isinstance(ticket, OnboardTicket)
        decision = check_onboard(ticket, desired, now)
        if isinstance(decision, list):
            reason = "; ".join(v.message for v in decision)
            results.append(_result(number, document, False, decision[0].code, reason))
        else:
            results.append(_result(number, document, True))
    return results


def _document(
    row: dict[str, str], number: int, desired: DesiredState, defaults: RowDefaults, batch: str
) -> dict[str, Any]:
    email = row.get("email", "")
    partner = row.get("partner") or defaults.partner
    if not partner and "@" in email:
        match = desired.partner_for_domain(email.rsplit("@", 1)[1])
        partner = match[0] if match else None
    document: dict[str, Any] = {
        "schemaVersion": 1,
        "kind": "onboard",
        "ticketId": row.get("ticketId") or f"{batch}-{number:05d}",
        "source": "bulk-csv",
        "email": email,
        "displayName": row.get("displayName") or email.split("@")[0],
        "partner": partner,
        "sponsor": row.get("sponsor") or defaults.sponsor,
        "endDate": row.get("endDate") or (defaults.end_date.isoformat() if defaults.end_date else None),
        "notBefore": row.get("notBefore") or None,
        "redirectUrl": row.get("redirectUrl") or None,
        "accessPackage": row.get("accessPackage") or None,
        "message": row.get("message") or None,
    }
    if row.get("sendInvitation"):
        document["sendInvitation"] = row["sendInvitation"].lower() in ("true", "yes", "1")
    return {k: v for k, v in document.items() if v is not None}


def default_end(now: datetime, days: int | None) -> date | None:
    return (now + timedelta(days=days)).date() if days else None


def _result(number: int, document: dict[str, Any], accepted: bool, code: str = "", reason: str = "") -> RowResult:
    return RowResult(number, str(document.get("email", "")), document["ticketId"], accepted, code, reason, document)


def _encode(document: dict[str, Any]) -> bytes:
    import json

    return json.dumps(document).encode()
