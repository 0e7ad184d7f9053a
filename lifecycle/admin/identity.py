"""The operator behind an admin request, read from the claims of a validated access token, never from the body.

Claims (https://learn.microsoft.com/entra/identity-platform/access-token-claims-reference): ``oid`` is the
caller's immutable object id; ``scp`` is present only in a token issued on behalf of a user (a token an app
obtains for itself has ``roles`` but no ``scp``); ``roles`` holds the app roles assigned to the caller;
``preferred_username`` (v2) or ``upn`` / ``unique_name`` (v1) is the readable name. Names can change and
are not guaranteed unique, so the audit trail records the object id beside the name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
NAME_CLAIMS = ("preferred_username", "upn", "unique_name")


class Forbidden(Exception):
    """The token is valid but its holder may not use the endpoint. ``code`` is machine-readable."""

    def __init__(self, code: str, message: str, operator: Operator | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.operator = operator


@dataclass(frozen=True, slots=True)
class Operator:
    object_id: str
    name: str

    @property
    def actor(self) -> str:
        """How the audit trail names the operator: the readable name, then the object id that does not change."""
        return f"{self.name} ({self.object_id})"

    def as_dict(self) -> dict[str, str]:
        return {"objectId": self.object_id, "name": self.name}


def operator_from_claims(claims: dict[str, Any], role: str) -> Operator:
    """The person the token was issued to, if the token carries ``role``; else Forbidden with the reason."""
    oid = claims.get("oid")
    if not isinstance(oid, str) or not _GUID.match(oid):
        raise Forbidden("caller-unknown", "the token names no caller object id (oid)")
    name = next((v for c in NAME_CLAIMS if isinstance(v := claims.get(c), str) and v.strip()), oid).strip()
    operator = Operator(oid.lower(), name)
    if not isinstance(claims.get("scp"), str) or not claims["scp"].strip():
        raise Forbidden(
            "not-a-person",
            "the token was issued to an application, not on behalf of a person; sign in as the operator "
            "(az login) and request a token for the endpoint",
            operator,
        )
    roles = claims.get("roles")
    if not isinstance(roles, list) or role not in roles:
        raise Forbidden(
            "role-missing",
            f"the caller is not assigned the app role {role} on the product's app registration",
            operator,
        )
    return operator
