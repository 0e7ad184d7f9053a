"""Every onboarding rule and bad-input class through the local stack: Storage queues and Table Storage on
Azurite, Graph on tenantsim, the product's worker and handler.

Each test puts its ticket on the `onboarding` queue, drains it with ``lifecycle.ledger.worker.drain`` and checks
what the issue names: a rejection row with its machine-readable reason, the message settled (nothing left
on the queue or dead-lettered), no Graph write for a rejected ticket (tenantsim's request log), and
exactly one guest, one live assignment and one ledger row for the others (tenantsim's state, not only the
product's own). One stack and one set of services serve the module; tickets and addresses are unique.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import yaml

from app.bootstrap import bootstrap
from config.desired_state import parse_desired_state
from config.settings import SAMPLE_DESIRED_STATE, load_settings
from graph.client import build_graph_client
from graph.credentials import TenantSimCredential
from graph.entitlement import RESOLVE_TTL_SECONDS, GraphAccessPackages
from graph.permissions import GRANTED
from lifecycle import tickets
from lifecycle.ledger import operations
from lifecycle.ledger.operations import Selector
from lifecycle.ledger.outcomes import Outcome, Verdict
from lifecycle.ledger.work import LEASE_SECONDS
from lifecycle.ledger.worker import DrainReport, drain
from lifecycle.models import OutboundMessage, ReceivedMessage, WorkStatus
from lifecycle.onboarding.handler import handle_ticket
from lifecycle.onboarding.submission import ticket_message
from lifecycle.services import Services
from tenantsim.client import TenantSimAdmin
from tenantsim.tokens import DEFAULT_APP_ID

pytestmark = pytest.mark.stack

QUEUE = "onboarding"
SPONSOR = "megan.bowen@contoso.com"
EM = "/v1.0/identityGovernance/entitlementManagement"


class SteppedClock:
    """Wall-clock time plus an offset a test can move forward (to let a dead attempt's lease lapse)."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset


@pytest.fixture(scope="module")
def admin(local_stack) -> Iterator[TenantSimAdmin]:
    with TenantSimAdmin(local_stack.tenantsim_url, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def env(local_stack) -> dict[str, str]:
    prefix = "rules" + uuid.uuid4().hex[:8]
    return {**local_stack.env, "LIFECYCLE_TABLE_PREFIX": prefix, "LIFECYCLE_QUEUE_PREFIX": prefix}


async def _services(env: dict[str, str], clock: Any, roles: frozenset[str] = GRANTED) -> Services:
    credential = TenantSimCredential(env["TENANTSIM_URL"], roles=roles)
    return await bootstrap(load_settings(env), credential=credential, clock=clock)


@pytest.fixture(scope="module")
async def services(env) -> AsyncIterator[Services]:
    built = await _services(env, SteppedClock())
    try:
        yield built
    finally:
        await built.close()


@pytest.fixture(autouse=True)
def fresh_log(admin) -> Iterator[None]:
    """Each test reads its own slice of tenantsim's request log and leaves no fault behind."""
    admin.clear_faults()
    admin.reset_counters()
    yield
    admin.clear_faults()


def ticket(**fields: Any) -> dict[str, Any]:
    n = uuid.uuid4().hex[:10]
    document = {
        "schemaVersion": 1,
        "kind": "onboard",
        "ticketId": f"RULE-{n}",
        "email": f"rule.{n}@fabrikam.com",
        "displayName": f"Rule {n}",
        "partner": "fabrikam",
        "sponsor": SPONSOR,
        "endDate": (datetime.now(UTC) + timedelta(days=60)).date().isoformat(),
        "redirectUrl": "https://partners.contoso.com/fabrikam",
        "sendInvitation": False,
    }
    document.update(fields)
    return {k: v for k, v in document.items() if v is not None}


async def submit(services: Services, *bodies: dict[str, Any] | bytes) -> None:
    messages = [
        ticket_message(body)
        if isinstance(body, dict)
        else OutboundMessage(body=body, message_id=f"raw-{uuid.uuid4().hex}", key="", kind="ticket")
        for body in bodies
    ]
    await services.transport.send(services.settings.queue_name(QUEUE), messages)


async def run(
    services: Services, *bodies: dict[str, Any] | bytes, wait: float = 0.0, handler=handle_ticket
) -> DrainReport:
    """Submit ``bodies`` and drain the queue (waiting up to ``wait`` seconds for scheduled retries)."""
    await submit(services, *bodies)
    return await drain(services, QUEUE, handler, idle_rounds=1, wait_for_delayed_seconds=wait)


async def settled(services: Services) -> bool:
    """Nothing waiting on the queue (visible or scheduled) and nothing dead-lettered."""
    return await services.transport.depth(services.settings.queue_name(QUEUE)) == (0, 0)


async def rejections(services: Services, key: str) -> list:
    return [r async for r in services.rejections.all() if r.key == key]


def graph_writes(admin: TenantSimAdmin) -> list[dict[str, Any]]:
    """Successful non-GET Graph requests since the test began."""
    return [r for r in admin.requests() if r["method"] != "GET" and 200 <= r["status"] < 300]


def guests_with_mail(admin: TenantSimAdmin, email: str) -> list[dict[str, Any]]:
    return [u for u in admin.snapshot()["users"] if (u.get("mail") or "").lower() == email.lower()]


def live_assignments(admin: TenantSimAdmin, object_id: str) -> list[dict[str, Any]]:
    response = httpx.get(
        f"{admin.base_url}{EM}/assignments",
        params={"$filter": f"target/objectId eq '{object_id}'"},
        headers=admin.auth_headers(["EntitlementManagement.Read.All"]),
        timeout=30,
    )
    response.raise_for_status()
    return [a for a in response.json()["value"] if a["state"] in {"delivering", "delivered"}]


async def ledger_rows(services: Services, email: str) -> list:
    return [r async for r in services.guests.all() if r.email.lower() == email.lower()]


async def assert_one_guest(services: Services, admin: TenantSimAdmin, email: str) -> str:
    """Exactly one guest object, one live assignment of it and one ledger row for ``email``."""
    [guest] = guests_with_mail(admin, email)
    assert guest["userType"] == "Guest"
    assert len(live_assignments(admin, guest["id"])) == 1
    [row] = await ledger_rows(services, email)
    assert row.object_id == guest["id"]
    return guest["id"]


async def assert_rejected(
    services: Services, admin: TenantSimAdmin, report: DrainReport, key: str, code: str
) -> dict[str, Any]:
    """One REJECTED outcome with ``code``, one rejection row with it, the message settled, no Graph write."""
    assert [(o.verdict, o.code) for o in report.outcomes] == [(Verdict.REJECTED, code)], report.outcomes
    [row] = await rejections(services, key)
    assert row.code == code and row.raw
    item = await services.work_items.get(key)
    assert item is not None and item.status is WorkStatus.REJECTED and item.result["code"] == code
    assert await settled(services)
    assert graph_writes(admin) == []
    return row.details


def with_desired(services: Services, change) -> Services:
    """The same services under a desired state that ``change`` edited (a dict of the sample file)."""
    document = yaml.safe_load(SAMPLE_DESIRED_STATE.read_text(encoding="utf-8"))
    change(document)
    return dataclasses.replace(services, desired=parse_desired_state(document))


def _key(document: dict[str, Any]) -> str:
    return f"ticket:{document['ticketId']}"


# --- tenant policy -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"email": "ana.lopez@northwindtraders.com"}, "domain-not-partner"),
        ({"partner": "globex"}, "unknown-partner"),
        ({"redirectUrl": "https://partners.contoso.com.evil.example/"}, "redirect-not-allowed"),
        ({"endDate": (datetime.now(UTC) - timedelta(days=1)).date().isoformat()}, "end-date-past"),
        ({"endDate": (datetime.now(UTC) + timedelta(days=400)).date().isoformat()}, "end-date-too-far"),
    ],
    ids=["domain-not-partner", "unknown-partner", "redirect", "end-date-past", "end-date-too-far"],
)
async def test_a_ticket_against_tenant_policy_is_rejected_before_any_graph_call(services, admin, fields, code):
    """The policy rules refuse the ticket with their code; Graph is not even read."""
    document = ticket(**fields)
    report = await run(services, json.dumps(document).encode())
    details = await assert_rejected(services, admin, report, _key(document), code)
    assert details["violations"][0]["code"] == code
    assert admin.requests() == []


