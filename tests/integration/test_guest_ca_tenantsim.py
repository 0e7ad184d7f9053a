"""The guest Conditional Access policies end to end on tenantsim: report-only first, evidence, approval, enabled."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import httpx
import pytest

from adapters.memory import MemoryDriftReports
from config.desired_state import DesiredState, GuestConditionalAccess, load_desired_state
from config.settings import SAMPLE_DESIRED_STATE
from graph.client import build_graph_client
from graph.credentials import TenantSimCredential
from graph.permissions import GRANTED, features_of, granted
from graph.policies import GraphPolicies
from graph.sign_ins import GraphSignInEvidence
from lifecycle.drift.ca_policies import LEGACY, MFA, REPORT_ONLY, RESOURCE
from lifecycle.drift.entry import drift_ports, run_policy_drift
from lifecycle.plans import Change
from lifecycle.services import Services
from tenantsim.client import TenantSimAdmin
from tenantsim.server import TenantSimServer
from tests.builders import memory_services
from tests.fakes import FakeDirectory

BREAK_GLASS = "0b1f7a2e-5c3d-4e8f-9a6b-7c8d9e0f1a2b"
CA = "/v1.0/identity/conditionalAccess/policies"
CA_WRITE = ["Policy.ReadWrite.ConditionalAccess", "Policy.Read.All", "Application.Read.All"]
BOTH = frozenset({MFA, LEGACY})


@pytest.fixture
def admin(sim: TenantSimServer) -> Iterator[TenantSimAdmin]:
    with TenantSimAdmin(sim.url) as client:
        client.seed(builtin="locked-down", guests=5)
        client.configure(throttlingEnabled=False, timeCompression=1, signInListNeedsDirectoryRead=False)
        client.clear_faults()
        yield client


def _desired(enabled: bool = True, **section: object) -> DesiredState:
    wanted = GuestConditionalAccess.model_validate(
        {
            "breakGlassUserIds": [BREAK_GLASS],
            "requireMfa": {"displayName": "Guests: require MFA (managed)", "enabled": enabled},
            "blockLegacyAuthentication": {"displayName": "Guests: no legacy authentication", "enabled": enabled},
            **section,
        }
    )
    return load_desired_state(SAMPLE_DESIRED_STATE).model_copy(update={"guest_conditional_access": wanted})


def _services(
    sim: TenantSimServer,
    desired: DesiredState,
    roles: frozenset[str] | None = None,
    interval: float = 0.0,
    directory: FakeDirectory | None = None,
) -> Services:
    roles = granted(redemption_reset=False, features=features_of(desired)) if roles is None else roles
    client = build_graph_client(credential=TenantSimCredential(sim.url, roles=roles), base_url=f"{sim.url}/v1.0")
    policies = GraphPolicies(client, beta_url=f"{sim.url}/beta", conditional_access_interval=interval)
    return memory_services(
        directory or _directory(),
        desired=desired,
        tenant_policies=policies,
        drift_reports=MemoryDriftReports(),
        conditional_access_writes=policies,
        sign_in_evidence=GraphSignInEvidence(client),
    )


def _directory() -> FakeDirectory:
    """The tenant's own users as the break-glass check reads them: one emergency administrator."""
    directory = FakeDirectory()
    admin = directory.add_member("breakglass@contoso.com", "Emergency access")
    directory.users[BREAK_GLASS] = replace(directory.users.pop(admin.id), id=BREAK_GLASS)
    return directory


def _policies(sim: TenantSimServer, admin: TenantSimAdmin) -> dict[str, dict]:
    answer = httpx.get(f"{sim.url}{CA}", headers=admin.auth_headers(CA_WRITE))
    return {p["displayName"]: p for p in answer.json()["value"]}


def _send(sim: TenantSimServer, admin: TenantSimAdmin, method: str, path: str, body: dict) -> int:
    """An administrator's change in the portal, as a Graph request."""
    return httpx.request(method, f"{sim.url}{path}", json=body, headers=admin.auth_headers(CA_WRITE)).status_code


def _managed(run) -> dict[str, tuple[Change, str]]:
    return {a.key: (a.change, a.reason) for a in run.actions if a.resource == RESOURCE}


def _would_block(policy_id: str, *users: str) -> list[dict]:
    return [
        {
            "userId": user,
            "clientAppUsed": "Browser",
            "appliedConditionalAccessPolicies": [{"id": policy_id, "displayName": "x", "result": "reportOnlyFailure"}],
        }
        for user in users
    ]


