"""Read-only evidence the governance run reports beside its plan: where each access review stands.

Never drift: an instance's status is Graph's account of the review running, not a setting to enforce.
"""

from __future__ import annotations

from itertools import groupby
from typing import Any

import structlog

from lifecycle.errors import GraphError
from lifecycle.governance.planner import Snapshot
from lifecycle.governance.ports import REVIEW_INSTANCES, REVIEWS, GovernanceGraph
from lifecycle.governance.resource import DesiredResource

log = structlog.get_logger(__name__)


async def review_instances(
    graph: GovernanceGraph, desired: list[DesiredResource], snapshot: Snapshot
) -> list[dict[str, Any]]:
    """Per review definition in the tenant: how many instances it has and the current one."""
    found = []
    for resource in desired:
        definition_id = snapshot.id_of(resource.key) if resource.kind == REVIEWS else None
        if definition_id is None:
            continue
        entry: dict[str, Any] = {"key": resource.key, "definitionId": definition_id}
        try:
            instances = await graph.list(REVIEW_INSTANCES, definition_id)
        except GraphError as error:
            log.warning("governance.instances_unreadable", key=resource.key, error=str(error))
            found.append({**entry, "error": error.describe()})
            continue
        found.append({**entry, "instances": len(instances), "current": current_instance(instances)})
    return found


def current_instance(instances: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The occurrence under way; else the latest one that ran; else the next one. A review of all groups
    has one instance per group and occurrence, so an occurrence is the instances sharing a start."""
    occurrences = [list(group) for _, group in groupby(sorted(instances, key=_start), key=_start)]  # oldest first
    if not occurrences:
        return None
    running = [o for o in occurrences if any(i.get("status") == "InProgress" for i in o)]
    started = [o for o in occurrences if any(i.get("status") != "NotStarted" for i in o)]
    chosen = running[-1] if running else started[-1] if started else occurrences[0]
    statuses = {i.get("status") for i in chosen}
    return {
        "startDateTime": chosen[0].get("startDateTime"),
        "endDateTime": chosen[0].get("endDateTime"),
        "status": "InProgress" if "InProgress" in statuses else chosen[0].get("status"),
        "instances": len(chosen),
    }


def _start(instance: dict[str, Any]) -> str:
    return str(instance.get("startDateTime") or "")
