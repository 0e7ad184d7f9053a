"""The production runbook's tenant-changing path on the local stack: the command line in remote mode, on a
machine with no storage, queue or Graph setting, asks the admin endpoint (the jobs app's function, served over
HTTP here) to plan and apply; the endpoint runs on Azurite and tenantsim with the app's own identity."""

from __future__ import annotations

import asyncio
import csv
import json
import os
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import azure.functions as func
import httpx
import pytest
import uvicorn

import function_app
from app import admin as composition
from app.admin import AdminEndpoint, admin_commands, build_bearer
from app.bootstrap import bootstrap
from config.admin import load_admin_settings
from config.settings import ROOT, load_settings
from lifecycle.admin.ports import AdminPorts
from lifecycle.clock import SystemClock
from lifecycle.services import Services
from tenantsim.client import TenantSimAdmin
from tenantsim.entra_issuer import LocalTokenIssuer
from tenantsim.seed import FABRIKAM_TENANT_ID
from tenantsim.server import TenantSimServer, bind_socket
from tenantsim.stack import TENANT_ID
from tests.builders import lifecycle_cli

pytestmark = pytest.mark.stack

APP_ID_URI = "api://guest-lifecycle"
CLIENT_ID = "6a0f3c2e-1b4d-4e8a-9c7f-2d5e8a1b3c4f"
AZURE_CLI_APP_ID = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"
OPERATOR_OID = "0d4c3b2a-1f0e-4d9c-8b7a-6f5e4d3c2b1a"
OPERATOR = "ines.ops@contoso.com"
ACTOR = f"{OPERATOR} ({OPERATOR_OID})"


async def _function_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The Functions host's part, reduced: an HTTP request in, the decorated function called, its response out."""
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
    step = scope["path"].removeprefix("/api/admin/")
    request = func.HttpRequest(
        method=scope["method"], url=scope["path"], headers=headers, body=body, route_params={"step": step}
    )
    response = await function_app.admin_endpoint(request)
    out = [(k.encode(), v.encode()) for k, v in response.headers.items()]
    await send({"type": "http.response.start", "status": response.status_code, "headers": out})
    await send({"type": "http.response.body", "body": response.get_body()})