async def test_report_only_first_then_the_evidence_then_approval_switches_it_on_and_the_plan_converges(sim, admin):
    desired = _desired()
    services = _services(sim, desired)
    planned = await run_policy_drift(services, "plan")
    assert {k: c for k, (c, _) in _managed(planned).items()} == {MFA: Change.CREATE, LEGACY: Change.CREATE}
    created = await run_policy_drift(services, "enforce")
    assert created.failed == []
    states = {name: p["state"] for name, p in _policies(sim, admin).items()}
    assert states == {"Guests: require MFA (managed)": REPORT_ONLY, "Guests: no legacy authentication": REPORT_ONLY}
    mfa = _policies(sim, admin)["Guests: require MFA (managed)"]
    assert mfa["conditions"]["users"]["excludeUsers"] == [BREAK_GLASS]
    admin.add_sign_ins(*_would_block(mfa["id"], "g1", "g1", "g2"))

    held = await run_policy_drift(services, "enforce")  # what the hourly timer does: it never approves
    change, reason = _managed(held)[MFA]
    assert change is Change.REPORT and "--approve-enable guest-mfa" in reason
    assert "would have blocked 3 sign-in(s) by 2 guest(s)" in reason
    report = await drift_ports(services).reports.get(held.run_id)
    assert (
        report is not None and "would have blocked 3 sign-in(s) by 2 guest(s)" in report.markdown
    )  # the stored report shows it too
    assert held.results == [] and held.exit_code == 2
    assert _policies(sim, admin)["Guests: require MFA (managed)"]["state"] == REPORT_ONLY

    approved = await run_policy_drift(services, "enforce", approvals=BOTH)
    assert approved.failed == [] and len(approved.results) == 2
    assert {p["state"] for p in _policies(sim, admin).values()} == {"enabled"}
    settled = await run_policy_drift(services, "plan")
    assert settled.drift == [] and settled.exit_code == 0


async def test_a_policy_the_file_keeps_report_only_is_not_drift_once_created(sim, admin):
    services = _services(sim, _desired(enabled=False))
    await run_policy_drift(services, "enforce")
    again = await run_policy_drift(services, "plan", approvals=frozenset({MFA}))
    assert {k: c for k, (c, _) in _managed(again).items()} == {MFA: Change.NONE, LEGACY: Change.NONE}
    assert any("keeps it report-only" in w for w in again.warnings)


async def test_without_readable_sign_in_logs_the_plan_says_it_cannot_tell(sim, admin):
    """The list page's known issue (Directory.Read.All as well), which this product is not granted."""
    services = _services(sim, _desired())
    await run_policy_drift(services, "enforce")
    admin.configure(signInListNeedsDirectoryRead=True)
    held = await run_policy_drift(services, "plan")
    _, reason = _managed(held)[MFA]
    assert "cannot tell what it would have blocked" in reason and "403" in reason


async def test_an_enabled_policy_stripped_of_its_break_glass_exclusion_is_put_back(sim, admin):
    services = _services(sim, _desired())
    await run_policy_drift(services, "enforce")
    await run_policy_drift(services, "enforce", approvals=BOTH)
    mfa = _policies(sim, admin)["Guests: require MFA (managed)"]
    conditions = {"users": {**mfa["conditions"]["users"], "excludeUsers": []}}
    assert _send(sim, admin, "PATCH", f"{CA}/{mfa['id']}", {"conditions": conditions}) == 204
    drifted = await run_policy_drift(services, "plan")
    (action,) = [a for a in drifted.drift if a.resource == RESOURCE]
    assert action.change is Change.UPDATE and action.diffs[0].field == "excludeUsers"
    await run_policy_drift(services, "enforce")
    assert _policies(sim, admin)["Guests: require MFA (managed)"]["conditions"]["users"]["excludeUsers"] == [
        BREAK_GLASS
    ]
    assert _policies(sim, admin)["Guests: require MFA (managed)"]["state"] == "enabled"


async def test_without_a_break_glass_exclusion_nothing_is_written(sim, admin):
    run = await run_policy_drift(_services(sim, _desired(breakGlassUserIds=[])), "enforce", approvals=BOTH)
    assert [r.rule for r in run.refusals] == ["ca-break-glass-missing"] and run.results == []
    assert _policies(sim, admin) == {}


