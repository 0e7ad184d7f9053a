"""The doctor's checks, decided from what the probe reads. Nothing here writes to Graph or storage."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from config.desired_state import DesiredState
from lifecycle.doctor.checks import JOBS, Check, Status
from lifecycle.doctor.ports import DoctorProbe, StorageProblem
from lifecycle.doctor.reads import NON_PREMIUM_CODE, READS, GraphRead
from lifecycle.doctor.token import TokenFormatError, granted_roles, token_claims
from lifecycle.drift.normalise import domain_definition, domains, parse_domain_definition
from lifecycle.errors import GraphError, PermissionDeniedError
from lifecycle.jobs import JOBS as REGISTRY

GUEST_INVITER_ROLE_ID = "95e79109-95c0-4d8e-aee3-d01accf2d47b"  # the built-in Guest Inviter role's template id
# allow-deny-list.md (entra-docs): the whole B2B management policy is at most 25 KB (25,000 characters).
DOMAIN_POLICY_LIMIT = 25_000
DOMAIN_POLICY_WARN = 0.9  # warn from 90 % of the limit: the next few domains will not fit
GRANT = "infra/grant-graph-permissions"
# Which job reads which queue (the registry's queue triggers; guest-actions is the sweep's fan-out).
QUEUE_JOBS = {job.queue: (job.name if job.name != "guest-actions" else "guest-sweep",) for job in REGISTRY if job.queue}


@dataclass(frozen=True, slots=True)
class Target:
    """What the doctor checks against: the desired state, the permissions the deployment's modes need
    (permission -> the jobs needing it, with their mode, as graph.permissions.required gives them), and the
    queues by logical name -> deployed name."""

    desired: DesiredState
    required: Mapping[str, Sequence[str]]
    queues: Mapping[str, str]


async def diagnose(probe: DoctorProbe, target: Target) -> list[Check]:
    checks: list[Check] = []
    claims = await _token(probe, checks)
    if claims is not None:
        roles = granted_roles(claims)
        checks.extend(permission_checks(roles, target.required))
        read_failures = await _reads(probe, checks)
        checks.append(await _invitations(probe, target.desired, claims, read_failures))
        checks.extend(await _partners(probe, target.desired))
        checks.extend(await _groups(probe, target.desired))
        checks.extend(await _catalogs(probe, target.desired))
        checks.append(await _domain_list(probe, target.desired))
    checks.extend(await _storage(probe, target.queues))
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


async def _reads(probe: DoctorProbe, checks: list[Check]) -> dict[str, GraphError]:
    failures: dict[str, GraphError] = {}
    for read in READS:
        try:
            await probe.read(read.name)
        except GraphError as exc:
            failures[read.name] = exc
            checks.append(_read_failure(read, exc))
        else:
            licence = f" (needs {read.licence})" if read.licence else ""
            checks.append(Check(f"graph read: {read.name}", Status.PASS, f"{read.what}{licence}", read.jobs))
    return failures


def _read_failure(read: GraphRead, exc: GraphError) -> Check:
    name = f"graph read: {read.name}"
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


# --- the desired state against the tenant ----------------------------------------------------------


async def _partners(probe: DoctorProbe, desired: DesiredState) -> list[Check]:
    checks: list[Check] = []
    jobs = ("policy-drift", "redemption-reset")
    for key, partner in desired.partners.items():
        name = f"partner {key}"
        try:
            if partner.tenant_id:
                checks.extend(await _partner_tenant(probe, name, partner.tenant_id.lower(), partner.domains, jobs))
            else:
                checks.extend(await _partner_without_tenant(probe, name, partner.domains, jobs))
        except GraphError as exc:
            checks.append(
                Check(name, Status.CANNOT_VERIFY, f"tenant look-up failed: {exc}", jobs, "see graph read checks")
            )
    return checks


async def _partner_tenant(
    probe: DoctorProbe, name: str, tenant_id: str, partner_domains: Sequence[str], jobs: tuple[str, ...]
) -> list[Check]:
    info = await probe.tenant_by_id(tenant_id)
    if info is None:
        return [
            Check(
                name,
                Status.FAIL,
                f"tenantId {tenant_id} resolves to no tenant (findTenantInformationByTenantId)",
                jobs,
                "correct partners.<key>.tenantId (ask the partner for its tenant id)",
            )
        ]
    checks = [Check(name, Status.PASS, f"tenantId {tenant_id} is {info.get('displayName')!r}", jobs)]
    for domain in partner_domains:
        found = await probe.tenant_by_domain(domain)
        found_id = str((found or {}).get("tenantId") or "").lower()
        if found is None:
            checks.append(
                Check(
                    f"{name} domain {domain}",
                    Status.WARN,
                    "no tenant found by this domain; the look-up is documented for a tenant's primary domain only, "
                    "so a verified non-primary domain also answers so",
                    jobs,
                    "confirm with the partner that its tenant verifies this domain",
                )
            )
        elif found_id != tenant_id:
            checks.append(
                Check(
                    f"{name} domain {domain}",
                    Status.FAIL,
                    f"belongs to tenant {found_id} ({found.get('displayName')!r}), not {tenant_id}",
                    jobs,
                    "move the domain to the partner that owns it, or correct the tenantId",
                )
            )
        else:
            checks.append(Check(f"{name} domain {domain}", Status.PASS, f"resolves to {tenant_id}", jobs))
    return checks


async def _partner_without_tenant(
    probe: DoctorProbe, name: str, partner_domains: Sequence[str], jobs: tuple[str, ...]
) -> list[Check]:
    checks = []
    for domain in partner_domains:
        found = await probe.tenant_by_domain(domain)
        if found is None:
            checks.append(Check(f"{name} domain {domain}", Status.PASS, "no Entra tenant (as desired)", jobs))
        else:
            checks.append(
                Check(
                    f"{name} domain {domain}",
                    Status.WARN,
                    f"an Entra tenant verifies it: {found.get('tenantId')} ({found.get('displayName')!r}), but the "
                    "partner names no tenantId",
                    jobs,
                    "set partners.<key>.tenantId to manage its cross-tenant access",
                )
            )
    return checks


async def _groups(probe: DoctorProbe, desired: DesiredState) -> list[Check]:
    named: dict[str, tuple[str, set[str]]] = {}

    def name(group_id: str, where: str, jobs: tuple[str, ...]) -> None:
        entry = named.setdefault(group_id.lower(), (where, set()))
        entry[1].update(jobs)

    if desired.exclusions.protected_group_id:
        name(desired.exclusions.protected_group_id, "exclusions.protectedGroupId", ("guest-sweep", "redemption-reset"))
    for key, settings in desired.governance.partners.items():
        if settings.review_group_id:
            name(settings.review_group_id, f"governance.partners.{key}.reviewGroupId", ("governance",))
        for group in settings.group_memberships or ():
            name(group, f"governance.partners.{key}.groupMemberships", ("governance",))
    checks = []
    for group_id, (where, jobs) in named.items():
        ordered = tuple(j for j in JOBS if j in jobs)
        try:
            exists = await probe.group_exists(group_id)
        except GraphError as exc:
            checks.append(Check(f"group {group_id}", Status.CANNOT_VERIFY, f"{where}: {exc}", ordered))
            continue
        if exists:
            checks.append(Check(f"group {group_id}", Status.PASS, f"{where}: exists", ordered))
        else:
            checks.append(
                Check(
                    f"group {group_id}",
                    Status.FAIL,
                    f"{where}: no such group in the tenant",
                    ordered,
                    "correct the id in the desired state (object ids, not names) or create the group",
                )
            )
    return checks


async def _catalogs(probe: DoctorProbe, desired: DesiredState) -> list[Check]:
    wanted: dict[str, dict[str, list[str]]] = {}  # catalog -> package -> partner keys
    for key, partner in desired.partners.items():
        if partner.access_package:
            packages = wanted.setdefault(partner.access_package.catalog, {})
            packages.setdefault(partner.access_package.name, []).append(key)
    wanted.setdefault(desired.governance.catalog.display_name, {})
    try:
        catalogs = {c.get("displayName"): c for c in await probe.catalogs()}
    except GraphError as exc:
        return [Check("catalogs", Status.CANNOT_VERIFY, str(exc), ("onboarding", "governance"))]
    governed = "governance creates it in enforce mode (LIFECYCLE_GOVERNANCE_MODE=enforce)"
    checks = []
    for catalog_name, packages in wanted.items():
        catalog = catalogs.get(catalog_name)
        jobs = ("onboarding", "governance") if packages else ("governance",)
        if catalog is None:
            checks.append(
                Check(f"catalog {catalog_name!r}", Status.FAIL, "not in the tenant", jobs, f"{governed}, or create it")
            )
            continue
        checks.append(Check(f"catalog {catalog_name!r}", Status.PASS, "exists", jobs))
        listed = {p.get("displayName") for p in await probe.catalog_packages(str(catalog.get("id")))}
        for package, partners in packages.items():
            label = f"access package {package!r}"
            if package in listed:
                checks.append(
                    Check(label, Status.PASS, f"in {catalog_name!r} ({', '.join(partners)})", ("onboarding",))
                )
            else:
                checks.append(
                    Check(
                        label,
                        Status.FAIL,
                        f"not in catalog {catalog_name!r}; onboarding of {', '.join(partners)} cannot assign it",
                        ("onboarding", "governance"),
                        f"{governed}, or create it in the catalog",
                    )
                )
    return checks


async def _domain_list(probe: DoctorProbe, desired: DesiredState) -> Check:
    listed = desired.invitations.domains
    allowed = domains(listed.domains) if listed.mode == "allowlist" else []
    blocked = domains(listed.domains) if listed.mode == "blocklist" else []
    document: dict[str, Any] = {}
    try:
        policy = next((p for p in await probe.b2b_management_policies() if p.get("isOrganizationDefault")), None)
        if policy is not None:
            document, _ = parse_domain_definition(policy.get("definition"))
    except (GraphError, ValueError):
        document = {}  # sized without the tenant's other settings; the read's own check reports why
    size = len(domain_definition(document, allowed, blocked))
    detail = f"{len(listed.domains)} domain(s): the policy would be {size} of {DOMAIN_POLICY_LIMIT} characters"
    jobs = ("policy-drift",)
    if size > DOMAIN_POLICY_LIMIT:
        return Check(
            "invitation domain list",
            Status.FAIL,
            detail,
            jobs,
            "shorten invitations.domains (the whole B2B management policy may hold 25,000 characters)",
        )
    if size > DOMAIN_POLICY_LIMIT * DOMAIN_POLICY_WARN:
        return Check("invitation domain list", Status.WARN, detail, jobs, "few more domains fit; plan for the limit")
    return Check("invitation domain list", Status.PASS, detail, jobs)


# --- storage ---------------------------------------------------------------------------------------


async def _storage(probe: DoctorProbe, queues: Mapping[str, str]) -> list[Check]:
    checks: list[Check] = []
    try:
        tables = await probe.tables()
    except StorageProblem as exc:
        checks.append(
            Check(
                "table storage",
                Status.FAIL,
                f"unreachable: {exc}",
                fix="check LIFECYCLE_TABLES_ENDPOINT and the identity's Storage Table Data Contributor role",
            )
        )
    else:
        absent = [name for name, exists in tables if not exists]
        if absent:
            checks.append(
                Check(
                    "table storage",
                    Status.WARN,
                    f"reachable; tables not created yet: {', '.join(absent)}",
                    fix="the app creates them when it first starts; nothing to do before a first run",
                )
            )
        else:
            checks.append(Check("table storage", Status.PASS, f"reachable; {len(tables)} tables present"))
    for logical, deployed in queues.items():
        jobs = QUEUE_JOBS.get(logical, ("guest-sweep",))
        name = f"queue {deployed}"
        try:
            exists, dead = await probe.queue(deployed)
        except StorageProblem as exc:
            checks.append(
                Check(
                    name,
                    Status.FAIL,
                    f"unreachable: {exc}",
                    jobs,
                    "check the queue settings and the identity's Service Bus Data Sender/Receiver roles",
                )
            )
            continue
        if not exists:
            checks.append(
                Check(
                    name,
                    Status.FAIL,
                    "does not exist",
                    jobs,
                    "deploy infra/main.bicep (it creates the queues), or check LIFECYCLE_QUEUE_PREFIX",
                )
            )
        elif dead:
            checks.append(
                Check(
                    name,
                    Status.WARN,
                    f"{dead} dead letter(s)",
                    jobs,
                    "python -m lifecycle failed, then replay or purge",
                )
            )
        else:
            checks.append(Check(name, Status.PASS, "reachable, no dead letters", jobs))
    return checks
