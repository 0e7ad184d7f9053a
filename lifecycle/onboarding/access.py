"""The partner's access package for an onboarded guest: assigned with the ticket's end date.

Entitlement management processes assignment requests asynchronously, so the handler submits once (the
request id is checkpointed on the work item before anything else can go wrong) and then follows the
request on later attempts until it is delivered or has failed.

A guest invited moments ago may not have reached the replica that takes the assignment request: Graph then
answers 404 for it, as for any object managed right after its creation, and the cure is to wait and retry
with a doubling pause. Within ``REPLICATION_WINDOW_SECONDS`` of the invitation that refusal is a delayed
retry of the same step (no request exists yet, so the retry cannot make a second one); after it, a 404 is a
failure like any other.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any, Literal

from lifecycle.access_requests import earlier_request, since_first_attempt
from lifecycle.dates import shown_end
from lifecycle.errors import NotFoundError
from lifecycle.ledger import work
from lifecycle.ledger.outcomes import Outcome, Verdict
from lifecycle.models import AccessPackageTarget, AssignmentInfo, AuditEntry, WorkItem, WorkStatus
from lifecycle.onboarding.policy import ApprovedOnboarding
from lifecycle.services import Services
from lifecycle.together import together

POLL_BASE_SECONDS = 5.0
POLL_CAP_SECONDS = 300.0
# Replication "might take several minutes" (Microsoft's note on 404s for objects just created).
REPLICATION_WINDOW_SECONDS = 600.0
REPLICATION_RETRY_BASE_SECONDS = 2.0
REPLICATION_RETRY_CAP_SECONDS = 120.0
# When onboarding invited the guest (ISO 8601), checkpointed with the invitation; absent for a reused guest.
INVITED_AT = "invitedAt"
# When, and in which attempt, step 2 began: checkpointed with step 1's end, so a later attempt knows whether an
# earlier one may have sent an assignment request it did not live to record, and since when.
ASSIGNING = "assigning"


class _NotLookedUp(Enum):
    NOT_LOOKED_UP = "not looked up"


NOT_LOOKED_UP = _NotLookedUp.NOT_LOOKED_UP
# The guest's live assignment of the package as read a moment ago (None: none), or NOT_LOOKED_UP.
Lookup = AssignmentInfo | None | Literal[_NotLookedUp.NOT_LOOKED_UP]


async def existing_assignment(services: Services, item: WorkItem, decision: ApprovedOnboarding, user_id: str) -> Lookup:
    """The read ``ensure_assignment`` starts with when no request was made yet, for the invitation step to make
    beside its own writes (the package was resolved before the invitation: no Graph call here)."""
    target = await resolve_package(services, item, decision)
    if not isinstance(target, AccessPackageTarget):
        return NOT_LOOKED_UP
    return await services.access_packages.find_assignment(user_id, target.package_id)


async def ensure_assignment(
    services: Services,
    item: WorkItem,
    decision: ApprovedOnboarding,
    user_id: str,
    ticket_id: str,
    *,
    known: Lookup = NOT_LOOKED_UP,
) -> tuple[WorkItem, Outcome | None]:
    """Returns the updated item and None once the assignment is delivered, or an Outcome to stop with.

    ``known`` is the guest's assignment when the caller has just read it (``existing_assignment``). A delivered
    assignment is marked on the returned item but not saved: the caller finishes the item.
    """
    if item.result.get("assignment") == "delivered":
        return item, None
    target = await resolve_package(services, item, decision)
    if target is None:
        return item, None
    if isinstance(target, PackageMissing):
        return item, await work.fail_with(services, item, "access-package-not-found", target.message, target.details)

    request_id = item.result.get("assignmentRequestId")
    justification = f"Onboarding ticket {ticket_id}"
    if request_id is None and (earlier := await earlier_request(services, item, target, justification, _since(item))):
        # Sent by an attempt that died before recording it: followed, so it is this ticket's assignment.
        item = await work.checkpoint(services, item, assignmentRequestId=earlier.id, polls=0)
        request_id = earlier.id
    if request_id is None:
        existing = (
            await services.access_packages.find_assignment(user_id, target.package_id)
            if known is NOT_LOOKED_UP
            else known
        )
        if existing is not None and existing.state == "delivered":
            return await _delivered(services, item, user_id, existing.id, reused=True), None
        if existing is not None:
            # Still delivering (perhaps from this ticket's own request, sent by an attempt that died before
            # recording its id): a second request would be refused, so wait for this one to land.
            return await _pending(services, item, existing.state)
        try:
            request = await services.access_packages.request_assignment(user_id, target, decision.end, justification)
        except NotFoundError as exc:
            if not _replicating(services, item):
                raise
            return await _not_replicated(services, item, exc)
        # Recorded while the request is read: an attempt that lost the work item to another while it waited stops
        # at this checkpoint (``together`` raises its conflict) and never follows a request the other attempt
        # does not know of; what it read is dropped.
        request_id = request.id
        item, request = await together(
            work.checkpoint(services, item, assignmentRequestId=request_id, polls=0),
            services.access_packages.get_request(request_id),
        )
    else:
        request = await services.access_packages.get_request(request_id)
    state = request.state if request else "missing"
    if state == "delivered":
        return await _delivered(services, item, user_id, request_id, reused=False), None
    if request is None or request.failed:
        return item, await work.fail_with(
            services,
            item,
            f"assignment-{state.lower()}",
            f"the access package assignment request {request_id} ended {state}",
            {"requestId": request_id, "status": request.status if request else None},
        )
    return await _pending(services, item, state)


def step_two(services: Services, item: WorkItem) -> dict[str, Any]:
    """What the checkpoint that ends step 1 records for step 2: when and in which attempt it begins."""
    return {ASSIGNING: {"at": services.clock.now().isoformat(), "attempt": item.attempts}}


def _since(item: WorkItem) -> datetime | None:
    """When an earlier attempt began step 2 (and so may have sent a request), or None: none did."""
    begun = item.result.get(ASSIGNING)
    if isinstance(begun, dict):
        return datetime.fromisoformat(begun["at"]) if int(begun["attempt"]) < item.attempts else None
    # Recorded before step 2 was marked: any later attempt may follow one that sent a request.
    return since_first_attempt(item)


async def _pending(services: Services, item: WorkItem, state: str) -> tuple[WorkItem, Outcome]:
    """Look again later, a little later each time."""
    polls = int(item.result.get("polls", 0)) + 1
    item.status = WorkStatus.QUEUED  # this attempt is over; the next one may start without waiting for a lease
    item = await work.checkpoint(services, item, polls=polls)
    delay = min(POLL_CAP_SECONDS, POLL_BASE_SECONDS * polls)
    return item, Outcome(item.key, Verdict.RETRY, code="assignment-pending", message=state, retry_after=delay)


def _replicating(services: Services, item: WorkItem) -> bool:
    """Whether this ticket invited the guest recently enough for Graph not to know it everywhere yet."""
    invited = item.result.get(INVITED_AT)
    if not invited:
        return False
    age = (services.clock.now() - datetime.fromisoformat(str(invited))).total_seconds()
    return age < REPLICATION_WINDOW_SECONDS


async def _not_replicated(services: Services, item: WorkItem, error: NotFoundError) -> tuple[WorkItem, Outcome]:
    """The assignment request was refused because the new guest has not replicated: ask again later,
    doubling the pause each time. Nothing was created, so the next attempt sends the one request again."""
    waits = int(item.result.get("replicationWaits", 0)) + 1
    item.status = WorkStatus.QUEUED
    item = await work.checkpoint(services, item, replicationWaits=waits)
    delay = min(REPLICATION_RETRY_CAP_SECONDS, REPLICATION_RETRY_BASE_SECONDS * 2 ** (waits - 1))
    return item, Outcome(
        item.key,
        Verdict.RETRY,
        code="target-replicating",
        message=f"the new guest is not replicated yet: {error}",
        retry_after=delay,
        detail=error.describe(),
    )


@dataclass(frozen=True)
class PackageMissing:
    message: str
    details: dict[str, str]


async def resolve_package(
    services: Services, item: WorkItem, decision: ApprovedOnboarding
) -> AccessPackageTarget | PackageMissing | None:
    """The package to assign and the policy to assign it through, or why there is none; None when the partner
    has no package. Kept on ``item.result`` (saved with the next checkpoint: until a request exists,
    resolving again on a retry gives the same package).

    Onboarding calls this before inviting, so a ticket naming a package that does not exist creates no guest.
    """
    known = item.result.get("package")
    if known is not None:
        return AccessPackageTarget(known["id"], known["policy"])
    catalog = decision.partner.access_package.catalog if decision.partner.access_package else None
    if catalog is None or decision.access_package is None:
        return None
    target = await services.access_packages.resolve(catalog, decision.access_package)
    if target is None:
        return PackageMissing(
            f"no access package {decision.access_package!r} with an assignment policy in catalog {catalog!r}",
            {"catalog": catalog, "package": decision.access_package},
        )
    item.result = {**item.result, "package": {"id": target.package_id, "policy": target.policy_id}}
    return target


async def _delivered(services: Services, item: WorkItem, user_id: str, reference: str, *, reused: bool) -> WorkItem:
    """Audit the delivery. The item is not saved here: the caller finishes it, which records the delivery."""
    await services.audit.record(
        AuditEntry(
            services.clock.now(),
            "access.assigned" if not reused else "access.already-assigned",
            user_id,
            f"access package {item.result['package']['id']} until {_shown(item.result.get('endDate'))}",
            key=item.key,
            details={"reference": reference},
        )
    )
    item.result = {**item.result, "assignment": "delivered"}
    return item


def _shown(end: str | None) -> str:
    """The stored end (an ISO time, exclusive) as the inclusive last day the ticket gave."""
    return shown_end(datetime.fromisoformat(end)) if end else "?"
