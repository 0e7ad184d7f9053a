"""The doctor's checks of the desired state against the tenant: partners, groups, catalogs and packages, the
invitation domain list. Reads only."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from config.desired_state import DesiredState
from lifecycle.doctor.checks import JOBS, Check, Status
from lifecycle.doctor.ports import DoctorProbe
from lifecycle.drift.normalise import domain_definition, domains, parse_domain_definition
from lifecycle.errors import GraphError

# allow-deny-list.md (entra-docs): the whole B2B management policy is at most 25 KB (25,000 characters).
DOMAIN_POLICY_LIMIT = 25_000
DOMAIN_POLICY_WARN = 0.9  # warn from 90 % of the limit: the next few domains will not fit

# --- the desired state against the tenant ----------------------------------------------------------


async def partner_checks(probe: DoctorProbe, desired: DesiredState) -> list[Check]:
    checks: list[Check] = []
    jobs = ("policy-drift", "redemption-reset")
    for key, partner in desired.partners.items():
        name = f"partner {key}"
        try:
            if partner.tenant_id:
                checks.extend(await partner_tenant_check(probe, name, partner.tenant_id.lower(), partner.domains, jobs))
            else:
                checks.extend(await partner_without_tenant_check(probe, name, partner.domains, jobs))
        except GraphError as exc:
            checks.append(
                Check(name, Status.CANNOT_VERIFY, f"tenant look-up failed: {exc}", jobs, "see graph read checks")
            )
    return checks


async def partner_tenant_check(
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


async def partner_without_tenant_check(
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


async def group_checks(probe: DoctorProbe, desired: DesiredState) -> list[Check]:
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


async def catalog_checks(probe: DoctorProbe, desired: DesiredState) -> list[Check]:
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


async def domain_list_check(probe: DoctorProbe, desired: DesiredState) -> Check:
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
