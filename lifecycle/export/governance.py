"""The tenant's governance objects as the desired state's ``governance`` section.

Pure, like lifecycle.export.build: the catalog the partners' packages live in, each partner's access package,
its two assignment policies (admin direct assignment and partner requests, with their expiry), the group
memberships it grants, the external-user lifecycle setting, and (lifecycle.export.reviews) the guest access
review and the per-partner reviews. Objects are recognised the way the governance job made them (a connected
organisation's description names its partner key, a review's descriptionForAdmins its key) or by what they
say; whatever the format cannot hold is returned as a comment, never dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from config.keys import KEY
from lifecycle.export.reviews import export_reviews
from lifecycle.governance.desired import DIRECT_POLICY, REQUEST_POLICY

PARTNER_CATALOG = "Partner collaboration"
ORGANIZATION_KEY = re.compile(rf"^Partner organisation ({KEY}), managed by the guest lifecycle")
DAYS = re.compile(r"^P(\d+)D$")
LIFECYCLE_ACTIONS = ("none", "blockSignIn", "blockSignInAndDelete")


@dataclass
class GovernancePosture:
    """The governance objects as Graph lists them."""

    settings: dict[str, Any] = field(default_factory=dict)
    catalogs: list[dict[str, Any]] = field(default_factory=list)
    packages: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # catalog id -> its packages
    policies: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # package id -> assignment policies
    role_scopes: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # package id -> roles it grants
    resources: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # catalog id -> its resources
    organizations: list[dict[str, Any]] = field(default_factory=list)  # every connected organisation
    # Entra tenant id -> the connected organisations the service finds for it by identity source.
    tenant_organizations: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    reviews: list[dict[str, Any]] = field(default_factory=list)


def partner_key_of(organizations: list[dict[str, Any]]) -> str | None:
    """The partner key the governance job created one of these organisations under (from its description)."""
    for organization in organizations:
        match = ORGANIZATION_KEY.match(str(organization.get("description") or ""))
        if match:
            return match.group(1)
    return None


def domain_organizations(posture: GovernancePosture) -> list[tuple[str, dict[str, Any]]]:
    """Connected organisations whose identity source is a domain (a partner without an Entra tenant)."""
    found = []
    for organization in posture.organizations:
        for source in organization.get("identitySources") or []:
            if source.get("@odata.type") == "#microsoft.graph.domainIdentitySource" and source.get("domainName"):
                found.append((str(source["domainName"]).lower(), organization))
                break
    return found


def organization_of(partner: dict[str, Any], posture: GovernancePosture) -> dict[str, Any] | None:
    tenant_id = partner.get("tenantId")
    if tenant_id:
        found = posture.tenant_organizations.get(tenant_id) or []
        return found[0] if found else None
    for domain, organization in domain_organizations(posture):
        if domain == partner["domains"][0]:
            return organization
    return None


def export_governance(posture: GovernancePosture, partners: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The ``governance`` section and the comments above it. ``partners`` (the exported partners) gains each
    bound partner's ``accessPackage``."""
    notes: list[str] = []
    section: dict[str, Any] = {}
    organizations = {key: organization_of(partner, posture) for key, partner in partners.items()}
    governed: dict[str, dict[str, Any]] = {}
    for key, organization in organizations.items():
        if organization is None:
            governed[key] = {"connectedOrganization": False}
        else:
            governed[key] = {"connectedOrganizationState": organization.get("state") or "configured"}
            if len(_all_organizations(partners[key], posture)) > 1:
                notes.append(f"not expressible for {key}: more than one connected organisation; the first is kept")
    _unclaimed_organizations(posture, organizations, notes)

    section["externalUserLifecycle"] = _lifecycle(posture.settings, notes)
    catalog, bindings = _choose_catalog(posture, partners, organizations, notes)
    if catalog is not None:
        section["catalog"] = {
            "displayName": catalog.get("displayName"),
            "description": catalog.get("description") or "",
            "externallyVisible": bool(catalog.get("isExternallyVisible")),
        }
        if catalog.get("state") != "published":
            notes.append(
                f"DECIDE: catalog {catalog.get('displayName')!r} is {catalog.get('state')}; the governance job "
                "publishes the catalog it governs."
            )
        memberships_expressible = not bindings or _memberships_expressible(posture, catalog, notes)
        for package in posture.packages.get(str(catalog.get("id")), []):
            key = bindings.get(str(package.get("id")))
            if key is None:
                notes.append(
                    f"DECIDE: access package {package.get('displayName')!r} ({package.get('id')}) belongs to no "
                    "partner here; name it in a partner's accessPackage to govern it (the governance job then "
                    "writes its description and policies in its own words)."
                )
                continue
            partners[key]["accessPackage"] = {"catalog": catalog.get("displayName"), "name": package["displayName"]}
            governed[key].update(
                _package_settings(key, package, posture, memberships_expressible, partners[key], notes)
            )
    else:
        notes.append(
            "DECIDE: no catalog holds partner access packages; the governance job creates the catalog "
            f"{PARTNER_CATALOG!r} unless governance.catalog names an existing one."
        )
    for other in posture.catalogs:
        if catalog is None or other.get("id") != catalog.get("id"):
            if other.get("catalogType") == "serviceDefault":
                continue
            notes.append(
                f"not expressible: catalog {other.get('displayName')!r} ({other.get('id')}); the format governs "
                "one catalog, this one is left as it is"
            )

    guest, partner_review = export_reviews(posture.reviews, partners, governed, notes)
    if guest is not None:
        section["guestReview"] = guest
    else:
        notes.append("DECIDE: no access review of every guest is exported; guestReview would have the job create one.")
    if partner_review is not None:
        section["partnerReview"] = partner_review
    section["partners"] = {key: value for key, value in governed.items() if value}
    return section, notes


