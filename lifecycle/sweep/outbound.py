"""What the sweep's events to the ticketing system share: their model settings, their message, their schema.

Each event travels with its work-item key as broker message id (Service Bus duplicate detection drops a
resend after a crash) and carries the run and the guest as application properties.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from lifecycle.models import OutboundMessage

EVENT_CONFIG = ConfigDict(
    alias_generator=to_camel,
    populate_by_name=True,
    extra="forbid",
    frozen=True,
    json_schema_serialization_defaults_required=True,
)


def event_message(event: BaseModel, key: str, kind: str, run_id: str, guest_id: str) -> OutboundMessage:
    return OutboundMessage(
        body=event.model_dump_json(by_alias=True).encode(),
        message_id=key[:128],
        key=key,
        kind=kind,
        properties={"runId": run_id, "guestId": guest_id},
    )


def event_json_schema(model: type[BaseModel], slug: str, title: str) -> dict[str, Any]:
    schema = model.model_json_schema(by_alias=True, mode="serialization")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"https://schemas.contoso.example/guest-lifecycle/{slug}-v1.json"
    schema["title"] = title
    return schema
