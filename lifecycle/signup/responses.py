"""Render a decision in the wire format the request came in.

Custom authentication extension: always HTTP 200, ``data.@odata.type`` = on...ResponseData with one
action (Entra docs, custom-extension-onattributecollectionsubmit-reference / ...start-reference).
API connector: Continue 200, ShowBlockPage 200, ValidationError 400 with ``status: 400`` in the body,
``version: "1.0.0"`` (Entra docs, external-id/self-service-sign-up-add-api-connector).
"""

from __future__ import annotations

import json

from lifecycle.signup.requests import SignUpFormat
from lifecycle.signup.rules import Decision, Outcome

JSON_HEADERS = {"Content-Type": "application/json; charset=utf-8", "Cache-Control": "no-store"}
CONNECTOR_VERSION = "1.0.0"

Answer = tuple[int, dict[str, str], bytes]


def render(format: SignUpFormat, decision: Decision) -> Answer:
    if format is SignUpFormat.CONNECTOR:
        return _connector(decision)
    return 200, dict(JSON_HEADERS), _dump({"data": _extension_data(format, decision)})


def http_error(status: int, code: str, message: str, extra_headers: dict[str, str] | None = None) -> Answer:
    """A plain JSON error for requests we cannot or will not answer in a sign-up format."""
    headers = {**JSON_HEADERS, **(extra_headers or {})}
    return status, headers, _dump({"error": {"code": code, "message": message}})


def _extension_data(format: SignUpFormat, decision: Decision) -> dict[str, object]:
    event = "attributeCollectionStart" if format is SignUpFormat.START else "attributeCollectionSubmit"
    action: dict[str, object]
    if decision.outcome is Outcome.BLOCK or (decision.outcome is Outcome.INVALID and format is SignUpFormat.START):
        action = {"@odata.type": f"microsoft.graph.{event}.showBlockPage", "message": _with_code(decision)}
    elif decision.outcome is Outcome.INVALID:
        action = {
            "@odata.type": f"microsoft.graph.{event}.showValidationError",
            "message": decision.user_message,
            "attributeErrors": dict(decision.attribute_errors),
        }
    elif decision.claims and format is SignUpFormat.SUBMIT:
        action = {"@odata.type": f"microsoft.graph.{event}.modifyAttributeValues", "attributes": dict(decision.claims)}
    else:
        action = {"@odata.type": f"microsoft.graph.{event}.continueWithDefaultBehavior"}
    response_type = (
        "onAttributeCollectionStartResponseData"
        if format is SignUpFormat.START
        else ("onAttributeCollectionSubmitResponseData")
    )
    return {"@odata.type": f"microsoft.graph.{response_type}", "actions": [action]}


def _connector(decision: Decision) -> Answer:
    body: dict[str, object] = {"version": CONNECTOR_VERSION}
    status = 200
    if decision.outcome is Outcome.CONTINUE:
        body.update({"action": "Continue", **decision.claims})
    elif decision.outcome is Outcome.INVALID:
        status = 400
        body.update(
            {"status": 400, "action": "ValidationError", "userMessage": decision.user_message, "code": decision.code}
        )
    else:
        body.update({"action": "ShowBlockPage", "userMessage": decision.user_message, "code": decision.code})
    return status, dict(JSON_HEADERS), _dump(body)


def _with_code(decision: Decision) -> str:
    # The block page has no separate code field; the code in the text lets support find the reason.
    return f"{decision.user_message} (Reference: {decision.code})"


def _dump(body: object) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