def _all_organizations(partner: dict[str, Any], posture: GovernancePosture) -> list[dict[str, Any]]:
    if partner.get("tenantId"):
        return posture.tenant_organizations.get(partner["tenantId"]) or []
    return [o for d, o in domain_organizations(posture) if d == partner["domains"][0]]


def _unclaimed_organizations(
    posture: GovernancePosture, organizations: dict[str, dict[str, Any] | None], notes: list[str]
) -> None:
    claimed = {o.get("id") for o in organizations.values() if o is not None}
    claimed |= {o.get("id") for found in posture.tenant_organizations.values() for o in found}
    for organization in posture.organizations:
        if organization.get("id") not in claimed:
            notes.append(
                f"not exported: connected organisation {organization.get('displayName')!r} ({organization.get('id')})"
                " belongs to no exported partner (no cross-tenant partner policy, federation or domain source)"
            )


def _lifecycle(settings: dict[str, Any], notes: list[str]) -> dict[str, Any]:
    action = settings.get("externalUserLifecycleAction")
    duration = DAYS.match(str(settings.get("durationUntilExternalUserDeletedAfterBlocked") or ""))
    days = int(duration.group(1)) if duration else None
    if action not in LIFECYCLE_ACTIONS:
        notes.append(f"DECIDE: externalUserLifecycleAction {action!r} is not one the format knows; exported as none")
        action = "none"
    if days is None or not 1 <= days <= 365:
        notes.append(
            "not expressible: durationUntilExternalUserDeletedAfterBlocked "
            f"{settings.get('durationUntilExternalUserDeletedAfterBlocked')!r} (the format takes 1 to 365 whole "
            "days); DECIDE: deleteAfterDays is exported as 30"
        )
        days = 30
    return {"action": action, "deleteAfterDays": days}


def _choose_catalog(
    posture: GovernancePosture,
    partners: dict[str, Any],
    organizations: dict[str, dict[str, Any] | None],
    notes: list[str],
) -> tuple[dict[str, Any] | None, dict[str, str]]:
    """The catalog whose packages most partners' packages are, with package id -> partner key; a tie goes to
    the catalog named as the product names it, then to the first by name."""
    candidates = [c for c in posture.catalogs if c.get("catalogType") != "serviceDefault"]
    if not candidates:
        return None, {}
    ranked = []
    for catalog in candidates:
        bindings = _bind_packages(posture.packages.get(str(catalog.get("id")), []), posture, partners, organizations)
        name = str(catalog.get("displayName"))
        ranked.append(((-len(bindings), name != PARTNER_CATALOG, name), catalog, bindings))
    ranked.sort(key=lambda r: r[0])
    (bound, _, name), catalog, bindings = ranked[0]
    if len(candidates) > 1 and bound == 0 and name != PARTNER_CATALOG:
        notes.append(f"DECIDE: several catalogs and none holds a partner's package; {name!r} was chosen.")
    return catalog, bindings


def _bind_packages(
    packages: list[dict[str, Any]],
    posture: GovernancePosture,
    partners: dict[str, Any],
    organizations: dict[str, dict[str, Any] | None],
) -> dict[str, str]:
    """Package id -> partner key: the package whose request policy admits the partner's connected organisation,
    else the one described as the governance job describes a partner's package."""
    by_organization = {o.get("id"): key for key, o in organizations.items() if o is not None}
    bound: dict[str, str] = {}
    for package in packages:
        for policy in posture.policies.get(str(package.get("id")), []):
            for target in policy.get("specificAllowedTargets") or []:
                key = by_organization.get(target.get("connectedOrganizationId"))
                if key is not None and key not in bound.values():
                    bound[str(package["id"])] = key
    for package in packages:
        if str(package.get("id")) in bound:
            continue
        for key, partner in partners.items():
            described = f"{package.get('displayName')} for {partner['displayName']} guests."
            if package.get("description") == described and key not in bound.values():
                bound[str(package["id"])] = key
                break
    return bound


