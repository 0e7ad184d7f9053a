"""The Graph endpoints tenantsim serves, wired into one router."""

from __future__ import annotations

from tenantsim.api import (
    api_connectors,
    conditional_access,
    federation,
    groups,
    identity_providers,
    invitations,
    lifecycle_evaluation,
    lifecycle_policies,
    managers,
    memberships,
    policies,
    sign_ins,
    sponsors,
    tenants,
    users,
)
from tenantsim.api.governance import (
    access_packages,
    access_reviews,
    assignment_policies,
    assignment_requests,
    assignments,
    catalog_resources,
    catalogs,
    connected_organizations,
    entitlement_settings,
)
from tenantsim.runtime import Router

_ID = r"(?P<{}>[^/()]+)"
_QUOTED = r"'(?P<{}>(?:[^']|'')*)'"


def build_router() -> Router:
    router = Router()
    user_id, object_id, tenant_id, policy_id, group_id = (
        _ID.format(n) for n in ("user_id", "object_id", "tenant_id", "policy_id", "group_id")
    )
    # resource: the throttling cost family; only the paths of the identity cost table (concepts/throttling-limits.md)
    # cost more than 1 (GET users 2, GET groups/{id}/members 3, GET groups/{id}/transitiveMembers 5).
    router.add("GET", "/users", users.list_users, resource="users")
    router.add("GET", r"/users/\$count", users.count_users)
    router.add("GET", f"/users/{user_id}", users.get_user)
    router.add("PATCH", f"/users/{user_id}", users.update_user)
    router.add("DELETE", f"/users/{user_id}", users.delete_user)
    router.add("POST", f"/users/{user_id}/revokeSignInSessions", users.revoke_sign_in_sessions)
    router.add("GET", f"/users/{user_id}/sponsors", sponsors.list_sponsors)
    router.add("GET", f"/users/{user_id}/manager", managers.get_manager)
    router.add("POST", rf"/users/{user_id}/sponsors/\$ref", sponsors.add_sponsor)
    router.add("GET", "/directory/deletedItems/microsoft.graph.user", users.list_deleted_users)
    router.add("GET", f"/directory/deletedItems/{object_id}", users.get_deleted_item)
    router.add("DELETE", f"/directory/deletedItems/{object_id}", users.purge_deleted_item)
    router.add("POST", f"/directory/deletedItems/{object_id}/restore", users.restore_deleted_item)
    router.add("GET", "/groups", groups.list_groups)
    router.add("GET", f"/groups/{group_id}/members", groups.list_direct_members, resource="groupMembers")
    router.add(
        "GET",
        f"/groups/{group_id}/transitiveMembers/(?:microsoft\\.)?graph\\.user",
        groups.list_transitive_user_members,
        resource="groupTransitiveMembers",
    )
    router.add("GET", f"/users/{user_id}/transitiveMemberOf", memberships.list_transitive_member_of, resource="users")
    router.add("POST", "/invitations", invitations.create_invitation)
    router.add("GET", "/invitations", invitations.list_invitations)

    xtap = "/policies/crossTenantAccessPolicy"
    router.add("GET", xtap, policies.get_cross_tenant_access_policy)
    router.add("GET", f"{xtap}/default", policies.get_default)
    router.add("PATCH", f"{xtap}/default", policies.update_default)
    router.add("POST", f"{xtap}/default/resetToSystemDefault", policies.reset_default)
    router.add("GET", f"{xtap}/partners", policies.list_partners)
    router.add("POST", f"{xtap}/partners", policies.create_partner)
    router.add("GET", f"{xtap}/partners/{tenant_id}", policies.get_partner)
    router.add("PATCH", f"{xtap}/partners/{tenant_id}", policies.update_partner)
    router.add("DELETE", f"{xtap}/partners/{tenant_id}", policies.delete_partner)
    sync = f"{xtap}/partners/{tenant_id}/identitySynchronization"
    router.add("GET", sync, policies.get_identity_sync)
    router.add("PUT", sync, policies.put_identity_sync)
    router.add("DELETE", sync, policies.delete_identity_sync)
    router.add("GET", "/policies/authorizationPolicy", policies.get_authorization_policy)
    router.add("PATCH", "/policies/authorizationPolicy", policies.update_authorization_policy)

    b2b, beta = "/policies/b2bManagementPolicies", ("beta",)
    router.add("GET", b2b, policies.list_b2b_policies, versions=beta)
    router.add("POST", b2b, policies.create_b2b_policy, versions=beta)
    router.add("GET", f"{b2b}/{policy_id}", policies.get_b2b_policy, versions=beta)
    router.add("PATCH", f"{b2b}/{policy_id}", policies.update_b2b_policy, versions=beta)
    router.add("DELETE", f"{b2b}/{policy_id}", policies.delete_b2b_policy, versions=beta)

    relationships = "/tenantRelationships"
    router.add(
        "GET",
        rf"{relationships}/findTenantInformationByDomainName\(domainName={_QUOTED.format('domain')}\)",
        tenants.by_domain_name,
    )
    router.add(
        "GET",
        rf"{relationships}/findTenantInformationByTenantId\(tenantId={_QUOTED.format('tenant_id')}\)",
        tenants.by_tenant_id,
    )

    ca, ca_id = "/identity/conditionalAccess/policies", _ID.format("ca_id")
    router.add("GET", ca, conditional_access.list_policies)
    router.add("POST", ca, conditional_access.create_policy)
    router.add("GET", f"{ca}/{ca_id}", conditional_access.get_policy)
    router.add("PATCH", f"{ca}/{ca_id}", conditional_access.update_policy)
    router.add("DELETE", f"{ca}/{ca_id}", conditional_access.delete_policy)
    router.add("GET", "/auditLogs/signIns", sign_ins.list_sign_ins)

    _add_sign_up(router)
    email = "/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/email"
    router.add("GET", email, identity_providers.get_email_configuration)
    router.add("PATCH", email, identity_providers.update_email_configuration)
    idps, idp = "/identity/identityProviders", _ID.format("provider_id")
    router.add("GET", idps, identity_providers.list_identity_providers)
    router.add("POST", idps, identity_providers.create_identity_provider)
    router.add("GET", f"{idps}/{idp}", identity_providers.get_identity_provider)
    router.add("PATCH", f"{idps}/{idp}", identity_providers.update_identity_provider)
    router.add("DELETE", f"{idps}/{idp}", identity_providers.delete_identity_provider)

    fed, cast, fed_id = (
        "/directory/federationConfigurations",
        r"(?:microsoft\.)?graph\.samlOrWsFedExternalDomainFederation",
        _ID.format("config_id"),
    )
    router.add("GET", f"{fed}/{cast}", federation.list_configurations)
    router.add("POST", f"{fed}/{cast}", federation.create_configuration)
    router.add("GET", f"{fed}/{fed_id}", federation.get_configuration)
    router.add("PATCH", f"{fed}/{fed_id}", federation.update_configuration)
    router.add("PATCH", f"{fed}/{cast}/{fed_id}", federation.update_configuration)  # the update page's path
    router.add("DELETE", f"{fed}/{fed_id}", federation.delete_configuration)
    router.add("GET", f"{fed}/{cast}/{fed_id}/domains", federation.list_domains)  # the list-domains page
    router.add("GET", f"{fed}/{fed_id}/{cast}/domains", federation.list_domains)  # the add-domain page's path
    router.add("POST", f"{fed}/{fed_id}/{cast}/domains", federation.add_domain)
    _add_governance(router)
    _add_lifecycle_policies(router)
    return router


