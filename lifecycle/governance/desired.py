"""What the desired-state file asks of the tenant's governance, as Graph request bodies with stable keys.

A body may point at another desired object that may not exist yet: ``{"$ref": "<key>"}`` stands where
Graph wants that object's id, and is resolved when the plan is compared or applied.
"""

from __future__ import annotations

from dataclasses import replace

from config.desired_state import DesiredState, PartnerGovernance
from lifecycle.governance.ports import (
    CATALOG_RESOURCES,
    CATALOGS,
    ORGANIZATIONS,
    PACKAGES,
    POLICIES,
    ROLE_SCOPES,
    SETTINGS,
)
from lifecycle.governance.resource import DesiredResource, ref
from lifecycle.governance.review_bodies import ALL_GROUPS_QUERY, GUEST_QUERY, review_resource

DIRECT_POLICY = "Admin direct assignment"
REQUEST_POLICY = "Partner requests"


def desired_resources(state: DesiredState) -> list[DesiredResource]:
    governance = state.governance
    partners = _partner_settings(state)
    resources = [_settings(state)]
    for partner_key, settings in partners.items():
        if settings.connected_organization:
            resources.append(_organization(state, partner_key, settings))
    governed = _governed_partners(state)
    manages_groups = any(partners[k].group_memberships is not None for k in governed)
    resources.append(_catalog(state, manages_groups))
    for group_id in dict.fromkeys(g for k in governed for g in partners[k].group_memberships or ()):
        resources.append(_catalog_group(group_id))
    for partner_key, package_name in governed.items():
        settings = partners[partner_key]
        package_key = f"package/{partner_key}"
        package = _package(partner_key, package_name, state.partners[partner_key].display_name)
        if settings.group_memberships is not None:
            package = replace(package, owns=(ROLE_SCOPES,))
        resources.append(package)
        resources += [_member_role(partner_key, package_key, g) for g in settings.group_memberships or ()]
        resources.append(_direct_policy(partner_key, package_key))
        if settings.request_policy:
            resources.append(_request_policy(state, partner_key, settings, package_key))
    if governance.guest_review is not None:
        resources.append(review_resource("review/guests", governance.guest_review, None, GUEST_QUERY, ALL_GROUPS_QUERY))
    if governance.partner_review is not None:
        for partner_key, settings in partners.items():
            if settings.review_group_id:
                name = f"{governance.partner_review.display_name}: {state.partners[partner_key].display_name}"
                query = f"/groups/{settings.review_group_id}/transitiveMembers/microsoft.graph.user/?$count=true"
                query += "&$filter=(userType eq 'Guest')"
                review = governance.partner_review
                key = f"review/partner/{partner_key}"
                resources.append(review_resource(key, review, name, query, group_id=settings.review_group_id))
    return resources


def _governed_partners(state: DesiredState) -> dict[str, str]:
    """Partners whose access package lives in the governed catalog, with the package's name."""
    catalog = state.governance.catalog.display_name
    return {
        key: partner.access_package.name
        for key, partner in state.partners.items()
        if partner.access_package is not None and partner.access_package.catalog == catalog
    }


def _partner_settings(state: DesiredState) -> dict[str, PartnerGovernance]:
    """Every partner's governance settings; partners the block does not name get the defaults."""
    return {key: state.governance.partners.get(key, PartnerGovernance()) for key in state.partners}


def _settings(state: DesiredState) -> DesiredResource:
    lifecycle = state.governance.external_user_lifecycle
    body = {
        "externalUserLifecycleAction": lifecycle.action,
        "durationUntilExternalUserDeletedAfterBlocked": f"P{lifecycle.delete_after_days}D",
    }
    return DesiredResource(SETTINGS, "settings", body, tuple(body))


def _organization(state: DesiredState, partner_key: str, settings: PartnerGovernance) -> DesiredResource:
    partner = state.partners[partner_key]
    if partner.tenant_id:
        source = {
            "@odata.type": "#microsoft.graph.azureActiveDirectoryTenant",
            "tenantId": partner.tenant_id.lower(),
            "displayName": partner.display_name,
        }
        match = {"tenantId": partner.tenant_id.lower()}
    else:
        source = {
            "@odata.type": "#microsoft.graph.domainIdentitySource",
            "domainName": partner.domains[0],
            "displayName": partner.domains[0],
        }
        match = {"domainName": partner.domains[0]}
    body = {
        "displayName": partner.display_name,
        "description": f"Partner organisation {partner_key}, managed by the guest lifecycle governance job.",
        "identitySources": [source],
        "state": settings.connected_organization_state,
    }
    return DesiredResource(
        ORGANIZATIONS, f"organization/{partner_key}", body, ("displayName", "description", "state"), match=match
    )


def _catalog(state: DesiredState, manages_groups: bool) -> DesiredResource:
    catalog = state.governance.catalog
    body = {
        "displayName": catalog.display_name,
        "description": catalog.description,
        "isExternallyVisible": catalog.externally_visible,
        "state": "published",
    }
    owns = (CATALOG_RESOURCES,) if manages_groups else ()
    return DesiredResource(CATALOGS, "catalog", body, ("description", "isExternallyVisible", "state"), owns=owns)


