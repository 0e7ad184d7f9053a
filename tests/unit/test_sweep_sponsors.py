"""Sponsor coverage, guest by guest: who answers for a guest, and the tally a run keeps (and resumes)."""

from __future__ import annotations

from lifecycle.models import DirectoryUser, GuestRecord, GuestState, SponsorRef
from lifecycle.sweep.sponsors import Coverage, SponsorTally, classify

MEMBER = SponsorRef("m-1", account_enabled=True, user_type="Member")
DISABLED = SponsorRef("m-2", account_enabled=False, user_type="Member")
GUEST = SponsorRef("g-9", account_enabled=True, user_type="Guest")
GROUP = SponsorRef("grp-1", is_group=True)
UNKNOWN = SponsorRef("m-3")


def guest(oid: str, *sponsors: SponsorRef) -> DirectoryUser:
    return DirectoryUser(oid, "Guest", sponsors=sponsors)


def test_one_enabled_member_or_a_group_covers_a_guest_whatever_its_other_sponsors():
    assert classify([DISABLED, MEMBER], recorded=True) is Coverage.COVERED
    assert classify([GROUP], recorded=False) is Coverage.COVERED


def test_no_listed_sponsor_is_no_sponsor_or_gone_when_the_ledger_recorded_one():
    assert classify([], recorded=False) is Coverage.NO_SPONSOR
    assert classify([], recorded=True) is Coverage.SPONSOR_GONE


def test_disabled_sponsors_come_before_sponsors_who_are_no_longer_members():
    assert classify([DISABLED, GUEST], recorded=True) is Coverage.SPONSOR_DISABLED
    assert classify([GUEST], recorded=True) is Coverage.SPONSOR_NOT_MEMBER


def test_a_sponsor_whose_state_is_unknown_leaves_the_guest_pending_unless_another_answers():
    assert classify([UNKNOWN], recorded=True) is None
    assert classify([UNKNOWN, MEMBER], recorded=True) is Coverage.COVERED


async def test_pending_guests_are_settled_by_one_lookup_of_their_sponsors_and_a_vanished_one_is_gone():
    tally = SponsorTally()
    record = GuestRecord("a", "a@fabrikam.com", "fabrikam", GuestState.ACTIVE, sponsor="m-3")
    tally.add(guest("a", UNKNOWN), record)
    tally.add(guest("b", UNKNOWN), None)
    tally.add(guest("c", SponsorRef("m-4")), None)
    tally.add(guest("d", MEMBER), None)
    tally.add(DirectoryUser("e", "Guest"), None)  # a read that did not expand sponsors counts nowhere
    asked: list[list[str]] = []

    async def states(ids: list[str]) -> dict[str, SponsorRef]:
        asked.append(ids)
        return {"m-3": SponsorRef("m-3", account_enabled=False, user_type="Member")}

    resumed = SponsorTally.from_json(tally.to_json())  # a run resumed between pages keeps what it had
    await resumed.settle(states)
    assert asked == [["m-3", "m-4"]]
    assert dict(resumed.counts) == {"covered": 1, "sponsor-disabled": 2, "sponsor-gone": 1}
    assert resumed.examples == {"sponsor-disabled": ["a", "b"], "sponsor-gone": ["c"]}
    assert "pending" not in resumed.to_json()