@pytest.mark.parametrize(
    ("mode", "domains", "code"),
    [("allowlist", ["northwindtraders.com"], "domain-not-allowed"), ("blocklist", ["fabrikam.com"], "domain-blocked")],
)
async def test_the_invitation_domain_list_wins_over_a_partner_that_lists_the_domain(
    services, admin, mode, domains, code
):
    """Partner and cross-tenant settings allow fabrikam.com, the invitation list does not: refused."""

    def restrict(document: dict[str, Any]) -> None:
        document["invitations"]["domains"] = {"mode": mode, "domains": domains}

    document = ticket()
    report = await run(with_desired(services, restrict), ticket_message(document).body)
    await assert_rejected(services, admin, report, _key(document), code)


async def test_a_partner_blocked_inbound_in_cross_tenant_access_is_refused(services, admin):
    """A partner whose desired inbound B2B collaboration is blocked gets no invitations."""

    def block(document: dict[str, Any]) -> None:
        inbound = document["partners"]["fabrikam"]["crossTenantAccess"]["b2bCollaborationInbound"]
        inbound["usersAndGroups"] = {"accessType": "blocked", "targets": [{"target": "AllUsers", "targetType": "user"}]}

    document = ticket()
    report = await run(with_desired(services, block), ticket_message(document).body)
    await assert_rejected(services, admin, report, _key(document), "partner-inbound-blocked")