def _catalog_group(group_id: str) -> DesiredResource:
    """A group in the catalog: POSTed as a resource request (entitlementmanagement-post-resourcerequests)."""
    body = {
        "requestType": "adminAdd",
        "resource": {"originId": group_id, "originSystem": "AadGroup"},
        "catalog": {"id": ref("catalog")},
    }
    match = {"originSystem": "AadGroup", "originId": group_id}
    return DesiredResource(CATALOG_RESOURCES, f"resource/{group_id}", body, (), parent="catalog", match=match)


def _member_role(partner_key: str, package_key: str, group_id: str) -> DesiredResource:
    """The package grants membership of the group: its Member role in the group's root scope
    (accesspackage-post-resourcerolescopes, example 3). Role scopes cannot be updated, only added or removed."""
    body = {
        "role": {
            "originId": f"Member_{group_id}",
            "originSystem": "AadGroup",
            "resource": {"id": ref(f"resource/{group_id}")},
        },
        "scope": {"originId": group_id, "originSystem": "AadGroup"},
    }
    match = {"role": f"Member_{group_id}", "scope": group_id}
    return DesiredResource(ROLE_SCOPES, f"role/{partner_key}/{group_id}", body, (), parent=package_key, match=match)


def _package(partner_key: str, name: str, partner_name: str) -> DesiredResource:
    body = {
        "displayName": name,
        "description": f"{name} for {partner_name} guests.",
        "isHidden": False,
        "catalog": {"id": ref("catalog")},
    }
    return DesiredResource(PACKAGES, f"package/{partner_key}", body, ("description", "isHidden"), parent="catalog")


_NOBODY_REQUESTS = {
    "enableTargetsToSelfAddAccess": False,
    "enableTargetsToSelfUpdateAccess": False,
    "enableTargetsToSelfRemoveAccess": False,
    "allowCustomAssignmentSchedule": True,
    "enableOnBehalfRequestorsToAddAccess": False,
    "enableOnBehalfRequestorsToUpdateAccess": False,
    "enableOnBehalfRequestorsToRemoveAccess": False,
    "onBehalfRequestors": [],
}
POLICY_FIELDS = (
    "description",
    "allowedTargetScope",
    "specificAllowedTargets",
    "expiration",
    "requestorSettings",
    "requestApprovalSettings",
)


def _direct_policy(partner_key: str, package_key: str) -> DesiredResource:
    """The admin-only policy onboarding assigns existing guests through (it ranks notSpecified first)."""
    body = {
        "displayName": DIRECT_POLICY,
        "description": "Administrators assign this package directly; nobody can request it.",
        "allowedTargetScope": "notSpecified",
        "specificAllowedTargets": [],
        "expiration": {"type": "noExpiration"},
        "requestorSettings": dict(_NOBODY_REQUESTS),
        "requestApprovalSettings": {
            "isApprovalRequiredForAdd": False,
            "isApprovalRequiredForUpdate": False,
            "stages": [],
        },
        "accessPackage": {"id": ref(package_key)},
    }
    return DesiredResource(POLICIES, f"policy/{partner_key}/direct", body, POLICY_FIELDS, parent=package_key)


def _request_policy(
    state: DesiredState, partner_key: str, settings: PartnerGovernance, package_key: str
) -> DesiredResource:
    """Users of the partner's connected organisation may request the package, approved by their sponsor."""
    partner = state.partners[partner_key]
    if settings.connected_organization:
        scope = "specificConnectedOrganizationUsers"
        targets = [
            {
                "@odata.type": "#microsoft.graph.connectedOrganizationMembers",
                "connectedOrganizationId": ref(f"organization/{partner_key}"),
                "description": partner.display_name,
            }
        ]
    else:
        scope, targets = "allExternalUsers", []
    expiration = (
        {"type": "afterDuration", "duration": f"P{settings.expiration.days}D"}
        if settings.expiration.days
        else {"type": "afterDateTime", "endDateTime": f"{settings.expiration.end_date}T00:00:00Z"}
    )
    stages = []
    if settings.approval_by_sponsor:
        stages.append(
            {
                "durationBeforeAutomaticDenial": "P14D",
                "isApproverJustificationRequired": False,
                "isEscalationEnabled": False,
                "primaryApprovers": [{"@odata.type": "#microsoft.graph.internalSponsors"}],
                "fallbackPrimaryApprovers": [
                    {"@odata.type": "#microsoft.graph.singleUser", "userId": user_id}
                    for user_id in settings.fallback_approvers
                ],
            }
        )
    body = {
        "displayName": REQUEST_POLICY,
        "description": f"{partner.display_name} users request access; it ends by itself.",
        "allowedTargetScope": scope,
        "specificAllowedTargets": targets,
        "expiration": expiration,
        "requestorSettings": {
            **_NOBODY_REQUESTS,
            "enableTargetsToSelfAddAccess": True,
            "enableTargetsToSelfRemoveAccess": True,
            "allowCustomAssignmentSchedule": False,
        },
        "requestApprovalSettings": {
            "isApprovalRequiredForAdd": settings.approval_by_sponsor,
            "isApprovalRequiredForUpdate": False,
            "stages": stages,
        },
        "accessPackage": {"id": ref(package_key)},
    }
    return DesiredResource(POLICIES, f"policy/{partner_key}/request", body, POLICY_FIELDS, parent=package_key)
