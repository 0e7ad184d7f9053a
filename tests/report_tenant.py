"""A tenant worth reporting on: guests each sweep rule reaches (now and later), guests no rule may touch, a
hostile display name, last night's runs, drift found by a real plan, and a week of posture snapshots.

Shared by the report's unit tests, its browser tests and the screenshot in the README.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from typing import Any
from unittest import mock

from adapters.memory import MemoryDriftReports, MemorySweepRuns
from lifecycle.dates import end_of
from lifecycle.drift.entry import run_policy_drift
from lifecycle.models import AuditEntry, GuestRecord, GuestState, SignInActivity, WorkItem, WorkStatus
from lifecycle.plans import Mode
from lifecycle.runs.model import DailyRun, RunStatus
from lifecycle.services import Services
from lifecycle.sweep.ports import SweepPorts
from tests.builders import memory_services
from tests.fakes import FakeDirectory
from tests.fuzz.test_fuzz_desired_state import RecordingTenantPolicies

HOSTILE_NAME = 'Ana <img src=x onerror="document.title=\'owned\'"><script>document.title="owned"</script>'
PROTECTED_GROUP = "7d3e9f1a-2b4c-4d6e-8f0a-1b2c3d4e5f6a"  # the sample desired state's protected group


class ReportTenant:
    """The services plus the object ids of the guests the tests point at."""

    def __init__(self, services: Services, directory: FakeDirectory, ids: dict[str, str]) -> None:
        self.services = services
        self.directory = directory
        self.ids = ids


def _seen(days_ago: int, now: Any) -> SignInActivity:
    at = now - timedelta(days=days_ago)
    return SignInActivity(last_sign_in=at, last_successful_sign_in=at)


async def report_tenant(
    *,
    with_history: bool = True,
    hostile: bool = True,
    reads: Callable[[FakeDirectory], Any] | None = None,
    **ports: Any,
) -> ReportTenant:
    """``reads`` wraps the directory as the sweep's guest reads (a tenant without a licence, say); ``hostile``
    adds the guest whose display name is markup (left out of the README's screenshot); ``ports`` go to
    memory_services as they are (``report_store``, say)."""
    directory = FakeDirectory()
    extra = ports | ({"guest_reads": reads(directory)} if reads is not None else {})
    services = memory_services(
        directory,
        **extra,
        sweep_runs=MemorySweepRuns(),
        tenant_policies=RecordingTenantPolicies(),
        drift_reports=MemoryDriftReports(),
    )
    now = services.clock.now()
    ids: dict[str, str] = {}

    def guest(key: str, name: str, mail: str, **changes: Any) -> str:
        user = directory.add_guest(mail, state=changes.pop("state", "Accepted"))
        directory.users[user.id] = replace(user, display_name=name, **changes)
        ids[key] = user.id
        return user.id

    lena = guest("lena", "Lena Fischer", "lena@fabrikam.com", sign_in_activity=_seen(3, now))
    guest(
        "tom",
        "Tom Okafor",
        "tom@fabrikam.com",
        state="PendingAcceptance",
        external_user_state_changed=now - timedelta(days=40),
    )
    priya = guest("priya", "Priya Raman", "priya@northwindtraders.com", account_enabled=False)
    guest("sam", "Sam Lee", "sam@northwindtraders.com", sign_in_activity=_seen(50, now))
    guest("kai", "Kai Moreau", "kai@woodgrovebank.com", sign_in_activity=_seen(400, now))
    if hostile:
        guest("ana", HOSTILE_NAME, "ana@gmail.com", sign_in_activity=_seen(100, now))
    else:
        guest("ana", "Ana Silva", "ana.silva@gmail.com", sign_in_activity=_seen(100, now))
    maria = guest("maria", "Maria Costa", "maria@adatum.com", sign_in_activity=_seen(200, now))
    jonas = guest("jonas", "Jonas Weber", "jonas@adatum.com", sign_in_activity=_seen(1, now))
    guest("noor", "Noor Haddad", "noor@fabrikam.co.uk", sign_in_activity=_seen(20, now))
    directory.add_to_group(PROTECTED_GROUP, maria)

    ledger = (
        GuestRecord(lena, "lena@fabrikam.com", "fabrikam", GuestState.ACTIVE, "anna.berg@contoso.com", "T-101",
                    end_date=end_of((now + timedelta(days=10)).date())),
        GuestRecord(priya, "priya@northwindtraders.com", "northwind", GuestState.DISABLED, "omar.ali@contoso.com",
                    "T-102", disabled=now - timedelta(days=10)),
        GuestRecord(jonas, "jonas@adatum.com", "adatum", GuestState.ACTIVE, "anna.berg@contoso.com", "T-103",
                    end_date=end_of((now - timedelta(days=2)).date())),
    )  # fmt: skip
    for record in ledger:
        await services.guests.save(record)

    failed = await services.work_items.create(
        WorkItem("ticket:T-104", "onboard", WorkStatus.FAILED, created=now, updated=now)
    )
    failed.last_error = {"code": "Authorization_RequestDenied", "message": "Insufficient privileges"}
    await services.work_items.save(failed)

    await _last_night(services)
    if with_history:
        await _history(services)
    return ReportTenant(services, directory, ids)


async def _last_night(services: Services) -> None:
    """The sweep planned at 02:00, drift ran in plan mode (the tenant sits at the service defaults, so every
    partner policy is missing), governance ran clean; the reset left nothing behind."""
    now = services.clock.now()
    sweep = services.jobs.find(SweepPorts)
    assert sweep is not None
    started = now.replace(hour=2, minute=0)
    run = DailyRun(
        "sweep-" + started.date().isoformat(),
        Mode.PLAN,
        RunStatus.PLANNED,
        started,
        updated=started + timedelta(minutes=4),
        total_guests=9,
        actions={"disable/invitation-not-redeemed": 1, "disable/inactive": 1, "disable/past-end-date": 1},
    )
    await sweep.runs.create(run)
    # The run id's random suffix is fixed so the README's screenshot only changes when the report does.
    with mock.patch("lifecycle.drift.entry.uuid.uuid4", return_value=uuid.UUID(int=0xD1F7)):
        await run_policy_drift(services, "plan")
    await services.audit.record(
        AuditEntry(now - timedelta(hours=7), "governance.run", "governance", "plan: 0 change(s), 0 refusal(s)",
                   details={"exitCode": 0, "drift": []})
    )  # fmt: skip


async def _history(services: Services) -> None:
    """A week of daily posture snapshots: guests arriving, a few invitations left pending, disables rising."""
    now = services.clock.now()
    week = [(3, 4, 0), (4, 4, 0), (4, 5, 1), (5, 5, 1), (5, 6, 1), (5, 6, 2), (6, 6, 1)]
    for days_ago, (pending, active, disabled) in zip(range(7, 0, -1), week, strict=True):
        counts = {"pending": pending, "active": active, "disabled": disabled}
        at = now - timedelta(days=days_ago)
        await services.audit.record(AuditEntry(at, "posture.snapshot", "tenant", "daily guest posture", details=counts))
