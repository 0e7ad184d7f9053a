"""Periodic attestation on the local stack: a guest the product onboarded is due for its sponsor's attestation
attestationDays after its invitation; the sweep on tenantsim and Azurite plans nothing the day before, the
disable on the day, and an attest ticket starts the period again."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from app.bootstrap import bootstrap
from config.settings import load_settings
from graph.credentials import TenantSimCredential
from graph.permissions import GRANTED
from lifecycle.clock import FixedClock
from lifecycle.ledger.outcomes import Verdict
from lifecycle.models import GuestRecord, GuestState
from lifecycle.onboarding.handler import handle_ticket
from lifecycle.sweep import entry
from tenantsim.client import TenantSimAdmin
from tenantsim.seed import PROTECTED_GROUP_ID, build_seed
from tests.builders import message
from tests.builders.sweep import one_rule_for

pytestmark = pytest.mark.stack
DAYS = 90


def _desired():
    return one_rule_for("fabrikam", attestation_days=DAYS)


def _guest(document: dict) -> dict:
    """An enabled fabrikam guest outside the protected group (the sweep leaves that group's members alone)."""
    grouped = {m for g in document["groups"] if g["id"] == PROTECTED_GROUP_ID for m in g["members"]}
    return next(
        u
        for u in document["users"]
        if u["userType"] == "Guest"
        and u["accountEnabled"]
        and u["mail"].endswith("@fabrikam.com")
        and u["id"] not in grouped
    )


async def test_the_sweep_asks_for_attestation_on_the_day_and_an_attest_ticket_starts_the_period_again(local_stack):
    """Day DAYS - 1: nothing; day DAYS: disable attestation-overdue with its evidence; after the sponsor's attest
    ticket: nothing again until DAYS more days have passed."""
    start = datetime.now(UTC).replace(microsecond=0)
    document = build_seed(40, 29, "fresh", start.replace(hour=0, minute=0, second=0))
    guest = _guest(document)
    sponsor = next(u for u in document["users"] if u["userType"] == "Member" and u.get("accountEnabled") is not False)
    suffix = uuid.uuid4().hex[:8]
    settings = load_settings(
        {**local_stack.env, "LIFECYCLE_TABLE_PREFIX": f"at{suffix}", "LIFECYCLE_QUEUE_PREFIX": f"at{suffix}-"}
    )
    clock = FixedClock(start)
    with TenantSimAdmin(local_stack.tenantsim_url) as admin:
        admin.seed(document)
        services = await bootstrap(
            settings,
            credential=TenantSimCredential(local_stack.tenantsim_url, roles=GRANTED),
            desired=_desired(),
            clock=clock,
        )
        try:
            record = GuestRecord(
                guest["id"], guest["mail"], "fabrikam", GuestState.ACTIVE, ticket_id="RITM0091000", invited=start
            )
            await services.guests.save(record)

            clock.advance(timedelta(days=DAYS - 1))
            early = await entry.run_sweep(services, "plan", run_id="sweep-attest-1")
            assert early["actions"] == {}

            clock.advance(timedelta(days=1))
            due = await entry.run_sweep(services, "plan", run_id="sweep-attest-2")
            assert due["actions"] == {"disable/attestation-overdue": 1}
            shown = await entry.show(services, "sweep-attest-2")
            assert shown is not None
            [planned] = shown["plan"]
            assert planned["objectId"] == guest["id"]
            assert planned["evidence"]["baseline"] == "invited" and planned["evidence"]["attestationDays"] == DAYS

            attest = {
                "schemaVersion": 1,
                "kind": "attest",
                "ticketId": "RITM0091001",
                "email": guest["mail"],
                "attestedBy": sponsor["id"],
            }
            outcome = await handle_ticket(message(attest), services)
            assert outcome.verdict is Verdict.DONE, outcome
            attested = await services.guests.get(guest["id"])
            assert attested is not None and attested.attested == clock.now() and attested.attested_by == sponsor["id"]

            clock.advance(timedelta(days=1))
            after = await entry.run_sweep(services, "plan", run_id="sweep-attest-3")
            assert after["actions"] == {}
            clock.advance(timedelta(days=DAYS))
            again = await entry.run_sweep(services, "plan", run_id="sweep-attest-4")
            assert again["actions"] == {"disable/attestation-overdue": 1}
        finally:
            await services.close()
            admin.seed(builtin="fresh", guests=300, random_seed=0)
