"""The sign-up connector's registration: the pure plan, the applier's secret handling, the desired-state section
and the opt-in permissions."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from typing import Any

import pytest
from pydantic import ValidationError

from config.desired_state import SignUpRegistration, load_desired_state
from config.settings import ROOT, SAMPLE_DESIRED_STATE
from graph.permissions import (
    GRANTED,
    SIGNUP_REGISTRATION,
    Deployment,
    feature_grant,
    features_of,
    granted,
    required_names,
)
from lifecycle.drift.signup_connector import (
    ATTACHMENT,
    CONNECTOR,
    UNREADABLE,
    RegistrationSnapshot,
    applier,
    plan_registration,
    refusals,
)
from lifecycle.plans import Action, Change

WANTED = SignUpRegistration.model_validate(
    {"targetUrl": "https://signup.example/api/signup", "username": "entra", "userFlows": ["B2X_1_Partner"]}
)
BASIC = {"@odata.type": "#microsoft.graph.basicAuthentication", "username": "entra", "password": "******"}
OURS = {
    "id": "c1",
    "displayName": WANTED.display_name,
    "targetUrl": WANTED.target_url,
    "authenticationConfiguration": BASIC,
}


class RecordingConnectors:
    """Records what the applier sends; serves one connector by name."""

    def __init__(self, connectors: list[dict[str, Any]]) -> None:
        self.connectors = connectors
        self.sent: list[tuple[str, Any]] = []

    async def list_api_connectors(self) -> list[dict[str, Any]]:
        return self.connectors

    async def create_api_connector(self, body: dict[str, Any]) -> dict[str, Any]:
        self.sent.append(("create", body))
        return {"id": "new", **body}

    async def update_api_connector(self, connector_id: str, body: dict[str, Any]) -> None:
        self.sent.append(("update", (connector_id, body)))

    async def user_flow_connectors(self, flow_id: str) -> dict[str, Any] | None:
        return {}

    async def attach_api_connector(self, flow_id: str, step: str, connector_id: str) -> None:
        self.sent.append(("attach", (flow_id, step, connector_id)))


def _plan(connectors: list[dict[str, Any]], steps: Any) -> list[Action]:
    return plan_registration(WANTED, RegistrationSnapshot(connectors, {"B2X_1_Partner": steps}))


def test_a_registered_and_attached_connector_is_no_drift():
    actions = _plan([OURS], {"postAttributeCollection": OURS})
    assert [a.change for a in actions] == [Change.NONE, Change.NONE]


def test_a_connector_without_authentication_is_drift_that_rewrites_it():
    (connector, _) = _plan([{**OURS, "authenticationConfiguration": None}], {"postAttributeCollection": OURS})
    assert connector.change is Change.UPDATE and connector.reason == "the sign-up connector has no authentication"
    assert connector.payload["body"] == {
        "authenticationConfiguration": {"@odata.type": "#microsoft.graph.basicAuthentication", "username": "entra"}
    }


def test_a_certificate_connector_is_drift_when_the_desired_state_asks_for_basic():
    certificate = {"@odata.type": "#microsoft.graph.clientCertificateAuthentication", "certificateList": []}
    (connector, _) = _plan([{**OURS, "authenticationConfiguration": certificate}], {})
    assert connector.diffs[0].actual == "clientCertificateAuthentication"


def test_a_step_of_a_flow_that_does_not_exist_is_reported_and_one_that_cannot_be_read_is_set_again():
    (_, missing) = _plan([OURS], None)
    (_, unreadable) = _plan([OURS], UNREADABLE)
    assert (missing.resource, missing.change, missing.payload) == (ATTACHMENT, Change.REPORT, {})
    assert unreadable.change is Change.UPDATE and unreadable.payload["connector"] == WANTED.display_name


def test_the_password_is_never_in_a_plan_and_joins_the_body_only_on_its_way_to_graph():
    async def run() -> RecordingConnectors:
        port = RecordingConnectors([OURS])
        apply = applier(port, "the-secret")
        for action in _plan([], {}):
            await apply(action)
        return port

    actions = _plan([], {})
    assert "the-secret" not in repr(actions)
    port = asyncio.run(run())
    kind, body = port.sent[0]
    assert kind == "create" and body["authenticationConfiguration"]["password"] == "the-secret"
    assert port.sent[1] == ("attach", ("B2X_1_Partner", "postAttributeCollection", "c1"))
    assert "password" not in actions[0].payload["body"]["authenticationConfiguration"]


def test_the_applier_refuses_what_it_does_not_know():
    async def run() -> None:
        await applier(RecordingConnectors([]), "s")(Action(CONNECTOR, "x", Change.DELETE, "no"))

    with pytest.raises(ValueError, match="no way to apply delete"):
        asyncio.run(run())


@pytest.mark.parametrize(
    ("url", "refused"),
    [
        ("https://signup.example/api/signup", False),
        ("http://signup.example/api/signup", True),
        ("https://u:p@signup.example/api", True),
        ("https:///api", True),
        ("https://signup.example/api#x", True),
    ],
)
def test_only_a_plain_https_url_is_accepted(url, refused):
    wanted = WANTED.model_copy(update={"target_url": url})
    rules = {r.rule for r in refusals(wanted, RegistrationSnapshot([]), has_secret=True)}
    assert ("signup-connector-url-not-https" in rules) is refused


def test_the_desired_state_section_takes_user_flow_ids_and_a_username_basic_can_carry():
    with pytest.raises(ValidationError, match="B2X_1_"):
        SignUpRegistration.model_validate({"targetUrl": "https://x.example", "username": "u", "userFlows": ["Partner"]})
    with pytest.raises(ValidationError):
        SignUpRegistration.model_validate({"targetUrl": "https://x.example", "username": "a:b"})
    with pytest.raises(ValidationError):
        SignUpRegistration.model_validate({"targetUrl": "https://x.example", "username": "u", "password": "p"})


def test_the_features_permissions_are_granted_only_where_the_desired_state_opts_in():
    sample = load_desired_state(SAMPLE_DESIRED_STATE)
    assert features_of(sample) == frozenset()
    opted = sample.model_copy(update={"sign_up_registration": WANTED})
    assert features_of(opted) == {SIGNUP_REGISTRATION}
    both = {"APIConnectors.ReadWrite.All", "IdentityUserFlow.ReadWrite.All"}
    assert feature_grant(SIGNUP_REGISTRATION) == both and not both & GRANTED
    assert granted(redemption_reset=False) == GRANTED
    assert granted(redemption_reset=False, features=[SIGNUP_REGISTRATION]) == GRANTED | both
    # Graph names no read-only permission for either read, so a planning deployment needs both as well.
    assert both <= required_names(Deployment(features=frozenset({SIGNUP_REGISTRATION})))
    assert not both & required_names(Deployment.all_enforcing())


def test_the_grant_script_lists_the_features_permissions_only_with_feature():
    script = [sys.executable, str(ROOT / "infra" / "grant-graph-permissions"), "--list", "--all-enforce"]
    base = subprocess.run(script, capture_output=True, text=True, check=True).stdout.split()
    opted = subprocess.run([*script, "--feature", SIGNUP_REGISTRATION], capture_output=True, text=True, check=True)
    assert set(opted.stdout.split()) - set(base) == {"APIConnectors.ReadWrite.All", "IdentityUserFlow.ReadWrite.All"}


def test_the_doctor_expects_the_permissions_of_the_features_its_desired_state_manages(tmp_path):
    from app.doctor_probe import deployment
    from config.settings import load_settings
    from tests.builders import LOCAL_ENV

    sample = SAMPLE_DESIRED_STATE.read_text()
    opted = tmp_path / "desired.yaml"
    opted.write_text(sample + "\nsignUpRegistration:\n  targetUrl: https://signup.example/api\n  username: entra\n")
    plain = deployment(load_settings({**LOCAL_ENV, "LIFECYCLE_DESIRED_STATE": str(SAMPLE_DESIRED_STATE)}))
    managed = deployment(load_settings({**LOCAL_ENV, "LIFECYCLE_DESIRED_STATE": str(opted)}))
    assert plain.features == frozenset() and managed.features == {SIGNUP_REGISTRATION}
    broken = tmp_path / "broken.yaml"
    broken.write_text("not: [valid")
    assert deployment(load_settings({**LOCAL_ENV, "LIFECYCLE_DESIRED_STATE": str(broken)})).features == frozenset()


def test_a_rotation_rewrites_the_authentication_of_a_matching_connector_without_its_password_in_the_plan():
    (connector, _) = plan_registration(
        WANTED, RegistrationSnapshot([OURS], {"B2X_1_Partner": {"postAttributeCollection": OURS}}), rotate=True
    )
    assert connector.change is Change.UPDATE and connector.payload["body"] == {
        "authenticationConfiguration": {"@odata.type": "#microsoft.graph.basicAuthentication", "username": "entra"}
    }
