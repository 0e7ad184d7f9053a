"""The sponsor-gone rule: a managed guest whose sponsors are all gone gets a sponsor-reassign event, then, once
sponsorGoneDays pass from when the sweep first saw it so with nobody acting, the disable, at the exact boundary."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import jsonschema
import pytest
from pydantic import ValidationError

from adapters.memory import MemorySweepRuns
from app.schemas import SCHEMAS
from config.desired_state import DeletionBrake, DesiredState, Partner, load_desired_state
from config.settings import SAMPLE_DESIRED_STATE
from lifecycle.ledger.worker import drain
from lifecycle.models import DirectoryUser, GuestRecord, GuestState, SignInActivity, SponsorRef
from lifecycle.sweep import entry
from lifecycle.sweep.model import Action, PlannedAction, Rule, Skip
from lifecycle.sweep.reassign import proposal
from lifecycle.sweep.recheck import Observed, next_step
from lifecycle.sweep.rules import Decision, SweepPolicy, decide
from lifecycle.sweep.sponsors import with_sponsor_states
from tests.builders import NOW, memory_services
from tests.fakes.sponsored import SponsoredDirectory

DAYS = 30
SAMPLE = load_desired_state(SAMPLE_DESIRED_STATE)
OWNER = "3b9e2f4a-1c5d-4e6f-8a7b-9c0d1e2f3a4b"
MEMBER = SponsorRef("m-1", account_enabled=True, user_type="Member")
DISABLED = SponsorRef("m-2", account_enabled=False, user_type="Member")
GUEST_SPONSOR = SponsorRef("g-9", account_enabled=True, user_type="Guest")


def desired(
    days: int | None = None, *, partner_days: int | None = DAYS, opt_out: bool = False, owner: str | None = OWNER
) -> DesiredState:
    """The sample state with the rule on for fabrikam alone (the default stays off) and its owner named."""
    fabrikam = SAMPLE.partners["fabrikam"]
    rules = fabrikam.lifecycle.model_copy(update={"sponsor_gone_days": partner_days, "opt_out": opt_out})
    partners = dict(SAMPLE.partners) | {"fabrikam": fabrikam.model_copy(update={"lifecycle": rules, "owner": owner})}
    lifecycle = SAMPLE.lifecycle.model_copy(
        update={"sponsor_gone_days": days, "deletion_brake": DeletionBrake(max_count=10_000, max_percent=100.0)}
    )
    return SAMPLE.model_copy(update={"lifecycle": lifecycle, "partners": partners})


POLICY = SweepPolicy(desired())


def guest(*sponsors: SponsorRef, domain: str = "fabrikam.com") -> DirectoryUser:
    """An active guest (signed in yesterday: no other rule holds) with these live sponsors."""
    return DirectoryUser(
        "0d7c1a2b-3e4f-4a5b-8c6d-7e8f9a0b1c2d",
        "Guest",
        display_name="Pat Doe",
        mail=f"pat.doe@{domain}",
        account_enabled=True,
        external_user_state="Accepted",
        created=NOW - timedelta(days=300),
        sign_in_activity=SignInActivity(last_successful_sign_in=NOW - timedelta(days=1)),
        sponsors=sponsors,
    )


def record(since: datetime | None = None, sponsor: str | None = "m-0", partner: str = "fabrikam") -> GuestRecord:
    return GuestRecord(
        "0d7c1a2b-3e4f-4a5b-8c6d-7e8f9a0b1c2d",
        "pat.doe@fabrikam.com",
        partner,
        GuestState.ACTIVE,
        sponsor=sponsor,
        sponsor_gone_since=since,
    )


# --- the rule at its boundaries -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sponsors", "coverage"),
    [((), "sponsor-gone"), ((DISABLED,), "sponsor-disabled"), ((GUEST_SPONSOR,), "sponsor-not-member")],
)
def test_a_guest_first_seen_with_every_sponsor_gone_gets_a_reassign_event_not_a_disable(sponsors, coverage):
    verdict = decide(guest(*sponsors), record(), POLICY, NOW)
    assert isinstance(verdict, Decision)
    assert (verdict.action, verdict.rule, verdict.partner) == (Action.SPONSOR_REASSIGN, Rule.SPONSOR_GONE, "fabrikam")
    assert verdict.due == NOW + timedelta(days=DAYS)
    assert verdict.evidence["coverage"] == coverage and verdict.evidence["sponsorGoneSince"] == NOW.isoformat()
    assert verdict.evidence["departedSponsorIds"] == ([s.id for s in sponsors] or ["m-0"])


def test_the_disable_waits_until_the_period_from_first_seen_is_over_and_not_a_second_longer():
    since = NOW - timedelta(days=DAYS)
    assert decide(guest(), record(since), POLICY, NOW - timedelta(seconds=1)) is None
    verdict = decide(guest(), record(since), POLICY, NOW)
    assert isinstance(verdict, Decision) and (verdict.action, verdict.rule) == (Action.DISABLE, Rule.SPONSOR_GONE)
    assert verdict.evidence["sponsorGoneSince"] == since.isoformat()
    assert verdict.evidence["dueDate"] == NOW.isoformat() and verdict.evidence["sponsorGoneDays"] == DAYS


def test_one_sponsor_still_answering_keeps_the_guest_whatever_the_others():
    assert decide(guest(DISABLED, MEMBER), record(), POLICY, NOW) is None
    assert decide(guest(GUEST_SPONSOR, SponsorRef("grp", is_group=True)), record(), POLICY, NOW) is None


def test_a_sponsor_re_added_ends_the_period_instead_of_the_disable():
    """Covered again with the mark set: the plan clears it (so a later loss starts a new period), never disables."""
    verdict = decide(guest(MEMBER), record(NOW - timedelta(days=DAYS + 5)), POLICY, NOW)
    assert isinstance(verdict, Decision) and (verdict.action, verdict.rule) == (
        Action.SPONSOR_GONE_ENDED,
        Rule.SPONSOR_GONE,
    )


def test_switching_the_rule_off_ends_a_running_period_so_switching_it_on_again_starts_afresh():
    """A mark left from when the rule was on is cleared, never turned into an instant disable on an old event."""
    off = SweepPolicy(desired(partner_days=None))
    verdict = decide(guest(), record(NOW - timedelta(days=90)), off, NOW)
    assert isinstance(verdict, Decision) and verdict.action is Action.SPONSOR_GONE_ENDED
    assert verdict.evidence["why"] == "rule-off"
    assert decide(guest(), record(), off, NOW) is None


def test_the_partner_can_opt_out_and_the_rule_is_off_by_default():
    assert decide(guest(), record(NOW - timedelta(days=90)), SweepPolicy(desired(opt_out=True)), NOW) is (
        Skip.PARTNER_OPT_OUT
    )
    assert decide(guest(), record(), SweepPolicy(desired(partner_days=None)), NOW) is None
    assert SAMPLE.lifecycle.sponsor_gone_days is None
    assert all(p.lifecycle.sponsor_gone_days is None for p in SAMPLE.partners.values())


def test_a_partners_period_overrides_the_default_and_the_default_reaches_other_partners():
    state = desired(90, partner_days=10)
    since = NOW - timedelta(days=10)
    assert decide(guest(), record(since), SweepPolicy(state), NOW).action is Action.DISABLE
    northwind = replace(guest(domain="northwind.example"), mail="pat@northwind.example")
    assert decide(northwind, record(since, partner="northwind"), SweepPolicy(state), NOW) is None


def test_never_gone_on_unknown_evidence_or_for_a_guest_this_product_did_not_onboard():
    """No expansion, a sponsor whose state is unknown, no ledger row, or never a recorded sponsor: no verdict."""
    assert decide(replace(guest(), sponsors=None), record(NOW - timedelta(days=90)), POLICY, NOW) is None
    assert decide(guest(SponsorRef("m-3")), record(NOW - timedelta(days=90)), POLICY, NOW) is None
    assert decide(guest(), None, POLICY, NOW) is None
    assert decide(guest(), record(sponsor=None), POLICY, NOW) is None


def test_a_guest_disabled_in_a_sponsor_gone_period_is_deleted_after_grace_only_while_its_sponsors_are_gone():
    since = NOW - timedelta(days=DAYS + 40)
    disabled = replace(
        record(since), state=GuestState.DISABLED, disabled=NOW - timedelta(days=SAMPLE.lifecycle.grace_days)
    )
    off = replace(guest(), account_enabled=False)
    verdict = decide(off, disabled, POLICY, NOW)
    assert isinstance(verdict, Decision) and (verdict.action, verdict.rule) == (Action.DELETE, Rule.DISABLED_PAST_GRACE)
    assert verdict.evidence["stillEligibleBy"] == "sponsor-gone"
    assert decide(replace(off, sponsors=(MEMBER,)), disabled, POLICY, NOW) is None
    assert decide(replace(off, sponsors=None), disabled, POLICY, NOW) is None  # not confirmed: never deleted


def test_another_rule_that_holds_comes_first():
    inactive = replace(guest(), sign_in_activity=SignInActivity(last_successful_sign_in=NOW - timedelta(days=200)))
    verdict = decide(inactive, record(), POLICY, NOW)
    assert isinstance(verdict, Decision) and (verdict.action, verdict.rule) == (Action.DISABLE, Rule.INACTIVE)


def test_the_workers_second_look_drops_a_disable_once_a_sponsor_is_back():
    since = NOW - timedelta(days=DAYS)
    planned = PlannedAction("run-1", guest().id, Action.DISABLE, Rule.SPONSOR_GONE, "fabrikam")
    assert next_step(planned, Observed(guest(), record(since)), None, POLICY, NOW).kind == "act"
    step = next_step(planned, Observed(guest(MEMBER), record(since)), None, POLICY, NOW)
    assert (step.kind, step.code) == ("drop", "different-action")
    unread = next_step(planned, Observed(replace(guest(), sponsors=None), record(since)), None, POLICY, NOW)
    assert (unread.kind, unread.code) == ("drop", "no-longer-eligible")


# --- configuration, proposal, page states -------------------------------------------------------------------


def test_the_partners_owner_is_an_object_id_kept_in_lower_case():
    base = SAMPLE.partners["fabrikam"].model_dump(by_alias=True)
    assert Partner.model_validate(base | {"owner": OWNER.upper()}).owner == OWNER
    with pytest.raises(ValidationError):
        Partner.model_validate(base | {"owner": "pat@contoso.com"})
    with pytest.raises(ValidationError):
        Partner.model_validate(base | {"lifecycle": {"sponsorGoneDays": 0}})


async def test_the_departed_sponsors_manager_comes_first_then_the_partners_owner():
    managers = {"s-1": None, "s-2": "boss", "s-3": "s-2"}

    async def manager_of(user_id: str) -> str | None:
        return managers[user_id]

    assert await proposal(("s-1", "s-2"), OWNER, manager_of) == ("boss", "manager")
    assert await proposal(("s-3", "s-2"), OWNER, manager_of) == ("boss", "manager")  # not a departed one
    assert await proposal(("s-1",), OWNER, manager_of) == (OWNER, "partner-owner")
    assert await proposal(("s-1",), None, None) == (None, None)


async def test_sponsor_states_the_page_left_out_are_looked_up_once_per_page_for_managed_guests():
    asked: list[list[str]] = []

    async def states(ids: list[str]) -> dict[str, SponsorRef]:
        asked.append(ids)
        return {"m-3": SponsorRef("m-3", account_enabled=False, user_type="Member")}

    managed, other = guest(SponsorRef("m-3"), SponsorRef("m-4")), replace(guest(SponsorRef("m-5")), id="other")
    page = await with_sponsor_states([managed, other], {managed.id: record()}, states)
    assert asked == [["m-3", "m-4"]]
    assert page[0].sponsors == (DISABLED.__class__("m-3", account_enabled=False, user_type="Member"),)
    assert page[1] is other
    assert decide(page[0], record(), POLICY, NOW).action is Action.SPONSOR_REASSIGN


# --- a run and the worker, on fakes -------------------------------------------------------------------------

QUEUE = "guest-actions"
NOTICES = "sponsor-notices"


def tenant() -> tuple[SponsoredDirectory, DirectoryUser, DirectoryUser]:
    directory = SponsoredDirectory()
    sponsor = directory.add_member("sam@contoso.com", "Sam Sponsor")
    boss = directory.add_member("bo@contoso.com", "Bo Boss")
    directory.managers[sponsor.id] = boss.id
    user = directory.add_guest("pat.doe@fabrikam.com")
    user = directory.put(
        replace(user, display_name="Pat Doe", sign_in_activity=SignInActivity(NOW - timedelta(days=1)))
    )
    directory.sponsors[user.id] = [sponsor.id]
    return directory, user, sponsor


async def work(services):
    return await drain(services, QUEUE, entry.handle_guest_action, idle_rounds=1, concurrency=4)


async def test_a_run_sends_the_event_marks_the_ledger_then_disables_after_the_period(monkeypatch):
    directory, user, sponsor = tenant()
    services = memory_services(directory, sweep_runs=MemorySweepRuns(page_size=2))
    services.desired = desired()
    await services.guests.save(GuestRecord(user.id, user.mail or "", "fabrikam", GuestState.ACTIVE, sponsor=sponsor.id))
    directory.put(replace(sponsor, account_enabled=False))  # the sponsor leaves

    summary = await entry.run_sweep(services, "enforce")
    assert summary["actions"] == {"sponsor-reassign/sponsor-gone": 1} and summary["sponsorReassign"] == 1
    assert summary["brake"]["affected"] == 0  # an event touches no guest: the brake does not count it
    assert (await work(services)).by_verdict == {"done": 1}
    assert directory.writes == []
    [message] = await services.transport.receive(NOTICES, max_messages=10)
    event = json.loads(message.body)
    jsonschema.validate(event, SCHEMAS["sponsor-reassign"]())
    assert (event["kind"], event["guestId"], event["coverage"]) == ("sponsor-reassign", user.id, "sponsor-disabled")
    assert event["departedSponsorIds"] == [sponsor.id] and event["proposedBy"] == "manager"
    assert event["proposedSponsorId"] == directory.managers[sponsor.id]
    assert datetime.fromisoformat(event["disableNotBefore"]) == NOW + timedelta(days=DAYS)
    marked = await services.guests.get(user.id)
    assert marked is not None and marked.sponsor_gone_since == NOW.astimezone(UTC)

    # A run before the period is over plans nothing; the first run after it plans and carries out the disable.
    services.clock.advance(timedelta(days=DAYS - 1))
    assert (await entry.run_sweep(services, "enforce"))["actions"] == {}
    services.clock.advance(timedelta(days=1))
    later = await entry.run_sweep(services, "enforce")
    assert later["actions"] == {"disable/sponsor-gone": 1}
    await work(services)
    assert directory.users[user.id].account_enabled is False

    # Then the disable rules' grace: still without a sponsor, the guest is deleted after it, re-checked live.
    services.clock.advance(timedelta(days=services.desired.lifecycle.grace_days))
    past_grace = await entry.run_sweep(services, "enforce")
    assert past_grace["actions"] == {"delete/disabled-past-grace": 1}
    assert (await work(services)).by_verdict == {"done": 1}
    assert user.id not in directory.users


async def test_a_sponsor_added_before_the_period_ends_clears_the_mark_and_nobody_is_disabled():
    directory, user, _ = tenant()
    services = memory_services(directory, sweep_runs=MemorySweepRuns(page_size=2))
    services.desired = desired(owner=None)
    since = NOW - timedelta(days=DAYS - 3)
    await services.guests.save(
        GuestRecord(
            user.id, user.mail or "", "fabrikam", GuestState.ACTIVE, sponsor=str(uuid.uuid4()), sponsor_gone_since=since
        )
    )
    summary = await entry.run_sweep(services, "enforce")  # the sponsor the tenant lists answers for the guest
    assert summary["actions"] == {"sponsor-gone-ended/sponsor-gone": 1}
    await work(services)
    cleared = await services.guests.get(user.id)
    assert cleared is not None and cleared.sponsor_gone_since is None
    assert "guest.sponsor-gone-ended" in [e.action async for e in services.audit.entries()]
    services.clock.advance(timedelta(days=10))
    assert (await entry.run_sweep(services, "enforce"))["actions"] == {}
    assert directory.writes == []