async def test_a_sponsor_who_does_not_exist_is_refused_after_a_read(services, admin):
    """The sponsor lookup is a Graph read; the refusal writes nothing to Graph."""
    document = ticket(sponsor=f"nobody.{uuid.uuid4().hex[:6]}@contoso.com")
    report = await run(services, ticket_message(document).body)
    await assert_rejected(services, admin, report, _key(document), "sponsor-not-found")


async def test_a_sponsor_who_is_a_guest_is_refused(services, admin):
    """Sponsors are employees: a guest's object id as sponsor is refused."""
    guest = next(u for u in admin.snapshot()["users"] if u["userType"] == "Guest")
    admin.reset_counters()
    document = ticket(sponsor=guest["id"])
    report = await run(services, ticket_message(document).body)
    await assert_rejected(services, admin, report, _key(document), "sponsor-not-member")


async def test_an_address_of_a_local_member_is_a_conflict_never_invited(services, admin):
    """A member of the tenant already owns the address: rejected, and no guest is created for it."""
    member = next(u for u in admin.snapshot()["users"] if u["userType"] == "Member" and u["mail"] != SPONSOR)
    address = f"member.{uuid.uuid4().hex[:6]}@fabrikam.com"
    admin.patch_user(member["id"], mail=address)
    try:
        admin.reset_counters()
        document = ticket(email=address)
        report = await run(services, ticket_message(document).body)
        await assert_rejected(services, admin, report, _key(document), "email-belongs-to-member")
        assert [u["id"] for u in guests_with_mail(admin, address)] == [member["id"]]
    finally:
        admin.patch_user(member["id"], mail=member["mail"])


async def test_a_ticket_naming_a_package_the_catalog_lacks_is_rejected_before_the_invitation(services, admin):
    """The package is resolved (Graph reads) before anyone is invited: no guest for a ticket that cannot finish."""
    document = ticket(accessPackage=f"No such package {uuid.uuid4().hex[:6]}")
    report = await run(services, ticket_message(document).body)
    details = await assert_rejected(services, admin, report, _key(document), "access-package-not-found")
    assert details["package"] == document["accessPackage"]
    assert guests_with_mail(admin, document["email"]) == [] and admin.counters()["invitations"] == 0


# --- invitation, reuse and access ----------------------------------------------------------------------


async def test_a_valid_ticket_invites_one_guest_with_its_sponsor_and_assigns_the_package(services, admin):
    """The happy path on the stack: one invitation with the sponsor, one assignment until the end date."""
    document = ticket()
    report = await run(services, ticket_message(document).body)
    assert [o.verdict for o in report.outcomes] == [Verdict.DONE]
    guest_id = await assert_one_guest(services, admin, document["email"])
    megan = next(u for u in admin.snapshot()["users"] if u["userPrincipalName"] == SPONSOR)
    assert (await services.guests.get(guest_id)).sponsor == megan["id"]
    [assignment] = live_assignments(admin, guest_id)
    assert assignment["schedule"]["expiration"]["endDateTime"].startswith(
        (datetime.fromisoformat(document["endDate"]) + timedelta(days=1)).date().isoformat()
    )
    assert admin.counters()["invitations"] == 1 and await settled(services)


async def test_an_address_that_already_has_a_guest_reuses_it_without_inviting(services, admin):
    """An existing guest is reused: no invitation, still one object, one assignment and one ledger row."""
    existing = next(
        u
        for u in admin.snapshot()["users"]
        if u["userType"] == "Guest" and (u.get("mail") or "").endswith("@fabrikam.com") and u["accountEnabled"]
    )
    admin.reset_counters()
    document = ticket(email=existing["mail"])
    report = await run(services, ticket_message(document).body)
    assert [(o.verdict, o.detail.get("reused")) for o in report.outcomes] == [(Verdict.DONE, True)]
    assert await assert_one_guest(services, admin, existing["mail"]) == existing["id"]
    assert admin.counters()["invitations"] == 0


