"""The one safety gate: every write to a guest passes it, whatever asked for the write.

A ticketing system, the nightly sweep, the reset run, a replay and an operator's CLI command all end in a
call that disables, deletes, re-addresses or resets a guest. The rules that keep those calls safe are
the same for every origin, so they live here once and every path asks the gate right before it writes:

- never a member: only ``userType`` Guest is ever touched;
- never an excluded object id or a member of the protected group (nested groups included), checked
  against Graph at the moment of the write, not against a list read when a run started;
- only what this product manages: a path that acts on a named guest (a ticket, a CLI command) needs the
  guest's ledger row unless the desired state lets tickets act on unmanaged guests; the sweep's rules
  cover every guest by design and ask with ``managed_only=False``;
- only what an approved plan holds: a write that belongs to a run is checked against the run's stored
  plan, never against what a queue message claims the plan said;
- the configured mode: nothing is written in plan mode.

The gate only answers; the caller turns a refusal into its own outcome (a rejected ticket, a dropped
action) and records the reason.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING

from config.desired_state import DesiredState
from lifecycle.errors import PermissionDeniedError
from lifecycle.models import DirectoryUser, GuestRecord
from lifecycle.ports import ProtectedGroupCheck

if TYPE_CHECKING:
    from lifecycle.services import Services


class Write(enum.StrEnum):
    """What the caller is about to do to the guest."""

    DISABLE = "disable"
    DELETE = "delete"
    RESET_REDEMPTION = "reset-redemption"
    CHANGE_ADDRESS = "change-address"
    EXTEND = "extend"
    # An undo of a sweep run (lifecycle.restore): bring a deleted guest back, re-enable a disabled one.
    RESTORE = "restore"
    ENABLE = "enable"
    # A sponsor's attestation: written to the ledger only, under the same rules as a ticket that writes to Graph.
    ATTEST = "attest"
    # Adopting a guest invited by hand into the ledger (its sponsor from Graph): the ledger only, same rules.
    ADOPT = "adopt"


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why the gate refused: a machine-readable code and a sentence for a person."""

    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class SafetyGate:
    """The rules of the module docstring over the desired state and a live protected-group check."""

    def __init__(self, desired: DesiredState, protected: ProtectedGroupCheck | None) -> None:
        self._desired = desired
        self._protected = protected

    @property
    def excluded_ids(self) -> frozenset[str]:
        return frozenset(self._desired.exclusions.object_ids)

    async def refusal(
        self,
        user: DirectoryUser | None,
        record: GuestRecord | None,
        write: Write,
        *,
        managed_only: bool = True,
        enforce: bool = True,
    ) -> Refusal | None:
        """None when ``write`` may go ahead on ``user``; otherwise the first rule it breaks.

        Raises PermissionDeniedError when the protected group is configured but cannot be checked: a guest
        whose protection cannot be proven is never touched, and the caller fails replayably.
        """
        if not enforce:
            return Refusal("plan-mode", f"the job runs in plan mode: {write.value} is planned, not applied")
        if user is None:
            return Refusal("guest-not-found", "no such user in the directory")
        found = self._identity_refusal(user)
        if found is not None:
            return found
        # A deleted object's memberships cannot be read (transitiveMemberOf) before it is restored; the sweep never
        # deletes a protected guest, and re-enabling a restored guest passes this gate again, protection included.
        if write is not Write.RESTORE and await self.is_protected(user.id):
            return _protected(user)
        if managed_only and record is None and not self._desired.safety.tickets_may_act_on_unmanaged_guests:
            return Refusal(
                "guest-not-managed",
                f"{_name(user)} was not onboarded by this product (no ledger row); "
                "safety.ticketsMayActOnUnmanagedGuests is off",
            )
        return None

    def planned_refusal(self, user: DirectoryUser, protected_members: frozenset[str]) -> Refusal | None:
        """The same rules over the protected group's members read once, for a plan that judges many guests (what
        Microsoft's own lifecycle policies would do to them); a write still asks ``refusal`` at its moment."""
        found = self._identity_refusal(user)
        if found is None and user.id.lower() in protected_members:
            return _protected(user)
        return found

    def _identity_refusal(self, user: DirectoryUser) -> Refusal | None:
        if not user.is_guest:
            return Refusal("not-a-guest", f"{_name(user)} is a member; members are never touched")
        if user.id.lower() in self.excluded_ids:
            return Refusal("guest-excluded", f"{_name(user)} is listed in exclusions.objectIds")
        return None

    async def is_protected(self, object_id: str) -> bool:
        group_id = self._desired.exclusions.protected_group_id
        if not group_id:
            return False
        if self._protected is None:
            raise PermissionDeniedError(
                f"the protected group {group_id} is configured but this deployment cannot check membership; "
                "not touching any guest"
            )
        return group_id in {g.lower() for g in await self._protected.groups_containing(object_id, [group_id])}


def _protected(user: DirectoryUser) -> Refusal:
    return Refusal("guest-protected", f"{_name(user)} is in the protected group (directly or nested)")


def _name(user: DirectoryUser) -> str:
    return user.mail or user.user_principal_name or user.id


def gate_of(services: Services) -> SafetyGate:
    """The gate over the bundle's live protected-group check. Without one (``services.protected_groups`` is
    None) the gate refuses every guest while a protected group is configured."""
    return SafetyGate(services.desired, services.protected_groups)