def _add_lifecycle_policies(router: Router) -> None:
    """Guest lifecycle policies of Lifecycle Workflows (contract/lifecycle-policies.md)."""
    lw = "/identityGovernance/lifecycleWorkflows"
    policies, policy, rule = f"{lw}/lifecyclePolicies", _ID.format("policy_id"), _ID.format("rule_id")
    router.add("GET", policies, lifecycle_policies.list_policies)
    router.add("POST", policies, lifecycle_policies.create_policy)
    router.add("GET", f"{policies}/{policy}", lifecycle_policies.get_policy)
    router.add("PATCH", f"{policies}/{policy}", lifecycle_policies.update_policy)
    router.add("DELETE", f"{policies}/{policy}", lifecycle_policies.delete_policy)
    router.add("GET", f"{policies}/{policy}/versions", lifecycle_policies.list_versions)
    router.add("GET", f"{policies}/{policy}/rules", lifecycle_policies.list_rules)
    router.add("GET", f"{policies}/{policy}/rules/{rule}", lifecycle_policies.get_rule)
    router.add("PATCH", f"{policies}/{policy}/rules/{rule}", lifecycle_policies.update_rule)
    router.add("GET", f"{policies}/{policy}/report", lifecycle_evaluation.get_report)
    router.add("GET", f"{policies}/{policy}/report/subjects", lifecycle_evaluation.list_subjects)
    priorities = f"{lw}/lifecyclePolicyPriorityConfigurations"
    subject_type = _ID.format("subject_type")
    router.add("GET", priorities, lifecycle_policies.list_priority_configurations)
    router.add("GET", f"{priorities}/{subject_type}", lifecycle_policies.get_priority_configuration)
    router.add("PATCH", f"{priorities}/{subject_type}", lifecycle_policies.update_priority_configuration)


