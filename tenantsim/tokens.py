"""Bearer tokens for the simulator: HS256 JWTs shaped like Entra app-only access tokens for Graph.

The signing secret is random per process, so only the simulator that minted a token accepts it.
"""

from __future__ import annotations

import secrets
import time
import uuid
from dataclasses import dataclass

import jwt

from tenantsim.errors import GraphError

GRAPH_AUDIENCE = "https://graph.microsoft.com"
DEFAULT_APP_ID = "6e2f4a1b-3c5d-4e7f-8a9b-0c1d2e3f4a5b"


@dataclass(frozen=True, slots=True)
class Caller:
    app_id: str
    tenant_id: str
    roles: frozenset[str]


class TokenIssuer:
    def __init__(self, tenant_id: str) -> None:
        self.tenant_id = tenant_id
        self._secret = secrets.token_bytes(32)

    def issue(
        self,
        roles: list[str],
        app_id: str = DEFAULT_APP_ID,
        tenant_id: str | None = None,
        lifetime_seconds: int = 3600,
    ) -> str:
        now = int(time.time())
        tid = tenant_id or self.tenant_id
        claims = {
            "aud": GRAPH_AUDIENCE,
            "iss": f"https://sts.windows.net/{tid}/",
            "iat": now,
            "nbf": now,
            "exp": now + lifetime_seconds,
            "appid": app_id,
            "idtyp": "app",
            "oid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"sp:{app_id}")),
            "roles": sorted(roles),
            "sub": str(uuid.uuid5(uuid.NAMESPACE_URL, f"sp:{app_id}")),
            "tid": tid,
            "ver": "1.0",
        }
        return jwt.encode(claims, self._secret, algorithm="HS256")

    def verify(self, authorization: str | None) -> Caller:
        if not authorization:
            raise _invalid("Access token is empty.")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise _invalid("Access token is empty.")
        try:
            claims = jwt.decode(token, self._secret, algorithms=["HS256"], audience=GRAPH_AUDIENCE)
        except jwt.ExpiredSignatureError as exc:
            raise _invalid("Lifetime validation failed, the token is expired.") from exc
        except jwt.InvalidAudienceError as exc:
            raise _invalid("Access token validation failure. Invalid audience.") from exc
        except jwt.PyJWTError as exc:
            raise _invalid("Access token validation failure.") from exc
        if claims.get("tid") != self.tenant_id:
            raise _invalid("Access token validation failure. The token was issued for another tenant.")
        return Caller(app_id=claims.get("appid", ""), tenant_id=claims["tid"], roles=frozenset(claims.get("roles", [])))


def _invalid(message: str) -> GraphError:
    return GraphError(401, "InvalidAuthenticationToken", message, {"WWW-Authenticate": 'Bearer realm=""'})
