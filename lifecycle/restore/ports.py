"""What an undo reads and writes beyond the kernel's ports: the sweep's runs, and Entra's deleted items.

``RestorePorts`` is the bundle, built by the composition root and held in ``Services.jobs``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from lifecycle.models import DirectoryUser
from lifecycle.sweep.ports import GuestReads, SweepRuns


@dataclass(frozen=True, slots=True)
class DeletedUser:
    """A user in Entra's deleted items: restorable until Entra deletes it for good (30 days)."""

    user: DirectoryUser
    deleted: datetime | None


class DeletedUsers(Protocol):
    async def deleted_user(self, object_id: str) -> DeletedUser | None:
        """The user as deleted items hold it; None when it is not there (never deleted, restored, or purged)."""
        ...

    async def restore_user(self, object_id: str) -> None:
        """Bring the user back from deleted items with its object id; raises NotFoundError when it is gone."""
        ...


@dataclass(frozen=True, eq=False)
class RestorePorts:
    """The sweep's run store (what a run planned), the guest re-reads, and deleted items."""

    runs: SweepRuns
    guest_reads: GuestReads
    deleted: DeletedUsers
