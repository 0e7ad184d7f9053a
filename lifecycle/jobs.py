"""Every job, declared once: its function, trigger, queue or schedule, and the setting that picks its mode.

function_app.py builds its triggers from this table, the command line's `run` lists its names, infra
deploys its queue and schedule settings and its queues (a test holds infra/queues.json and main.bicep to
it), and `status`, `replay`, `purge` and `doctor` read the queues from here. Data only: importing it builds
nothing and imports no job, so the Functions host indexes cheaply.

Triggers read their queue name and schedule from app settings (``%LIFECYCLE_..._QUEUE%``,
``%LIFECYCLE_..._SCHEDULE%``), which infra sets from the deployment's queue prefix and this table's
defaults: the queue a trigger listens on is always the one the senders (settings.queue_name) write to.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from config.settings import DEFAULT_SCHEDULES, Settings

Trigger = Literal["queue", "timer", "http"]


@dataclass(frozen=True, slots=True)
class JobSpec:
    name: str  # the job's name in the CLI, the ledger, the permission table and the docs
    function: str  # the Functions function (function_app.py)
    trigger: Trigger
    summary: str
    queue: str | None = None  # logical queue it consumes (queue triggers)
    schedule_setting: str | None = None  # app setting holding its NCRONTAB schedule (timer triggers)
    mode_setting: str | None = None  # app setting choosing plan or enforce, for jobs that have a mode
    function_set: Literal["jobs", "signup"] = "jobs"
    on_demand: bool = False  # `python -m lifecycle run NAME` runs it once, as its trigger would

    @property
    def queue_setting(self) -> str | None:
        return queue_setting(self.queue) if self.queue else None

    @property
    def default_schedule(self) -> str | None:
        return DEFAULT_SCHEDULES[self.schedule_setting] if self.schedule_setting else None

    def binding_queue(self) -> str:
        """The trigger's queueName: the app setting the host resolves at startup."""
        assert self.queue_setting, f"{self.name} has no queue"
        return f"%{self.queue_setting}%"

    def binding_schedule(self) -> str:
        assert self.schedule_setting, f"{self.name} has no schedule"
        return f"%{self.schedule_setting}%"


def queue_setting(logical: str) -> str:
    return f"LIFECYCLE_{logical.upper().replace('-', '_')}_QUEUE"


JOBS: tuple[JobSpec, ...] = (
    JobSpec(
        "onboarding",
        "onboarding_worker",
        "queue",
        "tickets from the ticketing system: invite, assign, extend, offboard, reset",
        queue="onboarding",
        on_demand=True,
    ),
    JobSpec(
        "hold-release",
        "hold_release",
        "timer",
        "sends tickets held for their notBefore when they come due",
        schedule_setting="LIFECYCLE_HOLD_RELEASE_SCHEDULE",
    ),
    JobSpec(
        "guest-sweep",
        "guest_sweep",
        "timer",
        "nightly: plan the guests past their end date, inactive or never redeemed; fan out if enforcing",
        schedule_setting="LIFECYCLE_SWEEP_SCHEDULE",
        mode_setting="LIFECYCLE_SWEEP_MODE",
        on_demand=True,
    ),
    JobSpec(
        "guest-actions",
        "guest_actions_worker",
        "queue",
        "one planned sweep action (disable, delete, sponsor notice) or one guest of a redemption-reset run, "
        "re-checked right before it is applied",
        queue="guest-actions",
        mode_setting="LIFECYCLE_SWEEP_MODE",
    ),
    JobSpec(
        "policy-drift",
        "policy_drift",
        "timer",
        "hourly: cross-tenant access, who may invite, the domain list, direct federation against the file",
        schedule_setting="LIFECYCLE_DRIFT_SCHEDULE",
        mode_setting="LIFECYCLE_DRIFT_MODE",
        on_demand=True,
    ),
    JobSpec(
        "governance",
        "governance",
        "timer",
        "daily: access reviews and entitlement management against the file",
        schedule_setting="LIFECYCLE_GOVERNANCE_SCHEDULE",
        mode_setting="LIFECYCLE_GOVERNANCE_MODE",
        on_demand=True,
    ),
    JobSpec(
        "redemption-reset",
        "redemption_reset",
        "timer",
        "daily: guests whose partner changed identity provider re-redeem (opt-in)",
        schedule_setting="LIFECYCLE_RESET_SCHEDULE",
        mode_setting="LIFECYCLE_RESET_MODE",
        on_demand=True,
    ),
    JobSpec(
        "guest-report",
        "guest_report",
        "timer",
        "daily: the guest-posture report (HTML and markdown) to the reports blob container, latest and dated",
        schedule_setting="LIFECYCLE_REPORT_SCHEDULE",
        on_demand=True,
    ),
    JobSpec(
        "admin",
        "admin_endpoint",
        "http",
        "POST /api/admin/{plan|apply}: an operator's tenant-changing command, run with this app's identity",
    ),
    JobSpec(
        "sign-up",
        "signup_connector",
        "http",
        "the self-service sign-up API connector (its own function app)",
        function_set="signup",
    ),
)

BY_NAME = {job.name: job for job in JOBS}
ON_DEMAND = tuple(job.name for job in JOBS if job.on_demand)
BY_FUNCTION = {job.function: job for job in JOBS}
# Queues the product consumes (triggers), and the one it only sends to (the ticketing system reads it).
CONSUMED_QUEUES = tuple(job.queue for job in JOBS if job.queue)
OUTBOUND_QUEUES = ("sponsor-notices",)
ALL_QUEUES = CONSUMED_QUEUES + OUTBOUND_QUEUES


def job(name: str) -> JobSpec:
    return BY_NAME[name]


def trigger_settings(settings: Settings) -> dict[str, str]:
    """The app settings the triggers resolve, for a deployment with ``settings``' queue prefix and schedules."""
    values = {queue_setting(q): settings.queue_name(q) for q in CONSUMED_QUEUES}
    values |= {name: getattr(settings, field) for name, field in SCHEDULE_FIELDS.items()}
    return values


SCHEDULE_FIELDS = {
    "LIFECYCLE_HOLD_RELEASE_SCHEDULE": "hold_release_schedule",
    "LIFECYCLE_SWEEP_SCHEDULE": "sweep_schedule",
    "LIFECYCLE_DRIFT_SCHEDULE": "drift_schedule",
    "LIFECYCLE_GOVERNANCE_SCHEDULE": "governance_schedule",
    "LIFECYCLE_RESET_SCHEDULE": "reset_schedule",
    "LIFECYCLE_REPORT_SCHEDULE": "report_schedule",
}