@pytest.mark.parametrize("who", ["unknown", "guest"])
async def test_a_break_glass_user_that_is_nobody_or_a_guest_is_refused(sim, admin, who):
    directory = _directory()
    guest = directory.add_guest("ana@fabrikam.com")
    user_id = "5e2b7f0c-1d3a-4b6e-8f9a-0c1d2e3f4a5b" if who == "unknown" else guest.id
    desired = _desired(breakGlassUserIds=[BREAK_GLASS, user_id])
    run = await run_policy_drift(_services(sim, desired, directory=directory), "enforce")
    assert {r.rule for r in run.refusals} == {f"ca-break-glass-{'unknown' if who == 'unknown' else 'is-guest'}"}
    assert run.results == [] and _policies(sim, admin) == {}


async def test_two_policies_with_a_managed_name_are_refused(sim, admin):
    services = _services(sim, _desired())
    await run_policy_drift(services, "enforce")
    twin = {**_policies(sim, admin)["Guests: require MFA (managed)"]}
    body = {k: twin[k] for k in ("displayName", "state", "conditions", "grantControls")}
    assert _send(sim, admin, "POST", CA, body) == 201
    run = await run_policy_drift(services, "enforce", approvals=BOTH)
    assert "ca-policy-ambiguous" in {r.rule for r in run.refusals} and run.results == []


async def test_every_conditional_access_call_is_paced_to_the_tenants_limit(sim, admin):
    """With the service's one request per second (compressed tenfold) and the gateway pacing to match, a run
    that reads and writes Conditional Access several times is never throttled."""
    admin.configure(throttlingEnabled=True, timeCompression=10)
    admin.reset_counters()
    services = _services(sim, _desired(), interval=0.1)
    run = await run_policy_drift(services, "enforce")
    approved = await run_policy_drift(services, "enforce", approvals=BOTH)
    assert run.failed == [] and approved.failed == [] and len(approved.results) == 2
    calls = [r for r in admin.requests() if "/identity/conditionalAccess/" in r["path"]]
    assert len(calls) >= 6 and all(r["status"] != 429 for r in calls)


async def test_plan_mode_needs_no_write_permission_and_enforce_without_it_fails_cleanly(sim, admin):
    desired = _desired()
    reads = GRANTED  # Policy.Read.All and AuditLog.Read.All: everything planning needs
    planned = await run_policy_drift(_services(sim, desired, roles=reads), "plan")
    assert {c for c, _ in _managed(planned).values()} == {Change.CREATE}
    refused = await run_policy_drift(_services(sim, desired, roles=reads), "enforce")
    assert {r.error["status"] for r in refused.failed} == {403} and _policies(sim, admin) == {}


async def test_apply_policies_confirms_an_approved_switch_and_lists_nothing_to_switch_without_approval(sim, admin):
    from app.cli.config import policy_changes

    services = _services(sim, _desired())
    await run_policy_drift(services, "enforce")
    assert [r for r in await policy_changes(services, False) or [] if r["resource"] == RESOURCE] == []
    rows = await policy_changes(services, False, BOTH) or []
    assert sorted((r["change"], r["key"], r["fields"]) for r in rows if r["resource"] == RESOURCE) == [
        ("update", LEGACY, "state, reportOnlyEvidence"),
        ("update", MFA, "state, reportOnlyEvidence"),
    ]


def test_the_command_line_switches_a_policy_on_only_with_approve_enable(sim, admin, monkeypatch):
    """`apply policies` holds the switch; `apply policies --approve-enable guest-mfa` carries it out."""
    import asyncio

    from typer.testing import CliRunner

    from app.cli.main import app

    desired = _desired(blockLegacyAuthentication=None)

    async def bootstrap(*_: object, **__: object) -> Services:
        return _services(sim, desired)  # per command: the Graph client belongs to the command's event loop

    monkeypatch.setattr("app.bootstrap.bootstrap", bootstrap)

    async def create() -> None:
        await run_policy_drift(_services(sim, desired), "enforce")  # created report-only

    asyncio.run(create())

    def apply(*extra: str):
        return CliRunner().invoke(app, ["apply", "policies", "--yes", "--json", *extra], env={"COLUMNS": "240"})

    held = apply()
    assert held.exit_code == 2, held.output
    assert _policies(sim, admin)["Guests: require MFA (managed)"]["state"] == REPORT_ONLY
    approved = apply("--approve-enable", MFA)
    # Exit 2 still: the read-only posture check wants a legacy-authentication block this file does not manage.
    assert approved.exit_code == 2 and '"ok": true' in approved.output, approved.output
    assert _policies(sim, admin)["Guests: require MFA (managed)"]["state"] == "enabled"
    assert apply("--approve-remove", "facebook").exit_code == 64
