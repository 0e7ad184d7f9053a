"""The identity governance state of a loaded tenant.

Entitlement management and access review state lives beside the directory (one GovernanceState per loaded
tenant) and starts from the seeded "Partner collaboration" catalog, so onboarding can assign access packages
on a fresh tenant.
"""

from __future__ import annotations

import heapq
import uuid
import weakref
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tenantsim.api.governance.common import instant
from tenantsim.directory import Directory
from tenantsim.runtime import Call
from tenantsim.seed import entitlement_seed

# The assignment states in which an assignment still grants access (accessPackageAssignmentState).
LIVE_ASSIGNMENT = frozenset({"delivering", "delivered", "partiallyDelivered"})


def scheduled_end(assignment: dict[str, Any]) -> datetime | None:
    """When the assignment's schedule ends it; None when the schedule names no end."""
    end = ((assignment.get("schedule") or {}).get("expiration") or {}).get("endDateTime")
    return instant(end) if end is not None else None


@dataclass
class GovernanceState:
    catalogs: dict[str, dict[str, Any]] = field(default_factory=dict)
    packages: dict[str, dict[str, Any]] = field(default_factory=dict)
    policies: dict[str, dict[str, Any]] = field(default_factory=dict)
    organizations: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: dict[str, dict[str, Any]] = field(default_factory=dict)
    assignments: dict[str, dict[str, Any]] = field(default_factory=dict)
    reviews: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Catalog resources (with their roles and scopes) and the role scopes access packages grant.
    resources: dict[str, dict[str, Any]] = field(default_factory=dict)
    role_scopes: dict[str, dict[str, Any]] = field(default_factory=dict)
    settings: dict[str, Any] = field(
        default_factory=lambda: {
            "id": str(uuid.uuid4()),
            "externalUserLifecycleAction": "blockSignInAndDelete",
            "durationUntilExternalUserDeletedAfterBlocked": "P30D",
        }
    )
    # Processing steps of an assignment request until it is delivered; 1 delivers on the first step.
    reads_until_delivered: int = 1
    # Requests still submitted or delivering, for background processing.
    open_requests: set[str] = field(default_factory=set)
    # (end, assignment id) of delivered assignments whose schedule ends: a heap, earliest end first.
    expiries: list[tuple[datetime, str]] = field(default_factory=list)

    def watch_expiry(self, assignment: dict[str, Any]) -> None:
        end = scheduled_end(assignment)
        if end is not None:
            heapq.heappush(self.expiries, (end, assignment["id"]))

    @classmethod
    def seeded(cls) -> GovernanceState:
        seed = entitlement_seed()
        state = cls()
        state.catalogs = {c["id"]: c for c in seed["catalogs"]}
        state.packages = {p["id"]: p for p in seed["accessPackages"]}
        state.policies = {p["id"]: p for p in seed["assignmentPolicies"]}
        state.resources = {r["id"]: r for r in seed["resources"]}
        return state


_STATES: weakref.WeakKeyDictionary[Directory, GovernanceState] = weakref.WeakKeyDictionary()


def governance_state(directory: Directory) -> GovernanceState:
    """The governance state of a loaded tenant; a reseed (a new Directory) starts from the seed again."""
    state = _STATES.get(directory)
    if state is None:
        state = _STATES[directory] = GovernanceState.seeded()
    return state


def existing_governance_state(directory: Directory) -> GovernanceState | None:
    """The governance state of a tenant if anything has read or written it yet."""
    return _STATES.get(directory)


def state_of(call: Call) -> GovernanceState:
    return governance_state(call.sim.directory)
