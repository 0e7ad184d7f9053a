"""graph.credentials.TenantSimCredential: the local stack's token, fetched once for every caller."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from graph.credentials import TenantSimCredential
from tests.loopback import LoopbackJson, Received


class _TokenEndpoint(LoopbackJson):
    """A loopback token endpoint that answers slowly (as a busy simulator does) and counts what it issued."""

    def __init__(self) -> None:
        super().__init__(self._issue)
        self.issued = 0

    def _issue(self, _request: Received) -> dict[str, object]:
        time.sleep(0.05)
        self.issued += 1
        return {"access_token": f"token-{self.issued}", "expires_in": 3600}


@pytest.fixture
def endpoint() -> Iterator[_TokenEndpoint]:
    with _TokenEndpoint() as served:
        yield served


def test_callers_asking_at_once_share_one_fetch(endpoint: _TokenEndpoint) -> None:
    """A worker's first 64 messages ask for the token together: one request to the simulator, one token."""
    credential = TenantSimCredential(endpoint.url)

    async def ask_together() -> set[str]:
        tokens = await asyncio.gather(*(credential.get_token("scope") for _ in range(64)))
        return {t.token for t in tokens}

    assert asyncio.run(ask_together()) == {"token-1"}
    assert endpoint.issued == 1


def test_the_credential_works_again_in_a_later_event_loop(endpoint: _TokenEndpoint) -> None:
    """A command line run may call asyncio.run twice with one credential: the second loop is not refused, and
    the cached token is reused."""
    credential = TenantSimCredential(endpoint.url)
    first = asyncio.run(credential.get_token("scope"))
    second = asyncio.run(credential.get_token("scope"))
    assert first.token == second.token == "token-1"
    assert endpoint.issued == 1
