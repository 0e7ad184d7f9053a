"""The sign-up HTTP trigger called directly, as the Functions host would call it."""

from __future__ import annotations

import json

import azure.functions as func
import pytest

import function_app
from app import signup as composition
from tenantsim.entra_issuer import LocalTokenIssuer, extension_body
from tests.functions.test_signup_function import NOW, _services


@pytest.fixture(name="issuer", scope="module")
def _issuer() -> LocalTokenIssuer:
    issuer = LocalTokenIssuer()
    issuer.add_key("key-1")
    return issuer


@pytest.fixture(autouse=True)
def _installed_services(issuer, monkeypatch):
    monkeypatch.setattr(composition, "_services", _services(issuer))


def _request(body: dict, headers: dict[str, str]) -> func.HttpRequest:
    return func.HttpRequest(method="POST", url="/api/signup", headers=headers, body=json.dumps(body).encode())


async def test_a_partner_sign_up_with_a_valid_token_continues(issuer):
    """Through the trigger, a partner address with Entra's token gets HTTP 200 and a continue action."""
    headers = {"Authorization": f"Bearer {issuer.mint(NOW)}", "Content-Type": "application/json"}
    response = await function_app.signup_connector(_request(extension_body("ana@fabrikam.com"), headers))
    [action] = json.loads(response.get_body())["data"]["actions"]
    assert response.status_code == 200
    assert action["@odata.type"].endswith("modifyAttributeValues")


async def test_a_call_without_a_token_is_refused_with_a_generic_401(issuer):
    """No bearer token: 401 whose body says nothing that helps an attacker."""
    response = await function_app.signup_connector(
        _request(extension_body("ana@fabrikam.com"), {"Content-Type": "application/json"})
    )
    assert response.status_code == 401
    assert b"token" not in response.get_body().lower()