def _memberships_expressible(posture: GovernancePosture, catalog: dict[str, Any], notes: list[str]) -> bool:
    """groupMemberships governs the catalog's groups too: a group no package grants would be removed from it."""
    catalog_id = str(catalog.get("id"))
    granted = {
        str((scope.get("scope") or {}).get("originId", "")).lower()
        for package in posture.packages.get(catalog_id, [])
        for scope in posture.role_scopes.get(str(package.get("id")), [])
    }
    idle = [
        r
        for r in posture.resources.get(catalog_id, [])
        if r.get("originSystem") == "AadGroup" and str(r.get("originId", "")).lower() not in granted
    ]
    if idle:
        names = ", ".join(f"{r.get('displayName')!r} ({r.get('originId')})" for r in idle)
        notes.append(
            f"DECIDE: groupMemberships is not exported: the catalog holds groups no access package grants ({names}), "
            "and governing memberships would take them out of the catalog."
        )
    return not idle


def _package_settings(
    key: str,
    package: dict[str, Any],
    posture: GovernancePosture,
    memberships_expressible: bool,
    partner: dict[str, Any],
    notes: list[str],
) -> dict[str, Any]:
    name = package.get("displayName")
    settings: dict[str, Any] = {}
    if package.get("description") != f"{name} for {partner['displayName']} guests.":
        notes.append(f"not expressible for {key}: the description of access package {name!r} (the job writes its own)")
    if package.get("isHidden"):
        notes.append(f"DECIDE: access package {name!r} is hidden; the governance job shows partners' packages.")
    policies = posture.policies.get(str(package.get("id")), [])
    if not any(p.get("displayName") == DIRECT_POLICY for p in policies):
        notes.append(f"DECIDE: access package {name!r} has no {DIRECT_POLICY!r} policy; the governance job adds one.")
    for policy in policies:
        if policy.get("displayName") not in (DIRECT_POLICY, REQUEST_POLICY):
            notes.append(
                f"not expressible for {key}: assignment policy {policy.get('displayName')!r} ({policy.get('id')})"
                f" of {name!r}; it is left as it is"
            )
    request = next((p for p in policies if p.get("displayName") == REQUEST_POLICY), None)
    settings["requestPolicy"] = request is not None
    if request is not None:
        settings.update(_request_settings(key, request, notes))
    if memberships_expressible:
        groups, other = [], []
        for scope in posture.role_scopes.get(str(package.get("id")), []):
            role, where = scope.get("role") or {}, scope.get("scope") or {}
            group = str(where.get("originId", "")).lower()
            if role.get("originSystem", "AadGroup") == "AadGroup" and role.get("originId") == f"Member_{group}":
                groups.append(group)
            else:
                other.append(f"{role.get('displayName') or role.get('originId')} of {where.get('originId')}")
        if other:
            notes.append(
                f"not expressible for {key}: {name!r} grants {', '.join(other)}; groupMemberships is not exported"
                " for it, so its roles are left alone"
            )
        else:
            settings["groupMemberships"] = sorted(dict.fromkeys(groups))
    return settings


def _request_settings(key: str, policy: dict[str, Any], notes: list[str]) -> dict[str, Any]:
    settings: dict[str, Any] = {}
    expiration = policy.get("expiration") or {}
    days = DAYS.match(str(expiration.get("duration") or ""))
    if expiration.get("type") == "afterDuration" and days and 1 <= int(days.group(1)) <= 3650:
        settings["expiration"] = {"days": int(days.group(1))}
    elif expiration.get("type") == "afterDateTime" and expiration.get("endDateTime"):
        settings["expiration"] = {"endDate": str(expiration["endDateTime"])[:10]}
    else:
        notes.append(
            f"DECIDE: {key}'s {REQUEST_POLICY!r} expiry {expiration!r} is not expressible (the format's requests "
            "always end); expiration is exported as 90 days."
        )
        settings["expiration"] = {"days": 90}
    approval = policy.get("requestApprovalSettings") or {}
    stages = approval.get("stages") or []
    settings["approvalBySponsor"] = bool(approval.get("isApprovalRequiredForAdd"))
    if stages:
        settings["fallbackApprovers"] = [
            str(a.get("userId"))
            for a in stages[0].get("fallbackPrimaryApprovers") or []
            if a.get("@odata.type") == "#microsoft.graph.singleUser" and a.get("userId")
        ]
    return settings
