"""Turn either sign-up wire format into one plain request the rules can judge.

Formats (Microsoft Entra docs, identity-platform/custom-extension-onattributecollectionsubmit-reference,
custom-extension-onattributecollectionstart-reference and external-id/self-service-sign-up-add-api-connector):
the custom authentication extension wraps attributes as ``{"@odata.type", "value", "attributeType"}``
under ``data.userSignUpInfo``; the API connector sends flat claims (``email``, ``identities``, ...).
The docs spell one key ``@odata.Type``, so OData keys and type names are matched case-insensitively.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

from config.desired_state import normalise_domain

SUBMIT_EVENT = "microsoft.graph.authenticationevent.attributecollectionsubmit"
START_EVENT = "microsoft.graph.authenticationevent.attributecollectionstart"
SUBMIT_DATA = "microsoft.graph.onattributecollectionsubmitcalloutdata"
START_DATA = "microsoft.graph.onattributecollectionstartcalloutdata"
CONNECTOR_KEYS = frozenset({"email", "identities", "step", "ui_locales", "client_id"})
# Legacy step before the attribute collection page; a validation error means nothing there.
PRE_COLLECTION_STEP = "postfederationsignup"


class SignUpFormat(enum.StrEnum):
    SUBMIT = "attributeCollectionSubmit"
    START = "attributeCollectionStart"
    CONNECTOR = "apiConnector"

    @property
    def is_extension(self) -> bool:
        return self is not SignUpFormat.CONNECTOR


class MalformedSignUpRequest(ValueError):
    """The body is JSON but not a sign-up request we can judge. ``format`` is set when it was recognised."""

    def __init__(self, reason: str, format: SignUpFormat | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.format = format


@dataclass(frozen=True, slots=True)
class SignUpRequest:
    format: SignUpFormat
    email: str | None
    attributes: Mapping[str, object] = field(default_factory=dict)
    correlation_id: str | None = None
    step: str | None = None

    @property
    def email_domain(self) -> str | None:
        """The domain of ``email``, normalised as everywhere else (config.desired_state.normalise_domain), if
        it is a syntactically valid address; else None (the rules block it). Surrounding whitespace of the
        whole address is forgiven; whitespace, control characters or non-ASCII inside the domain are not."""
        if not self.email or self.email.count("@") != 1:
            return None
        local, _, domain = self.email.strip().partition("@")
        if not local:
            return None
        return normalise_domain(domain, root_dot=True)

    @property
    def attributes_collected(self) -> bool:
        """True once the user has filled the attribute form, so a validation error can send them back."""
        if self.format is SignUpFormat.START:
            return False
        return (self.step or "").lower() != PRE_COLLECTION_STEP

    def text_attribute(self, name: str) -> str | None:
        value = self.attributes.get(name)
        return value.strip() if isinstance(value, str) and value.strip() else None


def parse_signup_request(raw: object) -> SignUpRequest:
    if not isinstance(raw, dict):
        raise MalformedSignUpRequest("the body is not a JSON object")
    if "data" in raw or "type" in raw:
        return _parse_extension(raw)
    if CONNECTOR_KEYS & raw.keys():
        return _parse_connector(raw)
    raise MalformedSignUpRequest("neither a custom authentication extension event nor an API connector call")


def _parse_extension(raw: dict[str, object]) -> SignUpRequest:
    data = raw.get("data")
    event = str(raw.get("type", "")).lower()
    data_type = str(_odata_type(data)).lower() if isinstance(data, dict) else ""
    if event == SUBMIT_EVENT or data_type == SUBMIT_DATA:
        format = SignUpFormat.SUBMIT
    elif event == START_EVENT or data_type == START_DATA:
        format = SignUpFormat.START
    else:
        raise MalformedSignUpRequest(f"unsupported event type {event or data_type or '(none)'}")
    if not isinstance(data, dict):
        raise MalformedSignUpRequest("data is missing or not an object", format)
    info = data.get("userSignUpInfo")
    if not isinstance(info, dict):
        raise MalformedSignUpRequest("data.userSignUpInfo is missing or not an object", format)
    attributes = _extension_attributes(info.get("attributes"), format)
    identities = _identities(info.get("identities"), format)
    email = _email_identity(identities) or _text(attributes.get("email"))
    context = data.get("authenticationContext")
    correlation = context.get("correlationId") if isinstance(context, dict) else None
    return SignUpRequest(format, email, attributes, _text(correlation))


def _parse_connector(raw: dict[str, object]) -> SignUpRequest:
    format = SignUpFormat.CONNECTOR
    identities = _identities(raw.get("identities"), format)
    email = _text(raw.get("email")) or _email_identity(identities)
    attributes = {key: value for key, value in raw.items() if isinstance(value, str | int | bool | float)}
    return SignUpRequest(format, email, attributes, step=_text(raw.get("step")))


def _extension_attributes(raw: object, format: SignUpFormat) -> dict[str, object]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise MalformedSignUpRequest("userSignUpInfo.attributes is not an object", format)
    values: dict[str, object] = {}
    for name, wrapped in raw.items():
        if isinstance(wrapped, dict):
            values[name] = wrapped.get("value")
        else:
            raise MalformedSignUpRequest(f"attribute {name!r} is not an attribute value object", format)
    return values


def _identities(raw: object, format: SignUpFormat) -> list[Mapping[str, object]]:
    if raw is None:
        return []
    if not isinstance(raw, list) or not all(isinstance(item, dict) for item in raw):
        raise MalformedSignUpRequest("identities is not a list of objects", format)
    return raw


def _email_identity(identities: list[Mapping[str, object]]) -> str | None:
    for identity in identities:
        if str(identity.get("signInType", "")).lower() in {"email", "emailaddress"}:
            found = _text(identity.get("issuerAssignedId"))
            if found:
                return found
    return None


def _odata_type(obj: Mapping[str, object]) -> object:
    for key, value in obj.items():
        if key.lower() == "@odata.type":
            return value
    return ""


def _text(value: object) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None
