"""The sign-up connector's registration in Entra, planned and applied with the rest of the policy drift.

The desired state's ``signUpRegistration`` names an API connector (display name, the sign-up endpoint's URL,
the HTTP Basic username) and the self-service sign-up user flows whose steps call it. The plan compares the
tenant's connector of that name field by field and each step's attachment; apply creates or patches the
connector and sets each step with ``PUT .../apiConnectorConfiguration/{step}/$ref``.

Graph never shows a Basic password back (it reads ``******``), so a password is never drift: it is sent
whenever the connector is created or its authentication is rewritten, from the deployment's secret
(LIFECYCLE_SIGNUP_CONNECTOR_PASSWORD), and never appears in a plan, a report or the audit trail. After the
secret is rotated, ``apply policies --rotate-secret signup-connector`` sends it again.

Guardrails: a connector that would call anything but an https URL, or without authentication (no secret
configured), is refused; so is a display name two connectors share (which one is ours cannot be told).
User flows are not created here: a missing one is reported for an administrator.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

import structlog

from config.desired_state import SignUpRegistration
from lifecycle.errors import NotFoundError
from lifecycle.plans import Action, Change, FieldDiff, Refusal

log = structlog.get_logger(__name__)

CONNECTOR = "identity/apiConnectors"
ATTACHMENT = "identity/b2xUserFlows/apiConnectorConfiguration"
RESOURCES = (CONNECTOR, ATTACHMENT)
BASIC = "microsoft.graph.basicAuthentication"
PASSWORD_SETTING = "LIFECYCLE_SIGNUP_CONNECTOR_PASSWORD"
ROTATE = "rotate-signup-connector"
UNREADABLE = "unreadable"


class SignUpConnectors(Protocol):
    """The tenant's API connectors and the user flows' connector configuration, as Graph JSON.
    Raises lifecycle.errors.GraphError."""

    async def list_api_connectors(self) -> list[dict[str, Any]]: ...

    async def create_api_connector(self, body: dict[str, Any]) -> dict[str, Any]: ...

    async def update_api_connector(self, connector_id: str, body: dict[str, Any]) -> None: ...

    async def user_flow_connectors(self, flow_id: str) -> dict[str, Any] | None:
        """The flow's connector per step (expanded); None when Graph will not expand them. NotFoundError for an
        unknown flow."""
        ...

    async def attach_api_connector(self, flow_id: str, step: str, connector_id: str) -> None: ...


@dataclass
class RegistrationSnapshot:
    connectors: list[dict[str, Any]]  # the tenant's connectors with the desired display name
    flows: dict[str, dict[str, Any] | str | None] = field(default_factory=dict)  # id -> steps, UNREADABLE, None


async def read_registration(port: SignUpConnectors, wanted: SignUpRegistration) -> RegistrationSnapshot:
    named = [c for c in await port.list_api_connectors() if c.get("displayName") == wanted.display_name]
    flows: dict[str, dict[str, Any] | str | None] = {}
    for flow_id in wanted.user_flows:
        try:
            steps = await port.user_flow_connectors(flow_id)
        except NotFoundError:
            flows[flow_id] = None
            continue
        flows[flow_id] = UNREADABLE if steps is None else steps
    return RegistrationSnapshot(named, flows)


async def plan(
    wanted: SignUpRegistration, port: SignUpConnectors | None, has_secret: bool, rotate: bool = False
) -> tuple[list[Action], list[Refusal]]:
    """The registration's actions and refusals; a deployment built without the port is refused, not skipped."""
    if port is None:
        return [], [
            Refusal(
                "signup-registration-not-composed",
                "the desired state has signUpRegistration but this deployment has no API connector gateway",
            )
        ]
    snapshot = await read_registration(port, wanted)
    return plan_registration(wanted, snapshot, rotate), refusals(wanted, snapshot, has_secret)


def refusals(wanted: SignUpRegistration, snapshot: RegistrationSnapshot, has_secret: bool) -> list[Refusal]:
    found = []
    url = urlsplit(wanted.target_url)
    if url.scheme != "https" or not url.hostname or url.username or url.password or url.fragment:
        found.append(
            Refusal(
                "signup-connector-url-not-https",
                f"signUpRegistration.targetUrl {wanted.target_url!r} is not a plain https URL; Entra would send "
                "sign-up attributes and the Basic credentials to it",
            )
        )
    if not has_secret:
        found.append(
            Refusal(
                "signup-connector-without-authentication",
                f"the sign-up connector would be registered without its password: set {PASSWORD_SETTING} (a Key "
                "Vault reference) to the secret the sign-up app checks as LIFECYCLE_SIGNUP_BASIC_PASSWORD",
            )
        )
    if len(snapshot.connectors) > 1:
        ids = ", ".join(sorted(str(c.get("id")) for c in snapshot.connectors))
        found.append(
            Refusal(
                "signup-connector-ambiguous",
                f"{len(snapshot.connectors)} API connectors are named {wanted.display_name!r} ({ids}); rename or "
                "delete the ones this product does not manage",
            )
        )
    return found


def _wanted_authentication(wanted: SignUpRegistration) -> dict[str, Any]:
    return {"@odata.type": f"#{BASIC}", "username": wanted.username}


def _authentication_label(value: Any) -> str | None:
    if not isinstance(value, dict):
        return None
    kind = str(value.get("@odata.type") or "").lstrip("#").removeprefix("microsoft.graph.")
    return f"basicAuthentication ({value.get('username')})" if kind == "basicAuthentication" else kind or None


