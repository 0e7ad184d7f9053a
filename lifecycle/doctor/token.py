"""The claims of the identity's own access token, read without verifying the signature.

The token was just issued to this process for Graph; the doctor only reports what it says (``roles``: the
application permissions granted; ``oid``: the service principal), it never trusts it for a decision Graph
does not make again itself.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any


class TokenFormatError(ValueError):
    """The token is not a JWT whose payload is a JSON object."""


def token_claims(token: str) -> dict[str, Any]:
    parts = token.split(".")
    if len(parts) != 3:
        raise TokenFormatError("the access token is not a JWT (three dot-separated parts)")
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload.encode("ascii")))
    except (binascii.Error, UnicodeError, ValueError) as exc:
        raise TokenFormatError(f"the access token's payload is not base64url JSON: {exc}") from None
    if not isinstance(claims, dict):
        raise TokenFormatError("the access token's payload is not a JSON object")
    return claims


def granted_roles(claims: dict[str, Any]) -> frozenset[str]:
    roles = claims.get("roles")
    return frozenset(str(r) for r in roles) if isinstance(roles, list) else frozenset()
