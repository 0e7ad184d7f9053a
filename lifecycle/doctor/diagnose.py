"""The doctor's checks, decided from what the probe reads. Nothing here writes to Graph or storage."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from config.desired_state import DesiredState
from lifecycle.doctor.checks import JOBS, Check, Status
from lifecycle.doctor.lockdown import secret_checks, user_flow_checks
from lifecycle.doctor.ports import DoctorProbe
from lifecycle.doctor.reads import FEATURE_READS, NON_PREMIUM_CODE, READS, GraphRead
from lifecycle.doctor.storage import storage_checks
from lifecycle.doctor.tenant import catalog_checks, domain_list_check, group_checks, partner_checks
from lifecycle.doctor.token import TokenFormatError, granted_roles, token_claims
from lifecycle.errors import GraphError, PermissionDeniedError

GUEST_INVITER_ROLE_ID = "95e79109-95c0-4d8e-aee3-d01accf2d47b"  # the built-in Guest Inviter role's template id
GRANT = "infra/grant-graph-permissions"


@dataclass(frozen=True, slots=True)
class Target:
    """What the doctor checks against: the desired state, the permissions the deployment's modes need
    (permission -> the jobs needing it, with their mode, as graph.permissions.required gives them), and the
    queues by logical name -> deployed name; which deployment secrets are set (setting -> set), never their values."""

    desired: DesiredState
    required: Mapping[str, Sequence[str]]
    queues: Mapping[str, str]
    secrets: Mapping[str, bool] = field(default_factory=dict)


async def diagnose(probe: DoctorProbe, target: Target) -> list[Check]:
    checks: list[Check] = []
    claims = await _token(probe, checks)
    if claims is not None:
        roles = granted_roles(claims)
        checks.extend(permission_checks(roles, target.required))
        read_failures = await _reads(probe, checks, target.desired, roles)
        checks.append(await _invitations(probe, target.desired, claims, read_failures))
        checks.extend(await partner_checks(probe, target.desired))
        checks.extend(await group_checks(probe, target.desired))
        checks.extend(await catalog_checks(probe, target.desired))
        checks.append(await domain_list_check(probe, target.desired))
        checks.extend(await user_flow_checks(probe, target.desired))
    checks.extend(secret_checks(target.desired, target.secrets))  # settings only: checked without a token too
    checks.extend(await storage_checks(probe, target.queues))
    return checks


# --- token and permissions -------------------------------------------------------------------------


async def _token(probe: DoctorProbe, checks: list[Check]) -> dict[str, Any] | None:
    try:
        claims = token_claims(await probe.access_token())
    except TokenFormatError as exc:
        checks.append(Check("graph token", Status.FAIL, str(exc), fix="check LIFECYCLE_GRAPH_SCOPE and the identity"))
        return None
    except Exception as exc:  # any credential failure: the message is the diagnosis
        checks.append(
            Check(
                "graph token",
                Status.FAIL,
                f"the credential could not acquire a Graph token: {type(exc).__name__}: {exc}",
                fix="check AZURE_CLIENT_ID (the user-assigned identity's client id) and that the identity is "
                "attached to the Function App; locally, that tenantsim runs at LIFECYCLE_GRAPH_BASE_URL",
            )
        )
        checks.append(
            Check(
                "graph checks",
                Status.CANNOT_VERIFY,
                "no Graph check ran without a token",
                fix="fix the token first, then run doctor again",
            )
        )
        return None
    identity = claims.get("app_displayname") or claims.get("appid") or "unknown app"
    checks.append(Check("graph token", Status.PASS, f"acquired for {identity} in tenant {claims.get('tid')}"))
    return claims


def permission_checks(roles: frozenset[str], required: Mapping[str, Sequence[str]]) -> list[Check]:
    """Per job: the permissions its mode needs that the token lacks; then what is granted and no job needs."""
    checks: list[Check] = []
    for job in JOBS:
        needed = sorted(name for name, jobs in required.items() if any(j.split(" ")[0] == job for j in jobs))
        if not needed:
            continue
        missing = [name for name in needed if name not in roles]
        if missing:
            checks.append(
                Check(
                    "graph permissions",
                    Status.FAIL,
                    f"{job} needs {', '.join(missing)}, which the token does not hold",
                    (job,),
                    f"run {GRANT} with this deployment's modes (it grants what the modes need); a new grant "
                    "reaches the token within its lifetime (up to 24 hours for managed identities)",
                )
            )
        else:
            checks.append(Check("graph permissions", Status.PASS, f"{job} holds {', '.join(needed)}", (job,)))
    unused = sorted(roles - set(required))
    if unused:
        checks.append(
            Check(
                "graph permissions",
                Status.WARN,
                f"granted but needed by no job in its current mode: {', '.join(unused)}",
                fix=f"least privilege: run {GRANT} with this deployment's modes and --revoke-extra",
            )
        )
    return checks


# --- Graph reads ------------------------------------------------------------------------------------


def reads_for(desired: DesiredState) -> tuple[GraphRead, ...]:
    """Every job's reads, and those of each opt-in area the desired state declares."""
    declared = tuple(r for r in FEATURE_READS if r.section and getattr(desired, r.section) is not None)
    return (*READS, *declared)