def sponsors_in_tenant(admin: TenantSimAdmin, object_id: str) -> list[str]:
    """The guest's sponsors as tenantsim serves them on GET /users/{id}/sponsors."""
    response = httpx.get(
        f"{admin.base_url}/v1.0/users/{object_id}/sponsors",
        params={"$select": "id"},
        headers=admin.auth_headers(["User.Read.All"]),
        timeout=30,
    )
    response.raise_for_status()
    return [s["id"] for s in response.json()["value"]]


def sponsor_writes(admin: TenantSimAdmin, object_id: str) -> list[dict[str, Any]]:
    return [r for r in admin.requests() if r["method"] == "POST" and r["path"].endswith(f"{object_id}/sponsors/$ref")]


def unsponsored_fabrikam_guest(admin: TenantSimAdmin, sponsor_id: str) -> dict[str, Any]:
    snapshot = admin.snapshot()
    return next(
        u
        for u in reversed(snapshot["users"])
        if u["userType"] == "Guest"
        and (u.get("mail") or "").endswith("@fabrikam.com")
        and u["accountEnabled"]
        and sponsor_id not in snapshot["sponsors"].get(u["id"], [])
    )


def megan_id(admin: TenantSimAdmin) -> str:
    return next(u["id"] for u in admin.snapshot()["users"] if u["userPrincipalName"] == SPONSOR)


async def test_a_new_guest_ends_with_the_tickets_sponsor_in_the_tenant(services, admin):
    """The invitation's invitedUserSponsors makes the ticket's sponsor the new guest's sponsor, with no
    separate sponsor write."""
    document = ticket()
    report = await run(services, document)
    assert [o.verdict for o in report.outcomes] == [Verdict.DONE]
    guest_id = await assert_one_guest(services, admin, document["email"])
    assert sponsors_in_tenant(admin, guest_id) == [megan_id(admin)]
    assert sponsor_writes(admin, guest_id) == []


async def test_a_reused_guest_ends_with_the_tickets_sponsor_when_the_app_may_add_sponsors(env, services, admin):
    """With User.ReadWrite.All granted on top of the product's list, a reused guest gets the ticket's sponsor
    added (audited); a later ticket for it finds the sponsor and adds nothing."""
    megan = megan_id(admin)
    existing = unsponsored_fabrikam_guest(admin, megan)
    before = sponsors_in_tenant(admin, existing["id"])
    sponsoring = await _services(env, services.clock, GRANTED | {"User.ReadWrite.All"})
    try:
        first = await run(sponsoring, ticket(email=existing["mail"]))
        second = await run(sponsoring, ticket(email=existing["mail"]))
    finally:
        await sponsoring.close()
    assert [(o.verdict, o.detail.get("reused"), o.detail.get("sponsor")) for o in first.outcomes] == [
        (Verdict.DONE, True, "added")
    ]
    assert [(o.verdict, o.detail.get("sponsor")) for o in second.outcomes] == [(Verdict.DONE, "already-sponsor")]
    assert sponsors_in_tenant(admin, existing["id"]) == [*before, megan]
    assert len([r for r in sponsor_writes(admin, existing["id"]) if r["status"] == 204]) == 1
    audited = [e async for e in services.audit.entries() if e.action == "guest.sponsor-added"]
    assert [(e.target, e.details["sponsor"]) for e in audited if e.target == existing["id"]] == [
        (existing["id"], megan)
    ]
    assert admin.counters()["invitations"] == 0 and await settled(services)


async def test_a_reused_guest_is_onboarded_without_the_sponsor_when_the_app_may_not_add_sponsors(services, admin):
    """With exactly the product's grant the sponsor add is refused (403): the guest still gets its access and
    the work item names the missing permission; the tenant's sponsors are unchanged."""
    megan = megan_id(admin)
    existing = unsponsored_fabrikam_guest(admin, megan)
    before = sponsors_in_tenant(admin, existing["id"])
    document = ticket(email=existing["mail"])
    report = await run(services, document)
    [outcome] = report.outcomes
    assert (outcome.verdict, outcome.detail.get("sponsor")) == (Verdict.DONE, "not-added-permission")
    assert "User.ReadWrite.All" in outcome.detail["sponsorReason"]
    assert await assert_one_guest(services, admin, existing["mail"]) == existing["id"]
    assert sponsors_in_tenant(admin, existing["id"]) == before
    assert [r["status"] for r in sponsor_writes(admin, existing["id"])] == [403]


