"""Tokens and permissions: 401 without a valid token, 403 without the permission Graph requires."""

from __future__ import annotations

import jwt
import pytest

from tenantsim.permissions import REQUIREMENTS, is_allowed
from tests.tenantsim.conftest import guests


def test_no_token_or_a_forged_token_is_401(graph):
    """Missing, malformed or foreign-signed tokens answer 401 InvalidAuthenticationToken."""
    forged = jwt.encode({"aud": "https://graph.microsoft.com", "roles": ["User.Read.All"]}, "x" * 32, algorithm="HS256")
    for headers in ({}, {"Authorization": "Bearer nonsense"}, {"Authorization": f"Bearer {forged}"}):
        response = graph._http.get("/v1.0/users", headers=headers)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "InvalidAuthenticationToken"


def test_an_expired_token_or_another_tenants_token_is_401(graph):
    """Lifetime and tenant are checked."""
    expired = graph.admin.token(["User.Read.All"], lifetime_seconds=-10)
    other = graph.admin.token(["User.Read.All"], tenant_id="11111111-1111-4111-8111-111111111111")
    for token in (expired, other):
        assert graph._http.get("/v1.0/users", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_a_token_without_the_permission_is_403_with_graphs_message(graph):
    """Authorization_RequestDenied, 'Insufficient privileges to complete the operation.'"""
    response = graph.get("/v1.0/users", roles=("Policy.Read.All",))
    assert response.status_code == 403
    assert response.json()["error"] == {
        **response.json()["error"],
        "code": "Authorization_RequestDenied",
        "message": "Insufficient privileges to complete the operation.",
    }


def test_sign_in_activity_additionally_needs_audit_log_read(graph):
    """Selecting signInActivity without AuditLog.Read.All is a 403; with it, 200."""
    assert graph.get("/v1.0/users?$select=id,signInActivity", roles=("User.Read.All",)).status_code == 403
    assert graph.get("/v1.0/users?$select=id,signInActivity", roles=("User.Read.All", "AuditLog.Read.All")).is_success


@pytest.mark.parametrize(
    ("method", "path_template", "body", "allowed", "refused"),
    [
        ("DELETE", "/v1.0/users/{id}", None, ("User.DeleteRestore.All",), ("User.Read.All",)),
        ("POST", "/v1.0/users/{id}/revokeSignInSessions", None, ("User.RevokeSessions.All",), ("User.Read.All",)),
        (
            "PATCH",
            "/v1.0/users/{id}",
            {"accountEnabled": False},
            ("User.ReadWrite.All",),
            ("User.EnableDisableAccount.All",),
        ),
        ("GET", "/v1.0/policies/crossTenantAccessPolicy/default", None, ("Policy.Read.All",), ("User.Read.All",)),
        (
            "PATCH",
            "/v1.0/policies/crossTenantAccessPolicy/default",
            {"inboundTrust": {"isMfaAccepted": False}},
            ("Policy.ReadWrite.CrossTenantAccess",),
            ("Policy.Read.All",),
        ),
        (
            "PATCH",
            "/v1.0/policies/authorizationPolicy",
            {"blockMsolPowerShell": False},
            ("Policy.ReadWrite.Authorization",),
            ("Policy.Read.All",),
        ),
        (
            "GET",
            "/beta/policies/b2bManagementPolicies",
            None,
            ("Policy.Read.B2BManagementPolicy",),
            ("Policy.Read.All",),
        ),
        (
            "POST",
            "/v1.0/invitations",
            {"invitedUserEmailAddress": "p@fabrikam.com", "inviteRedirectUrl": "https://a.example"},
            ("User.Invite.All",),
            ("User.Read.All",),
        ),
    ],
)
def test_each_endpoint_enforces_its_permission(graph, admin, method, path_template, body, allowed, refused):
    """The refused role gets 403; the least-privileged role succeeds."""
    path = path_template.format(id=guests(admin)[0]["id"])
    assert graph.request(method, path, roles=refused, json=body).status_code == 403
    assert graph.request(method, path, roles=allowed, json=body).is_success


def test_the_requirement_table_uses_alternatives_and_combinations():
    """Any one alternative suffices; an alternative with two permissions needs both."""
    assert is_allowed("users.read", ["Directory.Read.All"])
    assert not is_allowed("users.update.accountEnabled", ["User.EnableDisableAccount.All"])
    assert is_allowed("users.update.accountEnabled", ["User.EnableDisableAccount.All", "User.Read.All"])
    assert all(REQUIREMENTS[op] for op in REQUIREMENTS)


def test_the_request_log_records_roles_and_status(graph, admin):
    """The inspection request log shows method, path, status and the caller's roles."""
    graph.get("/v1.0/users?$top=1", roles=("User.Read.All",))
    entry = admin.requests()[-1]
    assert entry["method"] == "GET" and entry["path"] == "/v1.0/users" and entry["status"] == 200
    assert entry["roles"] == ["User.Read.All"]