def _add_sign_up(router: Router) -> None:
    """API connectors and the B2B self-service sign-up user flows they are attached to."""
    connectors, connector = "/identity/apiConnectors", _ID.format("connector_id")
    router.add("GET", f"{connectors}/?", api_connectors.list_connectors)
    router.add("POST", connectors, api_connectors.create_connector)
    router.add("GET", f"{connectors}/{connector}", api_connectors.get_connector)
    router.add("PATCH", f"{connectors}/{connector}", api_connectors.update_connector)
    router.add("DELETE", f"{connectors}/{connector}", api_connectors.delete_connector)
    flows, flow = "/identity/b2xUserFlows", _ID.format("flow_id")
    router.add("GET", flows, api_connectors.list_user_flows)
    router.add("POST", flows, api_connectors.create_user_flow)
    router.add("GET", f"{flows}/{flow}", api_connectors.get_user_flow)
    router.add("GET", f"{flows}/{flow}/apiConnectorConfiguration", api_connectors.get_connector_configuration)
    router.add(
        "PUT",
        rf"{flows}/{flow}/apiConnectorConfiguration/{_ID.format('step')}/\$ref",
        api_connectors.put_connector_configuration,
    )


def _add_governance(router: Router) -> None:
    em = "/identityGovernance/entitlementManagement"
    catalog, package, policy, organization = (
        _ID.format(n) for n in ("catalog_id", "package_id", "policy_id", "organization_id")
    )

    router.add("GET", f"{em}/catalogs", catalogs.list_catalogs)
    router.add("POST", f"{em}/catalogs", catalogs.create_catalog)
    router.add("GET", f"{em}/catalogs/{catalog}", catalogs.get_catalog)
    router.add("PATCH", f"{em}/catalogs/{catalog}", catalogs.update_catalog)
    router.add("DELETE", f"{em}/catalogs/{catalog}", catalogs.delete_catalog)
    router.add("GET", f"{em}/catalogs/{catalog}/accessPackages", catalogs.list_catalog_packages)

    router.add("GET", f"{em}/catalogs/{catalog}/resources", catalog_resources.list_catalog_resources)
    router.add("POST", f"{em}/resourceRequests", catalog_resources.create_resource_request)
    router.add("POST", f"{em}/accessPackages/{package}/resourceRoleScopes", catalog_resources.create_role_scope)
    router.add(
        "DELETE",
        f"{em}/accessPackages/{package}/resourceRoleScopes/{_ID.format('role_scope_id')}",
        catalog_resources.delete_role_scope,
    )

    router.add("GET", f"{em}/accessPackages", access_packages.list_packages)
    router.add("POST", f"{em}/accessPackages", access_packages.create_package)
    router.add("GET", f"{em}/accessPackages/{package}", access_packages.get_package)
    router.add("PATCH", f"{em}/accessPackages/{package}", access_packages.update_package)
    router.add("DELETE", f"{em}/accessPackages/{package}", access_packages.delete_package)
    router.add("GET", f"{em}/accessPackages/{package}/assignmentPolicies", access_packages.list_package_policies)

    router.add("GET", f"{em}/assignmentPolicies", assignment_policies.list_policies)
    router.add("POST", f"{em}/assignmentPolicies", assignment_policies.create_policy)
    router.add("GET", f"{em}/assignmentPolicies/{policy}", assignment_policies.get_policy)
    router.add("PUT", f"{em}/assignmentPolicies/{policy}", assignment_policies.replace_policy)
    router.add("DELETE", f"{em}/assignmentPolicies/{policy}", assignment_policies.delete_policy)

    router.add("GET", f"{em}/connectedOrganizations", connected_organizations.list_organizations)
    router.add("POST", f"{em}/connectedOrganizations", connected_organizations.create_organization)
    router.add("GET", f"{em}/connectedOrganizations/{organization}", connected_organizations.get_organization)
    router.add("PATCH", f"{em}/connectedOrganizations/{organization}", connected_organizations.update_organization)
    router.add("DELETE", f"{em}/connectedOrganizations/{organization}", connected_organizations.delete_organization)

    router.add("GET", f"{em}/assignmentRequests", assignment_requests.list_requests)
    router.add("POST", f"{em}/assignmentRequests", assignment_requests.create_request)
    router.add("GET", f"{em}/assignmentRequests/{_ID.format('request_id')}", assignment_requests.get_request)

    router.add("GET", f"{em}/assignments", assignments.list_assignments)
    router.add("GET", f"{em}/assignments/{_ID.format('assignment_id')}", assignments.get_assignment)

    router.add("GET", f"{em}/settings", entitlement_settings.get_settings)
    router.add("PATCH", f"{em}/settings", entitlement_settings.update_settings)

    reviews, review = "/identityGovernance/accessReviews/definitions", _ID.format("review_id")
    router.add("GET", reviews, access_reviews.list_reviews)
    router.add("POST", reviews, access_reviews.create_review)
    router.add("GET", f"{reviews}/{review}", access_reviews.get_review)
    router.add("PUT", f"{reviews}/{review}", access_reviews.replace_review)
    router.add("DELETE", f"{reviews}/{review}", access_reviews.delete_review)
    router.add("GET", f"{reviews}/{review}/instances", access_reviews.list_review_instances)
