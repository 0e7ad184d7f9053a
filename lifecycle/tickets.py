"""The onboarding ticket contract (schemaVersion 1) and its parsing.

Parsing never raises for bad input: it returns a TicketRejection with a machine-readable code, so a bad
ticket is recorded and settled once instead of being retried or dropped.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator
from pydantic.alias_generators import to_camel

from config.desired_state import normalise_domain
from config.keys import KEY_PATTERN

MAX_TICKET_BYTES = 64 * 1024
SUPPORTED_SCHEMA_VERSIONS = (1,)
KINDS = ("onboard", "extend", "offboard", "reset-redemption", "attest")

# Characters Graph refuses in invitedUserEmailAddress (the invitation resource's documentation lists
# quotation marks too). Refusing quotes here also keeps them out of every $filter, which escapes anyway.
_EMAIL_FORBIDDEN = set("~!#$%^&*()+=[]{}\\/|;:\"'`<>?, ")
_OBJECT_ID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
_TICKET_ID = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"


def email_problem(email: str) -> str | None:
    """Why Graph would refuse this address as invitedUserEmailAddress, or None if it would accept it."""
    if email.count("@") != 1:
        return "an email address has exactly one @"
    local, domain = email.split("@")
    if not local or len(local) > 64:
        return "the local part must be 1 to 64 characters"
    bad = sorted({ch for ch in local if ch in _EMAIL_FORBIDDEN or ord(ch) < 0x21 or ord(ch) > 0x7E})
    if bad:
        return f"the local part contains characters Graph refuses: {''.join(bad)}"
    if local[0] in ".-" or local[-1] in ".-" or ".." in local:
        return "dots and hyphens may not start or end the local part, nor repeat"
    # The one domain normalisation (non-ASCII lookalikes such as the Kelvin sign refused, not folded).
    if normalise_domain(domain) is None:
        return "the domain is not a valid DNS name"
    return None


class TicketModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)

    schema_version: Literal[1]
    ticket_id: str = Field(pattern=_TICKET_ID)
    source: str | None = Field(None, max_length=64)
    requested_by: str | None = Field(None, max_length=256)


class _GuestTicket(TicketModel):
    email: str = Field(max_length=254)

    @field_validator("email")
    @classmethod
    def _graph_accepts(cls, value: str) -> str:
        value = value.strip()
        problem = email_problem(value)
        if problem:
            raise ValueError(problem)
        local, domain = value.split("@")
        return f"{local}@{normalise_domain(domain)}"

    @property
    def domain(self) -> str:
        return self.email.split("@")[1]


def _sponsor(value: str) -> str:
    value = value.strip()
    if _OBJECT_ID.match(value):
        return value.lower()
    if email_problem(value) is None:
        return value
    raise ValueError("sponsor must be an object id or a user principal name")


_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")


def _iso_text(value: object) -> object:
    """Dates are ISO 8601 text, as the schema says; pydantic alone would read 1800000000 or "-1" as a timestamp."""
    if value is not None and not (isinstance(value, str) and _ISO_DATE.match(value)):
        raise ValueError("must be an ISO 8601 date or date-time (YYYY-MM-DD...)")
    return value


class OnboardTicket(_GuestTicket):
    kind: Literal["onboard"]
    display_name: str = Field(min_length=1, max_length=256)
    partner: str = Field(pattern=KEY_PATTERN)
    sponsor: str
    access_package: str | None = Field(None, min_length=1, max_length=256)
    end_date: date | datetime
    not_before: datetime | None = None
    redirect_url: str | None = Field(None, max_length=2048)
    send_invitation: bool = True
    message: str | None = Field(None, max_length=1000)

    _check_sponsor = field_validator("sponsor")(classmethod(lambda cls, v: _sponsor(v)))
    _check_dates = field_validator("end_date", "not_before", mode="before")(classmethod(lambda cls, v: _iso_text(v)))


class ExtendTicket(_GuestTicket):
    kind: Literal["extend"]
    end_date: date | datetime

    _check_dates = field_validator("end_date", mode="before")(classmethod(lambda cls, v: _iso_text(v)))


class OffboardTicket(_GuestTicket):
    kind: Literal["offboard"]
    reason: str | None = Field(None, max_length=500)


class AttestTicket(_GuestTicket):
    """A sponsor confirmed that the guest is still needed: kept as evidence in the ledger and the report."""

    kind: Literal["attest"]
    attested_by: str
    attested_at: datetime | None = None  # when the sponsor confirmed it; the ticket's arrival when left out
    note: str | None = Field(None, max_length=500)

    _check_sponsor = field_validator("attested_by")(classmethod(lambda cls, v: _sponsor(v)))
    _check_dates = field_validator("attested_at", mode="before")(classmethod(lambda cls, v: _iso_text(v)))


class ResetRedemptionTicket(TicketModel):
    kind: Literal["reset-redemption"]
    email: str | None = Field(None, max_length=254)
    object_id: str | None = Field(None, pattern=_OBJECT_ID.pattern)
    domain: str | None = Field(None, max_length=253)
    new_email: str | None = Field(None, max_length=254)


Ticket = Annotated[
    OnboardTicket | ExtendTicket | OffboardTicket | ResetRedemptionTicket | AttestTicket, Field(discriminator="kind")
]
_TICKET = TypeAdapter(Ticket)


class TicketRejection(BaseModel):
    """Why a message could not become a ticket. ``key`` is what the rejection is recorded under."""

    key: str
    code: Literal[
        "oversize",
        "malformed-json",
        "duplicate-key",
        "not-an-object",
        "unsupported-schema-version",
        "unknown-kind",
        "invalid-ticket",
    ]
    message: str
    errors: list[dict[str, str]] = Field(default_factory=list)


def parse_ticket(
    raw: bytes, *, message_id: str | None = None
) -> OnboardTicket | ExtendTicket | OffboardTicket | ResetRedemptionTicket | AttestTicket | TicketRejection:
    fallback_key = _fallback_key(raw, message_id)
    if len(raw) > MAX_TICKET_BYTES:
        return TicketRejection(key=fallback_key, code="oversize", message=f"ticket over {MAX_TICKET_BYTES} bytes")
    try:
        # UTF-8 only (RFC 8259 section 8.1): json.loads would also take UTF-16/32 bytes, which a held
        # ticket could not be stored as. ValueError covers integers over the interpreter's digit limit.
        document = json.loads(raw.decode("utf-8"), object_pairs_hook=_refuse_duplicate_keys)
    except _DuplicateKey as exc:
        return TicketRejection(
            key=fallback_key,
            code="duplicate-key",
            message=f"the name {_shown(exc.name)} appears twice in one object; a ticket names each field once",
        )
    except (ValueError, RecursionError) as exc:
        return TicketRejection(key=fallback_key, code="malformed-json", message=f"not valid JSON: {exc}")
    if not isinstance(document, dict):
        return TicketRejection(key=fallback_key, code="not-an-object", message="a ticket is a JSON object")
    key = _ticket_key(document) or fallback_key
    version = document.get("schemaVersion")
    # true == 1 in Python; the published schema's const 1 refuses it, and so do we.
    if isinstance(version, bool) or version not in SUPPORTED_SCHEMA_VERSIONS:
        return TicketRejection(
            key=key,
            code="unsupported-schema-version",
            message=f"schemaVersion {_shown(version)} is not supported (supported: {list(SUPPORTED_SCHEMA_VERSIONS)})",
        )
    if document.get("kind") not in KINDS:
        return TicketRejection(
            key=key, code="unknown-kind", message=f"kind {_shown(document.get('kind'))} is not one of {list(KINDS)}"
        )
    try:
        return _TICKET.validate_python(document)
    except ValidationError as exc:
        errors = [
            {"field": ".".join(str(p) for p in e["loc"][1:]) or "(ticket)", "problem": e["msg"]} for e in exc.errors()
        ]
        summary = "; ".join(f"{e['field']}: {e['problem']}" for e in errors)
        return TicketRejection(key=key, code="invalid-ticket", message=summary, errors=errors)


def ticket_hash(ticket: TicketModel) -> str:
    """What a ticket says, independent of how it was written: the parsed ticket (defaults filled in, values
    normalised) as JSON with sorted keys, hashed. Two messages with the same ticket id and the same hash are
    the same ticket (a duplicate); another hash under the same id is a conflict."""
    canonical = json.dumps(
        ticket.model_dump(mode="json", by_alias=True), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:32]


class _DuplicateKey(ValueError):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def _refuse_duplicate_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    """json.loads keeps the last of repeated names; readers that keep the first would see another ticket."""
    document: dict[str, object] = {}
    for name, value in pairs:
        if name in document:
            raise _DuplicateKey(name)
        document[name] = value
    return document


def ticket_json_schema() -> dict[str, object]:
    schema = _TICKET.json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://schemas.contoso.example/guest-lifecycle/ticket-v1.json"
    schema["title"] = "Guest lifecycle ticket, schemaVersion 1"
    return schema


def _shown(value: object, limit: int = 64) -> str:
    """A value quoted in a reason, cut short: the whole message is kept beside the reason anyway."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def _ticket_key(document: dict[str, object]) -> str | None:
    ticket_id = document.get("ticketId")
    if isinstance(ticket_id, str) and re.match(_TICKET_ID, ticket_id):
        return f"ticket:{ticket_id}"
    return None


def _fallback_key(raw: bytes, message_id: str | None) -> str:
    digest = hashlib.sha256(raw).hexdigest()[:32]
    return f"message:{message_id}" if message_id else f"body:{digest}"
