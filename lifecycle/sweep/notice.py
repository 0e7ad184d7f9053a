"""The sponsor notice: a versioned event on a queue the ticketing system reads, before a guest is disabled.

Mail through Graph would need the application permission Mail.Send, which lets the app send as any
mailbox in the tenant unless an Exchange RBAC-for-Applications scope is configured; an event on a queue
needs no Graph permission at all, and the ticketing system already owns the conversation with sponsors.

The event is keyed by guest and due date (``noticeId``, also the broker message id): a consumer that sees
the same ``noticeId`` twice has seen the same notice twice.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, Field

from lifecycle.models import DirectoryUser, OutboundMessage
from lifecycle.sweep.model import PlannedAction, Rule
from lifecycle.sweep.outbound import EVENT_CONFIG, event_json_schema, event_message

KIND = "sponsor-notice"


class SponsorNoticeEvent(BaseModel):
    """A guest is about to be disabled by the guest expiry sweep; tell its sponsor."""

    model_config = EVENT_CONFIG

    schema_version: Literal[1] = 1
    kind: Literal["sponsor-notice"] = KIND
    notice_id: str = Field(description="One per guest and due date; the same notice twice has the same id.")
    run_id: str = Field(description="The sweep run that planned the notice.")
    guest_id: str = Field(description="The guest's object id.")
    mail: str | None = None
    display_name: str | None = None
    partner: str | None = Field(None, description="The partner key in the desired-state file, if known.")
    sponsor_ids: list[str] = Field(
        default_factory=list, description="Object ids of the guest's sponsors (from the ledger); may be empty."
    )
    rule: Rule = Field(description="The rule that makes the guest due.")
    due_date: AwareDatetime = Field(description="When the rule makes the guest due (UTC).")
    disable_not_before: AwareDatetime = Field(
        description="The earliest the sweep disables the guest: the due date, or lead time after this notice."
    )


def notice_event(planned: PlannedAction, user: DirectoryUser, sent: datetime, lead_days: int) -> SponsorNoticeEvent:
    assert planned.due is not None
    due = planned.due.astimezone(UTC)
    return SponsorNoticeEvent(
        notice_id=planned.key,
        run_id=planned.run_id,
        guest_id=planned.object_id,
        mail=user.mail or user.user_principal_name,
        display_name=user.display_name,
        partner=planned.partner,
        sponsor_ids=list(planned.sponsor_ids),
        rule=planned.rule,
        due_date=due,
        disable_not_before=max(due, (sent + timedelta(days=lead_days)).astimezone(UTC)),
    )


def notice_message(event: SponsorNoticeEvent) -> OutboundMessage:
    return event_message(event, event.notice_id, KIND, event.run_id, event.guest_id)


def sponsor_notice_json_schema() -> dict[str, Any]:
    return event_json_schema(SponsorNoticeEvent, "sponsor-notice", "Guest lifecycle sponsor notice, schemaVersion 1")
