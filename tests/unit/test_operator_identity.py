"""Where the production runbook's identities come from: the operator's own sign-in for the read-only commands,
the admin endpoint's settings for the tenant-changing ones."""

from __future__ import annotations

import json

import azure.functions as func
import pytest
from azure.identity.aio import AzureCliCredential, ManagedIdentityCredential

import function_app
from app import admin as composition
from app.bootstrap import _credential
from config.admin import load_admin_settings
from config.settings import load_settings
from lifecycle.errors import SettingsError
from tests.builders import LOCAL_ENV

AZURE_ENV = {
    **LOCAL_ENV,
    "LIFECYCLE_ENVIRONMENT": "azure",
    "LIFECYCLE_TABLES_ENDPOINT": "https://guestlc.table.core.windows.net",
    "LIFECYCLE_QUEUE_TRANSPORT": "servicebus",
    "ServiceBusConnection__fullyQualifiedNamespace": "guestlc.servicebus.windows.net",
}
TENANT = "3f2d6a1e-8c4b-4e7a-9b1d-2c5e7f9a0b13"


async def test_an_operators_laptop_reads_production_with_the_azure_cli_sign_in():
    """LIFECYCLE_GRAPH_CREDENTIAL=azure-cli is allowed against Azure and builds the Azure CLI credential for the
    tenant, so status, failed and show need the operator's roles, not the app's secrets or permissions."""
    settings = load_settings({**AZURE_ENV, "LIFECYCLE_GRAPH_CREDENTIAL": "azure-cli"})
    credential = _credential(settings)
    try:
        assert isinstance(credential, AzureCliCredential)
    finally:
        await credential.close()


async def test_the_doctor_on_a_laptop_uses_the_same_sign_in():
    from app.doctor_probe import doctor_credential

    credential = doctor_credential(load_settings({**AZURE_ENV, "LIFECYCLE_GRAPH_CREDENTIAL": "azure-cli"}))
    try:
        assert isinstance(credential, AzureCliCredential)
    finally:
        await credential.close()


async def test_the_function_app_keeps_its_managed_identity_by_default():
    settings = load_settings({k: v for k, v in AZURE_ENV.items() if k != "LIFECYCLE_GRAPH_CREDENTIAL"})
    credential = _credential(settings)
    try:
        assert isinstance(credential, ManagedIdentityCredential)
    finally:
        await credential.close()


def test_the_endpoint_accepts_the_tenants_v1_and_v2_issuers_and_reads_its_keys_from_the_tenant():
    settings = load_admin_settings({"LIFECYCLE_ADMIN_TENANT_ID": TENANT, "LIFECYCLE_ADMIN_AUDIENCES": "api://x, 1"})
    assert settings.issuers == (
        f"https://login.microsoftonline.com/{TENANT}/v2.0",
        f"https://sts.windows.net/{TENANT}/",
    )
    assert settings.audiences == ("api://x", "1") and settings.role == "Lifecycle.Operator"
    assert settings.metadata_url == f"https://login.microsoftonline.com/{TENANT}/v2.0/.well-known/openid-configuration"


def test_missing_endpoint_settings_are_named():
    with pytest.raises(SettingsError, match="LIFECYCLE_ADMIN_AUDIENCES"):
        load_admin_settings({"LIFECYCLE_ADMIN_TENANT_ID": TENANT})


async def test_an_unconfigured_endpoint_answers_503_in_json(monkeypatch):
    """A deployment without the endpoint's settings refuses every request, in JSON, without a traceback."""
    monkeypatch.delenv("LIFECYCLE_ADMIN_TENANT_ID", raising=False)
    monkeypatch.delenv("LIFECYCLE_ADMIN_AUDIENCES", raising=False)
    previous = composition.use_admin_endpoint(None)
    try:
        request = func.HttpRequest(
            method="POST", url="/api/admin/plan", headers={}, body=b"{}", route_params={"step": "plan"}
        )
        response = await function_app.admin_endpoint(request)
    finally:
        composition.use_admin_endpoint(previous)
    assert response.status_code == 503
    assert json.loads(response.get_body())["error"]["code"] == "not-configured"


@pytest.mark.parametrize(
    "args",
    [
        ("apply", "policies", "--yes"),
        ("approve", "sweep-2026-11-23", "--yes"),
        ("replay", "--all", "--yes"),
        ("purge", "--all", "--yes"),
        ("run", "guest-sweep"),
        ("restore", "--run", "sweep-2026-11-23", "--yes"),
        ("adopt", "--yes"),
        ("halt", "sweep-2026-11-23", "--reason", "wrong guests", "--yes"),
        ("resume", "sweep-2026-11-23", "--yes"),
    ],
    ids=["apply", "approve", "replay", "purge", "run", "restore", "adopt", "halt", "resume"],
)
def test_a_change_from_a_shell_signed_in_as_the_operator_is_refused_before_anything_is_read(args):
    """Without --remote such a command would fail half-way on the first write a reader may not make."""
    from typer.testing import CliRunner

    from app.cli.main import app

    env = {**AZURE_ENV, "LIFECYCLE_GRAPH_CREDENTIAL": "azure-cli", "LIFECYCLE_ADMIN_URL": ""}
    result = CliRunner().invoke(app, list(args), env=env)
    assert result.exit_code == 64, result.output
    assert "LIFECYCLE_GRAPH_CREDENTIAL=azure-cli" in result.stderr
