"""`doctor` against tenantsim and Azurite: each check fails when its precondition is removed and passes when it
is present, and the doctor writes nothing to the tenant."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from azure.storage.queue.aio import QueueServiceClient

from adapters.storage_queue import POISON_SUFFIX
from app.doctor_probe import GraphStorageProbe, required_permissions
from config.settings import ROOT
from graph.credentials import TenantSimCredential
from lifecycle.doctor.checks import Check, Status, exit_code
from lifecycle.doctor.run import run_doctor
from lifecycle.ledger.operations import QUEUES
from tenantsim.client import TenantSimAdmin
from tenantsim.seed import build_seed
from tenantsim.server import TenantSimServer
from tests.builders import lifecycle_cli

pytestmark = pytest.mark.stack

PROTECTED_GROUP = "7d3e9f1a-2b4c-4d6e-8f0a-1b2c3d4e5f6a"


@pytest.fixture(scope="module", name="sim")
def _sim() -> Iterator[TenantSimServer]:
    with TenantSimServer(posture="locked-down") as server:
        yield server


@pytest.fixture(name="admin")
def _admin(sim: TenantSimServer) -> Iterator[TenantSimAdmin]:
    with TenantSimAdmin(sim.url) as admin:
        admin.seed(builtin="locked-down")
        admin.configure(entraIdPremium=True)
        yield admin
        admin.seed(builtin="locked-down")
        admin.configure(
            entraIdPremium=True, signInListNeedsDirectoryRead=True, apiConnectorConfigurationExpand="expand"
        )


@pytest.fixture(name="env")
def _env(azurite, sim: TenantSimServer) -> dict[str, str]:
    prefix = "doc" + uuid.uuid4().hex[:8]
    return {
        **azurite.env,
        "LIFECYCLE_GRAPH_BASE_URL": f"{sim.url}/v1.0",
        "LIFECYCLE_GRAPH_BETA_URL": f"{sim.url}/beta",
        "LIFECYCLE_GRAPH_CREDENTIAL": "tenantsim",
        "LIFECYCLE_TABLE_PREFIX": prefix,
        "LIFECYCLE_QUEUE_PREFIX": prefix,
    }


def _doctor(env: dict[str, str], without: frozenset[str] = frozenset()) -> list[Check]:
    """Run every check with a token holding what the deployment needs, minus ``without``."""

    def probe_for(settings: Any) -> tuple[GraphStorageProbe, Any]:
        roles = frozenset(required_permissions(settings)) - without
        credential = TenantSimCredential(env["LIFECYCLE_GRAPH_BASE_URL"].removesuffix("/v1.0"), roles=roles)
        probe = GraphStorageProbe(settings, credential)
        return probe, probe.close

    return asyncio.run(run_doctor(probe_for, required_permissions, env))


def _named(checks: list[Check], name: str, job: str | None = None) -> Check:
    found = [c for c in checks if c.name == name and (job is None or job in c.jobs)]
    assert len(found) == 1, [c.line() for c in checks if c.name == name]
    return found[0]


async def _create_queues(env: dict[str, str], *, dead_letter_in: str | None = None) -> None:
    async with QueueServiceClient.from_connection_string(env["LIFECYCLE_QUEUES_CONNECTION_STRING"]) as service:
        for logical in QUEUES:
            await service.create_queue(env["LIFECYCLE_QUEUE_PREFIX"] + logical)
        if dead_letter_in:
            poison = service.get_queue_client(env["LIFECYCLE_QUEUE_PREFIX"] + dead_letter_in + POISON_SUFFIX)
            await poison.create_queue()
            await poison.send_message("{}")


def test_every_tenant_check_passes_on_the_locked_down_tenant(env, admin):
    """With the grant the modes need, the seeded licence, groups and catalog, every job's reads pass."""
    asyncio.run(_create_queues(env))
    checks = _doctor(env)
    assert [c.line() for c in checks if c.status is Status.FAIL] == []
    for name in ("settings", "desired state", "graph token", "invitation domain list"):
        assert _named(checks, name).status is Status.PASS
    assert all(c.status is Status.PASS for c in checks if c.name.startswith("graph read: "))
    assert all(c.status is Status.PASS for c in checks if c.name == "graph permissions")
    assert _named(checks, f"group {PROTECTED_GROUP}").status is Status.PASS
    assert _named(checks, "catalog 'Partner collaboration'").status is Status.PASS
    assert _named(checks, "access package 'Fabrikam engineering'").status is Status.PASS
    assert _named(checks, "partner fabrikam").status is Status.PASS
    assert all(c.status is Status.PASS for c in checks if c.name.startswith("queue "))


def test_a_permission_missing_from_the_token_fails_the_jobs_that_need_it(env, admin):
    checks = _doctor(env, without=frozenset({"AuditLog.Read.All"}))
    sweep = _named(checks, "graph permissions", "guest-sweep")
    assert sweep.status is Status.FAIL and "AuditLog.Read.All" in sweep.detail
    assert "infra/grant-graph-permissions" in (sweep.fix or "")
    read = _named(checks, "graph read: signInActivity")
    assert read.status is Status.FAIL and "AuditLog.Read.All" in (read.fix or "")
    assert _named(checks, "graph permissions", "onboarding").status is Status.PASS


