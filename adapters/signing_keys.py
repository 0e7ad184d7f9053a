"""The tenant's token signing keys, read from its OIDC metadata and JWKS over HTTPS and cached.

Keys are cached for a TTL. A token whose ``kid`` is not in the cache (Entra rolled its keys) causes one
refetch, at most once per ``refetch_interval``, so a stream of junk tokens cannot turn into a stream of
calls to Entra. A failed fetch keeps the keys we had (stale keys still verify most tokens) and is
retried after a short back-off; with no keys at all, every token is refused.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import httpx
import jwt
import structlog

from lifecycle.ports import Clock

log = structlog.get_logger("lifecycle.signup.keys")

DEFAULT_TIMEOUT = httpx.Timeout(3.0)


class SigningKeysUnavailable(Exception):
    """The metadata or key set could not be fetched or read."""


class JwksSigningKeys:
    def __init__(
        self,
        metadata_url: str,
        *,
        client: httpx.AsyncClient,
        clock: Clock,
        ttl: timedelta = timedelta(hours=12),
        refetch_interval: timedelta = timedelta(minutes=5),
        failure_backoff: timedelta = timedelta(seconds=5),
    ) -> None:
        self._metadata_url = metadata_url
        self._client = client
        self._clock = clock
        self._ttl = ttl
        self._refetch_interval = refetch_interval
        self._failure_backoff = failure_backoff
        self._keys: dict[str, Any] = {}
        self._fetched_at: datetime | None = None
        self._next_fetch_allowed: datetime | None = None
        self._generation = 0
        self._lock = asyncio.Lock()

    async def get(self, kid: str) -> Any | None:
        now = self._clock.now()
        if self._stale(now) and self._may_fetch(now):
            await self.refresh(reason="expired" if self._fetched_at else "cold")
        key = self._keys.get(kid)
        if key is None and self._may_fetch(self._clock.now()):
            await self.refresh(reason="unknown-kid", kid=kid)
            key = self._keys.get(kid)
        return key

    async def refresh(self, *, reason: str = "requested", kid: str | None = None) -> None:
        """Fetch the key set now, unless a concurrent caller already did while we waited."""
        seen = self._generation
        async with self._lock:
            if self._generation != seen:
                return
            now = self._clock.now()
            try:
                keys = await self._fetch()
            except SigningKeysUnavailable as exc:
                self._next_fetch_allowed = now + self._failure_backoff
                log.warning("signup.keys.fetch_failed", reason=reason, error=str(exc), kept=len(self._keys))
                return
            finally:
                self._generation += 1
            self._keys = keys
            self._fetched_at = now
            self._next_fetch_allowed = now + self._refetch_interval
            log.info("signup.keys.fetched", reason=reason, kid=kid, kids=sorted(keys))

    def _stale(self, now: datetime) -> bool:
        return self._fetched_at is None or now >= self._fetched_at + self._ttl

    def _may_fetch(self, now: datetime) -> bool:
        return self._next_fetch_allowed is None or now >= self._next_fetch_allowed

    async def _fetch(self) -> dict[str, Any]:
        metadata = await self._get_json(self._metadata_url)
        jwks_uri = metadata.get("jwks_uri")
        if not isinstance(jwks_uri, str) or not jwks_uri.startswith(
            ("https://", "http://127.0.0.1", "http://localhost")
        ):
            raise SigningKeysUnavailable(f"metadata has no usable jwks_uri: {jwks_uri!r}")
        document = await self._get_json(jwks_uri)
        entries = document.get("keys")
        if not isinstance(entries, list):
            raise SigningKeysUnavailable("key set has no keys array")
        keys = {}
        for entry in entries:
            if not isinstance(entry, dict) or entry.get("kty") != "RSA" or entry.get("use", "sig") != "sig":
                continue
            kid = entry.get("kid")
            try:
                keys[kid] = jwt.PyJWK(entry, algorithm="RS256").key
            except jwt.PyJWTError as exc:
                log.warning("signup.keys.key_skipped", kid=kid, error=str(exc))
        if not keys:
            raise SigningKeysUnavailable("key set holds no RSA signing key")
        return keys

    async def _get_json(self, url: str) -> dict[str, Any]:
        try:
            response = await self._client.get(url, timeout=DEFAULT_TIMEOUT)
            response.raise_for_status()
            document = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise SigningKeysUnavailable(f"{url}: {type(exc).__name__}: {exc}") from None
        if not isinstance(document, dict):
            raise SigningKeysUnavailable(f"{url}: not a JSON object")
        return document
