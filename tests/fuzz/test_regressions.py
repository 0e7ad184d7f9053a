"""Bugs the fuzzers found, pinned one example each so they stay fixed whatever the generators draw."""

from __future__ import annotations

import json

import pytest

from lifecycle.ledger.outcomes import Verdict
from lifecycle.onboarding.handler import handle_ticket
from tests.builders import memory_services, message, onboard_ticket
from tests.fakes import FakeDirectory


@pytest.fixture(name="directory")
def _directory() -> FakeDirectory:
    directory = FakeDirectory()
    directory.add_member("megan.bowen@contoso.com")
    return directory


@pytest.mark.parametrize(
    ("body", "code"),
    [
        # json.loads raised RecursionError past ~1000 levels of nesting.
        (b"[" * 5000 + b"]" * 5000, "malformed-json"),
        # json.loads raised ValueError for an integer over the interpreter's 4300-digit limit.
        (b'{"schemaVersion": 1, "ticketId": "T-1", "n": ' + b"7" * 5000 + b"}", "malformed-json"),
        # json.loads accepted UTF-16, which the hold path then failed to decode as UTF-8.
        (json.dumps(onboard_ticket(notBefore="2027-01-01T00:00:00Z")).encode("utf-16"), "malformed-json"),
        # True == 1 passed the version check and pydantic's Literal[1].
        (json.dumps(onboard_ticket(schemaVersion=True)).encode(), "unsupported-schema-version"),
    ],
    ids=["deep-nesting", "huge-integer", "utf-16", "schema-version-true"],
)
async def test_hostile_ticket_bodies_are_rejected_not_raised(directory, body, code):
    """Each body once escaped parse_ticket (or was accepted); now it is a rejection with its reason."""
    services = memory_services(directory)
    outcome = await handle_ticket(message(body), services)
    assert (outcome.verdict, outcome.code) == (Verdict.REJECTED, code)
    assert [r.code async for r in services.rejections.all()] == [code]
    assert directory.invitations == [] and directory.writes == []


async def test_an_end_date_on_the_last_representable_day_is_too_far_not_an_overflow(directory):
    """endDate 9999-12-31 made end_of() add a day past date.max and raise OverflowError."""
    services = memory_services(directory)
    outcome = await handle_ticket(message(onboard_ticket(endDate="9999-12-31")), services)
    assert (outcome.verdict, outcome.code) == (Verdict.REJECTED, "end-date-too-far")
    assert directory.invitations == []


async def test_an_extension_to_the_last_representable_day_is_out_of_range_not_an_overflow(directory):
    """The extend handler shares end_of(): same overflow, for a guest this product manages."""
    services = memory_services(directory)
    await handle_ticket(message(onboard_ticket()), services)
    writes = list(directory.writes)
    extend = {"schemaVersion": 1, "kind": "extend", "ticketId": "T-2", "email": "ana.lopez@fabrikam.com"}
    outcome = await handle_ticket(message({**extend, "endDate": "9999-12-31"}, message_id="m-2"), services)
    assert (outcome.verdict, outcome.code) == (Verdict.REJECTED, "end-date-out-of-range")
    assert directory.writes == writes


@pytest.mark.parametrize("field", ["email", "sponsor"])
async def test_a_kelvin_sign_in_a_domain_is_refused_not_lowercased_into_ascii(directory, field):
    """U+212A lowercases to "k", so "fabri\u212aam.com" passed the domain pattern (and a sponsor kept it)."""
    address = {"email": "ana@fabri\u212aam.com", "sponsor": "megan.bowen@\u212aontoso.com"}[field]
    services = memory_services(directory)
    outcome = await handle_ticket(message(onboard_ticket(**{field: address})), services)
    assert (outcome.verdict, outcome.code) == (Verdict.REJECTED, "invalid-ticket")
    assert outcome.detail["errors"][0]["field"] == field
    assert directory.invitations == []


@pytest.mark.parametrize(
    ("field", "value"),
    [("notBefore", "-1"), ("notBefore", 1700000000), ("endDate", 1800000000), ("endDate", "1800000000")],
)
async def test_a_number_is_not_a_date(directory, field, value):
    """pydantic read numbers (and numeric text) as Unix timestamps: notBefore "-1" meant 1969 and invited at once."""
    services = memory_services(directory)
    outcome = await handle_ticket(message(onboard_ticket(**{field: value})), services)
    assert (outcome.verdict, outcome.code) == (Verdict.REJECTED, "invalid-ticket")
    assert outcome.detail["errors"][0]["field"] == field
    assert directory.invitations == []


@pytest.mark.parametrize("object_id", ["not-a-guid", "x' or 1 eq 1 or id eq 'x", "0" * 10_000])
async def test_a_reset_object_id_must_be_a_guid(directory, object_id):
    """A reset ticket's objectId went to Graph's /users/{id} unchecked: anything but a GUID is refused first."""
    services = memory_services(directory)
    reset = {"schemaVersion": 1, "kind": "reset-redemption", "ticketId": "T-3", "objectId": object_id}
    outcome = await handle_ticket(message(reset), services)
    assert (outcome.verdict, outcome.code) == (Verdict.REJECTED, "invalid-ticket")
    assert outcome.detail["errors"][0]["field"] == "objectId"
    assert directory.writes == [] and directory.invitations == []


@pytest.mark.parametrize("field", ["kind", "schemaVersion"])
async def test_a_huge_value_is_cut_short_in_the_reason(directory, field):
    """The reason quoted the whole offending value (tens of kilobytes); the kept raw message has it, once."""
    services = memory_services(directory)
    outcome = await handle_ticket(message(onboard_ticket(**{field: "x" * 50_000})), services)
    [rejection] = [r async for r in services.rejections.all()]
    assert outcome.verdict is Verdict.REJECTED and len(rejection.message) < 200
    assert "50002 characters" in rejection.message and len(rejection.raw) > 50_000
