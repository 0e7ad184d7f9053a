"""Credentials for Graph: managed identity in Azure, the simulator's token endpoint on a local stack."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
from azure.core.credentials import AccessToken

from graph.permissions import GRANTED


class TenantSimCredential:
    """An async token credential that asks tenantsim (``POST /_tenantsim/token``) for an app-only token.

    The token carries exactly the roles in graph.permissions.GRANTED unless ``roles`` says otherwise, so a
    local run has the same privileges the grant script gives the managed identity in Azure.
    """

    def __init__(self, simulator_root: str, roles: frozenset[str] | None = None) -> None:
        self._url = simulator_root.rstrip("/") + "/_tenantsim/token"
        self._roles = sorted(GRANTED if roles is None else roles)
        self._cached: AccessToken | None = None
        self._fetching: tuple[asyncio.AbstractEventLoop, asyncio.Lock] | None = None  # a lock belongs to one loop

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        if self._fresh():
            assert self._cached is not None
            return self._cached
        # One fetch for every caller: a worker's first messages all ask at once (64 slots made 32 fetches, each
        # with a new HTTP client and TLS context: 0.7 s of CPU).
        loop = asyncio.get_running_loop()
        if self._fetching is None or self._fetching[0] is not loop:
            self._fetching = (loop, asyncio.Lock())
        async with self._fetching[1]:
            if not self._fresh():
                async with httpx.AsyncClient(timeout=10) as client:
                    response = await client.post(self._url, json={"roles": self._roles})
                    response.raise_for_status()
                    body = response.json()
                expires_on = int(time.time()) + int(body.get("expires_in", 3600))
                self._cached = AccessToken(body["access_token"], expires_on)
        assert self._cached is not None
        return self._cached

    def _fresh(self) -> bool:
        return self._cached is not None and self._cached.expires_on - 60 > time.time()

    async def close(self) -> None:
        return None

    async def __aenter__(self) -> TenantSimCredential:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def simulator_root(graph_base_url: str) -> str:
    """``http://127.0.0.1:8123/v1.0`` -> ``http://127.0.0.1:8123``."""
    return graph_base_url.rstrip("/").rsplit("/", 1)[0]
