"""The sweep's decision per guest and the deletion brake, at their exact boundaries."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from config.desired_state import DeletionBrake, Exclusions, load_desired_state
from config.settings import SAMPLE_DESIRED_STATE
from lifecycle.models import DirectoryUser, GuestRecord, GuestState, SignInActivity
from lifecycle.runs.brake import evaluate
from lifecycle.sweep.model import Action, Rule, Skip
from lifecycle.sweep.rules import Decision, SweepPolicy, decide

NOW = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)
DESIRED = load_desired_state(SAMPLE_DESIRED_STATE)
POLICY = SweepPolicy(DESIRED)
PROTECTED = DESIRED.exclusions.protected_group_id


def guest(
    *,
    last_sign_in: datetime | None = NOW - timedelta(days=5),
    domain: str = "fabrikam.com",
    **fields: object,
) -> DirectoryUser:
    values: dict[str, object] = {
        "id": str(uuid.uuid4()),
        "user_type": "Guest",
        "mail": f"pat.doe@{domain}",
        "account_enabled": True,
        "external_user_state": "Accepted",
        "external_user_state_changed": NOW - timedelta(days=400),
        "created": NOW - timedelta(days=401),
        "sign_in_activity": SignInActivity(last_successful_sign_in=last_sign_in) if last_sign_in else None,
    }
    values.update(fields)
    return DirectoryUser(**values)  # type: ignore[arg-type]


def ledger(user: DirectoryUser, **fields: object) -> GuestRecord:
    values: dict[str, object] = {
        "object_id": user.id,
        "email": user.mail or "",
        "partner": "fabrikam",
        "state": GuestState.ACTIVE,
    }
    values.update(fields)
    return GuestRecord(**values)  # type: ignore[arg-type]


def rule_of(verdict: object) -> tuple[Action, Rule] | object:
    return (verdict.action, verdict.rule) if isinstance(verdict, Decision) else verdict


# --- inactivity -------------------------------------------------------------------------------------


def test_without_sign_in_activity_the_inactivity_rule_is_off_and_the_others_still_decide():
    """No licence, no signInActivity: a guest is never disabled as inactive from its creation date, while a
    past end date still disables it."""
    blind = POLICY.without_sign_in_activity()
    unseen = guest(last_sign_in=None)
    assert rule_of(decide(unseen, None, POLICY, NOW)) == (Action.DISABLE, Rule.INACTIVE)
    assert decide(unseen, None, blind, NOW) is None
    ended = ledger(unseen, end_date=NOW - timedelta(days=1))
    assert rule_of(decide(unseen, ended, blind, NOW)) == (Action.DISABLE, Rule.PAST_END_DATE)
    assert blind.rules_for("fabrikam").inactive_days is None and POLICY.rules_for("fabrikam").inactive_days


def test_a_guest_is_inactive_from_the_exact_instant_its_inactivity_window_ends():
    """90 days after the last successful sign-in to the second the guest is disabled; one second earlier it is not."""
    last = NOW - timedelta(days=90)
    assert rule_of(decide(guest(last_sign_in=last), None, POLICY, NOW)) == (Action.DISABLE, Rule.INACTIVE)
    assert decide(guest(last_sign_in=last + timedelta(seconds=1)), None, POLICY, NOW) is None


def test_time_zones_do_not_move_the_boundary():
    """A sign-in and a clock given in other time zones mean the same instants and give the same answers."""
    plus_five = timezone(timedelta(hours=5, minutes=30))
    minus_ten = timezone(timedelta(hours=-10))
    last = (NOW - timedelta(days=90)).astimezone(plus_five)
    now_elsewhere = NOW.astimezone(minus_ten)
    assert now_elsewhere.date() != NOW.date() or last.date() != (NOW - timedelta(days=90)).date()
    assert rule_of(decide(guest(last_sign_in=last), None, POLICY, now_elsewhere)) == (Action.DISABLE, Rule.INACTIVE)
    later = last + timedelta(seconds=1)
    assert decide(guest(last_sign_in=later), None, POLICY, now_elsewhere) is None


def test_a_guest_that_never_signed_in_counts_from_its_redemption_not_from_infinitely_old():
    """No sign-in data: inactivity runs from redemption (here 10 days ago), so a year-old guest is not inactive."""
    fresh = guest(last_sign_in=None, external_user_state_changed=NOW - timedelta(days=10))
    assert decide(fresh, None, POLICY, NOW) is None
    empty = guest(
        last_sign_in=None, sign_in_activity=SignInActivity(), external_user_state_changed=NOW - timedelta(days=10)
    )
    assert decide(empty, None, POLICY, NOW) is None
    stale = guest(last_sign_in=None, external_user_state_changed=NOW - timedelta(days=90))
    verdict = decide(stale, None, POLICY, NOW)
    assert rule_of(verdict) == (Action.DISABLE, Rule.INACTIVE)
    assert isinstance(verdict, Decision) and verdict.evidence["baseline"] == "redeemed"


def test_a_guest_with_no_dates_at_all_is_never_judged_inactive():
    """Without a sign-in, a creation or a redemption date there is no evidence, and no action."""
    bare = guest(last_sign_in=None, created=None, external_user_state_changed=None)
    assert decide(bare, None, POLICY, NOW) is None


def test_non_interactive_sign_ins_count_when_last_successful_is_not_backfilled():
    """Before lastSuccessfulSignInDateTime existed, a recent non-interactive sign-in keeps the guest active."""
    activity = SignInActivity(
        last_sign_in=NOW - timedelta(days=300), last_non_interactive_sign_in=NOW - timedelta(days=3)
    )
    assert decide(guest(last_sign_in=None, sign_in_activity=activity), None, POLICY, NOW) is None


def test_a_partner_override_changes_the_inactivity_window():
    """Northwind's 60-day rule disables a guest the tenant default (90 days) would keep."""
    last = NOW - timedelta(days=60)
    verdict = decide(guest(last_sign_in=last, domain="northwindtraders.com"), None, POLICY, NOW)
    assert rule_of(verdict) == (Action.DISABLE, Rule.INACTIVE)
    assert isinstance(verdict, Decision) and verdict.partner == "northwind"
    assert decide(guest(last_sign_in=last, domain="fabrikam.com"), None, POLICY, NOW) is None


