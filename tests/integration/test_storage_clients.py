"""The product's Storage clients (Table state, Storage-queue transport) on Azurite, as app.bootstrap builds them."""

from __future__ import annotations

import asyncio
import uuid

from app.bootstrap import bootstrap
from config.settings import load_settings
from lifecycle.onboarding.submission import submit_documents
from tenantsim.stack import LocalStack
from tests.builders import onboard_ticket


async def test_table_and_queue_calls_stay_on_the_event_loop(local_stack: LocalStack, monkeypatch):
    """Without a proxy or netrc in the environment, the product's Table and queue calls make no worker-thread
    hop per request (aiohttp's netrc and proxy lookups cost about 40 % of a Table call's CPU)."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy", "NETRC"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", "/nonexistent-home")
    env = local_stack.env | {"LIFECYCLE_QUEUE_PREFIX": f"t{uuid.uuid4().hex[:6]}-"}
    env |= {"LIFECYCLE_TABLE_PREFIX": f"t{uuid.uuid4().hex[:8]}"}
    services = await bootstrap(load_settings(env))
    hops = []
    loop = asyncio.get_running_loop()
    original = loop.run_in_executor

    def counted(executor, func, *args):
        hops.append(getattr(func, "__qualname__", repr(func)))
        return original(executor, func, *args)

    monkeypatch.setattr(loop, "run_in_executor", counted)
    try:
        await submit_documents(services, "onboarding", [onboard_ticket()])
        await services.transport.depth(services.settings.queue_name("onboarding"))
    finally:
        await services.close()
    assert hops == []
