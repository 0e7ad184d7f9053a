"""The bundle of ports a handler gets. Built by app.bootstrap (real) or by tests (fakes)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from config.desired_state import DesiredState
from config.settings import Settings
from lifecycle.ports import (
    AccessPackages,
    AuditLog,
    Clock,
    Directory,
    GuestLedger,
    QueueTransport,
    Rejections,
    WorkItems,
)


@dataclass
class Services:
    settings: Settings
    desired: DesiredState
    clock: Clock
    directory: Directory
    access_packages: AccessPackages
    work_items: WorkItems
    guests: GuestLedger
    audit: AuditLog
    rejections: Rejections
    transport: QueueTransport
    # The configuration jobs' ports: built by bootstrap in Azure and on the local stack, fakes in tests.
    sweep_runs: Any = None  # lifecycle.sweep.ports.SweepRuns
    guest_reads: Any = None  # lean guest listing and re-reads for the sweep
    group_membership: Any = None  # members of the protected group
    assignment_expiries: Any = None  # access package assignment end dates, when attached
    provider_lookup: Any = None  # lifecycle.reset.ports.ProviderLookup
    tenant_policies: Any = None  # lifecycle.drift.ports.TenantPolicies
    drift_reports: Any = None  # lifecycle.drift.ports.DriftReports
    governance_graph: Any = None  # lifecycle.governance.ports.GovernanceGraph
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    async def close(self) -> None:
        for close in reversed(self.closers):
            await close()
        self.closers.clear()