def test_a_guest_re_enabled_after_this_product_disabled_it_counts_from_that_disable():
    """Somebody re-enabled the guest: it gets a fresh window from the disable, not from its old sign-in."""
    user = guest(last_sign_in=NOW - timedelta(days=300))
    record = ledger(user, state=GuestState.DISABLED, disabled=NOW - timedelta(days=10))
    assert decide(user, record, POLICY, NOW) is None
    record.disabled = NOW - timedelta(days=90)
    assert rule_of(decide(user, record, POLICY, NOW)) == (Action.DISABLE, Rule.INACTIVE)


# --- pending invitations ---------------------------------------------------------------------------


def test_an_invitation_never_redeemed_is_disabled_on_its_boundary_day():
    """PendingAcceptance since exactly 30 days: disabled; 30 days minus a second: not yet."""
    since = NOW - timedelta(days=30)
    pending = guest(
        last_sign_in=None, external_user_state="PendingAcceptance", external_user_state_changed=since, created=since
    )
    assert rule_of(decide(pending, None, POLICY, NOW)) == (Action.DISABLE, Rule.INVITATION_NOT_REDEEMED)
    recent = since + timedelta(seconds=1)
    younger = guest(
        last_sign_in=None, external_user_state="PendingAcceptance", external_user_state_changed=recent, created=recent
    )
    assert decide(younger, None, POLICY, NOW) is None


# --- end dates ---------------------------------------------------------------------------------------


def test_a_guest_past_its_ledger_end_date_is_disabled_from_that_instant():
    """The end date is the instant access ends: at it the guest is disabled, a second before it is not."""
    user = guest()
    assert rule_of(decide(user, ledger(user, end_date=NOW), POLICY, NOW)) == (Action.DISABLE, Rule.PAST_END_DATE)
    assert decide(user, ledger(user, end_date=NOW + timedelta(seconds=1)), POLICY, NOW) is None


def test_an_end_date_given_in_another_time_zone_is_the_same_instant():
    """An end of 2026-11-23 00:00 at UTC-10 is 10:00 UTC: not yet past at 09:30 UTC."""
    user = guest()
    end = datetime(2026, 11, 23, 0, 0, tzinfo=timezone(timedelta(hours=-10)))
    assert decide(user, ledger(user, end_date=end), POLICY, NOW) is None
    assert rule_of(decide(user, ledger(user, end_date=end), POLICY, end)) == (Action.DISABLE, Rule.PAST_END_DATE)


