"""Builders for sweep tests: services on fakes with the brake relaxed, inactive guests, the worker."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from adapters.memory import MemorySweepRuns
from config.desired_state import DeletionBrake, DesiredState, load_desired_state
from config.settings import SAMPLE_DESIRED_STATE
from lifecycle.clock import FixedClock
from lifecycle.ledger.worker import drain
from lifecycle.models import DirectoryUser, SignInActivity
from lifecycle.sweep import entry
from lifecycle.sweep.runner import occurrence_run_id
from tests.builders import NOW, memory_services
from tests.fakes import FakeDirectory

RUN = occurrence_run_id(NOW)
QUEUE = "guest-actions"


def relaxed(services, max_count: int = 10_000, max_percent: float = 100.0):
    lifecycle = services.desired.lifecycle.model_copy(
        update={"deletion_brake": DeletionBrake(max_count=max_count, max_percent=max_percent)}
    )
    services.desired = services.desired.model_copy(update={"lifecycle": lifecycle})
    return services


def stack(directory: FakeDirectory | None = None, clock: FixedClock | None = None, *, brake: bool = False):
    services = memory_services(directory or FakeDirectory(), clock=clock, sweep_runs=MemorySweepRuns(page_size=2))
    return services if brake else relaxed(services)


def add(directory: FakeDirectory, *, days_since_sign_in: int, domain: str = "fabrikam.com", **fields) -> DirectoryUser:
    user = directory.add_guest(f"g{len(directory.users)}@{domain}")
    activity = SignInActivity(last_successful_sign_in=NOW - timedelta(days=days_since_sign_in))
    return directory.put(
        replace(
            user,
            sign_in_activity=activity,
            external_user_state_changed=NOW - timedelta(days=500),
            created=NOW - timedelta(days=501),
            **fields,
        )
    )


async def run_worker(services):
    return await drain(services, QUEUE, entry.handle_guest_action, idle_rounds=1, concurrency=4)


async def audit_actions(services) -> list[str]:
    return [e.action async for e in services.audit.entries()]


def one_rule_for(partner_key: str, **rules: object) -> DesiredState:
    """The sample desired state with only ``rules`` deciding, for ``partner_key`` alone (inactivity and pending
    invitations off everywhere) and the deletion brake out of the way: a stack test of one rule at its boundary."""
    sample = load_desired_state(SAMPLE_DESIRED_STATE)
    off = {"inactive_days": None, "pending_invitation_days": None}
    partners = {
        key: partner.model_copy(
            update={"lifecycle": partner.lifecycle.model_copy(update=off | (rules if key == partner_key else {}))}
        )
        for key, partner in sample.partners.items()
    }
    brake = DeletionBrake(max_count=10_000, max_percent=100.0)
    lifecycle = sample.lifecycle.model_copy(update=off | {"deletion_brake": brake})
    return sample.model_copy(update={"lifecycle": lifecycle, "partners": partners})
