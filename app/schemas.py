"""The JSON Schemas other systems and editors see, generated from the models that enforce them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from config.desired_state import DesiredState
from lifecycle.sweep.notice import sponsor_notice_json_schema
from lifecycle.sweep.reassign import sponsor_reassign_json_schema
from lifecycle.tickets import ticket_json_schema


def desired_state_json_schema() -> dict[str, Any]:
    schema = DesiredState.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Guest lifecycle desired state, schemaVersion 1"
    return schema


SCHEMAS: dict[str, Callable[[], dict[str, Any]]] = {
    "ticket": ticket_json_schema,
    "desired-state": desired_state_json_schema,
    "sponsor-notice": sponsor_notice_json_schema,
    "sponsor-reassign": sponsor_reassign_json_schema,
}