# --- bad input -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b'{"schemaVersion": 1, "kind": "onboard", ', "malformed-json"),
        (json.dumps(ticket(schemaVersion=2)).encode(), "unsupported-schema-version"),
        (json.dumps(ticket(kind="promote")).encode(), "unknown-kind"),
        (json.dumps(ticket(displayName=None, sponsor=None)).encode(), "invalid-ticket"),
        (json.dumps(ticket(email="ana(lopez)@fabrikam.com")).encode(), "invalid-ticket"),
    ],
    ids=["malformed-json", "schema-version", "unknown-kind", "missing-fields", "email-syntax"],
)
async def test_bad_input_is_rejected_once_with_its_reason_and_never_reaches_graph(services, admin, body, code):
    """Each bad-input class: a rejection row with the code, the raw body kept, settled, no Graph call."""
    before = {r.key async for r in services.rejections.all()}
    report = await run(services, body)
    [outcome] = report.outcomes
    [row] = [r async for r in services.rejections.all() if r.key not in before]
    assert (outcome.verdict, outcome.code, row.code) == (Verdict.REJECTED, code, code)
    assert row.raw == body.decode("utf-8", "replace")
    assert await settled(services) and admin.requests() == []


async def test_missing_fields_are_named_in_the_rejection(services, admin):
    """The rejection says which fields are missing, field by field."""
    document = ticket(displayName=None, sponsor=None)
    report = await run(services, json.dumps(document).encode())
    details = await assert_rejected(services, admin, report, _key(document), "invalid-ticket")
    assert {e["field"] for e in details["errors"]} == {"displayName", "sponsor"}


async def test_an_oversize_ticket_is_rejected_without_being_parsed(services, admin, monkeypatch):
    """Over the size limit: rejected as oversize. Storage queues cap a message at 64 KiB, the same as the
    ticket limit, so the limit is lowered here to send an oversize ticket through a real queue."""
    monkeypatch.setattr(tickets, "MAX_TICKET_BYTES", 16 * 1024)
    document = ticket(message="x" * 1000, displayName="y" * 256, padding="z" * 20_000)
    report = await run(services, json.dumps(document).encode())
    [outcome] = report.outcomes
    assert outcome.key.startswith("message:")  # an oversize body is not parsed, not even for its ticket id
    await assert_rejected(services, admin, report, outcome.key, "oversize")


async def test_a_quote_in_an_email_never_reaches_a_graph_filter(services, admin):
    """An OData-hostile address is refused at parsing: no $filter is ever built from it."""
    document = ticket(email="o'brien@fabrikam.com' or userType eq 'Member")
    report = await run(services, json.dumps(document).encode())
    await assert_rejected(services, admin, report, _key(document), "invalid-ticket")
    assert admin.requests() == []


async def test_the_same_rejected_ticket_delivered_again_is_a_duplicate_with_one_rejection(services, admin):
    """A redelivered or replayed bad ticket changes nothing: one rejection row, the copy is a duplicate."""
    document = ticket(partner="globex")
    first = await run(services, ticket_message(document).body)
    again = await run(services, ticket_message(document).body)
    assert [o.verdict for o in first.outcomes + again.outcomes] == [Verdict.REJECTED, Verdict.DUPLICATE]
    assert len(await rejections(services, _key(document))) == 1 and await settled(services)


# --- duplicates, transient failures, replays and crashes ---------------------------------------------------


async def test_the_same_ticket_delivered_twice_invites_once(services, admin):
    """Two deliveries of one ticket (different message ids): one guest, one assignment, one ledger row."""
    document = ticket()
    first = await run(services, document)
    again = ticket_message(document)
    again = dataclasses.replace(again, message_id=again.message_id + "-again")
    await services.transport.send(services.settings.queue_name(QUEUE), [again])
    second = await drain(services, QUEUE, handle_ticket, idle_rounds=1)
    assert [o.verdict for o in first.outcomes + second.outcomes] == [Verdict.DONE, Verdict.DUPLICATE]
    await assert_one_guest(services, admin, document["email"])
    assert admin.counters()["invitations"] == 1 and await settled(services)


