"""The Graph token stays on Graph: a page link planted in the runs table, or any URL off the configured Graph
origin, gets no request and no token, on the local stack (Azurite's table, tenantsim, a listener on another
loopback port standing in for the attacker)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from azure.data.tables.aio import TableServiceClient
from kiota_abstractions.method import Method

from adapters.sweep_runs import TableSweepRuns
from app.bootstrap import bootstrap
from graph.client import build_graph_client
from graph.credentials import TenantSimCredential
from graph.permissions import GRANTED
from graph.raw import RawGraph
from lifecycle.errors import UntrustedLinkError
from lifecycle.plans import Mode
from lifecycle.runs.claim import INTERRUPTED
from lifecycle.runs.model import DailyRun, RunStatus
from lifecycle.sweep import entry
from tenantsim.client import TenantSimAdmin
from tests.integration.test_sweep_stack import STARTED
from tests.loopback import LoopbackJson

pytestmark = pytest.mark.stack
ROLES = GRANTED | {"GroupMember.Read.All"}


@pytest.fixture
def listener() -> Iterator[LoopbackJson]:
    """Another loopback port standing in for the attacker: it records every request and answers an empty page."""
    with LoopbackJson(lambda _request: {"value": []}) as server:
        yield server


@pytest.fixture
def small_tenant(local_stack):
    with TenantSimAdmin(local_stack.tenantsim_url) as admin:
        admin.seed(builtin="fresh", guests=30, random_seed=0)
        yield admin


async def _services(stack):
    from config.settings import load_settings

    suffix = uuid.uuid4().hex[:8]
    env = {**stack.env, "LIFECYCLE_TABLE_PREFIX": f"tk{suffix}", "LIFECYCLE_QUEUE_PREFIX": f"tk{suffix}-"}
    settings = load_settings(env)
    return await bootstrap(settings, credential=TenantSimCredential(stack.tenantsim_url, roles=ROLES)), env


async def _plant(env: dict[str, str], run_id: str, cursor: str) -> None:
    """What anyone holding Table Data Contributor on the runs table can do: an interrupted run whose cursor
    points wherever they like."""
    service = TableServiceClient.from_connection_string(env["LIFECYCLE_TABLES_CONNECTION_STRING"])
    store = TableSweepRuns(service.get_table_client(f"{env['LIFECYCLE_TABLE_PREFIX']}sweepruns"), service)
    try:
        await store.ensure_table()
        run = DailyRun(run_id, Mode.PLAN, RunStatus.FAILED, started=STARTED, updated=STARTED)
        run.reason, run.cursor, run.pages = f"{INTERRUPTED}: Graph answered 503", cursor, 4
        await store.create(run)
        stored = await store.get(run_id)
        assert stored is not None and stored.cursor == cursor
    finally:
        await store.close()


@pytest.mark.parametrize(
    "planted",
    [
        "{listener}/v1.0/users?$skiptoken=planted",
        "{listener_localhost}/v1.0/users?$skiptoken=planted",
        "https://{tenantsim_netloc}/v1.0/users?$skiptoken=planted",
        "{tenantsim}/v1.0/../_tenantsim/token",
        "{tenantsim}/v1.0/%2e%2e/_tenantsim/token",
        "{tenantsim}/beta/users?$skiptoken=planted",
        "http://planted@{listener_netloc}/v1.0/users",
    ],
    ids=["other-port", "other-port-localhost", "other-scheme", "dot-segments", "encoded-dots", "beta", "userinfo"],
)
async def test_a_page_link_planted_in_the_runs_table_gets_no_request_and_the_run_fails_with_the_reason(
    local_stack, small_tenant, listener, planted
):
    """The sweep resumes an interrupted run from its stored cursor only when the cursor is under the Graph base
    URL; a planted one fails the run (reason and audit), the listener sees nothing, and the next fire starts
    over and plans the whole tenant."""
    link = planted.format(
        listener=listener.url,
        listener_localhost=listener.url.replace("127.0.0.1", "localhost"),
        listener_netloc=listener.url.removeprefix("http://"),
        tenantsim=local_stack.tenantsim_url,
        tenantsim_netloc=local_stack.tenantsim_url.removeprefix("http://"),
    )
    services, env = await _services(local_stack)
    try:
        await _plant(env, "sweep-planted", link)
        refused = await entry.run_sweep(services, "plan", run_id="sweep-planted")
        audit = [e async for e in services.audit.entries()]
        again = await entry.run_sweep(services, "plan", run_id="sweep-planted")
    finally:
        await services.close()
    assert listener.requests == []
    assert refused["status"] == "failed" and "refused to follow the stored page link" in refused["reason"]
    assert "skiptoken" not in refused["reason"]
    assert [e.details.get("code") for e in audit if e.action == "sweep.refused"] == ["untrusted-link"]
    assert again["status"] == "planned" and again["totalGuests"] == 30


async def test_the_graph_client_sends_no_request_and_no_token_off_the_graph_origin(local_stack, listener):
    """Whatever URL a Graph call is given, the token goes only to the configured scheme, host and port: a URL
    on another loopback port is refused before anything is sent, and one on Graph still works."""
    credential = TenantSimCredential(local_stack.tenantsim_url, roles=GRANTED)
    client = build_graph_client(credential=credential, base_url=local_stack.env["LIFECYCLE_GRAPH_BASE_URL"])
    raw = RawGraph(client)
    with pytest.raises(UntrustedLinkError, match="refused to send the Graph token"):
        await raw.send(Method.GET, f"{listener.url}/v1.0/users")
    with pytest.raises(UntrustedLinkError):
        await raw.send(Method.GET, f"{listener.url.replace('127.0.0.1', 'localhost')}/v1.0/users")
    users = await raw.send(Method.GET, f"{raw.v1}/users?$top=1")
    assert listener.requests == [] and len(users["value"]) == 1
