"""The bundle of ports a handler gets. Built by lifecycle.bootstrap (real) or by tests (fakes)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

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
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    async def close(self) -> None:
        for close in reversed(self.closers):
            await close()
        self.closers.clear()