def test_the_access_package_assignment_expiry_counts_and_the_later_end_wins():
    """An assignment expiry alone ends access; an assignment extended past the ledger's end keeps the guest."""
    user = guest()
    verdict = decide(user, None, POLICY, NOW, assignment_end=NOW - timedelta(days=1))
    assert rule_of(verdict) == (Action.DISABLE, Rule.PAST_END_DATE)
    assert isinstance(verdict, Decision) and verdict.evidence["source"] == "accessPackageAssignment"
    extended = decide(
        user, ledger(user, end_date=NOW - timedelta(days=1)), POLICY, NOW, assignment_end=NOW + timedelta(days=30)
    )
    assert extended is None


# --- exclusions ----------------------------------------------------------------------------------------


def test_members_are_never_touched_whatever_the_data_says():
    """A member with a stale sign-in and a past end date is left alone."""
    member = guest(user_type="Member", last_sign_in=NOW - timedelta(days=999))
    assert decide(member, ledger(member, end_date=NOW - timedelta(days=9)), POLICY, NOW) is Skip.NOT_A_GUEST


def test_excluded_object_ids_protected_group_members_and_opted_out_partners_are_left_alone():
    """Each exclusion wins over a rule that would otherwise disable the guest."""
    stale = NOW - timedelta(days=500)
    excluded = guest(last_sign_in=stale)
    policy = SweepPolicy(DESIRED.model_copy(update={"exclusions": Exclusions(object_ids=(excluded.id.upper(),))}))
    assert decide(excluded, None, policy, NOW) is Skip.EXCLUDED_OBJECT

    protected = guest(last_sign_in=stale)
    assert decide(protected, None, SweepPolicy(DESIRED, frozenset({protected.id})), NOW) is Skip.PROTECTED_GROUP

    woodgrove = guest(last_sign_in=stale, domain="woodgrovebank.com")
    assert decide(woodgrove, None, POLICY, NOW) is Skip.PARTNER_OPT_OUT


# --- deletion -------------------------------------------------------------------------------------------


def test_deletion_follows_only_this_products_disable_after_the_grace_period():
    """Disabled by this product 30 days ago and still eligible: delete; 30 days minus a second: in grace."""
    user = guest(last_sign_in=NOW - timedelta(days=200), account_enabled=False)
    record = ledger(user, state=GuestState.DISABLED, disabled=NOW - timedelta(days=30))
    verdict = decide(user, record, POLICY, NOW)
    assert rule_of(verdict) == (Action.DELETE, Rule.DISABLED_PAST_GRACE)
    assert isinstance(verdict, Decision) and verdict.evidence["stillEligibleBy"] == Rule.INACTIVE.value
    record.disabled = NOW - timedelta(days=30) + timedelta(seconds=1)
    assert decide(user, record, POLICY, NOW) is Skip.IN_GRACE


def test_a_guest_disabled_by_someone_else_is_never_deleted():
    """No ledger row saying this product disabled it: the disabled guest is left alone."""
    user = guest(last_sign_in=NOW - timedelta(days=400), account_enabled=False)
    assert decide(user, None, POLICY, NOW) is Skip.DISABLED_ELSEWHERE
    assert decide(user, ledger(user, state=GuestState.ACTIVE), POLICY, NOW) is Skip.DISABLED_ELSEWHERE


def test_a_disabled_guest_whose_end_date_was_extended_is_not_deleted():
    """Past the grace period but no rule holds any more (the end date moved): no deletion."""
    user = guest(account_enabled=False)
    record = ledger(
        user, state=GuestState.DISABLED, disabled=NOW - timedelta(days=45), end_date=NOW + timedelta(days=60)
    )
    assert decide(user, record, POLICY, NOW) is None


# --- the brake ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("affected", "total", "tripped"),
    [(50, 1000, False), (51, 1000, True), (6, 100, True), (5, 100, False), (0, 0, False)],
)
def test_the_brake_trips_above_the_count_or_the_share_and_not_at_them(affected, total, tripped):
    """50 guests or 5% exactly are allowed; one more, or a larger share of a small tenant, trips the brake."""
    state = evaluate(affected, total, DeletionBrake(max_count=50, max_percent=5))
    assert state.tripped is tripped
    assert (state.reason != "") is tripped
