"""Undo by run: the plan for one guest from what the run recorded and what holds now, the brake over an undo,
and the sweep's cool-off for a restored guest."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from config.desired_state import DeletionBrake, load_desired_state
from config.settings import SAMPLE_DESIRED_STATE
from lifecycle.models import AccessPackageTarget, AssignmentInfo, DirectoryUser, GuestRecord, GuestState, SignInActivity
from lifecycle.restore.model import ALREADY_RESTORED, RunAction, Seen, Step
from lifecycle.restore.planner import brake_state, plan_guest
from lifecycle.restore.ports import DeletedUser
from lifecycle.sweep.applied import snapshot
from lifecycle.sweep.model import Action, Skip
from lifecycle.sweep.rules import Decision, SweepPolicy, decide

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
RUN = "sweep-2026-11-30"
ACTED = datetime(2026, 11, 30, 2, 5, tzinfo=UTC)
OID = "6b1f3c2e-0d4a-4e8b-9f7c-5a2d1e0b3c4f"
PACKAGE = AccessPackageTarget("pkg-1", "policy-1", "Fabrikam engineering")


def lena(**fields: object) -> DirectoryUser:
    values: dict[str, object] = {
        "id": OID,
        "user_type": "Guest",
        "display_name": "Lena Fischer",
        "mail": "lena.fischer@fabrikam.com",
        "user_principal_name": "lena.fischer_fabrikam.com#EXT#@contoso.onmicrosoft.com",
        "account_enabled": True,
    }
    values.update(fields)
    return DirectoryUser(**values)  # type: ignore[arg-type]


def undo(action: Action = Action.DISABLE, before: DirectoryUser | None = None) -> RunAction:
    return RunAction(
        RUN, OID, action, "inactive", "fabrikam", f"sweep:{RUN}:{OID}:{action.value}", ACTED, snapshot(before or lena())
    )


def record(*events: dict, end: datetime | None = NOW + timedelta(days=60)) -> GuestRecord:
    history = [{"at": ACTED.isoformat(), "event": "disabled", "rule": "inactive", "run": RUN}, *events]
    return GuestRecord(
        OID, "lena.fischer@fabrikam.com", "fabrikam", GuestState.DISABLED, end_date=end, disabled=ACTED, history=history
    )


def disabled_now(**seen: object) -> Seen:
    values: dict[str, object] = {
        "user": lena(account_enabled=False),
        "record": record(),
        "package": PACKAGE,
        "assignment_known": True,
    }
    values.update(seen)
    return Seen(**values)  # type: ignore[arg-type]


def test_a_guest_the_run_disabled_and_nobody_touched_is_re_enabled_and_gets_its_lost_package_back():
    plan = plan_guest(undo(), disabled_now(), NOW)
    assert plan.acts and plan.steps == (Step.ENABLE, Step.REASSIGN)
    assert plan.end == NOW + timedelta(days=60) and plan.name == "Lena Fischer" and not plan.notes


def test_a_guest_still_holding_its_assignment_is_only_re_enabled():
    live = AssignmentInfo("a-1", "delivered", "pkg-1", NOW + timedelta(days=60))
    assert plan_guest(undo(), disabled_now(assignment=live), NOW).steps == (Step.ENABLE,)


def test_an_assignment_whose_recorded_end_has_passed_is_not_re_requested_and_the_plan_says_why():
    plan = plan_guest(undo(), disabled_now(record=record(end=NOW)), NOW)
    assert plan.steps == (Step.ENABLE,)
    assert "end date (2026-12-01) has passed" in plan.notes[0]


def test_without_a_recorded_end_the_package_is_not_re_requested():
    plan = plan_guest(undo(), disabled_now(record=record(end=None)), NOW)
    assert plan.steps == (Step.ENABLE,) and "no end date" in plan.notes[0]


def test_a_guest_someone_re_enabled_since_the_run_is_refused():
    plan = plan_guest(undo(), disabled_now(user=lena(account_enabled=True)), NOW)
    assert plan.refused and plan.code == "re-enabled-since" and not plan.steps


def test_a_guest_whose_address_or_type_changed_since_the_run_is_refused_naming_what_changed():
    moved = plan_guest(undo(), disabled_now(user=lena(account_enabled=False, mail="lena@northwind.com")), NOW)
    assert moved.code == "changed-since-run" and "mail" in moved.reason
    promoted = plan_guest(undo(), disabled_now(user=lena(account_enabled=False, user_type="Member")), NOW)
    assert promoted.code == "changed-since-run" and "userType" in promoted.reason


def test_the_comparison_ignores_the_case_of_an_address_and_signins_since():
    same = lena(account_enabled=False, mail="Lena.Fischer@Fabrikam.com", sign_in_activity=SignInActivity(NOW))
    assert plan_guest(undo(), disabled_now(user=same), NOW).acts


def test_a_ticket_or_another_run_after_this_one_refuses_the_undo():
    offboarded = {"at": NOW.isoformat(), "event": "offboarded", "ticket": "RITM0042"}
    plan = plan_guest(undo(), disabled_now(record=record(offboarded)), NOW)
    assert plan.code == "changed-since-run" and "RITM0042" in plan.reason
    deleted = {"at": NOW.isoformat(), "event": "deleted", "rule": "disabled-past-grace", "run": "sweep-2026-12-30"}
    later = plan_guest(undo(), disabled_now(record=record(deleted)), NOW)
    assert later.code == "acted-on-since" and "sweep-2026-12-30" in later.reason


def test_a_sponsors_attestation_after_the_run_is_evidence_not_a_change():
    attested = {"at": NOW.isoformat(), "event": "attested", "ticket": "RITM0050", "by": "m-1"}
    assert plan_guest(undo(), disabled_now(record=record(attested)), NOW).steps[0] is Step.ENABLE


def test_a_later_runs_delete_that_was_itself_undone_does_not_block():
    deleted = {"at": NOW.isoformat(), "event": "deleted", "run": "sweep-2026-12-30"}
    restored = {"at": NOW.isoformat(), "event": "restored", "run": "sweep-2026-12-30", "undid": "delete"}
    assert plan_guest(undo(), disabled_now(record=record(deleted, restored)), NOW).steps[0] is Step.ENABLE


def test_a_guest_deleted_since_a_disable_run_is_refused_until_the_deleting_run_is_undone():
    gone = DeletedUser(lena(account_enabled=False), NOW - timedelta(days=1))
    plan = plan_guest(undo(), disabled_now(user=None, deleted=gone), NOW)
    assert plan.code == "deleted-since"


def test_a_guest_the_run_deleted_is_restored_from_deleted_items_and_stays_disabled():
    gone = DeletedUser(lena(account_enabled=False), ACTED - timedelta(seconds=2))
    plan = plan_guest(undo(Action.DELETE, lena(account_enabled=False)), Seen(None, gone, record(), PACKAGE), NOW)
    assert plan.steps == (Step.RESTORE, Step.REASSIGN)  # its assignments are looked up again once it is back
    assert any("disabled" in note for note in plan.notes)


def test_a_deleted_guest_entra_no_longer_holds_cannot_be_restored():
    plan = plan_guest(undo(Action.DELETE), Seen(None, None, record()), NOW)
    assert plan.code == "purged" and "30 days" in plan.reason


def test_a_deleted_guest_someone_restored_is_refused_but_this_undos_own_restore_is_carried_on():
    back = lena(account_enabled=False)
    theirs = plan_guest(undo(Action.DELETE, back), Seen(back, None, record()), NOW)
    assert theirs.code == "restored-since"
    ours = plan_guest(undo(Action.DELETE, back), Seen(back, None, record(), progress={"done": ["restore"]}), NOW)
    assert not ours.code and Step.RESTORE not in ours.steps


def test_a_guest_deleted_again_long_after_the_run_is_not_this_runs_delete():
    again = DeletedUser(lena(account_enabled=False), ACTED + timedelta(days=3))
    assert plan_guest(undo(Action.DELETE), Seen(None, again, record()), NOW).code == "deleted-again"


def test_a_finished_undo_is_reported_done_not_planned_again():
    plan = plan_guest(undo(), disabled_now(finished=True), NOW)
    assert plan.code == ALREADY_RESTORED and not plan.acts and not plan.refused


def test_the_brake_holds_an_undo_over_the_same_limits_as_the_sweep():
    plans = [plan_guest(undo(), disabled_now(), NOW)] * 3
    refused = [plan_guest(undo(), disabled_now(user=lena()), NOW)] * 5
    limits = DeletionBrake(max_count=2, max_percent=100.0)
    state = brake_state([*plans, *refused], 1000, limits)
    assert state.tripped and state.affected == 3
    assert not brake_state(plans[:2] + refused, 1000, limits).tripped


def test_the_sweep_leaves_a_restored_guest_alone_until_its_cool_off_ends_then_judges_it_afresh():
    policy = SweepPolicy(load_desired_state(SAMPLE_DESIRED_STATE))
    inactive = lena(sign_in_activity=SignInActivity(last_successful_sign_in=NOW - timedelta(days=400)))
    until = NOW + timedelta(days=7)
    restored = GuestRecord(OID, "lena.fischer@fabrikam.com", "fabrikam", GuestState.ACTIVE, rearm_until=until)
    assert decide(inactive, restored, policy, NOW) is Skip.RESTORED_COOL_OFF
    assert decide(inactive, restored, policy, until - timedelta(seconds=1)) is Skip.RESTORED_COOL_OFF
    after = decide(inactive, restored, policy, until)
    assert isinstance(after, Decision) and after.action is Action.DISABLE
