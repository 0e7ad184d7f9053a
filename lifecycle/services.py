"""The bundle of ports a handler gets. Built by app.bootstrap (real) or by tests (fakes), through one door.

``Services`` holds the kernel's ports only: those every job may use (the Directory, the ledgers, the
transport, the clock) and the live protected-group check the safety gate asks before any write to a guest;
beside them, the instance's one ``Admission`` (how many of its messages read before their first write at once).

A job's own ports are one typed dataclass per job, defined in the job's package (``SweepPorts`` in
lifecycle.sweep.ports, ``ResetPorts``, ``DriftPorts``, ``GovernancePorts``). The kernel may not import a
job, so ``Services.jobs`` holds them in a ``JobPorts``: a small registry keyed by the dataclass's class.
A job reads its own with ``services.jobs.find(SweepPorts)``, which is typed (it returns ``SweepPorts |
None``) without the kernel knowing the class. The composition root (app.bootstrap.compose_services) builds
each job's dataclass explicitly from named ports; a job whose ports were not built is absent, and its
entry point says so instead of guessing a substitute.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar, cast

from config.desired_state import DesiredState
from config.settings import Settings
from lifecycle.admission import Admission
from lifecycle.ports import (
    AccessPackages,
    AuditLog,
    Clock,
    Directory,
    GuestLedger,
    ProtectedGroupCheck,
    QueueTransport,
    Rejections,
    WorkItems,
)

P = TypeVar("P")


class JobPorts:
    """Each job's ports dataclass, at most one per class, looked up by that exact class."""

    def __init__(self, *ports: object) -> None:
        self._by_class: dict[type, object] = {}
        for port in ports:
            if type(port) in self._by_class:
                raise ValueError(f"two {type(port).__name__} for one bundle")
            self._by_class[type(port)] = port

    def find(self, kind: type[P]) -> P | None:
        """The ``kind`` the composition root built for this bundle, or None when it built none."""
        return cast("P | None", self._by_class.get(kind))

    def __repr__(self) -> str:
        return f"JobPorts({', '.join(sorted(k.__name__ for k in self._by_class))})"


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
    # The live protected-group check of the safety gate (graph.groups.GraphGroupMembers in Azure).
    protected_groups: ProtectedGroupCheck | None = None
    jobs: JobPorts = field(default_factory=JobPorts)
    # How many of this instance's messages read before their first write at once (lifecycle.admission).
    admission: Admission = field(default_factory=Admission)
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    async def close(self) -> None:
        for close in reversed(self.closers):
            await close()
        self.closers.clear()