class Recording:
    """The product's handler, remembering each delivery's count and outcome."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, Outcome]] = []

    async def __call__(self, message: ReceivedMessage, services: Services) -> Outcome:
        outcome = await handle_ticket(message, services)
        self.seen.append((message.delivery_count, outcome))
        return outcome


def assignment_requests(admin: TenantSimAdmin) -> list[int]:
    """The status of every assignment request POSTed since the test began, in order."""
    return [
        r["status"] for r in admin.requests() if r["method"] == "POST" and r["path"].endswith("/assignmentRequests")
    ]


@pytest.mark.parametrize("unreplicated", ["notFound", "accept"])
async def test_an_assignment_refused_while_the_new_guest_replicates_is_retried_never_dead_lettered(
    services, admin, unreplicated
):
    """Right after the invitation the new guest is still replicating. Graph refuses the assignment request
    for it with a 404 (the default reading): the ticket schedules a copy of itself, doubling the pause, and
    ends done with exactly one request accepted. Where the request is accepted at once, no wait is needed.
    Nothing is dead-lettered either way."""
    admin.configure(replicationDelaySeconds=3, assignmentTargetUnreplicated=unreplicated)
    try:
        document = ticket()
        recording = Recording()
        await run(services, ticket_message(document).body, handler=recording, wait=60)
    finally:
        admin.configure(replicationDelaySeconds=0, assignmentTargetUnreplicated="notFound")
    verdicts = [(o.verdict, o.code) for _, o in recording.seen]
    assert verdicts[-1][0] is Verdict.DONE and Verdict.FAILED not in {v for v, _ in verdicts}
    statuses = assignment_requests(admin)
    assert [s for s in statuses if 200 <= s < 300] == [201]
    if unreplicated == "notFound":
        assert statuses[0] == 404 and statuses[-1] == 201
        assert (Verdict.RETRY, "target-replicating") in verdicts
        assert all(count == 1 for count, _ in recording.seen)  # copies, not redeliveries
    else:
        assert statuses == [201] and all(code != "target-replicating" for _, code in verdicts)
    await assert_one_guest(services, admin, document["email"])
    assert admin.counters()["invitations"] == 1 and await settled(services)


@pytest.mark.parametrize("status", ["429", "503"])
async def test_a_transient_graph_failure_is_retried_later_without_burning_the_delivery_count(services, admin, status):
    """A 429/503 on the invitation schedules a copy after Retry-After; the copy is a first delivery and
    finishes the ticket: one guest, one assignment, one ledger row."""
    admin.set_faults(rates={status: 1.0}, pathPattern="/invitations$", retryAfterSeconds=1)
    document = ticket()
    recording = Recording()
    await run(services, ticket_message(document).body, handler=recording)
    [(count, outcome)] = recording.seen
    assert (count, outcome.verdict, outcome.code) == (1, Verdict.RETRY, "transient")
    item = await services.work_items.get(_key(document))
    assert item is not None and item.last_error["status"] == int(status)

    admin.clear_faults()
    await drain(services, QUEUE, recording, idle_rounds=1, wait_for_delayed_seconds=30)
    assert [(c, o.verdict) for c, o in recording.seen[1:]] == [(1, Verdict.DONE)]
    await assert_one_guest(services, admin, document["email"])
    assert (await services.work_items.get(_key(document))).attempts == 2
    assert await settled(services)


async def test_a_dead_lettered_ticket_replayed_after_the_fix_is_processed_once(env, services, admin):
    """Without User.Invite.All the ticket dead-letters; after the grant a replay onboards it, and a second
    replay of the same ticket is a duplicate."""
    document = ticket()
    unprivileged = await _services(env, services.clock, GRANTED - {"User.Invite.All"})
    try:
        report = await run(unprivileged, document)
    finally:
        await unprivileged.close()
    assert [o.code for o in report.outcomes] == ["authorization_requestdenied"]
    queue = services.settings.queue_name(QUEUE)
    assert [m.key for m in await services.transport.peek_dead_letters(queue)] == [_key(document)]
    assert guests_with_mail(admin, document["email"]) == []

    selector = Selector(keys=(_key(document),))
    await operations.replay(services, QUEUE, selector, dry_run=False, operator="oncall@contoso.com")
    replayed = await drain(services, QUEUE, handle_ticket, idle_rounds=1, wait_for_delayed_seconds=30)
    assert [o.verdict for o in replayed.outcomes] == [Verdict.DONE]
    await assert_one_guest(services, admin, document["email"])

    await submit(services, document)  # the ticketing system sends it once more
    again = await drain(services, QUEUE, handle_ticket, idle_rounds=1)
    assert [o.verdict for o in again.outcomes] == [Verdict.DUPLICATE]
    assert admin.counters()["invitations"] == 1 and await settled(services)


@pytest.mark.parametrize("where", ["ledger", "audit", "delivery"])
async def test_a_crash_between_a_graph_call_and_the_state_write_ends_with_one_of_everything(
    services, admin, where, monkeypatch
):
    """The worker dies right after Graph acted: after the invitation (before the ledger row), after the
    ledger row (before its audit row), or after the assignment was delivered (before the work item says
    so). The broker redelivers once the lock lapses; the ticket ends done with one guest, one assignment,
    one ledger row, one invitation and one invited audit row."""
    document = ticket()
    key = _key(document)
    crashed = []

    def crash() -> None:
        crashed.append(where)
        # The broker redelivers only after the dead worker's lock (and so the attempt's lease) has run out.
        services.clock.offset += timedelta(seconds=LEASE_SECONDS + 1)
        raise RuntimeError("worker killed")

    if where == "ledger":
        real_save = services.guests.save

        async def save_guest(record):
            if not crashed and record.email == document["email"]:
                crash()
            return await real_save(record)

        monkeypatch.setattr(services.guests, "save", save_guest)
    elif where == "audit":
        real_record = services.audit.record

        async def record_audit(entry):
            if not crashed and entry.key == key:
                crash()
            return await real_record(entry)

        monkeypatch.setattr(services.audit, "record", record_audit)
    else:
        real_item_save = services.work_items.save

        async def save_item(item):
            if not crashed and item.key == key and item.result.get("assignment") == "delivered":
                crash()
            return await real_item_save(item)

        monkeypatch.setattr(services.work_items, "save", save_item)

    recording = Recording()
    report = await run(services, ticket_message(document).body, handler=recording)
    assert crashed == [where] and report.crashed == 1
    assert [(c, o.verdict) for c, o in recording.seen] == [(2, Verdict.DONE)]
    await assert_one_guest(services, admin, document["email"])
    assert admin.counters()["invitations"] == 1
    since = datetime.now(UTC) - timedelta(minutes=10)
    actions = [e.action async for e in services.audit.entries(since) if e.key == key]
    assert actions.count("guest.invited") == 1 and "guest.reused" not in actions
    assert await settled(services)


@pytest.mark.parametrize("processing", ["onRead", "background"])
async def test_an_attempt_that_dies_right_after_sending_the_assignment_request_leaves_one_assignment(
    services, admin, processing, monkeypatch
):
    """The worker dies right after Graph took the assignment request, before its id is checkpointed. Whether
    Graph moves that request on in the background or only when it is read, the attempt that takes over finds it
    by its justification and follows it: one request sent, one live assignment."""
    # The tenant's clock reads what the product's reads (earlier tests moved the product's forward), as in
    # production; only the dead attempt's lease lapse below moves the product's clock alone.
    admin.configure(assignmentRequestProcessing=processing, clockOffsetSeconds=services.clock.offset.total_seconds())
    try:
        document = ticket()
        sent: list[str] = []
        real_request = services.access_packages.request_assignment

        async def request_then_die(*args):
            answer = await real_request(*args)
            if not sent:
                sent.append(answer.id)
                services.clock.offset += timedelta(seconds=LEASE_SECONDS + 1)
                raise RuntimeError("worker killed")
            return answer

        monkeypatch.setattr(services.access_packages, "request_assignment", request_then_die)
        recording = Recording()
        report = await run(services, ticket_message(document).body, handler=recording)

        assert report.crashed == 1 and [(c, o.verdict) for c, o in recording.seen] == [(2, Verdict.DONE)]
        await assert_one_guest(services, admin, document["email"])
        assert assignment_requests(admin) == [201]
        item = await services.work_items.get(_key(document))
        assert item.result["assignmentRequestId"] == sent[0] and await settled(services)
    finally:
        admin.configure(assignmentRequestProcessing="onRead", clockOffsetSeconds=0)


async def test_an_access_package_resolution_is_reused_until_it_ages_out(local_stack, admin):
    """Resolving a package to its policy takes two reads; within the TTL the next ticket makes none."""
    now = [0.0]
    credential = TenantSimCredential(local_stack.tenantsim_url, roles=GRANTED)
    client = build_graph_client(credential=credential, base_url=f"{local_stack.tenantsim_url}/v1.0")
    packages = GraphAccessPackages(client, clock=lambda: now[0])
    first = await packages.resolve("Partner collaboration", "Fabrikam engineering")
    assert first is not None and len(admin.requests()) == 2

    admin.reset_counters()
    now[0] += RESOLVE_TTL_SECONDS - 1
    assert await packages.resolve("Partner collaboration", "Fabrikam engineering") == first
    assert admin.requests() == []

    now[0] += 2
    assert await packages.resolve("Partner collaboration", "Fabrikam engineering") == first
    assert len(admin.requests()) == 2


@pytest.mark.parametrize(("answer", "reads"), [("expand", [2, 2]), ("ignore", [3, 3]), ("refuse", [4, 3])])
async def test_a_package_resolves_to_the_same_policy_whether_graph_expands_its_policies_or_not(
    local_stack, admin, answer, reads
):
    """The list-assignmentPolicies page says to list packages with $expand=assignmentPolicies; the
    list-accessPackages page names only $select and $filter. Expanded, ignored or refused (400, asked once per
    process), the same package and policy come back."""
    admin.configure(accessPackagePoliciesExpand=answer)
    try:
        credential = TenantSimCredential(local_stack.tenantsim_url, roles=GRANTED)
        client = build_graph_client(credential=credential, base_url=f"{local_stack.tenantsim_url}/v1.0")
        now = [0.0]
        packages = GraphAccessPackages(client, clock=lambda: now[0])
        await credential.get_token("https://graph.microsoft.com/.default")
        made = []
        for _ in range(2):
            admin.reset_counters()
            target = await packages.resolve("Partner collaboration", "Fabrikam engineering")
            made.append(len(admin.requests()))
            now[0] += RESOLVE_TTL_SECONDS + 1
    finally:
        admin.configure(accessPackagePoliciesExpand="expand")
    assert target is not None and (target.package_id, target.policy_id) == _package_and_policy(
        admin, "Fabrikam engineering"
    )
    assert made == reads


async def test_tickets_asking_at_once_share_one_resolution(local_stack, admin):
    """A worker's first messages all resolve the partner's package at once: two reads in all, one answer."""
    credential = TenantSimCredential(local_stack.tenantsim_url, roles=GRANTED)
    client = build_graph_client(credential=credential, base_url=f"{local_stack.tenantsim_url}/v1.0")
    packages = GraphAccessPackages(client)
    await credential.get_token("https://graph.microsoft.com/.default")
    admin.reset_counters()
    answers = await asyncio.gather(
        *(packages.resolve("Partner collaboration", "Fabrikam engineering") for _ in range(16))
    )
    assert answers[0] is not None and set(answers) == {answers[0]}
    assert len(admin.requests()) == 2


def _package_and_policy(admin: TenantSimAdmin, name: str) -> tuple[str, str]:
    """The package of that name and its one assignment policy, as the package's own policy list gives it."""
    headers = admin.auth_headers(["EntitlementManagement.Read.All"])
    filtered = {"$filter": f"displayName eq '{name}'"}
    [package] = httpx.get(f"{admin.base_url}{EM}/accessPackages", params=filtered, headers=headers).json()["value"]
    url = f"{admin.base_url}{EM}/accessPackages/{package['id']}/assignmentPolicies"
    [policy] = httpx.get(url, headers=headers).json()["value"]
    return package["id"], policy["id"]


