"""The admin endpoint as the Functions host calls it, for tests: a local Entra issuer, an operator's token, the
endpoint composed on the test's services, one call."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import azure.functions as func
import httpx

import function_app
from app import admin as composition
from app.admin import AdminEndpoint, admin_commands, build_bearer
from config.admin import load_admin_settings
from lifecycle.admin.ports import AdminPorts
from lifecycle.services import Services
from tenantsim.entra_issuer import LocalTokenIssuer

APP_ID_URI = "api://guest-lifecycle"
CLIENT_ID = "6a0f3c2e-1b4d-4e8a-9c7f-2d5e8a1b3c4f"
AZURE_CLI_APP_ID = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"
OPERATOR_OID = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
OPERATOR_NAME = "ines.ops@contoso.com"
ROLE = "Lifecycle.Operator"


def token_issuer() -> LocalTokenIssuer:
    issuer = LocalTokenIssuer(audience=APP_ID_URI)
    issuer.add_key("key-1")
    return issuer


@contextmanager
def endpoint_on(issuer: LocalTokenIssuer, services: Services) -> Iterator[None]:
    """The admin endpoint, trusting ``issuer``'s tokens and running its commands on ``services``."""
    settings = load_admin_settings(
        {"LIFECYCLE_ADMIN_TENANT_ID": issuer.tenant_id, "LIFECYCLE_ADMIN_AUDIENCES": f"{APP_ID_URI},{CLIENT_ID}"}
    )
    client = httpx.AsyncClient(transport=issuer.transport())

    async def same_services() -> Services:
        return services

    bearer = build_bearer(settings, client=client, clock=services.clock)
    previous = composition.use_admin_endpoint(
        AdminEndpoint(bearer, AdminPorts(admin_commands(), same_services, settings.role))
    )
    try:
        yield
    finally:
        composition.use_admin_endpoint(previous)


def operator_token(issuer: LocalTokenIssuer, at: datetime, **claims: Any) -> str:
    """A v2 access token the Azure CLI obtained for the operator, with the operator role; claims overridable."""
    person = {"api": CLIENT_ID, "client_id": AZURE_CLI_APP_ID, "oid": OPERATOR_OID, "name": OPERATOR_NAME}
    return issuer.access_token(at, **(person | {"roles": (ROLE,)} | claims))


async def call(step: str, body: dict[str, Any] | bytes, token: str | None) -> tuple[int, dict[str, Any]]:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = func.HttpRequest(
        method="POST", url=f"/api/admin/{step}", headers=headers, body=raw, route_params={"step": step}
    )
    response = await function_app.admin_endpoint(request)
    return response.status_code, json.loads(response.get_body())