def test_a_tenant_without_p1_or_p2_fails_the_sign_in_activity_read_with_the_licence(env, admin):
    admin.configure(entraIdPremium=False)
    checks = _doctor(env)
    read = _named(checks, "graph read: signInActivity")
    assert read.status is Status.FAIL
    assert "P1 or P2" in read.detail and "Authentication_RequestFromNonPremiumTenantOrB2CTenant" in read.detail
    assert _named(checks, "graph read: users").status is Status.PASS


def test_a_group_missing_from_the_tenant_fails_the_check_of_the_desired_state(env, admin):
    document = build_seed(40, 0, "locked-down")
    document["groups"] = [g for g in document["groups"] if g["id"] != PROTECTED_GROUP]
    admin.seed(document)
    check = _named(_doctor(env), f"group {PROTECTED_GROUP}")
    assert check.status is Status.FAIL and "exclusions.protectedGroupId" in check.detail
    assert check.jobs == ("guest-sweep", "redemption-reset")


def test_an_access_package_the_tenant_lacks_fails_the_onboarding_of_its_partner(env, admin, tmp_path):
    sample = (ROOT / "config" / "desired-state.sample.yaml").read_text(encoding="utf-8")
    desired = tmp_path / "desired.yaml"
    desired.write_text(sample.replace("name: Woodgrove audit}", "name: Woodgrove retired}"), encoding="utf-8")
    checks = _doctor({**env, "LIFECYCLE_DESIRED_STATE": str(desired)})
    missing = _named(checks, "access package 'Woodgrove retired'")
    assert missing.status is Status.FAIL and "woodgrove" in missing.detail and "governance" in (missing.fix or "")
    assert _named(checks, "access package 'Fabrikam engineering'").status is Status.PASS


def test_an_absent_queue_fails_and_a_dead_letter_warns(env, admin):
    absent = _doctor(env)
    queue = _named(absent, f"queue {env['LIFECYCLE_QUEUE_PREFIX']}onboarding")
    assert queue.status is Status.FAIL and "does not exist" in queue.detail
    assert exit_code(absent) == 1
    asyncio.run(_create_queues(env, dead_letter_in="guest-actions"))
    present = _doctor(env)
    assert _named(present, f"queue {env['LIFECYCLE_QUEUE_PREFIX']}onboarding").status is Status.PASS
    dead = _named(present, f"queue {env['LIFECYCLE_QUEUE_PREFIX']}guest-actions")
    assert dead.status is Status.WARN and "1 dead letter" in dead.detail


def test_the_doctor_only_reads_the_tenant(env, admin):
    admin.reset_counters()
    before = len(admin.requests())
    _doctor(env)
    methods = {r["method"] for r in admin.requests()[before:]}
    assert methods == {"GET"}


def test_the_command_prints_one_line_per_check_and_exits_by_the_worst(env, admin):
    run = _cli(env, "doctor")
    assert run.returncode == 1, run.stderr
    lines = run.stdout.splitlines()
    assert any(line.startswith("fail ") and "does not exist" in line and "fix:" in line for line in lines)
    assert lines[-1].startswith("doctor: ") and lines[-1].endswith("(exit 1)")
    asyncio.run(_create_queues(env))
    as_json = _cli(env, "doctor", "--job", "governance", "--json")
    report = json.loads(as_json.stdout)
    assert as_json.returncode == report["exitCode"] == exit_code([_from_json(c) for c in report["checks"]])
    assert all("governance" in c["jobs"] or c["jobs"] == ["all"] for c in report["checks"])
    assert {c["status"] for c in report["checks"]} <= {"pass", "warn"}


def _from_json(check: dict[str, Any]) -> Check:
    return Check(check["name"], Status(check["status"]), check["detail"], tuple(check["jobs"]), check["fix"])


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return lifecycle_cli({**os.environ, **env}, *args)


# --- the opt-in lockdown areas -------------------------------------------------------------------------------

FEATURE_READ_NAMES = ("apiConnectors", "userFlows", "signInLogs", "emailAuthenticationMethod", "identityProviders")
SECRETS = {"LIFECYCLE_SIGNUP_CONNECTOR_PASSWORD": "basic-secret", "LIFECYCLE_GOOGLE_CLIENT_SECRET": "google-secret"}
LOCKDOWN = {
    "signUpRegistration": {
        "targetUrl": "https://func-signup.contoso.example/api/signup",
        "username": "entra-signup",
        "userFlows": ["B2X_1_Partner"],
    },
    "guestConditionalAccess": {"breakGlassUserIds": ["0b1f7a2e-5c3d-4e8f-9a6b-7c8d9e0f1a2b"]},
    "guestIdentityProviders": {"emailOneTimePasscode": "enabled", "google": {"clientId": "1234.apps.example"}},
}


