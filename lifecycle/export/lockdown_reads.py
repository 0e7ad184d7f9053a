"""What the export reads of the lockdown areas, each area on its own: a refused read (a deployment not granted
the feature) leaves only that area out, with why."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from lifecycle.errors import GraphError, NotFoundError

SIGN_UP, GUEST_CA, PROVIDERS = "signUpRegistration", "guestConditionalAccess", "guestIdentityProviders"


class LockdownReads(Protocol):
    """What the export reads of the three areas, as Graph JSON. Raises lifecycle.errors.GraphError."""

    async def list_api_connectors(self) -> list[dict[str, Any]]: ...

    async def list_user_flows(self) -> list[dict[str, Any]]: ...

    async def user_flow_connectors(self, flow_id: str) -> dict[str, Any] | None:
        """The flow's connector per step (expanded); None when Graph will not expand them."""
        ...

    async def get_email_otp(self) -> dict[str, Any]: ...

    async def list_identity_providers(self) -> list[dict[str, Any]]: ...


@dataclass
class LockdownPosture:
    """What was read; a value of ``unreadable`` names the section whose read failed and why."""

    connectors: list[dict[str, Any]] = field(default_factory=list)
    flows: dict[str, dict[str, Any] | None] = field(default_factory=dict)  # flow id -> steps (None: not expanded)
    conditional_access: list[dict[str, Any]] = field(default_factory=list)
    email: dict[str, Any] = field(default_factory=dict)
    social: list[dict[str, Any]] = field(default_factory=list)
    default: dict[str, Any] = field(default_factory=dict)  # the default cross-tenant policy (the redemption order)
    unreadable: dict[str, str] = field(default_factory=dict)


def _why(exc: GraphError) -> str:
    return f"{type(exc).__name__}: {exc}"


async def read_lockdown(
    reads: LockdownReads, conditional_access: Callable[[], Awaitable[list[dict[str, Any]]]], default: dict[str, Any]
) -> LockdownPosture:
    """Each area read on its own: a refused read (a deployment not granted the feature) leaves only its section
    out. ``conditional_access`` is the drift port's paced list_conditional_access_policies; ``default`` the
    default cross-tenant policy already read for the rest of the export."""
    posture = LockdownPosture(default=default)
    try:
        posture.connectors = await reads.list_api_connectors()
        for flow in await reads.list_user_flows():
            flow_id = str(flow.get("id"))
            try:
                posture.flows[flow_id] = await reads.user_flow_connectors(flow_id)
            except NotFoundError:
                continue  # deleted between the list and the read
    except GraphError as exc:
        posture.unreadable[SIGN_UP] = _why(exc)
    try:
        posture.conditional_access = await conditional_access()
    except GraphError as exc:
        posture.unreadable[GUEST_CA] = _why(exc)
    try:
        posture.email = await reads.get_email_otp()
        posture.social = await reads.list_identity_providers()
    except GraphError as exc:
        posture.unreadable[PROVIDERS] = _why(exc)
    return posture
