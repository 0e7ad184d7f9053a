"""The ticket's sponsor on a reused guest (a guest this product invites gets it through invitedUserSponsors)."""

from __future__ import annotations

from enum import StrEnum

import structlog

from lifecycle.errors import PermissionDeniedError
from lifecycle.ledger import work
from lifecycle.models import WorkItem
from lifecycle.services import Services

log = structlog.get_logger(__name__)

# Checkpointed on the work item right before the sponsor is added, so a retry after a crash between the add
# and the audit still knows the sponsor it finds is this ticket's change.
ADDING_SPONSOR = "addingSponsor"
# Adding a sponsor needs User.ReadWrite.All, which would supersede every narrower user permission the
# product holds; it is not in graph.permissions and an operator grants it to have reused guests sponsored.
SPONSOR_PERMISSION = "User.ReadWrite.All"


class SponsorResult(StrEnum):
    ADDED = "added"
    ALREADY = "already-sponsor"
    NOT_PERMITTED = "not-added-permission"


async def ensure_sponsor(
    services: Services, item: WorkItem, guest_id: str, sponsor_id: str
) -> tuple[WorkItem, SponsorResult]:
    """Add ``sponsor_id`` to the guest's sponsors unless it is one already. Idempotent."""
    if sponsor_id in await services.directory.sponsor_ids(guest_id):
        mine = item.result.get(ADDING_SPONSOR) == sponsor_id
        return item, SponsorResult.ADDED if mine else SponsorResult.ALREADY
    item = await work.checkpoint(services, item, **{ADDING_SPONSOR: sponsor_id})
    try:
        added = await services.directory.add_sponsor(guest_id, sponsor_id)
    except PermissionDeniedError as exc:
        log.warning(
            "onboarding.sponsor-not-added", key=item.key, guest=guest_id, needs=SPONSOR_PERMISSION, error=str(exc)
        )
        return item, SponsorResult.NOT_PERMITTED
    return item, SponsorResult.ADDED if added else SponsorResult.ALREADY
