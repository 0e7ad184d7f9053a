"""Who may call the connector: Entra's authentication events service with a bearer token, or (for the
older API connector only, when configured) HTTP Basic.

The bearer token check follows Entra docs, identity-platform/custom-extension-overview "Protect your
REST API": RS256 signature by a current tenant signing key, ``iss`` one of the tenant's issuers, ``aud``
this app's registration, ``azp`` (v2) / ``appid`` (v1) the authentication events app. Expiry is checked
against the clock port, not PyJWT's own reading of the wall clock.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import math
from collections.abc import Collection
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal, Protocol

import jwt

from lifecycle.ports import Clock

ALLOWED_ALGORITHMS = ("RS256",)
MAX_TOKEN_CHARS = 16 * 1024
# NumericDate bounds (RFC 7519 section 2): a finite number of seconds since 1970, here at most year 9999.
# NaN compares false with everything and Infinity exceeds every instant: either would never expire.
MAX_NUMERIC_DATE = 253_402_300_799


class SigningKeys(Protocol):
    """The tenant's token signing keys by ``kid``."""

    async def get(self, kid: str) -> Any | None:
        """The public key for ``kid``; refetches (rate-limited) when the kid is unknown, else None."""
        ...


class Unauthorized(Exception):
    """The caller is not who we accept. ``reason`` goes to the log, never to the caller."""

    def __init__(self, reason: str, **detail: object) -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Caller:
    scheme: Literal["bearer", "basic"]
    claims: dict[str, Any]


class BearerValidator:
    def __init__(
        self,
        keys: SigningKeys,
        *,
        issuers: Collection[str],
        audiences: Collection[str],
        authorized_party: str | None,
        clock: Clock,
        leeway: timedelta = timedelta(seconds=120),
    ) -> None:
        self._keys = keys
        self._issuers = frozenset(issuers)
        self._audiences = tuple(audiences)
        self._authorized_party = authorized_party
        self._clock = clock
        self._leeway = leeway.total_seconds()

    async def validate(self, token: str) -> Caller:
        if len(token) > MAX_TOKEN_CHARS:
            raise Unauthorized("token-too-large", size=len(token))
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise Unauthorized("token-malformed", error=str(exc)) from None
        alg = header.get("alg")
        if alg not in ALLOWED_ALGORITHMS:
            raise Unauthorized("algorithm-not-allowed", alg=str(alg))
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise Unauthorized("kid-missing")
        key = await self._keys.get(kid)
        if key is None:
            raise Unauthorized("kid-unknown", kid=kid)
        claims = self._decode(token, key)
        self._check_times(claims)
        self._check_party(claims)
        return Caller("bearer", claims)

    def _decode(self, token: str, key: Any) -> dict[str, Any]:
        try:
            return jwt.decode(
                token,
                key,
                algorithms=list(ALLOWED_ALGORITHMS),
                audience=self._audiences,
                issuer=self._issuers,
                options={
                    "require": ["exp", "iss", "aud"],
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                },
            )
        except jwt.InvalidAudienceError as exc:
            raise Unauthorized("audience-mismatch", error=str(exc)) from None
        except jwt.InvalidIssuerError as exc:
            raise Unauthorized("issuer-mismatch", error=str(exc)) from None
        except jwt.InvalidSignatureError:
            raise Unauthorized("signature-invalid") from None
        except jwt.PyJWTError as exc:
            raise Unauthorized("token-invalid", error=f"{type(exc).__name__}: {exc}") from None

    def _check_times(self, claims: dict[str, Any]) -> None:
        now = self._clock.now().timestamp()
        exp, nbf, iat = claims.get("exp"), claims.get("nbf"), claims.get("iat")
        if not _numeric_date(exp):
            raise Unauthorized("exp-invalid", exp=repr(exp))
        for name, value in (("nbf", nbf), ("iat", iat)):
            if value is not None and not _numeric_date(value):
                raise Unauthorized(f"{name}-invalid", **{name: repr(value)})
        if now > exp + self._leeway:
            raise Unauthorized("token-expired", exp=exp, now=int(now))
        if nbf is not None and now + self._leeway < nbf:
            raise Unauthorized("token-not-yet-valid", nbf=nbf, now=int(now))
        if iat is not None and now + self._leeway < iat:
            raise Unauthorized("token-issued-in-future", iat=iat, now=int(now))

    def _check_party(self, claims: dict[str, Any]) -> None:
        if self._authorized_party is None:  # any client app may present the token (the admin endpoint)
            return
        version = claims.get("ver")
        if version == "2.0":
            party = claims.get("azp")
        elif version == "1.0":
            party = claims.get("appid")
        else:
            party = claims.get("azp") or claims.get("appid")
        if party != self._authorized_party:
            raise Unauthorized("caller-not-authentication-events", party=str(party), ver=str(version))


def _numeric_date(value: object) -> bool:
    """A finite, non-negative number of seconds no later than year 9999 (not a bool, NaN or Infinity)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return math.isfinite(value) and 0 <= value <= MAX_NUMERIC_DATE


class BasicCredentials:
    """HTTP Basic for the older API connector, compared in constant time."""

    def __init__(self, username: str, password: str) -> None:
        self._username = username.encode()
        self._password = password.encode()

    def check(self, encoded: str) -> Caller:
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise Unauthorized("basic-malformed") from None
        username, sep, password = decoded.partition(b":")
        user_ok = hmac.compare_digest(username, self._username)
        password_ok = hmac.compare_digest(password, self._password)
        if not (sep and user_ok and password_ok):
            raise Unauthorized("basic-credentials-wrong")
        return Caller("basic", {})
