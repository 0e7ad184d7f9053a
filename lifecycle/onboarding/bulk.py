"""Bulk onboarding from a CSV: the product's own columns, or the Entra portal's bulk-invite template.

Each row becomes an onboard ticket with a deterministic ticket id (batch id + row number), so feeding the
same file twice submits the same tickets and the handler deduplicates them. The portal's template
(docs/external-id/tutorial-bulk-invite.md: a version row, then headings "Label [propertyName] Required")
names no partner, sponsor or end date: the partner comes from the address's domain, the sponsor and the end
date from the command's options, and a file that gives neither is refused before any row is planned.
An address that appears twice is planned once; the later rows are reported as duplicates.
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
from lifecycle.errors import InputError
from lifecycle.onboarding.policy import check_onboard
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

    @property
    def partner(self) -> str:
        return str(self.document.get("partner") or "")

    @property
    def sponsor(self) -> str:
        return str(self.document.get("sponsor") or "")

    @property
    def last_day(self) -> str:
        """The end date as the row or the options gave it: the inclusive last day."""
        return str(self.document.get("endDate") or "")


def read_rows(path: Path) -> list[dict[str, str]]:
    """The rows of a bulk CSV, keyed by ticket field. A file that is not a comma-separated CSV with known
    columns raises InputError naming what is wrong, before any row is planned."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path.name} is not UTF-8 text (byte {exc.start}); save it as CSV UTF-8") from None
    lines = text.splitlines()
    if lines and lines[0].lower().startswith("version:"):
        text = "\n".join(lines[1:])
        lines = lines[1:]
    header = lines[0] if lines else ""
    if ";" in header and "," not in header:
        raise InputError(
            f"{path.name} is separated by semicolons; the Entra template and this command take commas "
            "(save it as CSV UTF-8 (Comma delimited))"
        )
    reader = csv.DictReader(io.StringIO(text))
    columns = {heading: _column(heading) for heading in reader.fieldnames or []}
    if not columns:
        raise InputError(f"{path.name} has no header row")
    unknown = [h for h, c in columns.items() if c is None]
    if unknown:
        raise InputError(
            f"{path.name}: unknown CSV column(s): {', '.join(unknown)}; known: {', '.join(OWN_COLUMNS.values())} "
            "or the Entra bulk-invite template's"
        )
    rows = []
    for raw in reader:
        if None in raw:  # more cells than headings: a comma inside an unquoted value
            raise InputError(f"{path.name} line {reader.line_num} has more cells than the header has columns")
        rows.append({columns[h]: (v or "").strip() for h, v in raw.items() if h in columns})
    return rows


def missing_defaults(rows: list[dict[str, str]], *, sponsor_given: bool, end_given: bool) -> list[str]:
    """What every row lacks and no option gives: the sponsor, the end date. The Entra template has neither."""
    missing = []
    if not sponsor_given and not any(r.get("sponsor") for r in rows):
        missing.append("sponsor")
    if not end_given and not any(r.get("endDate") for r in rows):
        missing.append("endDate")
    return missing


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
    first_row: dict[str, int] = {}
    for number, row in enumerate(rows, start=1):
        document = _document(row, number, desired, defaults, batch)
        address = str(document.get("email", "")).strip().lower()
        if address and address in first_row:
            reason = f"{document['email']} is also on row {first_row[address]}: invited once, from that row"
            results.append(_result(number, document, False, "duplicate-address", reason))
            continue
        if address:
            first_row[address] = number
        missing = _missing(document)
        if missing:
            results.append(_result(number, document, False, missing[0], missing[1]))
            continue
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


def _missing(document: dict[str, Any]) -> tuple[str, str] | None:
    """A field the row needs that neither the row, the domain nor the options gave, said in their terms."""
    if not document.get("partner"):
        domain = str(document.get("email", "")).rpartition("@")[2] or "?"
        return "unknown-partner", f"no partner has the domain {domain}: add a partner column or pass --partner"
    if not document.get("sponsor"):
        return "missing-sponsor", "no sponsor: fill the row's sponsor column or pass --sponsor UPN"
    if not document.get("endDate"):
        return "missing-end-date", "no end date: fill the row's endDate column or pass --days N"
    return None


def default_end(now: datetime, days: int | None) -> date | None:
    return (now + timedelta(days=days)).date() if days else None


def _result(number: int, document: dict[str, Any], accepted: bool, code: str = "", reason: str = "") -> RowResult:
    return RowResult(number, str(document.get("email", "")), document["ticketId"], accepted, code, reason, document)


def _encode(document: dict[str, Any]) -> bytes:
    import json

    return json.dumps(document).encode()
