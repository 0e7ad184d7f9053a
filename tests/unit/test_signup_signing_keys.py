"""The JWKS adapter: caching, key rollover, rate-limited refetch and failing closed."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from adapters.signing_keys import JwksSigningKeys
from lifecycle.clock import FixedClock
from tenantsim.entra_issuer import LocalTokenIssuer

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@pytest.fixture(name="issuer")
def _issuer() -> LocalTokenIssuer:
    issuer = LocalTokenIssuer()
    issuer.add_key("old")
    return issuer


@pytest.fixture(name="clock")
def _clock() -> FixedClock:
    return FixedClock(NOW)


@pytest.fixture(name="keys")
def _keys(issuer: LocalTokenIssuer, clock: FixedClock) -> JwksSigningKeys:
    return JwksSigningKeys(
        issuer.metadata_url,
        client=httpx.AsyncClient(transport=issuer.transport()),
        clock=clock,
        ttl=timedelta(hours=12),
        refetch_interval=timedelta(minutes=5),
        failure_backoff=timedelta(seconds=5),
    )


def _key_fetches(issuer: LocalTokenIssuer) -> int:
    return sum(url == issuer.jwks_url for url in issuer.requests)


async def test_keys_are_fetched_once_and_served_from_the_cache(keys, issuer):
    """Repeated look-ups of a known kid cost one metadata and one JWKS request in total."""
    for _ in range(5):
        assert await keys.get("old") is not None
    assert issuer.requests == [issuer.metadata_url, issuer.jwks_url]


async def test_concurrent_cold_look_ups_share_one_fetch(keys, issuer):
    """Many requests arriving on a cold cache trigger a single fetch."""
    found = await asyncio.gather(*(keys.get("old") for _ in range(50)))
    assert all(key is not None for key in found)
    assert _key_fetches(issuer) == 1


async def test_the_cache_is_refreshed_after_the_ttl(keys, issuer, clock):
    """After the TTL the key set is fetched again."""
    await keys.get("old")
    clock.advance(timedelta(hours=12, seconds=1))
    await keys.get("old")
    assert _key_fetches(issuer) == 2


async def test_a_rolled_over_key_is_found_by_one_refetch(keys, issuer, clock):
    """A kid published after the last fetch is picked up by a refetch once the interval allows it."""
    await keys.get("old")
    issuer.add_key("new")
    clock.advance(timedelta(minutes=6))
    assert await keys.get("new") is not None
    assert _key_fetches(issuer) == 2


async def test_unknown_kids_do_not_hammer_the_issuer(keys, issuer, clock):
    """Unknown kids within the refetch interval cause no extra fetch and are not found."""
    await keys.get("old")
    clock.advance(timedelta(minutes=6))
    assert await keys.get("junk-1") is None
    for n in range(20):
        assert await keys.get(f"junk-{n}") is None
    assert _key_fetches(issuer) == 2


async def test_an_unpublished_kid_fails_closed_after_refetch(keys, issuer, clock):
    """A kid that the refetched set still lacks is not found."""
    await keys.get("old")
    issuer.add_key("never", publish=False)
    clock.advance(timedelta(minutes=6))
    assert await keys.get("never") is None


async def test_a_failed_fetch_keeps_the_keys_we_had(keys, issuer, clock):
    """When Entra cannot be reached after the TTL, the cached keys keep verifying tokens."""
    await keys.get("old")
    issuer.failing = True
    clock.advance(timedelta(hours=13))
    assert await keys.get("old") is not None


async def test_with_no_keys_at_all_look_ups_fail_closed_then_recover(keys, issuer, clock):
    """A cold cache that cannot fetch finds nothing; after the back-off it fetches again and recovers."""
    issuer.failing = True
    assert await keys.get("old") is None
    assert await keys.get("old") is None
    assert len(issuer.requests) == 1
    issuer.failing = False
    clock.advance(timedelta(seconds=6))
    assert await keys.get("old") is not None


@pytest.mark.parametrize(
    "jwks",
    [{"keys": "nope"}, {"keys": []}, {"keys": [{"kty": "EC", "kid": "ec", "crv": "P-256"}]}, ["not", "an", "object"]],
)
async def test_an_unusable_key_set_finds_nothing(jwks, clock):
    """A key set without RSA signing keys (or not a key set at all) yields no key."""
    issuer = LocalTokenIssuer()

    def serve(request: httpx.Request) -> httpx.Response:
        if str(request.url) == issuer.metadata_url:
            return httpx.Response(200, json={"jwks_uri": issuer.jwks_url})
        return httpx.Response(200, json=jwks)

    keys = JwksSigningKeys(
        issuer.metadata_url, client=httpx.AsyncClient(transport=httpx.MockTransport(serve)), clock=clock
    )
    assert await keys.get("ec") is None


async def test_metadata_pointing_keys_at_plain_http_is_refused(clock):
    """A jwks_uri that is not https (outside loopback) is not followed."""
    requested: list[str] = []

    def serve(request: httpx.Request) -> httpx.Response:
        requested.append(str(request.url))
        return httpx.Response(200, json={"jwks_uri": "http://evil.example/keys"})

    keys = JwksSigningKeys(
        "https://login.example/meta", client=httpx.AsyncClient(transport=httpx.MockTransport(serve)), clock=clock
    )
    assert await keys.get("any") is None
    assert requested == ["https://login.example/meta"]
