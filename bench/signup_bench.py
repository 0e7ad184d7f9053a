"""Latency of the sign-up endpoint under load: 2,000 requests in concurrent waves through the real
handler, with real RS256 validation against cached keys (fetched once from a local issuer).

    .venv/bin/python -m bench.signup_bench [--requests 2000] [--wave 100]

Prints one JSON line: p50/p99 latency in ms (from the moment a wave is dispatched until each request's
answer, so queueing behind the rest of its wave counts), the same for each request's own service time,
requests per second, the HTTP statuses, and how often the key set was fetched.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import statistics
import time
from collections import Counter
from datetime import UTC, datetime

import httpx
import structlog

from app.signup import build_signup_services
from config.desired_state import parse_desired_state
from config.signup import load_signup_settings
from lifecycle.clock import FixedClock
from lifecycle.signup.http import SignUpServices, handle_signup_request
from tenantsim.entra_issuer import LocalTokenIssuer, connector_body, extension_body

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
EMAILS = ["ana@fabrikam.com", "sam@gmail.com", "x@mailinator.com", "bo@example.org", "li@adatum.com"]


def build(issuer: LocalTokenIssuer) -> SignUpServices:
    settings = load_signup_settings(
        {"LIFECYCLE_SIGNUP_TENANT_ID": issuer.tenant_id, "LIFECYCLE_SIGNUP_AUDIENCES": issuer.audience}
    )
    state = parse_desired_state(
        {
            "tenant": {"id": issuer.tenant_id, "primaryDomain": "contoso.onmicrosoft.com"},
            "partners": {
                "fabrikam": {"displayName": "Fabrikam", "domains": ["fabrikam.com"], "tier": "gold"},
                "adatum": {"displayName": "Adatum", "domains": ["adatum.com"]},
            },
            "signUp": {"blockedDomains": ["gmail.com"], "partnerTierAttribute": "extension_abc_PartnerTier"},
        }
    )
    client = httpx.AsyncClient(transport=issuer.transport())
    return build_signup_services(settings, state, client=client, clock=FixedClock(NOW))


def requests(issuer: LocalTokenIssuer, count: int) -> list[tuple[dict[str, str], bytes]]:
    """Distinct tokens and bodies, alternating the two wire formats, prepared before timing starts."""
    prepared = []
    for n in range(count):
        email = EMAILS[n % len(EMAILS)]
        body = extension_body(email) if n % 2 else connector_body(email)
        token = issuer.mint(NOW, oid=f"00000000-0000-4000-8000-{n:012d}")
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        prepared.append((headers, json.dumps(body).encode()))
    return prepared


async def timed(
    services: SignUpServices, headers: dict[str, str], body: bytes, wave_started: float
) -> tuple[float, float, int]:
    """(latency from the wave's dispatch, own service time, status), both in ms."""
    started = time.perf_counter()
    status, _, _ = await handle_signup_request("POST", headers, body, services)
    done = time.perf_counter()
    return (done - wave_started) * 1000, (done - started) * 1000, status


async def run(count: int, wave: int) -> dict[str, object]:
    issuer = LocalTokenIssuer()
    issuer.add_key()
    services = build(issuer)
    prepared = requests(issuer, count)
    await timed(services, *prepared[0], time.perf_counter())  # warm the key cache, as a running worker has it
    results: list[tuple[float, float, int]] = []
    started = time.perf_counter()
    for start in range(0, count, wave):
        wave_started = time.perf_counter()
        batch = prepared[start : start + wave]
        results += await asyncio.gather(*(timed(services, h, b, wave_started) for h, b in batch))
    elapsed = time.perf_counter() - started
    latency = statistics.quantiles([ms for ms, _, _ in results], n=100)
    service = statistics.quantiles([ms for _, ms, _ in results], n=100)
    return {
        "bench": "signup",
        "requests": count,
        "wave": wave,
        "p50_ms": round(latency[49], 3),
        "p99_ms": round(latency[98], 3),
        "service_p50_ms": round(service[49], 3),
        "service_p99_ms": round(service[98], 3),
        "requests_per_s": round(count / elapsed, 1),
        "statuses": dict(Counter(status for _, _, status in results)),
        "key_fetches": sum(url == issuer.jwks_url for url in issuer.requests),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--wave", type=int, default=100, help="requests in flight together")
    args = parser.parse_args()
    # Decision logs would dominate the timing; warnings still show.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    print(json.dumps(asyncio.run(run(args.requests, args.wave))))


if __name__ == "__main__":
    main()
