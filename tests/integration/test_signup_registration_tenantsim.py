"""The sign-up connector's registration end to end on tenantsim: plan, apply, plan again, drift, guardrails."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from adapters.memory import MemoryDriftReports
from config.desired_state import DesiredState, SignUpRegistration, load_desired_state
from config.settings import SAMPLE_DESIRED_STATE, load_settings
from graph.api_connectors import GraphApiConnectors
from graph.client import build_graph_client
from graph.credentials import TenantSimCredential
from graph.permissions import GRANTED, SIGNUP_REGISTRATION, feature_grant, features_of, granted
from graph.policies import GraphPolicies
from lifecycle.drift.entry import drift_ports, run_policy_drift
from lifecycle.drift.signup_connector import ATTACHMENT, CONNECTOR
from lifecycle.errors import PermissionDeniedError
from lifecycle.plans import Change
from lifecycle.services import Services
from tenantsim.client import TenantSimAdmin
from tenantsim.server import TenantSimServer
from tests.builders import LOCAL_ENV, memory_services
from tests.integration.test_drift_tenantsim import _create_guest_ca_policies

SECRET = "correct-horse-battery-staple"
URL = "https://func-signup.contoso.example/api/signup"
FLOW_WRITE = ["IdentityUserFlow.ReadWrite.All"]
CONNECTOR_WRITE = ["APIConnectors.ReadWrite.All"]


@pytest.fixture
def admin(sim: TenantSimServer) -> Iterator[TenantSimAdmin]:
    with TenantSimAdmin(sim.url) as client:
        client.seed(builtin="locked-down", guests=5)
        client.configure(throttlingEnabled=False, apiConnectorConfigurationExpand="expand")
        client.clear_faults()
        _create_guest_ca_policies(client, sim)
        yield client


def _desired(**registration: object) -> DesiredState:
    sample = load_desired_state(SAMPLE_DESIRED_STATE)
    wanted = SignUpRegistration.model_validate(
        {"targetUrl": URL, "username": "entra-signup", "userFlows": ["B2X_1_Partner"], **registration}
    )
    return sample.model_copy(update={"sign_up_registration": wanted})


def _services(
    sim: TenantSimServer, desired: DesiredState, roles: frozenset[str] | None = None, secret: str | None = SECRET
) -> Services:
    roles = granted(redemption_reset=False, features=features_of(desired)) if roles is None else roles
    client = build_graph_client(credential=TenantSimCredential(sim.url, roles=roles), base_url=f"{sim.url}/v1.0")
    env = {**LOCAL_ENV, **({"LIFECYCLE_SIGNUP_CONNECTOR_PASSWORD": secret} if secret else {})}
    return memory_services(
        desired=desired,
        settings=load_settings(env),
        tenant_policies=GraphPolicies(client, beta_url=f"{sim.url}/beta", conditional_access_interval=0.0),
        drift_reports=MemoryDriftReports(),
        sign_up_connectors=GraphApiConnectors(client),
    )


def _user_flow(sim: TenantSimServer, admin: TenantSimAdmin, name: str = "Partner") -> str:
    body = {"id": name, "userFlowType": "signUpOrSignIn", "userFlowTypeVersion": 1}
    answer = httpx.post(f"{sim.url}/v1.0/identity/b2xUserFlows", json=body, headers=admin.auth_headers(FLOW_WRITE))
    assert answer.status_code == 201, answer.text
    return answer.json()["id"]


def _send(sim: TenantSimServer, admin: TenantSimAdmin, method: str, path: str, body: dict, roles: list[str]) -> dict:
    """An administrator's change in the admin center, as Graph requests."""
    answer = httpx.request(method, f"{sim.url}/v1.0{path}", json=body, headers=admin.auth_headers(roles))
    assert answer.status_code in (201, 204), answer.text
    return answer.json() if answer.content else {}


def _connectors(sim: TenantSimServer, admin: TenantSimAdmin) -> list[dict]:
    headers = admin.auth_headers(CONNECTOR_WRITE)
    return httpx.get(f"{sim.url}/v1.0/identity/apiConnectors", headers=headers).json()["value"]


def _attached(sim: TenantSimServer, admin: TenantSimAdmin, flow: str, step: str = "postAttributeCollection") -> dict:
    url = f"{sim.url}/v1.0/identity/b2xUserFlows/{flow}/apiConnectorConfiguration?$expand={step}"
    return httpx.get(url, headers=admin.auth_headers(FLOW_WRITE)).json()[step]


def _changes(run) -> list[tuple[str, str, Change]]:
    return [(a.resource, a.key, a.change) for a in run.drift]


