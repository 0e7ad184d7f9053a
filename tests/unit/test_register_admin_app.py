"""infra/register-admin-app: the product's registration as the admin endpoint needs it, idempotently."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from types import ModuleType

from tests.builders import load_script

SCRIPT = Path(__file__).resolve().parents[2] / "infra" / "register-admin-app"
URI = "api://guest-lifecycle"
ALICE = "11111111-2222-4333-8444-555555555555"


@cache
def script() -> ModuleType:
    return load_script(SCRIPT, "register_admin_app")


def test_a_new_tenant_gets_the_registration_the_endpoint_validates():
    """App ID URI, v2 tokens, a delegated scope pre-authorised for the Azure CLI, the operator role for people
    only, a service principal that issues tokens only to assigned people, and the role assigned."""
    plan = script().plan_registration(URI, None, None, [], [ALICE])
    create, principal, assign = plan.steps
    body = create.body
    assert (create.method, body["identifierUris"], body["signInAudience"]) == ("POST", [URI], "AzureADMyOrg")
    [role] = body["appRoles"]
    assert (role["value"], role["allowedMemberTypes"], role["isEnabled"]) == ("Lifecycle.Operator", ["User"], True)
    [scope] = body["api"]["oauth2PermissionScopes"]
    assert body["api"]["requestedAccessTokenVersion"] == 2 and scope["value"] == "user_impersonation"
    assert body["api"]["preAuthorizedApplications"] == [
        {"appId": "04b07795-8ddb-461a-bbee-02f9e1bf7b46", "delegatedPermissionIds": [scope["id"]]}
    ]
    assert principal.body == {"appId": "{appId}", "appRoleAssignmentRequired": True}
    assert assign.url.endswith("/appRoleAssignedTo")
    assert assign.body == {"principalId": ALICE, "resourceId": "{servicePrincipalId}", "appRoleId": role["id"]}


def test_running_it_again_changes_nothing_and_keeps_the_ids():
    created = script().plan_registration(URI, None, None, [], []).steps[0].body
    application = {"id": "app-object", "appId": "app-id", **created}
    principal = {"id": "sp-object", "appRoleAssignmentRequired": True}
    assert script().plan_registration(URI, application, principal, [ALICE], [ALICE]).steps == []


def test_an_existing_registration_keeps_its_other_roles_and_gains_the_operator_role():
    other = {"id": "0f0f0f0f-0000-4000-8000-000000000001", "value": "Reader", "allowedMemberTypes": ["User"]}
    application = {"id": "app-object", "appId": "app-id", "identifierUris": [URI], "appRoles": [other], "api": {}}
    principal = {"id": "sp-object", "appRoleAssignmentRequired": False}
    patch, require = script().plan_registration(URI, application, principal, [], []).steps
    assert patch.method == "PATCH" and patch.url.endswith("/applications/app-object")
    assert [r["value"] for r in patch.body["appRoles"]] == ["Reader", "Lifecycle.Operator"]
    assert require.body == {"appRoleAssignmentRequired": True}
