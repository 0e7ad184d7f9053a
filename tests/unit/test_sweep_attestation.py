"""Periodic attestation: a guest this product onboarded is due once attestationDays pass without a sponsor's
attest ticket, counted from the last attestation or the invitation, at the exact boundary."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from config.desired_state import SponsorNotice, load_desired_state
from config.settings import SAMPLE_DESIRED_STATE
from lifecycle.models import DirectoryUser, GuestRecord, GuestState, SignInActivity
from lifecycle.sweep.model import Action, NoticeRecord, PlannedAction, Rule
from lifecycle.sweep.recheck import Observed, next_step
from lifecycle.sweep.rules import Decision, SweepPolicy, decide

NOW = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)
INVITED = NOW - timedelta(days=200)
SAMPLE = load_desired_state(SAMPLE_DESIRED_STATE)


def policy(days: int | None = 90, *, notices: bool = False, partner_days: int | None = None) -> SweepPolicy:
    lifecycle = SAMPLE.lifecycle.model_copy(
        update={"attestation_days": days, "sponsor_notice": SponsorNotice(enabled=notices, lead_days=14)}
    )
    partners = dict(SAMPLE.partners)
    fabrikam = partners["fabrikam"]
    rules = fabrikam.lifecycle.model_copy(update={"attestation_days": partner_days}) if fabrikam.lifecycle else None
    if rules is not None:
        partners["fabrikam"] = fabrikam.model_copy(update={"lifecycle": rules})
    return SweepPolicy(SAMPLE.model_copy(update={"lifecycle": lifecycle, "partners": partners}))


GUEST = DirectoryUser(
    "0d7c1a2b-3e4f-4a5b-8c6d-7e8f9a0b1c2d",
    "Guest",
    mail="pat.doe@fabrikam.com",
    account_enabled=True,
    external_user_state="Accepted",
    created=INVITED,
    sign_in_activity=SignInActivity(last_successful_sign_in=NOW - timedelta(days=1)),
)


def record(attested: datetime | None = None) -> GuestRecord:
    return GuestRecord(GUEST.id, GUEST.mail or "", "fabrikam", GuestState.ACTIVE, invited=INVITED, attested=attested)


def test_without_an_attestation_a_guest_is_due_attestation_days_after_its_invitation():
    due = INVITED + timedelta(days=90)
    assert decide(GUEST, record(), policy(), due - timedelta(seconds=1)) is None
    verdict = decide(GUEST, record(), policy(), due)
    assert isinstance(verdict, Decision) and (verdict.action, verdict.rule) == (
        Action.DISABLE,
        Rule.ATTESTATION_OVERDUE,
    )
    assert verdict.evidence["baseline"] == "invited" and verdict.evidence["attestationDays"] == 90


def test_an_attestation_starts_the_period_again():
    attested = NOW - timedelta(days=10)
    assert decide(GUEST, record(attested), policy(), NOW) is None
    verdict = decide(GUEST, record(attested), policy(), attested + timedelta(days=90))
    assert isinstance(verdict, Decision) and verdict.evidence["baseline"] == "lastAttested"


def test_off_by_default_and_never_for_a_guest_this_product_did_not_onboard():
    assert decide(GUEST, record(), policy(None), NOW) is None
    assert decide(GUEST, None, policy(), NOW) is None


def test_a_partners_own_period_overrides_the_default():
    assert decide(GUEST, record(NOW - timedelta(days=40)), policy(90, partner_days=30), NOW) is not None


def test_with_notices_the_sponsor_is_asked_first_and_an_attestation_meanwhile_drops_the_disable():
    """The notice names the rule (the ticketing system asks for an attestation); an attestation that lands
    before the worker acts moves the due date, so the planned disable is dropped on the worker's second look."""
    due = INVITED + timedelta(days=90)
    notice = decide(GUEST, record(), policy(notices=True), due - timedelta(days=14))
    assert isinstance(notice, Decision) and notice.action is Action.NOTIFY_SPONSOR
    assert notice.rule is Rule.ATTESTATION_OVERDUE and notice.due == due
    told = NoticeRecord(GUEST.id, due, due - timedelta(days=14))
    disable = decide(GUEST, record(), policy(notices=True), due, notice=told)
    assert isinstance(disable, Decision) and disable.action is Action.DISABLE
    planned = PlannedAction("sweep-x", GUEST.id, Action.DISABLE, disable.rule, "fabrikam", disable.evidence)
    seen = Observed(GUEST, record(attested=due - timedelta(hours=1)), notice=told)
    step = next_step(planned, seen, None, policy(notices=True), due + timedelta(hours=1))
    assert step.kind == "drop"