async def _reads(
    probe: DoctorProbe, checks: list[Check], desired: DesiredState, roles: frozenset[str]
) -> dict[str, GraphError]:
    failures: dict[str, GraphError] = {}
    for read in reads_for(desired):
        try:
            await probe.read(read.name)
        except GraphError as exc:
            failures[read.name] = exc
            checks.append(_read_failure(read, exc, roles))
        else:
            licence = f" (needs {read.licence})" if read.licence else ""
            checks.append(Check(f"graph read: {read.name}", Status.PASS, f"{read.what}{licence}", read.jobs))
    return failures


def _read_failure(read: GraphRead, exc: GraphError, roles: frozenset[str] = frozenset()) -> Check:
    name = f"graph read: {read.name}"
    held = read.permission.split(" ")[0] in roles
    if isinstance(exc, PermissionDeniedError) and exc.code != NON_PREMIUM_CODE and held and read.refused_despite_grant:
        return Check(
            name,
            Status.WARN,
            f"{read.what}: refused ({exc.status} {exc.code}) although the token holds {read.permission}",
            read.jobs,
            read.refused_despite_grant,
        )
    if isinstance(exc, PermissionDeniedError) and exc.code == NON_PREMIUM_CODE:
        return Check(
            name,
            Status.FAIL,
            f"{read.what}: the tenant has no {read.licence or 'licence for it'} ({exc.code})",
            read.jobs,
            f"license the tenant with {read.licence}" if read.licence else "check the tenant's licences",
        )
    if isinstance(exc, PermissionDeniedError):
        licence = f"; if it is granted, the tenant may lack {read.licence}" if read.licence else ""
        return Check(
            name,
            Status.FAIL,
            f"{read.what}: refused ({exc.status} {exc.code})",
            read.jobs,
            f"grant {read.permission} ({GRANT}){licence}",
        )
    return Check(
        name,
        Status.FAIL,
        f"{read.what}: {exc}",
        read.jobs,
        "check LIFECYCLE_GRAPH_BASE_URL/LIFECYCLE_GRAPH_BETA_URL and network access to Graph; retry if throttled",
    )


# --- invitations -----------------------------------------------------------------------------------


async def _invitations(
    probe: DoctorProbe, desired: DesiredState, claims: dict[str, Any], failures: Mapping[str, GraphError]
) -> Check:
    """Whether the identity may invite under the tenant's current and the desired allowInvitesFrom."""
    name, jobs = "invitations", ("onboarding",)
    wanted = desired.invitations.allow_invites_from
    if "authorizationPolicy" in failures:
        current = None
    else:
        try:
            current = (await probe.authorization_policy()).get("allowInvitesFrom")
        except GraphError:
            current = None
    settings = {"current": current, "desired": wanted}
    if "none" in settings.values():
        which = " and ".join(k for k, v in settings.items() if v == "none")
        return Check(
            name,
            Status.FAIL,
            f"allowInvitesFrom is none ({which}): nobody, this app included, may invite; onboarding fails",
            jobs,
            "set invitations.allowInvitesFrom to adminsAndGuestInviters (with the Guest Inviter role) or wider",
        )
    restricted = [k for k, v in settings.items() if v == "adminsAndGuestInviters"]
    unknown = " (the tenant's current value could not be read)" if current is None else ""
    if not restricted:
        return Check(name, Status.PASS, f"allowInvitesFrom current {current}, desired {wanted}{unknown}", jobs)
    holds, why = await _holds_guest_inviter(probe, claims)
    scope = " and ".join(restricted)
    if holds is True:
        return Check(name, Status.PASS, f"allowInvitesFrom adminsAndGuestInviters ({scope}); {why}", jobs)
    fix = (
        f"assign the role ({GRANT} --principal-id OBJECT_ID --assign-guest-inviter) and set "
        "invitations.appHoldsGuestInviter: true"
    )
    if holds is False:
        return Check(
            name,
            Status.FAIL,
            f"allowInvitesFrom adminsAndGuestInviters ({scope}) and {why}: app-only invitations may be refused",
            jobs,
            fix,
        )
    if desired.invitations.app_holds_guest_inviter:
        return Check(
            name,
            Status.CANNOT_VERIFY,
            f"allowInvitesFrom adminsAndGuestInviters ({scope}); the desired state says the identity holds Guest "
            f"Inviter, but {why}",
            jobs,
            f"confirm the assignment in the Entra admin center (Roles and administrators > Guest Inviter), or "
            f"run {GRANT} --assign-guest-inviter --dry-run, which reads it",
        )
    return Check(
        name,
        Status.FAIL,
        f"allowInvitesFrom adminsAndGuestInviters ({scope}) and the desired state says the identity does not "
        f"hold Guest Inviter ({why}): app-only invitations may be refused",
        jobs,
        fix,
    )


async def _holds_guest_inviter(probe: DoctorProbe, claims: dict[str, Any]) -> tuple[bool | None, str]:
    principal = claims.get("oid")
    if not principal:
        return None, "the token names no service principal (oid), so its roles cannot be read"
    try:
        assignments = await probe.role_assignments(str(principal))
    except PermissionDeniedError as exc:
        return None, (
            f"its directory role assignments cannot be read ({exc.code}; reading them needs "
            "RoleManagement.Read.Directory, which the product is not granted)"
        )
    except GraphError as exc:
        return None, f"its directory role assignments cannot be read ({exc})"
    held = any(
        str(a.get("roleDefinitionId", "")).lower() == GUEST_INVITER_ROLE_ID and a.get("directoryScopeId") in ("/", None)
        for a in assignments
    )
    return held, "the identity holds Guest Inviter" if held else "the identity does not hold Guest Inviter"