async def test_plan_apply_plan_registers_the_connector_and_converges(sim, admin):
    flow = _user_flow(sim, admin)
    services = _services(sim, _desired())
    planned = await run_policy_drift(services, "plan")
    assert _changes(planned) == [
        (CONNECTOR, "Partner self-service sign-up", Change.CREATE),
        (ATTACHMENT, f"{flow}/postAttributeCollection", Change.UPDATE),
    ]
    assert _connectors(sim, admin) == []
    applied = await run_policy_drift(services, "enforce")
    assert applied.failed == [] and len(applied.results) == 2
    (connector,) = _connectors(sim, admin)
    assert connector["targetUrl"] == URL
    assert connector["authenticationConfiguration"]["username"] == "entra-signup"
    assert _attached(sim, admin, flow)["id"] == connector["id"]
    again = await run_policy_drift(services, "plan")
    assert again.drift == [] and again.exit_code == 0


async def test_the_password_reaches_graph_but_no_plan_report_or_audit_row(sim, admin):
    _user_flow(sim, admin)
    admin.reset_counters()
    services = _services(sim, _desired())
    run = await run_policy_drift(services, "enforce")
    assert run.failed == []
    (report,) = await drift_ports(services).reports.recent()
    audit = [entry.details async for entry in services.audit.entries()]
    assert any(entry["after"].get("targetUrl") == URL for entry in audit), "the connector's write was audited"
    written = json.dumps([run.as_dict(), report.document, audit], default=str) + report.markdown
    assert SECRET not in written
    created = [r for r in admin.requests() if r["method"] == "POST" and r["path"].endswith("/identity/apiConnectors")]
    assert [r["status"] for r in created] == [201]


async def test_a_connector_moved_to_another_url_or_stripped_of_authentication_is_put_back(sim, admin):
    flow = _user_flow(sim, admin)
    services = _services(sim, _desired())
    await run_policy_drift(services, "enforce")
    (connector,) = _connectors(sim, admin)
    change = {
        "targetUrl": "https://attacker.example/collect",
        "authenticationConfiguration": {
            "@odata.type": "#microsoft.graph.basicAuthentication",
            "username": "someone-else",
            "password": "guessable",
        },
    }
    _send(sim, admin, "PATCH", f"/identity/apiConnectors/{connector['id']}", change, CONNECTOR_WRITE)
    drifted = await run_policy_drift(services, "plan")
    (action,) = drifted.drift
    assert (action.resource, action.change) == (CONNECTOR, Change.UPDATE)
    assert {d.field: d.actual for d in action.diffs} == {
        "targetUrl": "https://attacker.example/collect",
        "authenticationConfiguration": "basicAuthentication (someone-else)",
    }
    fixed = await run_policy_drift(services, "enforce")
    assert fixed.failed == []
    (connector,) = _connectors(sim, admin)
    assert connector["targetUrl"] == URL and connector["authenticationConfiguration"]["username"] == "entra-signup"
    assert _attached(sim, admin, flow)["id"] == connector["id"]
    assert (await run_policy_drift(services, "plan")).exit_code == 0


async def test_a_step_pointing_at_another_connector_is_drift_and_is_repointed(sim, admin):
    flow = _user_flow(sim, admin)
    services = _services(sim, _desired())
    await run_policy_drift(services, "enforce")
    other = {
        "displayName": "Someone's connector",
        "targetUrl": "https://other.example/api",
        "authenticationConfiguration": {
            "@odata.type": "#microsoft.graph.basicAuthentication",
            "username": "u",
            "password": "p",
        },
    }
    created = _send(sim, admin, "POST", "/identity/apiConnectors", other, CONNECTOR_WRITE)
    ref = {"@odata.id": f"https://graph.microsoft.com/v1.0/identity/apiConnectors/{created['id']}"}
    step = f"/identity/b2xUserFlows/{flow}/apiConnectorConfiguration/postAttributeCollection/$ref"
    _send(sim, admin, "PUT", step, ref, FLOW_WRITE)
    drifted = await run_policy_drift(services, "plan")
    assert _changes(drifted) == [(ATTACHMENT, f"{flow}/postAttributeCollection", Change.UPDATE)]
    assert drifted.drift[0].diffs[0].actual == "Someone's connector (https://other.example/api)"
    await run_policy_drift(services, "enforce")
    assert _attached(sim, admin, flow)["displayName"] == "Partner self-service sign-up"


async def test_when_the_attachment_cannot_be_read_it_is_set_again_and_said_so(sim, admin):
    """The resource page's reading (no $expand on the connector configuration): the product cannot tell what
    a step calls, so it sets it again every run (idempotent) and its reason says why."""
    flow = _user_flow(sim, admin)
    admin.configure(apiConnectorConfigurationExpand="refuse")
    services = _services(sim, _desired())
    applied = await run_policy_drift(services, "enforce")
    assert applied.failed == []
    admin.configure(apiConnectorConfigurationExpand="expand")
    (connector,) = _connectors(sim, admin)
    assert _attached(sim, admin, flow)["id"] == connector["id"]
    admin.configure(apiConnectorConfigurationExpand="refuse")
    again = await run_policy_drift(services, "plan")
    (action,) = again.drift
    assert action.resource == ATTACHMENT and "would not expand" in action.reason