@pytest.fixture(name="lockdown_env")
def _lockdown_env(env: dict[str, str], tmp_path) -> dict[str, str]:
    """A deployment whose desired state declares the three lockdown areas, with both secrets configured."""
    import yaml

    sample = yaml.safe_load((ROOT / "config" / "desired-state.sample.yaml").read_text(encoding="utf-8"))
    desired = tmp_path / "lockdown.yaml"
    desired.write_text(yaml.safe_dump({**sample, **LOCKDOWN}), encoding="utf-8")
    asyncio.run(_create_queues(env))
    return {**env, **SECRETS, "LIFECYCLE_DESIRED_STATE": str(desired)}


def _create_user_flow(sim: TenantSimServer, admin: TenantSimAdmin) -> None:
    import httpx

    body = {"id": "Partner", "userFlowType": "signUpOrSignIn", "userFlowTypeVersion": 1}
    headers = admin.auth_headers(["IdentityUserFlow.ReadWrite.All"])
    created = httpx.post(f"{sim.url}/v1.0/identity/b2xUserFlows", json=body, headers=headers)
    assert created.status_code == 201, created.text


def test_a_desired_state_without_the_opt_in_areas_reads_none_of_them(env, admin):
    names = {c.name for c in _doctor(env)}
    assert not names & {f"graph read: {name}" for name in FEATURE_READ_NAMES}
    assert not any(name.startswith(("secret ", "user flow ")) for name in names)


def test_each_declared_area_is_read_and_passes_with_the_grant_its_feature_needs(sim, lockdown_env, admin):
    admin.configure(signInListNeedsDirectoryRead=False)
    _create_user_flow(sim, admin)
    admin.reset_counters()
    checks = _doctor(lockdown_env)
    assert {r["method"] for r in admin.requests()} == {"GET"}  # the areas' probes only read
    areas = [c for c in checks if c.name.startswith(("graph read: ", "graph permissions", "secret ", "user flow "))]
    assert [c.line() for c in areas if c.status is not Status.PASS] == []
    for name in FEATURE_READ_NAMES:
        assert _named(checks, f"graph read: {name}").jobs == ("policy-drift",)
    assert "exists" in _named(checks, "user flow B2X_1_Partner").detail
    assert _named(checks, "secret LIFECYCLE_GOOGLE_CLIENT_SECRET").status is Status.PASS
    assert not any("basic-secret" in c.line() or "google-secret" in c.line() for c in checks)


@pytest.mark.parametrize(
    ("permission", "read"),
    [
        ("APIConnectors.ReadWrite.All", "apiConnectors"),
        ("IdentityUserFlow.ReadWrite.All", "userFlows"),
        ("AuditLog.Read.All", "signInLogs"),
        ("IdentityProvider.Read.All", "identityProviders"),
    ],
)
def test_a_grant_without_an_areas_permission_fails_its_read_naming_it(sim, lockdown_env, admin, permission, read):
    admin.configure(signInListNeedsDirectoryRead=False)
    _create_user_flow(sim, admin)
    checks = _doctor(lockdown_env, without=frozenset({permission}))
    check = _named(checks, f"graph read: {read}")
    assert check.status is Status.FAIL and (check.fix or "").startswith(f"grant {permission} "), check.line()
    drift = _named(checks, "graph permissions", "policy-drift")
    assert drift.status is Status.FAIL and permission in drift.detail


def test_sign_in_logs_refused_despite_the_grant_warn_with_the_documented_known_issue(sim, lockdown_env, admin):
    """signin-list.md's known issue (tenantsim's signInListNeedsDirectoryRead knob): the product holds
    AuditLog.Read.All and not Directory.Read.All, so the read warns instead of failing."""
    admin.configure(signInListNeedsDirectoryRead=True)
    check = _named(_doctor(lockdown_env), "graph read: signInLogs")
    assert check.status is Status.WARN and "AuditLog.Read.All" in check.detail
    assert "Directory.Read.All" in (check.fix or "")


def test_a_missing_user_flow_and_a_missing_secret_fail_with_the_fix(lockdown_env, admin):
    env = {k: v for k, v in lockdown_env.items() if k != "LIFECYCLE_SIGNUP_CONNECTOR_PASSWORD"}
    checks = _doctor(env)
    flow = _named(checks, "user flow B2X_1_Partner")
    assert flow.status is Status.FAIL and "admin center" in (flow.fix or "")
    secret = _named(checks, "secret LIFECYCLE_SIGNUP_CONNECTOR_PASSWORD")
    assert secret.status is Status.FAIL and "Key Vault reference" in (secret.fix or "")
    assert _named(checks, "secret LIFECYCLE_GOOGLE_CLIENT_SECRET").status is Status.PASS


def test_a_user_flow_graph_will_not_expand_cannot_be_verified(sim, lockdown_env, admin):
    """The user flow's resource page says $expand is not supported on its connector configuration (tenantsim's
    apiConnectorConfigurationExpand=refuse): the flow exists, but which connector a step calls cannot be told."""
    _create_user_flow(sim, admin)
    admin.configure(apiConnectorConfigurationExpand="refuse")
    check = _named(_doctor(lockdown_env), "user flow B2X_1_Partner")
    assert check.status is Status.CANNOT_VERIFY and "would not expand" in check.detail
    assert "idempotent" in (check.fix or "")