class FunctionHost:
    """uvicorn on a free loopback port in a thread, serving the admin function."""

    def __init__(self) -> None:
        self._socket = bind_socket("127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self._socket.getsockname()[1]}/api/admin"
        self._server = uvicorn.Server(
            uvicorn.Config(_function_app, log_level="warning", access_log=False, lifespan="off")
        )
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._server.serve(sockets=[self._socket]))

    def __enter__(self) -> FunctionHost:
        self._thread.start()
        while not self._server.started and self._thread.is_alive():
            threading.Event().wait(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(10)
        self._socket.close()


@pytest.fixture(scope="module")
def sim() -> Iterator[TenantSimServer]:
    with TenantSimServer(guests=5) as server:
        yield server


@pytest.fixture(name="tenant")
def _tenant(sim: TenantSimServer) -> Iterator[TenantSimAdmin]:
    with TenantSimAdmin(sim.url) as client:
        client.configure(throttlingEnabled=False, federationDomainsInline=True, tenantLookupDomains="primary")
        client.clear_faults()
        client.seed(builtin="fresh", guests=5)
        yield client


@pytest.fixture(name="env")
def _env(azurite, sim: TenantSimServer) -> dict[str, str]:
    """The jobs app's settings on the local stack (its identity is tenantsim's app credential)."""
    prefix = "adm" + uuid.uuid4().hex[:8]
    return {
        "LIFECYCLE_ENVIRONMENT": "local",
        "LIFECYCLE_TENANT_ID": TENANT_ID,
        "LIFECYCLE_TABLES_CONNECTION_STRING": azurite.tables_connection_string,
        "LIFECYCLE_QUEUE_TRANSPORT": "storage",
        "LIFECYCLE_QUEUES_CONNECTION_STRING": azurite.queues_connection_string,
        "LIFECYCLE_GRAPH_BASE_URL": f"{sim.url}/v1.0",
        "LIFECYCLE_GRAPH_BETA_URL": f"{sim.url}/beta",
        "LIFECYCLE_GRAPH_CREDENTIAL": "tenantsim",
        "LIFECYCLE_TABLE_PREFIX": prefix,
        "LIFECYCLE_QUEUE_PREFIX": prefix,
    }


@pytest.fixture(name="issuer", scope="module")
def _issuer() -> LocalTokenIssuer:
    issuer = LocalTokenIssuer(tenant_id=TENANT_ID, audience=APP_ID_URI)
    issuer.add_key("key-1")
    return issuer


@pytest.fixture(name="host")
def _host(env: dict[str, str], issuer: LocalTokenIssuer) -> Iterator[FunctionHost]:
    built: list[Services] = []

    async def services() -> Services:
        if not built:
            built.append(await bootstrap(load_settings(env)))
        return built[0]

    audiences = f"{APP_ID_URI},{CLIENT_ID}"
    settings = load_admin_settings({"LIFECYCLE_ADMIN_TENANT_ID": TENANT_ID, "LIFECYCLE_ADMIN_AUDIENCES": audiences})
    bearer = build_bearer(settings, client=httpx.AsyncClient(transport=issuer.transport()), clock=SystemClock())
    previous = composition.use_admin_endpoint(
        AdminEndpoint(bearer, AdminPorts(admin_commands(), services, settings.role))
    )
    with FunctionHost() as host:
        yield host
        if built and host.loop is not None:
            asyncio.run_coroutine_threadsafe(built[0].close(), host.loop).result(30)
    composition.use_admin_endpoint(previous)


def _token(issuer: LocalTokenIssuer, roles: tuple[str, ...] = ("Lifecycle.Operator",)) -> str:
    """The operator's v2 access token for the product's API, as AzureCliCredential obtains it."""
    return issuer.access_token(
        datetime.now(UTC), api=CLIENT_ID, client_id=AZURE_CLI_APP_ID, oid=OPERATOR_OID, name=OPERATOR, roles=roles
    )


def _laptop(host: FunctionHost, token: str) -> dict[str, str]:
    """An operator's shell: the endpoint and a token, no storage, queue or Graph setting at all."""
    return {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
        "COLUMNS": "300",
        "LIFECYCLE_ADMIN_URL": host.url,
        "LIFECYCLE_ADMIN_TOKEN": token,
    }


async def _audit(env: dict[str, str]) -> list[Any]:
    services = await bootstrap(load_settings(env))
    try:
        return [e async for e in services.audit.entries()]
    finally:
        await services.close()


async def test_an_operator_applies_policies_from_a_laptop_through_the_function_apps_identity(
    env, tenant, host, issuer, tmp_path: Path
):
    """The list names each partner, the change is made by the app, and the audit names the token's operator."""
    before = tenant.snapshot()["policies"]
    listed = tmp_path / "apply.csv"
    result = lifecycle_cli(_laptop(host, _token(issuer)), "apply", "policies", "--yes", "--export", str(listed))
    assert result.returncode in (0, 2), result.stdout + result.stderr  # Conditional Access stays report-only
    assert "Fabrikam, Inc." in result.stdout
    fabrikam = next(r for r in csv.DictReader(listed.open()) if r["tenantId"] == FABRIKAM_TENANT_ID)
    assert (fabrikam["partnerName"], fabrikam["change"]) == ("Fabrikam, Inc.", "create")
    after = tenant.snapshot()["policies"]
    assert after != before
    assert FABRIKAM_TENANT_ID in json.dumps(after["crossTenantAccessPartners"])

    audit = await _audit(env)
    admin_rows = [e for e in audit if e.action.startswith("admin.")]
    assert [e.action for e in admin_rows] == ["admin.planned", "admin.apply-requested", "admin.applied"]
    assert {e.actor for e in admin_rows} == {ACTOR}
    # The writes themselves are the drift run's own audit rows; the operator's row names that run.
    run_id = admin_rows[-1].details["runId"]
    writes = [e for e in audit if e.run_id == run_id and e.action.startswith("policy-drift.")]
    assert any(e.target.endswith(FABRIKAM_TENANT_ID) for e in writes)


async def test_without_a_confirmation_nothing_is_applied(env, tenant, host, issuer):
    """No terminal and no --yes: the plan is shown, the command is refused, the apply step is never called."""
    before = tenant.snapshot()["policies"]
    result = lifecycle_cli(_laptop(host, _token(issuer)), "apply", "policies")
    assert result.returncode == 64, result.stdout + result.stderr
    assert "Fabrikam, Inc." in result.stdout
    assert tenant.snapshot()["policies"] == before
    assert [e.action for e in await _audit(env) if e.action.startswith("admin.")] == ["admin.planned"]


async def test_apply_with_a_stale_digest_is_refused_and_the_tenant_keeps_its_state(env, tenant, host, issuer):
    """Another change lands between the confirmation and the apply: a different plan, so nothing is written."""
    headers = {"Authorization": f"Bearer {_token(issuer)}"}
    body = {"command": "apply-policies", "args": {}}
    async with httpx.AsyncClient(headers=headers, timeout=60) as client:
        planned = (await client.post(f"{host.url}/plan", json=body)).json()
        tenant.seed(builtin="locked-down", guests=5)
        moved = tenant.snapshot()["policies"]
        refused = await client.post(f"{host.url}/apply", json={**body, "digest": planned["digest"]})
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "plan-changed"
    assert tenant.snapshot()["policies"] == moved
    [row] = [e for e in await _audit(env) if e.action == "admin.refused"]
    assert row.actor == ACTOR and row.details["digest"] == planned["digest"]


def test_a_laptop_without_a_token_or_scope_is_told_what_to_set(host):
    """Remote mode without LIFECYCLE_ADMIN_TOKEN needs LIFECYCLE_ADMIN_SCOPE for the Azure CLI's token."""
    env = {k: v for k, v in _laptop(host, "").items() if k != "LIFECYCLE_ADMIN_TOKEN"}
    result = lifecycle_cli(env, "apply", "policies", "--yes")
    assert result.returncode == 78 and "LIFECYCLE_ADMIN_SCOPE" in result.stderr


def test_an_operator_without_the_role_is_told_which_role_to_ask_for(host, issuer):
    """The endpoint's 403 reaches the operator as one line with its code and a hint, never a traceback."""
    result = lifecycle_cli(_laptop(host, _token(issuer, roles=())), "purge", "--all", "--yes")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "403 role-missing" in result.stderr and "app role" in result.stderr
    assert "Traceback" not in result.stderr


async def test_the_doctor_runs_as_the_app_from_a_laptop(env, tenant, host, issuer, monkeypatch):
    """doctor --remote checks the app's own token and reads (the function app's settings are the stack's)."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = lifecycle_cli(_laptop(host, _token(issuer)), "doctor", "--job", "policy-drift", "--json")
    assert result.returncode in (0, 2), result.stdout + result.stderr
    checks = json.loads(result.stdout)["checks"]
    permissions = [c for c in checks if c["name"].startswith("graph permissions")]
    assert permissions and all(c["status"] == "pass" for c in permissions), permissions
    [read] = [e for e in await _audit(env) if e.action == "admin.read"]
    assert read.actor == ACTOR and read.details["command"] == "doctor"


async def test_an_operator_replays_dead_letters_through_the_app_in_their_own_name(env, tenant, host, issuer):
    """The dead letters are listed by guest, replayed by the app, and the replay is audited as the operator's."""
    from graph.credentials import TenantSimCredential
    from graph.permissions import GRANTED
    from lifecycle.ledger.worker import drain
    from lifecycle.onboarding.handler import handle_ticket
    from lifecycle.onboarding.submission import submit_documents
    from tests.builders import onboard_ticket

    # Without User.Invite.All Graph refuses the invitation: an operator problem, so the ticket is dead-lettered.
    credential = TenantSimCredential(
        env["LIFECYCLE_GRAPH_BASE_URL"].removesuffix("/v1.0"), roles=GRANTED - {"User.Invite.All"}
    )
    app = await bootstrap(load_settings(env), credential=credential)
    try:
        ticket = onboard_ticket(ticketId="RITM0077001", endDate=None, redirectUrl=None)
        ticket["endDate"] = (datetime.now(UTC) + timedelta(days=30)).date().isoformat()
        await submit_documents(app, "onboarding", [ticket])
        report = await drain(app, "onboarding", handle_ticket)
        assert [o.code for o in report.outcomes] == ["authorization_requestdenied"], report.outcomes
    finally:
        await app.close()

    result = lifecycle_cli(_laptop(host, _token(issuer)), "replay", "--all", "--yes")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Ana Lopez" in result.stdout and "ticket:RITM0077001: replayed" in result.stdout
    replayed = [e for e in await _audit(env) if e.action == "job.replayed"]
    assert [e.actor for e in replayed] == [ACTOR]


async def test_an_operator_runs_policy_drift_in_enforce_mode_through_the_app(env, tenant, host, issuer):
    before = tenant.snapshot()["policies"]
    result = lifecycle_cli(_laptop(host, _token(issuer)), "run", "policy-drift", "--mode", "enforce")
    assert result.returncode in (0, 2), result.stdout + result.stderr
    assert tenant.snapshot()["policies"] != before
    [applied] = [e for e in await _audit(env) if e.action == "admin.applied"]
    assert applied.actor == ACTOR and applied.details["args"]["job"] == "policy-drift" and applied.details["runId"]


async def _braked_reset_run(env, tenant, tmp_path: Path):
    """A braked reset run over Fabrikam's second domain, moved to passcodes (brakeCount 0: every reset waits for an
    operator): the run's summary, the guests redeemed before, and how to read them again."""
    import yaml

    from lifecycle.reset.entry import run_reset_detection

    tenant.seed(builtin="fresh", guests=60)
    domain = "fabrikam.co.uk"

    def redeemed() -> set[str]:
        users = tenant.snapshot()["users"]
        return {
            u["id"]
            for u in users
            if u["userType"] == "Guest"
            and (u.get("mail") or "").endswith("@" + domain)
            and u["externalUserState"] == "Accepted"
        }

    # Fabrikam's second domain moved to passcodes, and the desired state no longer names a Fabrikam tenant; every
    # reset waits for an operator (brakeCount 0).
    desired = yaml.safe_load((ROOT / "config" / "desired-state.sample.yaml").read_text())
    desired["partners"]["fabrikam"]["tenantId"] = None
    desired["redemptionReset"] = {**desired.get("redemptionReset", {}), "brakeCount": 0}
    (tmp_path / "desired.yaml").write_text(yaml.safe_dump(desired))
    env |= {
        "LIFECYCLE_DESIRED_STATE": str(tmp_path / "desired.yaml"),
        "LIFECYCLE_RESET_ENABLED": "true",
        "LIFECYCLE_RESET_MODE": "enforce",
    }
    tenant.set_identity_provider(domain, "EmailOTP", None)
    before = redeemed()
    app = await bootstrap(load_settings(env))
    try:
        braked = await run_reset_detection(app, "enforce")
    finally:
        await app.close()
    assert braked["status"] == "braked" and sum(braked["actions"].values()) > 0, braked
    return braked, before, redeemed


async def test_an_operator_approves_a_braked_reset_run_and_the_queue_resets_the_guests_after_the_answer(
    env, tenant, host, issuer, tmp_path: Path
):
    """The approval answers once the run is fanned out: nobody is reset inside the request, the command says the
    resets are under way and how to follow them; the guest-actions worker then resets every planned guest."""
    from lifecycle.sweep.entry import drain_actions

    braked, before, redeemed = await _braked_reset_run(env, tenant, tmp_path)
    run_id = braked["runId"]

    result = lifecycle_cli(_laptop(host, _token(issuer)), "approve", run_id, "--yes")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "under way" in result.stdout and f"sweep show {run_id}" in result.stdout
    assert redeemed() == before  # the request reset nobody

    app = await bootstrap(load_settings(env))
    try:
        worked = await drain_actions(app)
    finally:
        await app.close()
    assert worked == {"done": sum(braked["actions"].values())}
    assert not redeemed() & before
    [applied] = [e for e in await _audit(env) if e.action == "admin.applied"]
    assert applied.actor == ACTOR and applied.details["runId"] == run_id


async def test_an_operator_halts_a_reset_run_under_way_and_resumes_it_through_the_endpoint(
    env, tenant, host, issuer, tmp_path: Path
):
    """halt and resume in remote mode, as the app's identity in the operator's name: the halted run's message
    completes with run-halted and resets nobody, its guests stay queued, approve points to resume, and the resume
    dispatches the run again so every planned guest is reset once."""
    from lifecycle.reset.items import items_of
    from lifecycle.sweep.entry import drain_actions

    braked, before, redeemed = await _braked_reset_run(env, tenant, tmp_path)
    run_id, planned = braked["runId"], sum(braked["actions"].values())
    laptop = _laptop(host, _token(issuer))
    assert lifecycle_cli(laptop, "approve", run_id, "--yes").returncode == 0

    result = lifecycle_cli(laptop, "halt", run_id, "--reason", "wrong provider mapping", "--yes")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"HALTED by {ACTOR}" in result.stdout and f"python -m lifecycle resume {run_id}" in result.stdout
    app = await bootstrap(load_settings(env))
    try:
        assert await drain_actions(app) == {"held": 1}  # the probe: completed, nothing reset, nothing sent on
        items = await items_of(app, run_id)
    finally:
        await app.close()
    assert redeemed() == before and {i.status.value for i in items} == {"queued"}
    refused = lifecycle_cli(laptop, "approve", run_id, "--yes")
    assert refused.returncode == 1 and f"resume {run_id}" in refused.stderr

    result = lifecycle_cli(laptop, "resume", run_id, "--yes")
    assert result.returncode == 0, result.stdout + result.stderr
    app = await bootstrap(load_settings(env))
    try:
        worked = await drain_actions(app)
    finally:
        await app.close()
    assert worked == {"done": planned} and not redeemed() & before
    audited = {e.action: e for e in await _audit(env)}
    assert audited["redemption-reset.halted"].details["halt"]["haltedBy"] == ACTOR
    assert audited["redemption-reset.resumed"].details["halt"]["resumedBy"] == ACTOR
