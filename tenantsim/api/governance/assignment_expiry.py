"""Access package assignments end when their schedule says so, on the tenant's clock.

Entitlement management expires a delivered assignment once its schedule's `expiration.endDateTime` has
passed: from then on it reads `state: expired` (in list, get and `$filter` results alike), the group
memberships it granted are taken back unless another delivered assignment grants the same group, and an
external user left without any live assignment gets the settings' lifecycle action. This runs before each
request, for every assignment whose end is at or before the tenant's clock, so expiry is deterministic and
needs no timer; the end instant itself is already past.

`status` becomes `ExpiredNotificationTriggered`, the value the accessPackageAssignment page lists for the
end of an assignment's lifecycle and the one its expired example shows; `expiredDateTime` is the end.
"""

from __future__ import annotations

import heapq
from datetime import UTC, datetime
from typing import Any

from tenantsim.api.governance.assignments import apply_lifecycle_action, sync_group_memberships
from tenantsim.api.governance.state import GovernanceState, existing_governance_state, scheduled_end
from tenantsim.runtime import Simulator

EXPIRED_STATUS = "ExpiredNotificationTriggered"


def expire_due(sim: Simulator) -> None:
    state = existing_governance_state(sim.directory)
    if state is None or not state.expiries:
        return
    now = sim.now()
    while state.expiries and state.expiries[0][0] <= now:
        end, assignment_id = heapq.heappop(state.expiries)
        assignment = state.assignments.get(assignment_id)
        # Removed, or rescheduled since it was watched: that entry no longer decides anything.
        if assignment is None or assignment["state"] != "delivered" or scheduled_end(assignment) != end:
            continue
        _expire(sim, state, assignment, end)


def _expire(sim: Simulator, state: GovernanceState, assignment: dict[str, Any], end: datetime) -> None:
    assignment["state"], assignment["status"] = "expired", EXPIRED_STATUS
    assignment["expiredDateTime"] = end.astimezone(UTC).isoformat().replace("+00:00", "Z")
    sync_group_memberships(sim, state, assignment["_targetId"], assignment["_accessPackageId"])
    apply_lifecycle_action(sim, state, assignment["_targetId"])