async def test_a_missing_user_flow_is_reported_never_created(sim, admin):
    services = _services(sim, _desired(userFlows=["B2X_1_Nowhere"]))
    run = await run_policy_drift(services, "enforce")
    assert (ATTACHMENT, "B2X_1_Nowhere/postAttributeCollection", Change.REPORT) in _changes(run)
    assert run.failed == [] and run.exit_code == 2


@pytest.mark.parametrize(
    ("desired", "secret", "rule"),
    [
        (_desired(targetUrl="http://func-signup.contoso.example/api/signup"), SECRET, "signup-connector-url-not-https"),
        (_desired(targetUrl="https://user:pw@func.example/api"), SECRET, "signup-connector-url-not-https"),
        (_desired(), None, "signup-connector-without-authentication"),
    ],
    ids=["http", "userinfo", "no-secret"],
)
async def test_each_guardrail_refuses_and_nothing_is_written(sim, admin, desired, secret, rule):
    _user_flow(sim, admin)
    run = await run_policy_drift(_services(sim, desired, secret=secret), "enforce")
    assert rule in {r.rule for r in run.refusals} and run.results == [] and run.exit_code == 1
    assert _connectors(sim, admin) == []


async def test_two_connectors_with_the_desired_name_are_refused_as_ambiguous(sim, admin):
    _user_flow(sim, admin)
    services = _services(sim, _desired())
    await run_policy_drift(services, "enforce")
    (connector,) = _connectors(sim, admin)
    twin = {
        "displayName": connector["displayName"],
        "targetUrl": URL,
        "authenticationConfiguration": {
            "@odata.type": "#microsoft.graph.basicAuthentication",
            "username": "x",
            "password": "y",
        },
    }
    _send(sim, admin, "POST", "/identity/apiConnectors", twin, CONNECTOR_WRITE)
    run = await run_policy_drift(services, "enforce")
    assert [r.rule for r in run.refusals] == ["signup-connector-ambiguous"] and run.results == []


async def test_the_base_grant_cannot_read_connectors_and_the_features_grant_is_exactly_enough(sim, admin):
    """Least privilege: without the opt-in feature's permissions the run fails on Graph's 403; with exactly the
    base grant plus the feature's two, it plans and applies."""
    _user_flow(sim, admin)
    with pytest.raises(PermissionDeniedError):
        await run_policy_drift(_services(sim, _desired(), roles=GRANTED), "plan")
    assert feature_grant(SIGNUP_REGISTRATION) == {"APIConnectors.ReadWrite.All", "IdentityUserFlow.ReadWrite.All"}
    for missing in sorted(feature_grant(SIGNUP_REGISTRATION)):
        roles = GRANTED | (feature_grant(SIGNUP_REGISTRATION) - {missing})
        with pytest.raises(PermissionDeniedError):
            await run_policy_drift(_services(sim, _desired(), roles=roles), "plan")
    enough = GRANTED | feature_grant(SIGNUP_REGISTRATION)
    run = await run_policy_drift(_services(sim, _desired(), roles=enough), "enforce")
    assert run.failed == [] and run.results


async def test_apply_policies_lists_the_registrations_writes_before_asking(sim, admin):
    """The confirmation table of `apply policies` holds every write the run would make, the registration's too."""
    from app.cli.config import policy_changes

    flow = _user_flow(sim, admin)
    rows = await policy_changes(_services(sim, _desired()), remove_unknown_partners=False)
    assert [(r["change"], r["resource"], r["key"]) for r in rows or []] == [
        ("create", CONNECTOR, "Partner self-service sign-up"),
        ("update", ATTACHMENT, f"{flow}/postAttributeCollection"),
    ]


async def test_a_rotated_secret_is_sent_again_only_when_an_operator_asks(sim, admin):
    """Graph shows no password back, so a rotation is invisible to the plan; --rotate-secret sends it again."""
    _user_flow(sim, admin)
    await run_policy_drift(_services(sim, _desired()), "enforce")
    rotated = _services(sim, _desired(), secret="the-new-secret")
    assert (await run_policy_drift(rotated, "plan")).drift == []
    admin.reset_counters()
    run = await run_policy_drift(rotated, "enforce", approvals=frozenset({"rotate-signup-connector"}))
    assert [(r.resource, r.change, r.ok) for r in run.results] == [(CONNECTOR, "update", True)]
    patched = [r for r in admin.requests() if r["method"] == "PATCH" and "/identity/apiConnectors/" in r["path"]]
    assert [r["status"] for r in patched] == [204]
    assert "the-new-secret" not in json.dumps(run.as_dict(), default=str)
    assert (await run_policy_drift(rotated, "plan")).drift == []
