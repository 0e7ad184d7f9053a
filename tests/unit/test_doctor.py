"""The doctor's decisions, on a fake probe: token claims, permissions by job, invitations, domain list size,
exit codes."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from config.desired_state import DesiredState, parse_desired_state
from lifecycle.doctor.checks import Check, Status, exit_code, for_job
from lifecycle.doctor.diagnose import GUEST_INVITER_ROLE_ID, Target, diagnose, permission_checks
from lifecycle.doctor.tenant import DOMAIN_POLICY_LIMIT
from lifecycle.doctor.token import TokenFormatError, granted_roles, token_claims
from lifecycle.errors import BadRequestError, PermissionDeniedError

OID = "11111111-2222-4333-8444-555555555555"


def _jwt(claims: dict[str, Any]) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'alg': 'none'})}.{part(claims)}.signature"


def _desired(**invitations: Any) -> DesiredState:
    return parse_desired_state(
        {
            "tenant": {"id": "3f2d6a1e-8c4b-4e7a-9b1d-2c5e7f9a0b13", "primaryDomain": "contoso.onmicrosoft.com"},
            "invitations": invitations,
        }
    )


class FakeProbe:
    def __init__(
        self, *, allow_invites_from: str = "everyone", roles_error: Exception | None = None, inviter: bool = False
    ) -> None:
        self.allow_invites_from = allow_invites_from
        self.roles_error = roles_error
        self.inviter = inviter

    async def access_token(self) -> str:
        return _jwt({"roles": ["User.Read.All"], "oid": OID, "tid": "t"})

    async def read(self, name: str) -> None:
        return None

    async def authorization_policy(self) -> dict[str, Any]:
        return {"allowInvitesFrom": self.allow_invites_from}

    async def b2b_management_policies(self) -> list[dict[str, Any]]:
        return []

    async def role_assignments(self, principal_id: str) -> list[dict[str, Any]]:
        if self.roles_error:
            raise self.roles_error
        assert principal_id == OID
        return [{"roleDefinitionId": GUEST_INVITER_ROLE_ID, "directoryScopeId": "/"}] if self.inviter else []

    async def tenant_by_id(self, tenant_id: str) -> dict[str, Any] | None:
        return None

    async def tenant_by_domain(self, domain: str) -> dict[str, Any] | None:
        return None

    async def group_exists(self, group_id: str) -> bool:
        return True

    async def user_flow_connectors(self, flow_id: str) -> dict[str, Any] | None:
        return {"postAttributeCollection": {"id": "c1", "displayName": "Partner sign-up"}}

    async def catalogs(self) -> list[dict[str, Any]]:
        return [{"id": "c", "displayName": "Partner collaboration"}]

    async def catalog_packages(self, catalog_id: str) -> list[dict[str, Any]]:
        return []

    async def tables(self) -> list[tuple[str, bool]]:
        return [("t", True)]

    async def queue(self, name: str) -> tuple[bool, int]:
        return True, 0


async def _checks(probe: FakeProbe, desired: DesiredState) -> list[Check]:
    return await diagnose(probe, Target(desired, {"User.Read.All": ("onboarding (always)",)}, {"onboarding": "q"}))


def _one(checks: list[Check], name: str) -> Check:
    (found,) = [c for c in checks if c.name == name]
    return found


def test_the_token_payload_is_read_without_a_signature_check():
    claims = token_claims(_jwt({"roles": ["User.Read.All", "Policy.Read.All"], "oid": OID}))
    assert granted_roles(claims) == {"User.Read.All", "Policy.Read.All"}
    assert granted_roles({"oid": OID}) == frozenset()
    with pytest.raises(TokenFormatError):
        token_claims("not-a-jwt")
    with pytest.raises(TokenFormatError):
        token_claims("a.!!!.c")


def test_permissions_name_what_each_job_lacks_and_what_no_job_uses():
    required = {
        "User.Read.All": ("onboarding (always)", "guest-sweep (always)"),
        "AuditLog.Read.All": ("guest-sweep (plan)",),
    }
    checks = permission_checks(frozenset({"User.Read.All", "Directory.ReadWrite.All"}), required)
    by_job = {c.jobs: c for c in checks}
    assert by_job[("onboarding",)].status is Status.PASS
    assert by_job[("guest-sweep",)].status is Status.FAIL and "AuditLog.Read.All" in by_job[("guest-sweep",)].detail
    unused = by_job[("all",)]
    assert unused.status is Status.WARN and "Directory.ReadWrite.All" in unused.detail


async def test_invitations_pass_when_the_tenant_and_the_desired_state_let_members_invite():
    check = _one(await _checks(FakeProbe(), _desired(allowInvitesFrom="everyone")), "invitations")
    assert check.status is Status.PASS


async def test_invitations_fail_when_either_setting_disables_them():
    check = _one(
        await _checks(FakeProbe(allow_invites_from="none"), _desired(allowInvitesFrom="everyone")), "invitations"
    )
    assert check.status is Status.FAIL and "current" in check.detail


async def test_admins_and_guest_inviters_pass_with_the_role_and_fail_without_it():
    desired = _desired(allowInvitesFrom="adminsAndGuestInviters", appHoldsGuestInviter=True)
    held = _one(await _checks(FakeProbe(inviter=True), desired), "invitations")
    assert held.status is Status.PASS
    missing = _one(await _checks(FakeProbe(inviter=False), desired), "invitations")
    assert missing.status is Status.FAIL and "--assign-guest-inviter" in (missing.fix or "")


async def test_unreadable_role_assignments_cannot_verify_what_the_desired_state_claims():
    refused = PermissionDeniedError("denied", status=403, code="Authorization_RequestDenied")
    desired = _desired(allowInvitesFrom="adminsAndGuestInviters", appHoldsGuestInviter=True)
    check = _one(await _checks(FakeProbe(roles_error=refused), desired), "invitations")
    assert check.status is Status.CANNOT_VERIFY and "RoleManagement.Read.Directory" in check.detail
    unserved = BadRequestError("no such segment", status=400, code="BadRequest")
    claimed_not = _desired(allowInvitesFrom="adminsAndGuestInviters", appHoldsGuestInviter=False)
    assert _one(await _checks(FakeProbe(roles_error=unserved), claimed_not), "invitations").status is Status.FAIL


async def test_the_invitation_domain_list_fails_beyond_the_policy_size_limit():
    few = _desired(domains={"mode": "allowlist", "domains": ["fabrikam.com"]})
    assert _one(await _checks(FakeProbe(), few), "invitation domain list").status is Status.PASS
    names = [f"partner{i:05d}-with-a-long-name.example.com" for i in range(DOMAIN_POLICY_LIMIT // 40)]
    many = _desired(domains={"mode": "blocklist", "domains": names})
    check = _one(await _checks(FakeProbe(), many), "invitation domain list")
    assert check.status is Status.FAIL and "25000" in check.detail


def test_exit_codes_follow_the_worst_check_and_a_job_sees_its_own_checks():
    ok = Check("a", Status.PASS, "")
    warn = Check("b", Status.WARN, "", ("governance",))
    unknown = Check("c", Status.CANNOT_VERIFY, "", ("onboarding",))
    fail = Check("d", Status.FAIL, "", ("guest-sweep",))
    assert exit_code([ok]) == 0
    assert exit_code([ok, warn]) == exit_code([ok, unknown]) == 2
    assert exit_code([ok, warn, fail]) == 1
    assert for_job([ok, warn, unknown, fail], "governance") == [ok, warn]


class RefusingProbe(FakeProbe):
    """A token holding ``roles``; Graph refuses the reads named in ``refused`` with 403."""

    def __init__(self, roles: list[str], refused: set[str]) -> None:
        super().__init__()
        self.roles, self.refused, self.reads = roles, refused, []

    async def access_token(self) -> str:
        return _jwt({"roles": self.roles, "oid": OID, "tid": "t"})

    async def read(self, name: str) -> None:
        self.reads.append(name)
        if name in self.refused:
            raise PermissionDeniedError("denied", status=403, code="Authorization_RequestDenied")


def _with_guest_ca() -> DesiredState:
    section = {"guestConditionalAccess": {"breakGlassUserIds": ["0b1f7a2e-5c3d-4e8f-9a6b-7c8d9e0f1a2b"]}}
    return parse_desired_state({**_desired().model_dump(by_alias=True, mode="json", exclude_none=True), **section})


async def test_the_opt_in_areas_reads_run_only_for_a_desired_state_that_declares_them():
    without, declared = RefusingProbe(["User.Read.All"], set()), RefusingProbe(["User.Read.All"], set())
    await _checks(without, _desired())
    await _checks(declared, _with_guest_ca())
    assert "signInLogs" not in without.reads and "apiConnectors" not in without.reads
    assert "signInLogs" in declared.reads and "identityProviders" not in declared.reads


async def test_sign_in_logs_refused_without_the_permission_fail_and_despite_it_warn_with_the_known_issue():
    missing = _one(
        await _checks(RefusingProbe(["User.Read.All"], {"signInLogs"}), _with_guest_ca()), "graph read: signInLogs"
    )
    assert missing.status is Status.FAIL and (missing.fix or "").startswith("grant AuditLog.Read.All ")
    held = RefusingProbe(["User.Read.All", "AuditLog.Read.All"], {"signInLogs"})
    despite = _one(await _checks(held, _with_guest_ca()), "graph read: signInLogs")
    assert despite.status is Status.WARN and "Directory.Read.All" in (despite.fix or "")


async def test_guest_lifecycle_policies_are_read_only_for_a_desired_state_that_declares_them_and_name_the_grant():
    section = {
        "guestLifecyclePolicies": {
            "policies": {
                "idle": {
                    "displayName": "Guests: idle",
                    "rules": [{"type": "inactivity", "days": 90}],
                    "action": {"kind": "disableOnly"},
                }
            }
        }
    }
    declared = parse_desired_state({**_desired().model_dump(by_alias=True, mode="json", exclude_none=True), **section})
    without, refused = RefusingProbe(["User.Read.All"], set()), RefusingProbe(["User.Read.All"], {"lifecyclePolicies"})
    await _checks(without, _desired())
    checks = await _checks(refused, declared)
    assert "lifecyclePolicies" not in without.reads and "lifecyclePolicies" in refused.reads
    check = _one(checks, "graph read: lifecyclePolicies")
    assert check.status is Status.FAIL and (check.fix or "").startswith("grant LifecyclePolicies-Guests.Read.All")
