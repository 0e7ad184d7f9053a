"""One assignment request per work item, even across an attempt that died right after sending it.

Entitlement management processes a request in the background: the assignment is created "subsequently"
(the create-request page). An attempt that sent a request and died before checkpointing its id leaves a
request that may still deliver, and the attempt that takes over may not see its assignment yet. So when an
earlier attempt reached the request step, the next one looks for a request of its own made since then (the
justification names the work item) before sending one, and follows it instead of making a second assignment.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import structlog

from lifecycle.models import AccessPackageTarget, AssignmentRequestInfo, WorkItem
from lifecycle.services import Services

log = structlog.get_logger(__name__)
# Graph stamps createdDateTime with its own clock; look back this much further than the item's creation.
CLOCK_SKEW = timedelta(minutes=5)


def since_first_attempt(item: WorkItem) -> datetime | None:
    """When the item's first attempt began, if this is a later one: any earlier attempt may have sent a request."""
    return item.created if item.attempts > 1 else None


async def earlier_request(
    services: Services, item: WorkItem, target: AccessPackageTarget, justification: str, since: datetime | None
) -> AssignmentRequestInfo | None:
    """The request an earlier attempt of this item sent without recording it, if any. ``since`` is when the
    earliest attempt that may have sent one began its request step (None: no earlier attempt got that far, and
    Graph is asked nothing)."""
    if since is None:
        return None
    earlier = await services.access_packages.find_request(target.package_id, justification, since - CLOCK_SKEW)
    if earlier is not None:
        log.info("access.request-found", key=item.key, request_id=earlier.id, state=earlier.state)
    return earlier
