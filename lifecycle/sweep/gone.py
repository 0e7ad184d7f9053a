"""What the worker does for the sponsor-gone rule besides the disable: send the sponsor-reassign event and mark
the moment on the guest's ledger row, or clear the mark once a sponsor answers for the guest again."""

from __future__ import annotations

from datetime import datetime

from lifecycle.ledger import work
from lifecycle.ledger.outcomes import Outcome
from lifecycle.models import DirectoryUser, WorkItem
from lifecycle.services import Services
from lifecycle.sweep.applied import audit_applied, history_event, item_result
from lifecycle.sweep.model import PlannedAction
from lifecycle.sweep.ports import SponsoredGuestReads, SweepPorts
from lifecycle.sweep.reassign import proposal, reassign_event, reassign_message
from lifecycle.sweep.recheck import Observed, gone_marked
from lifecycle.sweep.rules import Decision, EffectiveRules


async def send_reassign(
    planned: PlannedAction, services: Services, ports: SweepPorts, user: DirectoryUser, rules: EffectiveRules
) -> None:
    """Put the event on the sponsor notices' queue; the broker message id is the work-item key."""
    reads = ports.guest_reads
    managers = reads.manager_of if isinstance(reads, SponsoredGuestReads) else None
    proposed = await proposal(planned.sponsor_ids, rules.owner, managers)
    event = reassign_event(planned, user, proposed)
    await services.transport.send(services.settings.queue_name(rules.notice.queue), [reassign_message(event)])


async def finish_reassign(
    planned: PlannedAction, item: WorkItem, services: Services, seen: Observed, verdict: Decision | None
) -> Outcome:
    """Keep the moment the sweep first found the sponsors gone (the plan's, not the worker's): the period counts
    from it. A mark already there (an earlier attempt wrote it) is kept."""
    record = seen.record
    if record is not None and not gone_marked(record):
        now = services.clock.now()
        record.sponsor_gone_since = datetime.fromisoformat(planned.evidence["sponsorGoneSince"])
        record.updated = now
        record.history.append(history_event("sponsor-gone", planned, now))
        await services.guests.save(record)
    await audit_applied(services, planned, "guest.sponsor-reassign-requested", verdict)
    return await work.finish(services, item, item_result(planned, applied=True))


async def finish_gone_ended(
    planned: PlannedAction, item: WorkItem, services: Services, seen: Observed, verdict: Decision | None
) -> Outcome:
    record = seen.record
    if record is not None and gone_marked(record):
        now = services.clock.now()
        record.sponsor_gone_since, record.updated = None, now
        record.history.append(history_event("sponsor-gone-ended", planned, now))
        await services.guests.save(record)
    await audit_applied(services, planned, "guest.sponsor-gone-ended", verdict)
    return await work.finish(services, item, item_result(planned, applied=True))
