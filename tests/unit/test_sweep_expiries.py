"""How access package assignments fold into one end date per guest (graph.assignment_expiries)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from graph.assignment_expiries import _fold, end_of

GUEST = "3f2a9c1e-4b7d-4e8a-9c0f-1a2b3c4d5e6f"


def assignment(state: str, end: str | None = None, expired: str | None = None, target: str | None = GUEST) -> dict:
    return {
        "id": f"a-{state}-{end}",
        "state": state,
        "expiredDateTime": expired,
        "schedule": {"expiration": {"type": "afterDateTime" if end else "noExpiration", "endDateTime": end}},
        "target": {"objectId": target} if target else None,
    }


def folded(*assignments: dict) -> dict:
    ends: dict = {}
    for item in assignments:
        _fold(ends, item)
    return {k: v for k, v in ends.items() if isinstance(v, datetime)}


def test_an_expired_assignment_ended_when_it_expired_not_at_its_scheduled_end():
    """Removed by an administrator before its end: the access ended at expiredDateTime."""
    removed = assignment("expired", end="2027-06-01T00:00:00Z", expired="2026-11-20T08:00:00Z")
    assert end_of(removed) == datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


def test_the_latest_end_of_a_guest_s_assignments_wins():
    """An expired assignment and a renewed one: the guest ends with the renewed one."""
    ends = folded(
        assignment("expired", end="2026-12-01T00:00:00Z", expired="2026-11-01T00:00:00Z"),
        assignment("delivered", end="2027-03-01T00:00:00Z"),
    )
    assert ends == {GUEST: datetime(2027, 3, 1, tzinfo=UTC)}


@pytest.mark.parametrize("never_first", [True, False])
def test_a_live_assignment_without_an_end_means_no_end_date_in_either_order(never_first: bool):
    """Whatever else the guest holds, a delivered assignment that never expires leaves it without an end."""
    never = assignment("delivered")
    ending = assignment("delivered", end="2026-12-01T00:00:00Z")
    assert folded(*((never, ending) if never_first else (ending, never))) == {}


def test_assignments_without_a_target_or_any_date_are_ignored():
    """No target object id, or an expired assignment that carries no date at all: nothing to learn."""
    assert folded(assignment("delivered", end="2026-12-01T00:00:00Z", target=None), assignment("expired")) == {}
