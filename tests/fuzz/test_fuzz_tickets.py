"""Hostile onboarding messages through the Service Bus trigger: rejected once with a reason, settled, no write.

Every generated message is invalid by construction (no classifier decides afterwards): each is either
broken below the ticket layer (bytes, JSON, size, version, kind) or a near-valid ticket with exactly one
field made invalid. The near-valid bases are accepted as they are by the same fakes
(``test_the_unmutated_bases_are_accepted_so_a_harmless_mutation_would_show``), so a mutation that
failed to invalidate its ticket would show up as a Graph write and fail the run.

Per message: ``function_app.onboarding_worker`` returns normally (the host completes the message: not
retried, not dead-lettered); exactly one rejection row with a documented code; the work item is
``rejected`` with that code; the audit trail has the rejection; the fakes recorded no invitation, user
write, assignment request or queued message. The same body delivered again through the local worker
(``lifecycle.ledger.settle.process``) is a settled duplicate that adds no second row.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any, get_args

import azure.functions.servicebus as sb
from hypothesis import event, given, settings
from hypothesis import strategies as st

import function_app
from adapters.memory import MemorySweepRuns
from app.bootstrap import use_services
from app.examples import SPONSOR, example_tickets
from config.desired_state import load_desired_state
from config.settings import SAMPLE_DESIRED_STATE, load_settings
from lifecycle.clock import FixedClock
from lifecycle.ledger.outcomes import Verdict
from lifecycle.ledger.settle import process
from lifecycle.models import GuestRecord, GuestState, OutboundMessage, WorkStatus
from lifecycle.onboarding.handler import handle_ticket
from lifecycle.services import Services
from lifecycle.tickets import KINDS, MAX_TICKET_BYTES, TicketRejection
from tests.builders import LOCAL_ENV, NOW, memory_services
from tests.fakes import FakeAccessPackages, FakeDirectory, FakeLookup
from tests.fuzz.profile import FUZZ, examples

# The README's list ("Rejection codes"), parse-level ones read from the model that produces them.
PARSE_CODES = frozenset(get_args(TicketRejection.model_fields["code"].annotation))
ONBOARD_CODES = frozenset(
    {
        "unknown-partner",
        "domain-not-partner",
        "domain-not-allowed",
        "domain-blocked",
        "partner-inbound-blocked",
        "redirect-not-allowed",
        "end-date-past",
        "end-date-too-far",
        "not-before-after-end",
        "sponsor-not-found",
        "sponsor-not-member",
        "email-belongs-to-member",
        "invitation-refused",
        "policy-violations",
        "ticket-id-conflict",
    }
)
# Defined by lifecycle/onboarding/guest_tickets.py and lifecycle/reset/tickets.py; not yet listed in the README.
GUEST_TICKET_CODES = frozenset(
    {
        *("guest-not-found", "not-a-guest", "guest-not-managed", "end-date-out-of-range"),
        *("invalid-target", "invalid-email", "unknown-partner-domain"),
    }
)
DOCUMENTED_CODES = PARSE_CODES | ONBOARD_CODES | GUEST_TICKET_CODES

QUEUE = "onboarding"
# Read once: both are immutable, and parsing them per example would dominate the run time.
# Redemption reset switched on and enforcing (an opt-in since it needs User.ReadWrite.All; in plan mode a reset
# ticket writes nothing and fails replayably): its tickets are fuzzed too.
SETTINGS = load_settings({**LOCAL_ENV, "LIFECYCLE_RESET_ENABLED": "true", "LIFECYCLE_RESET_MODE": "enforce"})
DESIRED = load_desired_state(SAMPLE_DESIRED_STATE)
MESSAGE_ID = "sb-fuzz-1"
GUEST_EMAIL = "guest.one@fabrikam.com"
PARTNER_DOMAINS = frozenset(
    {"fabrikam.com", "fabrikam.co.uk", "northwindtraders.com", "woodgrovebank.com", "adatum.com"}
)


def _day(days: int) -> str:
    return (NOW + timedelta(days=days)).date().isoformat()


ONBOARD_BASES = example_tickets(NOW)[:5]  # the five good tickets of the demo batch
GUEST_BASES = [
    {"schemaVersion": 1, "kind": "extend", "ticketId": "RITM0050001", "email": GUEST_EMAIL, "endDate": _day(60)},
    {"schemaVersion": 1, "kind": "offboard", "ticketId": "RITM0050002", "email": GUEST_EMAIL, "reason": "left"},
    {"schemaVersion": 1, "kind": "reset-redemption", "ticketId": "RITM0050003", "email": GUEST_EMAIL},
]
BASES = ONBOARD_BASES + GUEST_BASES

# Required keys per kind (dropping one is always invalid); reset needs exactly one target of three.
REQUIRED = {
    "onboard": ("schemaVersion", "kind", "ticketId", "email", "displayName", "partner", "sponsor", "endDate"),
    "extend": ("schemaVersion", "kind", "ticketId", "email", "endDate"),
    "offboard": ("schemaVersion", "kind", "ticketId", "email"),
    "reset-redemption": ("schemaVersion", "kind", "ticketId", "email"),
}
# Every field name any kind accepts, in both spellings (populate_by_name accepts the snake_case one too).
KNOWN_FIELDS = frozenset(
    {
        *("schemaVersion", "schema_version", "kind", "ticketId", "ticket_id", "source", "requestedBy"),
        *("requested_by", "email", "displayName", "display_name", "partner", "sponsor", "accessPackage"),
        *("access_package", "endDate", "end_date", "notBefore", "not_before", "redirectUrl", "redirect_url"),
        *("sendInvitation", "send_invitation", "message", "reason", "objectId", "object_id", "domain"),
        *("newEmail", "new_email"),
    }
)


# ---------------------------------------------------------------------------------------------- values


def json_values(max_leaves: int = 8) -> st.SearchStrategy[Any]:
    scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20)
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
        max_leaves=max_leaves,
    )


def deeply_nested() -> st.SearchStrategy[bytes]:
    """JSON text of lists or objects nested 2 to 3000 levels (past the decoder's recursion limit at the top)."""

    def build(depth: int, as_object: bool) -> bytes:
        opening, closing = (b'{"a":', b"}") if as_object else (b"[", b"]")
        return opening * depth + b'"x"' + closing * depth

    return st.builds(build, st.integers(2, 3000), st.booleans())


NESTED = "\u2063nested\u2063"  # placeholder swapped for the nested text after encoding


FORBIDDEN_IN_EMAIL = "~!#$%^&*()+=[]{}\\/|;:\"'`<>?, @"
CONFUSABLES = "\u0430\u0435\u043e\u03bf\u0131\u212a\uff46\u2170\u200b\u00a0\u0456\u0501"
CONTROL = "".join(chr(c) for c in [*range(0x00, 0x20), 0x7F, 0x85, 0x2028, 0xFEFF])
ODATA = ["' or 1 eq 1", "')", "%27", "' or startswith(mail,'a')", "\\'", "'+or+'1'+eq+'1", "&$filter=true"]


def _insert(text: str, at: int, piece: str) -> str:
    return text[:at] + piece + text[at:]


@st.composite
def hostile_emails(draw: st.DrawFn, base: str = GUEST_EMAIL) -> str:
    """An address Graph refuses, built from ``base``: every branch breaks a rule email_problem enforces."""
    local, domain = base.split("@")
    interior = st.integers(1, len(base) - 1)  # never at an edge: the parser strips surrounding whitespace
    kind = draw(st.sampled_from(["forbidden", "control", "confusable", "odata", "structure"]))
    if kind == "forbidden":
        return _insert(base, draw(interior), draw(st.sampled_from(FORBIDDEN_IN_EMAIL)))
    if kind == "control":
        return _insert(base, draw(interior), draw(st.sampled_from(CONTROL)))
    if kind == "confusable":
        position = draw(st.sampled_from([i for i, ch in enumerate(base) if ch.isalpha()]))
        return base[:position] + draw(st.sampled_from(CONFUSABLES)) + base[position + 1 :]
    if kind == "odata":
        payload = draw(st.sampled_from(ODATA))
        return draw(st.sampled_from([base + payload, payload + base, f"{local}{payload}@{domain}"]))
    return draw(
        st.sampled_from(
            [
                local + domain,
                f"{local}@@{domain}",
                f"@{domain}",
                f"{local}@",
                f"{'a' * 65}@{domain}",
                f".{local}@{domain}",
                f"{local}.@{domain}",
                f"a..b@{domain}",
                f"-{local}@{domain}",
                f"{local}@{domain.split('.')[0]}",
                f"{local}@{domain}.",
                f"{local}@sub_domain.{domain}",
                f"{local}@-{domain}",
                f"{local}@{'a' * 64}.com",
                f"{local}@{domain}:443",
                f"{local}@[192.0.2.1]",
                f'"{local}"@{domain}',
                "",
                " ",
            ]
        )
    )


REDIRECT_HOSTS = ["partners.contoso.com", "myapps.microsoft.com"]


@st.composite
def hostile_redirects(draw: st.DrawFn) -> str:
    """A redirect URL that no rule of the sample's allowlist accepts ("" is not one: it means the default)."""
    host = draw(st.sampled_from(REDIRECT_HOSTS))
    other = draw(st.from_regex(r"\A[a-z][a-z0-9-]{0,20}\.(example|test|evil)\Z"))
    return draw(
        st.sampled_from(
            [
                "javascript:alert(document.domain)",
                f"javascript://{host}/%0aalert(1)",
                "data:text/html,<script>alert(1)</script>",
                f"http://{host}/welcome",
                f"ftp://{host}/",
                f"//{other}/",
                f"https:{other}",
                f"https://{host}@{other}/",
                f"https://user:pass@{host}/",
                f"https://{host}%40{other}/",
                f"https://{host}\\@{other}/",
                f"https:\\\\{host}\\",
                f"https://{host}.{other}/",
                f"https://{other}/{host}",
                f"https://{other}/?next=https://{host}/",
                f"https://{host}:8443/",
                f"https://{host}:99999/",
                f"https://{host}:-1/",
                f" https://{host}/",
                f"https://{host}/\n",
                f"https://{host}/\t/x",
                "https://" + host.replace("o", "\u043e", 1) + "/",
                "https://xn--prtners-3ya.contoso.com/",
                "https://" + host.replace(".", "\u3002", 1) + "/",
                "https://" + host.replace(".", "\uff0e", 1) + "/",
                f"https://{host}\u2100evil.example/",
                f"https://[::1]/{host}",
                "https://",
                f"https://{other}",
            ]
        )
    )


def out_of_range_dates() -> st.SearchStrategy[str]:
    """Syntactically valid dates no policy accepts: today or earlier, or beyond every partner's maximum."""
    past = st.dates(min_value=date(1, 1, 1), max_value=NOW.date()).map(date.isoformat)
    # A partner's maxEngagementDays is at most 3650.
    far = st.dates(min_value=(NOW + timedelta(days=3652)).date(), max_value=date.max).map(date.isoformat)
    past_times = st.datetimes(max_value=NOW.replace(tzinfo=None) - timedelta(seconds=1)).map(
        lambda d: d.replace(tzinfo=UTC).isoformat()
    )
    return past | far | past_times


NOT_DATES = st.sampled_from(
    [
        "",
        "tomorrow",
        "2027-02-30",
        "2027-13-01",
        "2027-00-10",
        "0000-01-01",
        "10000-01-01",
        "2027-1-1",
        "2027/01/01",
        "01/02/2027",
        "2027-01-01T25:00:00",
        "2027-01-01T00:00:00+25:00",
        "2027-01-01T00:00:60Z",
        "P30D",
        "-1",
        "NaN",
        "2027-01-01' or 1 eq 1",
        "2027-01-01\x00",
    ]
)


def wrong_types(field: str) -> st.SearchStrategy[Any]:
    """Values of a JSON type ``field`` never accepts (lax coercions excluded: "yes" is a bool to pydantic)."""
    containers = st.lists(json_values(4), max_size=3) | st.dictionaries(st.text(max_size=5), json_values(4), max_size=3)
    if field == "sendInvitation":
        return containers | st.floats().filter(lambda f: f not in (0.0, 1.0)) | st.just("maybe")
    if field in ("endDate", "notBefore"):
        return containers | st.booleans()
    if field == "schemaVersion":
        return containers | st.booleans() | st.text(max_size=5) | st.integers().filter(lambda n: n != 1)
    return containers | st.booleans() | st.integers() | st.floats()


def overlong(limit: int) -> st.SearchStrategy[str]:
    return st.integers(limit + 1, limit + 300).map(lambda n: "x" * n)


# ---------------------------------------------------------------------------------------- messages


def _encode(document: Any) -> bytes:
    return json.dumps(document).encode("utf-8")


@st.composite
def broken_bytes(draw: st.DrawFn) -> tuple[str, bytes, str | None]:
    """Below the ticket: not UTF-8, not JSON, not an object, over the size limit."""
    base = _encode(draw(st.sampled_from(BASES)))
    layer = draw(
        st.sampled_from(["not-utf8", "utf16", "truncated", "not-json", "not-object", "oversize", "duplicate-key"])
    )
    if layer == "duplicate-key":
        # A name given twice: last-wins would read another ticket than a first-wins reader (the ticketing
        # system's audit, a proxy) saw. Repeated as it was, with another value, or with another kind.
        document = json.loads(base)
        name = draw(st.sampled_from(sorted(document)))
        value = draw(st.sampled_from([document[name], "offboard", None, 0]) | json_values(2))
        tail = f", {json.dumps(name)}: {json.dumps(value)}}}"
        return layer, base[:-1] + tail.encode(), "duplicate-key"
    if layer == "not-utf8":
        bad = draw(st.sampled_from([b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xe2\x82", b"\x80", b"\xf8\x88\x80\x80"]))
        body = _insert(base.decode("latin-1"), draw(st.integers(0, len(base))), bad.decode("latin-1"))
        return layer, body.encode("latin-1"), "malformed-json"
    if layer == "utf16":
        encoding = draw(st.sampled_from(["utf-16", "utf-16-le", "utf-32", "utf-8-sig"]))
        return layer, base.decode().encode(encoding), "malformed-json"
    if layer == "truncated":
        return layer, base[: draw(st.integers(0, len(base) - 1))], "malformed-json"
    if layer == "not-json":
        junk = draw(
            st.sampled_from(
                [
                    b"{'schemaVersion': 1}",
                    b'{"schemaVersion": 1,}',
                    b"// comment\n{}",
                    b"<ticket/>",
                    b"schemaVersion=1&kind=onboard",
                    b"\x00",
                    b"{}{}",
                    b'{"a": undefined}',
                    b"[1, 2",
                    b'"unterminated',
                    b"{" * 1 + b'"a":' * 2000,
                ]
            )
        )
        return layer, junk, "malformed-json"
    if layer == "not-object":
        document = draw(json_values().map(lambda v: list(v.values()) if isinstance(v, dict) else v))
        return layer, json.dumps(document).encode(), "not-an-object"
    pad = MAX_TICKET_BYTES - len(base) + draw(st.integers(1, 2000))
    return layer, _encode({**json.loads(base), "message": draw(st.sampled_from("a\u00e9'")) * pad}), "oversize"


@st.composite
def mutated_tickets(draw: st.DrawFn) -> tuple[str, bytes, str | None]:
    """A near-valid ticket with one field made invalid. Returns (label, body, expected code or None)."""
    ticket = dict(draw(st.sampled_from(BASES)))
    kind = ticket["kind"]
    choice = draw(
        st.sampled_from(
            ["schemaVersion", "kind", "drop", "extra", "wrong-type", "nested", "email", "ticketId", "lengths"]
            + (["partner", "sponsor", "redirectUrl", "endDate", "notBefore"] if kind == "onboard" else [])
            + (["endDate"] if kind == "extend" else [])
            + (["reset-target"] if kind == "reset-redemption" else [])
        )
    )
    expected: str | None = None
    if choice == "schemaVersion":
        if draw(st.booleans()):
            del ticket["schemaVersion"]
        else:
            ticket["schemaVersion"] = draw(
                st.sampled_from([0, 2, -1, 1.5, "1", "v1", True, False, None, [1], {"v": 1}, 10**30])
                | json_values(4).filter(lambda v: v != 1 or isinstance(v, bool))
            )
        expected = "unsupported-schema-version"
    elif choice == "kind":
        if draw(st.booleans()):
            del ticket["kind"]
        else:
            ticket["kind"] = draw(
                st.sampled_from(["Onboard", "ONBOARD", "onboard ", "on-board", "delete", "", "reset_redemption"])
                | json_values(4).filter(lambda v: v not in KINDS)
            )
        expected = "unknown-kind"
    elif choice == "drop":
        del ticket[draw(st.sampled_from([k for k in REQUIRED[kind] if k not in ("schemaVersion", "kind")]))]
    elif choice == "extra":
        name = draw(st.text(min_size=1, max_size=20).filter(lambda k: k not in KNOWN_FIELDS))
        ticket[name] = draw(json_values(4))
    elif choice == "wrong-type":
        field = draw(st.sampled_from([k for k in ticket if k not in ("schemaVersion", "kind")]))
        ticket[field] = draw(wrong_types(field))
    elif choice == "nested":
        field = draw(st.sampled_from([k for k in ticket if k not in ("schemaVersion", "kind")]))
        ticket[field] = NESTED
        body = _encode_lenient(ticket).replace(json.dumps(NESTED).encode(), draw(deeply_nested()))
        return f"{kind}/nested", body, None
    elif choice == "email":
        ticket["email"] = draw(hostile_emails(ticket["email"]))
    elif choice == "ticketId":
        ticket["ticketId"] = draw(
            st.sampled_from(["", " ", "-RITM1", "RITM 1", "RITM'1", "RITM#1", "RITM%271", "RITM/1", "RITM\\1"])
            | st.just("x" * 129)
            | st.text(min_size=1, max_size=10).filter(lambda t: not t.isascii() or not t.isalnum())
        )
    elif choice == "lengths":
        limits = {"source": 64, "requestedBy": 256, "displayName": 256, "message": 1000, "reason": 500}
        field = draw(st.sampled_from([f for f in limits if kind == "onboard" or f in ("source", "requestedBy")]))
        if kind == "offboard" and draw(st.booleans()):
            field = "reason"
        ticket[field] = draw(overlong(limits[field]))
        if field == "displayName" and draw(st.booleans()):
            ticket[field] = ""
    elif choice == "partner":
        ticket["partner"] = draw(
            st.sampled_from(["Fabrikam", "fabrikam ", "fabrikam' or 1 eq 1", "f\u0430brikam", "", "-x", "a" * 64])
            | st.from_regex(r"\A[a-z0-9][a-z0-9-]{0,62}\Z").filter(
                lambda p: p not in ("fabrikam", "northwind", "woodgrove", "adatum")
            )
        )
    elif choice == "sponsor":
        ticket["sponsor"] = draw(hostile_emails(SPONSOR) | st.sampled_from(["", "not-a-guid", "0" * 36]))
    elif choice == "redirectUrl":
        ticket["redirectUrl"] = draw(hostile_redirects())
    elif choice == "endDate":
        ticket["endDate"] = draw(NOT_DATES | out_of_range_dates())
    elif choice == "notBefore":
        # Either not a date-time, or not before the end date (a future one before it would be a valid hold).
        end = datetime.fromisoformat(ticket["endDate"]).replace(tzinfo=UTC) + timedelta(days=1)
        late = st.datetimes(min_value=end.replace(tzinfo=None), max_value=datetime(9999, 12, 30)).map(
            lambda d: d.replace(tzinfo=UTC).isoformat()
        )
        ticket["notBefore"] = draw(NOT_DATES.filter(bool) | late)
    elif choice == "reset-target":
        target = draw(st.sampled_from(["none", "two", "domain", "newEmail"]))
        if target == "none":
            del ticket["email"]
        elif target == "two":
            ticket["objectId"] = "00000000-0000-4000-8000-000000000001"
        elif target == "domain":
            del ticket["email"]
            ticket["domain"] = draw(
                st.sampled_from(["", "gmail.com", "fabrikam.com' or 1 eq 1", "f\u0430brikam.com", "*", "."])
                | st.text(max_size=30).filter(lambda d: d.lower() not in PARTNER_DOMAINS)
            )
        else:
            ticket["newEmail"] = draw(hostile_emails("new.one@fabrikam.com"))
    return f"{kind}/{choice}", _encode_lenient(ticket), expected


def _encode_lenient(document: dict[str, Any]) -> bytes:
    """json.dumps, except that lone surrogates (which UTF-8 cannot carry) are sent \\u-escaped."""
    return json.dumps(document, ensure_ascii=True).encode("ascii")


def hostile_tickets() -> st.SearchStrategy[tuple[str, bytes, str | None]]:
    return broken_bytes() | mutated_tickets()


# ------------------------------------------------------------------------------------------ fixtures


async def armed_services() -> tuple[Services, FakeDirectory]:
    """Fakes that would accept every base ticket: a member sponsor, a managed guest, packages, a lookup."""
    directory = FakeDirectory()
    directory.add_member(SPONSOR)
    guest = directory.add_guest(GUEST_EMAIL)
    packages = FakeAccessPackages()
    for partner in DESIRED.partners.values():
        if partner.access_package:
            packages.add_package(partner.access_package.catalog, partner.access_package.name)
    clock = FixedClock(NOW)
    # The settings and the desired state are read once, not per example.
    services = memory_services(
        directory,
        clock,
        settings=SETTINGS,
        desired=DESIRED,
        access_packages=packages,
        sweep_runs=MemorySweepRuns(),
        provider_lookup=FakeLookup(),
    )
    record = GuestRecord(guest.id, GUEST_EMAIL, "fabrikam", GuestState.ACTIVE, end_date=NOW + timedelta(days=30))
    await services.guests.save(record)
    return services, directory


def service_bus_message(body: bytes) -> sb.ServiceBusMessage:
    return sb.ServiceBusMessage(
        body=body,
        message_id=MESSAGE_ID,
        delivery_count=1,
        application_properties={"kind": "ticket"},
        user_properties={},
    )


def assert_nothing_written(services: Services, directory: FakeDirectory) -> None:
    assert directory.invitations == [], "an invitation was sent for bad input"
    assert directory.writes == [], f"a user was written for bad input: {directory.writes}"
    assert services.access_packages.requests == {}, "an access package request was made for bad input"


# --------------------------------------------------------------------------------------------- tests


async def test_the_unmutated_bases_are_accepted_so_a_harmless_mutation_would_show():
    """Control: each base ticket, unchanged, is accepted and writes through the same fakes."""
    for base in BASES:
        services, directory = await armed_services()
        with use_services(services):
            await function_app.onboarding_worker(service_bus_message(_encode(base)))
        assert [r async for r in services.rejections.all()] == [], base
        wrote = directory.invitations or directory.writes or services.access_packages.requests
        assert wrote or base["kind"] == "extend", base
        item = await services.work_items.get(f"ticket:{base['ticketId']}")
        assert item is not None and item.status is WorkStatus.DONE, (base, item)


@settings(FUZZ, max_examples=examples(1500))
@given(case=hostile_tickets())
async def test_a_hostile_ticket_is_rejected_once_with_a_reason_settled_and_never_written(case):
    label, body, expected = case
    services, directory = await armed_services()
    guests_before = [g async for g in services.guests.all()]

    # First delivery, through the Functions trigger: returning normally is how the host completes it.
    with use_services(services):
        await function_app.onboarding_worker(service_bus_message(body))

    [rejection] = [r async for r in services.rejections.all()]
    event(f"{label} -> {rejection.code}")  # --hypothesis-show-statistics shows what the run covered
    assert rejection.code in DOCUMENTED_CODES, (label, rejection.code)
    if expected is not None:
        assert rejection.code == expected, (label, rejection.code, rejection.message)
    assert rejection.message, label
    item = await services.work_items.get(rejection.key)
    assert item is not None and item.status is WorkStatus.REJECTED and item.result["code"] == rejection.code
    audited = [e async for e in services.audit.entries() if e.key == rejection.key]
    assert [e.action.endswith(".rejected") for e in audited] == [True], (label, audited)
    assert_nothing_written(services, directory)
    assert [g async for g in services.guests.all()] == guests_before
    services.clock.advance(timedelta(days=1))
    assert await services.transport.receive(services.settings.queue_name(QUEUE)) == [], "a copy was scheduled"

    # Redelivered through the local worker's path: settled as a duplicate, still one row, still no write.
    queue = services.settings.queue_name(QUEUE)
    await services.transport.send(queue, [OutboundMessage(body=body, message_id=MESSAGE_ID, key=None, kind="ticket")])
    [received] = await services.transport.receive(queue)
    outcome = await process(queue, received, handle_ticket, services)
    assert outcome.verdict is Verdict.DUPLICATE, (label, outcome)
    services.clock.advance(timedelta(days=1))
    assert await services.transport.depth(queue) == (0, 0), "left on the queue or dead-lettered"
    assert len([r async for r in services.rejections.all()]) == 1
    assert_nothing_written(services, directory)


@settings(FUZZ, max_examples=examples(150))
@given(
    first=st.sampled_from(BASES),
    second=st.sampled_from(BASES),
    spacing=st.sampled_from([None, 0, 2]),
    change=st.sampled_from(["none", "kind", "field"]),
)
async def test_a_ticket_id_reused_for_another_ticket_is_a_conflict_and_the_same_ticket_a_duplicate(
    first, second, spacing, change
):
    """Two tickets under one ticketId: the same parsed ticket (however the JSON is spaced) is a duplicate; a
    ticket of another kind or with another field is rejected as ticket-id-conflict, recorded once, and the
    second writes nothing and leaves the first ticket's work item as it was."""
    services, directory = await armed_services()
    with use_services(services):
        await function_app.onboarding_worker(service_bus_message(_encode(first)))
    key = f"ticket:{first['ticketId']}"
    before = await services.work_items.get(key)
    invitations, writes = list(directory.invitations), list(directory.writes)
    requests = {k: list(v) for k, v in services.access_packages.requests.items()}

    if change == "none":
        reused = dict(first)
    elif change == "kind":
        other = second if second["kind"] != first["kind"] else next(b for b in BASES if b["kind"] != first["kind"])
        reused = {**other, "ticketId": first["ticketId"]}
    else:
        field = "requestedBy"
        reused = {**first, field: "someone.else@contoso.com"}
    body = json.dumps(reused, indent=spacing).encode()
    with use_services(services):
        await function_app.onboarding_worker(service_bus_message(body))

    codes = [r.code async for r in services.rejections.all() if r.key.startswith("ticket-conflict:")]
    after = await services.work_items.get(key)
    assert after is not None and before is not None and after.status is before.status
    event(f"{first['kind']} then {reused['kind']} ({change}) -> {codes}")
    if change == "none":
        assert codes == []
    else:
        assert codes == ["ticket-id-conflict"]
        assert directory.invitations == invitations and directory.writes == writes
        assert {k: list(v) for k, v in services.access_packages.requests.items()} == requests
