"""The function index the Functions host would build from function_app.py."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import function_app
from config.settings import load_settings
from lifecycle.jobs import JOBS, trigger_settings
from tests.builders import LOCAL_ENV

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module", name="index")
def _index() -> dict[str, dict]:
    # get_functions() may run once per app object: index once for the module.
    return {f.get_function_name(): json.loads(f.get_function_json()) for f in function_app.app.get_functions()}


# What the host resolves %SETTING% binding expressions to in a deployment without a queue prefix.
RESOLVED = trigger_settings(load_settings(LOCAL_ENV))


def _resolve(value: str) -> str:
    setting = re.fullmatch(r"%(\w+)%", value)
    return RESOLVED[setting.group(1)] if setting else value


def _trigger(index: dict[str, dict], name: str) -> dict:
    [binding] = [b for b in index[name]["bindings"] if b["type"].endswith("Trigger")]
    return {key: _resolve(value) if isinstance(value, str) else value for key, value in binding.items()}


def test_every_function_is_a_job_of_the_registry_with_the_registrys_trigger(index):
    """function_app.py indexes exactly lifecycle/jobs.py's functions, and each trigger reads its queue or
    schedule from the app setting the registry names."""
    assert set(index) == {job.function for job in JOBS}
    for job in JOBS:
        [binding] = [b for b in index[job.function]["bindings"] if b["type"].endswith("Trigger")]
        assert (
            binding["type"]
            == {"queue": "serviceBusTrigger", "timer": "timerTrigger", "http": "httpTrigger"}[job.trigger]
        )
        if job.trigger == "queue":
            assert binding["queueName"] == f"%{job.queue_setting}%"
        if job.trigger == "timer":
            assert binding["schedule"] == f"%{job.schedule_setting}%"


def test_a_queue_prefix_moves_the_triggers_with_the_senders():
    """With LIFECYCLE_QUEUE_PREFIX the settings the triggers resolve name the queues the senders write to."""
    settings = load_settings({**LOCAL_ENV, "LIFECYCLE_QUEUE_PREFIX": "blue-"})
    assert (
        trigger_settings(settings)["LIFECYCLE_ONBOARDING_QUEUE"]
        == settings.queue_name("onboarding")
        == "blue-onboarding"
    )


def test_the_onboarding_worker_is_triggered_by_the_onboarding_service_bus_queue(index):
    """onboarding_worker listens on queue `onboarding` through the ServiceBusConnection setting."""
    trigger = _trigger(index, "onboarding_worker")
    assert trigger["type"] == "serviceBusTrigger"
    assert trigger["queueName"] == "onboarding"
    assert trigger["connection"] == "ServiceBusConnection"


def test_every_service_bus_trigger_uses_the_one_connection_setting(index):
    """All Service Bus triggers share ServiceBusConnection, so senders and triggers use one namespace."""
    connections = {
        _trigger(index, name)["connection"] for name in index if _trigger(index, name)["type"] == "serviceBusTrigger"
    }
    assert connections == {"ServiceBusConnection"}


def test_importing_function_app_builds_no_clients():
    """Indexing must stay cheap: no services are built when function_app is imported."""
    from app import bootstrap

    assert bootstrap._cached == {}


def test_the_signup_connector_is_an_anonymous_post_route_that_authenticates_itself(index):
    """signup_connector is POST /api/signup with no function key: it validates Entra's bearer token itself."""
    trigger = _trigger(index, "signup_connector")
    assert trigger["type"] == "httpTrigger"
    assert trigger["route"] == "signup" and trigger["methods"] == ["POST"]
    assert trigger["authLevel"] == "ANONYMOUS"


def test_the_hold_release_timer_runs_every_five_minutes_and_not_on_startup(index):
    """hold_release fires at second 0 of every fifth minute; never on host start (it would double-fire)."""
    trigger = _trigger(index, "hold_release")
    assert trigger["type"] == "timerTrigger"
    assert trigger["schedule"] == "0 */5 * * * *"
    assert trigger.get("runOnStartup", False) is False


def test_the_policy_drift_timer_runs_hourly_and_not_on_startup(index):
    """policy_drift fires at the top of every hour (six-field NCRONTAB, UTC)."""
    trigger = _trigger(index, "policy_drift")
    assert trigger["type"] == "timerTrigger" and trigger["schedule"] == "0 0 * * * *"
    assert trigger.get("runOnStartup", False) is False


@pytest.mark.parametrize(
    ("name", "schedule"),
    [
        ("guest_sweep", "0 0 2 * * *"),
        ("governance", "0 30 2 * * *"),
        ("redemption_reset", "0 0 3 * * *"),
        ("guest_report", "0 30 3 * * *"),
    ],
)
def test_the_daily_jobs_have_their_schedules_and_never_run_on_startup(index, name, schedule):
    """Nightly sweep at 02:00, governance at 02:30, redemption reset at 03:00, the guest report at 03:30 UTC
    (after the jobs it reports on); no run on host start."""
    trigger = _trigger(index, name)
    assert trigger["type"] == "timerTrigger" and trigger["schedule"] == schedule
    assert trigger.get("runOnStartup", False) is False


def test_the_guest_actions_worker_listens_on_the_guest_actions_queue(index):
    """The sweep's fan-out queue has its worker, on the shared connection setting."""
    trigger = _trigger(index, "guest_actions_worker")
    assert (trigger["type"], trigger["queueName"], trigger["connection"]) == (
        "serviceBusTrigger",
        "guest-actions",
        "ServiceBusConnection",
    )


def test_the_admin_endpoint_takes_post_on_the_plan_and_apply_route_and_checks_its_own_token(index):
    """POST /api/admin/{step} in the jobs app; anonymous at the host, since the handler validates the token."""
    trigger = _trigger(index, "admin_endpoint")
    assert trigger["type"] == "httpTrigger"
    assert (trigger["route"], trigger["methods"], trigger["authLevel"]) == ("admin/{step}", ["POST"], "ANONYMOUS")


def test_every_function_is_accounted_for(index):
    """The index holds exactly the product's functions: a new trigger must come with its test."""
    assert set(index) == {
        "onboarding_worker",
        "signup_connector",
        "admin_endpoint",
        "hold_release",
        "policy_drift",
        "guest_sweep",
        "guest_actions_worker",
        "governance",
        "redemption_reset",
        "guest_report",
    }


def _indexed_under(function_set: str) -> subprocess.CompletedProcess[str]:
    """The function names a fresh worker indexes with LIFECYCLE_FUNCTIONS set, as the host would."""
    code = "import function_app; print(sorted(f.get_function_name() for f in function_app.app.get_functions()))"
    env = {**os.environ, "LIFECYCLE_FUNCTIONS": function_set}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, timeout=60)


def test_the_sign_up_app_indexes_only_the_connector_and_the_jobs_app_everything_else(index):
    """The internet-facing connector runs in its own function app (its own identity, no Graph permission): each
    deployment indexes only its set."""
    signup = _indexed_under("signup")
    jobs = _indexed_under("jobs")
    assert signup.returncode == 0 and jobs.returncode == 0, signup.stderr + jobs.stderr
    assert signup.stdout.strip() == "['signup_connector']"
    assert ast.literal_eval(jobs.stdout.strip()) == sorted(set(index) - {"signup_connector"})


def test_an_unknown_function_set_stops_indexing_with_the_setting_named():
    result = _indexed_under("everything")
    assert result.returncode != 0 and "LIFECYCLE_FUNCTIONS" in result.stderr
