"""The sponsor-reassign event: every sponsor of a guest is gone; the ticketing system is asked to name a new one.

It travels like the sponsor notice (same queue, the work-item key as broker message id, so Service Bus duplicate
detection drops a resend after a crash) and needs no Graph permission to send. It proposes a replacement: the
departed sponsor's manager where Graph names an enabled member (``GET /users/{id}/manager``), else the partner's
``owner`` from the desired state, else nobody. The guest is disabled with rule ``sponsor-gone`` once
``disableNotBefore`` passes, unless a sponsor is added or a ticket extends or attests the guest before.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, Field

from lifecycle.models import DirectoryUser, OutboundMessage
from lifecycle.sweep.model import PlannedAction
from lifecycle.sweep.outbound import EVENT_CONFIG, event_json_schema, event_message

KIND = "sponsor-reassign"
Proposer = Literal["manager", "partner-owner"]


class SponsorReassignEvent(BaseModel):
    """Every sponsor of a guest is gone: name a new sponsor, or the guest is disabled after the period."""

    model_config = EVENT_CONFIG

    schema_version: Literal[1] = 1
    kind: Literal["sponsor-reassign"] = KIND
    event_id: str = Field(description="The sweep's work-item key; the same event twice has the same id.")
    run_id: str = Field(description="The sweep run that planned the event.")
    guest_id: str = Field(description="The guest's object id.")
    mail: str | None = None
    display_name: str | None = None
    partner: str | None = Field(None, description="The partner key in the desired-state file, if known.")
    coverage: Literal["sponsor-gone", "sponsor-disabled", "sponsor-not-member"] = Field(
        description="Why no sponsor answers: deleted or removed, disabled, or no longer a member of the tenant."
    )
    departed_sponsor_ids: list[str] = Field(
        default_factory=list, description="Object ids of the sponsors who no longer answer for the guest."
    )
    proposed_sponsor_id: str | None = Field(None, description="Object id of the proposed new sponsor, if any.")
    proposed_by: Proposer | None = Field(
        None, description="Where the proposal comes from: a departed sponsor's manager, or the partner's owner."
    )
    sponsor_gone_since: AwareDatetime = Field(description="When the sweep first found every sponsor gone (UTC).")
    disable_not_before: AwareDatetime = Field(
        description="The earliest the sweep disables the guest (rule sponsor-gone) if nobody acts before."
    )


Managers = Callable[[str], Awaitable[str | None]]


async def proposal(
    departed: tuple[str, ...], owner: str | None, manager_of: Managers | None
) -> tuple[str | None, Proposer | None]:
    """The first departed sponsor's manager that Graph names, else the partner's owner, else nobody."""
    if manager_of is not None:
        for sponsor in departed:
            manager = await manager_of(sponsor)
            if manager is not None and manager not in departed:
                return manager, "manager"
    if owner:
        return owner, "partner-owner"
    return None, None


def reassign_event(
    planned: PlannedAction, user: DirectoryUser, proposed: tuple[str | None, Proposer | None]
) -> SponsorReassignEvent:
    evidence = planned.evidence
    since = datetime.fromisoformat(evidence["sponsorGoneSince"]).astimezone(UTC)
    return SponsorReassignEvent(
        event_id=planned.key,
        run_id=planned.run_id,
        guest_id=planned.object_id,
        mail=user.mail or user.user_principal_name,
        display_name=user.display_name,
        partner=planned.partner,
        coverage=evidence["coverage"],
        departed_sponsor_ids=list(planned.sponsor_ids),
        proposed_sponsor_id=proposed[0],
        proposed_by=proposed[1],
        sponsor_gone_since=since,
        disable_not_before=since + timedelta(days=int(evidence["sponsorGoneDays"])),
    )


def reassign_message(event: SponsorReassignEvent) -> OutboundMessage:
    return event_message(event, event.event_id, KIND, event.run_id, event.guest_id)


def sponsor_reassign_json_schema() -> dict[str, Any]:
    title = "Guest lifecycle sponsor reassign, schemaVersion 1"
    return event_json_schema(SponsorReassignEvent, "sponsor-reassign", title)