def _allow_invites_from(admin: TenantSimAdmin, value: str) -> None:
    httpx.patch(
        f"{admin.base_url}/v1.0/policies/authorizationPolicy",
        headers=admin.auth_headers(["Policy.ReadWrite.Authorization"]),
        json={"allowInvitesFrom": value},
    ).raise_for_status()


async def test_invitations_restricted_to_guest_inviters_fail_the_ticket_naming_the_role_until_it_is_assigned(
    services, admin
):
    """allowInvitesFrom adminsAndGuestInviters and an app without Guest Inviter: the ticket fails (replayable),
    its message names the role and the grant script; once the role is assigned a replay onboards it."""
    _allow_invites_from(admin, "adminsAndGuestInviters")
    document = ticket()
    try:
        report = await run(services, document)
        assert [o.verdict for o in report.outcomes] == [Verdict.FAILED]
        assert report.outcomes[0].code == "authorization_requestdenied"
        assert "Guest Inviter" in report.outcomes[0].message
        assert "infra/grant-graph-permissions" in report.outcomes[0].message
        assert guests_with_mail(admin, document["email"]) == []
        # Opt in: what infra/grant-graph-permissions does in a real tenant.
        admin.configure(guestInviterAppIds=[DEFAULT_APP_ID])
        selector = Selector(keys=(_key(document),))
        await operations.replay(services, QUEUE, selector, dry_run=False, operator="oncall@contoso.com")
        replayed = await drain(services, QUEUE, handle_ticket, idle_rounds=1, wait_for_delayed_seconds=30)
        assert [o.verdict for o in replayed.outcomes] == [Verdict.DONE]
        await assert_one_guest(services, admin, document["email"])
    finally:
        admin.configure(guestInviterAppIds=[])
        _allow_invites_from(admin, "everyone")
