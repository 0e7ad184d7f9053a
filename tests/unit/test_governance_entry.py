"""Governance's timer entry: the mode it runs in and the port it uses, on fakes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from config.desired_state import load_desired_state, parse_desired_state
from config.settings import SAMPLE_DESIRED_STATE, load_settings
from lifecycle.clock import FixedClock
from lifecycle.governance.entry import on_timer, scheduled_mode
from lifecycle.jobs import job
from tests.builders import LOCAL_ENV, memory_services
from tests.fakes import FakeGovernanceGraph


def _services(setting: str, file_mode: str, graph=None):
    raw = load_desired_state(SAMPLE_DESIRED_STATE).model_dump(mode="json", by_alias=True, exclude_none=True)
    raw["governance"]["scheduledMode"] = file_mode
    return memory_services(
        settings=load_settings({**LOCAL_ENV, "LIFECYCLE_GOVERNANCE_MODE": setting}),
        desired=parse_desired_state(raw),
        clock=FixedClock(datetime(2026, 3, 1, tzinfo=UTC)),
        **({"governance_graph": graph} if graph is not None else {}),
    )


@pytest.mark.parametrize(
    ("setting", "file_mode", "expected"),
    [("plan", "plan", "plan"), ("enforce", "plan", "enforce"), ("plan", "enforce", "enforce")],
)
def test_the_timer_enforces_only_when_asked(setting, file_mode, expected):
    """Plan is the default; either the app setting or the desired-state file can ask for enforce."""
    assert scheduled_mode(_services(setting, file_mode)) == expected


async def test_the_timer_runs_the_job_through_the_attached_port():
    """A timer run in enforce mode writes through the bundle's governance port and returns the run."""
    graph = FakeGovernanceGraph()
    result = await on_timer(_services("enforce", "plan", graph), past_due=True)
    assert result["mode"] == "enforce" and result["exitCode"] == 0 and graph.writes


async def test_without_an_attached_port_the_timer_fails_loudly():
    """A composition root that forgot the gateway is an error, not a silent no-op."""
    with pytest.raises(RuntimeError, match="governance_graph"):
        await on_timer(_services("plan", "plan"), past_due=False)


def test_the_schedule_is_a_daily_six_field_ncrontab():
    """Six fields, once a day."""
    assert job("governance").default_schedule.split() == ["0", "30", "2", "*", "*", "*"]