def plan_registration(wanted: SignUpRegistration, snapshot: RegistrationSnapshot, rotate: bool = False) -> list[Action]:
    """The connector's action first (apply creates it before a step names it), then one per flow step.
    ``rotate``: an operator asked for the secret to be sent again (apply policies --rotate-secret)."""
    if len(snapshot.connectors) > 1:
        return []  # refused: which connector is ours cannot be told
    existing = snapshot.connectors[0] if snapshot.connectors else None
    actions = [_connector_action(wanted, existing, rotate)]
    for flow_id in wanted.user_flows:
        for step in wanted.steps:
            actions.append(_attachment_action(wanted, existing, flow_id, step, snapshot.flows.get(flow_id)))
    return actions


def _connector_action(wanted: SignUpRegistration, existing: dict[str, Any] | None, rotate: bool = False) -> Action:
    key = wanted.display_name
    want_auth = _authentication_label(_wanted_authentication(wanted))
    if existing is None:
        body = {
            "displayName": wanted.display_name,
            "targetUrl": wanted.target_url,
            "authenticationConfiguration": _wanted_authentication(wanted),
        }
        created = (
            FieldDiff("targetUrl", wanted.target_url, None),
            FieldDiff("authenticationConfiguration", want_auth, None),
        )
        return Action(CONNECTOR, key, Change.CREATE, "the sign-up connector is not registered", created, {"body": body})
    diffs: list[FieldDiff] = []
    body: dict[str, Any] = {}
    if str(existing.get("targetUrl") or "").strip() != wanted.target_url:
        diffs.append(FieldDiff("targetUrl", wanted.target_url, existing.get("targetUrl")))
        body["targetUrl"] = wanted.target_url
    have_auth = _authentication_label(existing.get("authenticationConfiguration"))
    if have_auth != want_auth:
        diffs.append(FieldDiff("authenticationConfiguration", want_auth, have_auth))
        body["authenticationConfiguration"] = _wanted_authentication(wanted)
    if not diffs and rotate:
        # Graph shows no password back, so only an operator knows it changed: the authentication is sent again.
        diff = FieldDiff("authenticationConfiguration.password", "(the deployment's current secret)", "******")
        body = {"authenticationConfiguration": _wanted_authentication(wanted)}
        payload = {"id": existing["id"], "body": body}
        return Action(CONNECTOR, key, Change.UPDATE, "secret rotation requested by an operator", (diff,), payload)
    if not diffs:
        return Action(CONNECTOR, key, Change.NONE, "the sign-up connector matches (its password is write-only)")
    reason = "the sign-up connector has no authentication" if have_auth is None else "the sign-up connector differs"
    return Action(CONNECTOR, key, Change.UPDATE, reason, tuple(diffs), {"id": existing["id"], "body": body})


def _attachment_action(
    wanted: SignUpRegistration,
    existing: dict[str, Any] | None,
    flow_id: str,
    step: str,
    steps: dict[str, Any] | str | None,
) -> Action:
    key = f"{flow_id}/{step}"
    payload = {"flow": flow_id, "step": step, "connector": wanted.display_name}
    if steps is None:
        diff = FieldDiff(step, wanted.display_name, "no such user flow")
        reason = "the user flow does not exist (create it in the admin center; this product only attaches to it)"
        return Action(ATTACHMENT, key, Change.REPORT, reason, (diff,))
    if steps == UNREADABLE:
        diff = FieldDiff(step, wanted.display_name, "cannot be read back")
        reason = "Graph would not expand the flow's connectors, so the step is set again (PUT $ref is idempotent)"
        return Action(ATTACHMENT, key, Change.UPDATE, reason, (diff,), payload)
    assert isinstance(steps, dict)
    current = steps.get(step) if isinstance(steps.get(step), dict) else None
    if existing is not None and current is not None and current.get("id") == existing.get("id"):
        return Action(ATTACHMENT, key, Change.NONE, "the step calls the sign-up connector")
    have = None if current is None else f"{current.get('displayName')} ({current.get('targetUrl')})"
    reason = "the step calls no API connector" if current is None else "the step calls another API connector"
    return Action(ATTACHMENT, key, Change.UPDATE, reason, (FieldDiff(step, wanted.display_name, have),), payload)


Applier = Callable[[Action], Awaitable[None]]


def applier(port: SignUpConnectors, password: str) -> Applier:
    """Carries out this module's actions; ``password`` joins a Basic configuration only here, on its way to
    Graph, so plans, reports and audit rows never hold it."""

    async def apply(action: Action) -> None:
        body = dict(action.payload.get("body") or {})
        if "authenticationConfiguration" in body:
            body["authenticationConfiguration"] = {**body["authenticationConfiguration"], "password": password}
        what = (action.resource, action.change)
        if what == (CONNECTOR, Change.CREATE):
            await port.create_api_connector(body)
        elif what == (CONNECTOR, Change.UPDATE):
            await port.update_api_connector(action.payload["id"], body)
        elif what == (ATTACHMENT, Change.UPDATE):
            connector_id = await _connector_id(port, action.payload["connector"])
            await port.attach_api_connector(action.payload["flow"], action.payload["step"], connector_id)
        else:
            raise ValueError(f"no way to apply {action.change.value} on {action.resource}")

    return apply


async def _connector_id(port: SignUpConnectors, display_name: str) -> str:
    """The connector's id, read at apply time: a connector created earlier in the same run has one only now."""
    named = [c for c in await port.list_api_connectors() if c.get("displayName") == display_name]
    if len(named) != 1:
        raise NotFoundError(f"expected one API connector named {display_name!r}, found {len(named)}")
    return str(named[0]["id"])
