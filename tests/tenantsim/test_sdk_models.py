"""Every response body deserializes into its msgraph-sdk model with nothing left over."""

from __future__ import annotations

from msgraph.generated.models.access_package import AccessPackage
from msgraph.generated.models.access_package_resource_collection_response import (
    AccessPackageResourceCollectionResponse,
)
from msgraph.generated.models.access_package_resource_request import AccessPackageResourceRequest
from msgraph.generated.models.access_package_resource_role_scope import AccessPackageResourceRoleScope
from msgraph.generated.models.access_review_instance_collection_response import AccessReviewInstanceCollectionResponse
from msgraph.generated.models.authorization_policy import AuthorizationPolicy
from msgraph.generated.models.cross_tenant_access_policy import CrossTenantAccessPolicy
from msgraph.generated.models.cross_tenant_access_policy_configuration_default import (
    CrossTenantAccessPolicyConfigurationDefault,
)
from msgraph.generated.models.cross_tenant_access_policy_configuration_partner import (
    CrossTenantAccessPolicyConfigurationPartner,
)
from msgraph.generated.models.cross_tenant_access_policy_configuration_partner_collection_response import (
    CrossTenantAccessPolicyConfigurationPartnerCollectionResponse,
)
from msgraph.generated.models.directory_object import DirectoryObject
from msgraph.generated.models.invitation import Invitation
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.tenant_information import TenantInformation
from msgraph.generated.models.user import User
from msgraph.generated.models.user_collection_response import UserCollectionResponse
from msgraph.generated.users.item.revoke_sign_in_sessions.revoke_sign_in_sessions_post_response import (
    RevokeSignInSessionsPostResponse,
)

from tenantsim.seed import (
    FABRIKAM_TENANT_ID,
    NORTHWIND_SUPPLY_CHAIN_GROUP_ID,
    PARTNER_CATALOG_ID,
    SEEDED_ACCESS_PACKAGES,
)
from tests.tenantsim.conftest import guests
from tests.tenantsim.sdk_models import assert_absorbed, leftovers, parse

ALL_USER_PROPERTIES = (
    "id,displayName,givenName,surname,mail,mailNickname,userPrincipalName,businessPhones,jobTitle,mobilePhone,"
    "officeLocation,preferredLanguage,companyName,department,accountEnabled,userType,createdDateTime,creationType,"
    "externalUserState,externalUserStateChangeDateTime,identities,otherMails,proxyAddresses,signInActivity,"
    "signInSessionsValidFromDateTime,employeeLeaveDateTime,deletedDateTime"
)
POLICY_ROLES = ("Policy.ReadWrite.CrossTenantAccess", "Policy.Read.All")


def test_the_checker_reports_unknown_keys():
    """The leftover check itself catches a key the model does not have, at any depth."""
    parsed = parse({"value": [{"id": "1", "shoeSize": 9, "signInActivity": {"colour": "red"}}]}, UserCollectionResponse)
    assert leftovers(parsed) == ["$.value[0].shoeSize", "$.value[0].sign_in_activity.colour"]


def test_user_pages_with_every_property_are_absorbed(graph):
    """A users page with all stored properties (incl. signInActivity, identities) and paging annotations."""
    body = graph.get(f"/v1.0/users?$select={ALL_USER_PROPERTIES}&$top=999").json()
    parsed = assert_absorbed(body, UserCollectionResponse)
    assert len(parsed.value) == len(body["value"])
    paged = graph.get("/v1.0/users?$top=3&$count=true", headers={"ConsistencyLevel": "eventual"}).json()
    parsed = assert_absorbed(paged, UserCollectionResponse)
    assert parsed.odata_next_link and parsed.odata_count


def test_single_user_and_default_listing_are_absorbed(graph, admin):
    """GET /users/{id} and the default /users page."""
    guest = guests(admin)[0]
    assert_absorbed(graph.get(f"/v1.0/users/{guest['id']}?$select={ALL_USER_PROPERTIES}").json(), User)
    assert_absorbed(graph.get("/v1.0/users").json(), UserCollectionResponse)


def test_invitation_revoke_and_deleted_items_are_absorbed(graph, admin):
    """Invitation 201, revokeSignInSessions 200, deletedItems list/get/restore."""
    body = {"invitedUserEmailAddress": "sdk@fabrikam.com", "inviteRedirectUrl": "https://myapps.microsoft.com"}
    invitation = graph.request("POST", "/v1.0/invitations", roles=("User.Invite.All",), json=body).json()
    assert_absorbed(invitation, Invitation)
    user_id = invitation["invitedUser"]["id"]
    revoked = graph.request("POST", f"/v1.0/users/{user_id}/revokeSignInSessions", roles=("User.ReadWrite.All",))
    assert_absorbed(revoked.json(), RevokeSignInSessionsPostResponse)
    roles = ("User.ReadWrite.All",)
    graph.request("DELETE", f"/v1.0/users/{user_id}", roles=roles)
    listed = graph.get("/v1.0/directory/deletedItems/microsoft.graph.user", roles=roles).json()
    assert_absorbed(listed, UserCollectionResponse)
    item = assert_absorbed(graph.get(f"/v1.0/directory/deletedItems/{user_id}", roles=roles).json(), DirectoryObject)
    assert isinstance(item, User)
    restored = graph.request("POST", f"/v1.0/directory/deletedItems/{user_id}/restore", roles=roles).json()
    assert isinstance(assert_absorbed(restored, DirectoryObject), User)


def test_policies_are_absorbed(graph, admin):
    """Cross-tenant access policy, default, partners, authorizationPolicy; fresh and locked-down."""
    for posture in ("fresh", "locked-down"):
        admin.seed(builtin=posture, guests=3)
        assert_absorbed(
            graph.get("/v1.0/policies/crossTenantAccessPolicy", roles=POLICY_ROLES).json(), CrossTenantAccessPolicy
        )
        assert_absorbed(
            graph.get("/v1.0/policies/crossTenantAccessPolicy/default", roles=POLICY_ROLES).json(),
            CrossTenantAccessPolicyConfigurationDefault,
        )
        assert_absorbed(
            graph.get("/v1.0/policies/crossTenantAccessPolicy/partners", roles=POLICY_ROLES).json(),
            CrossTenantAccessPolicyConfigurationPartnerCollectionResponse,
        )
        assert_absorbed(graph.get("/v1.0/policies/authorizationPolicy", roles=POLICY_ROLES).json(), AuthorizationPolicy)
    partner = graph.get(f"/v1.0/policies/crossTenantAccessPolicy/partners/{FABRIKAM_TENANT_ID}", roles=POLICY_ROLES)
    assert_absorbed(partner.json(), CrossTenantAccessPolicyConfigurationPartner)


def test_tenant_information_and_errors_are_absorbed(graph):
    """tenantInformation and the OData error envelope (401, 403, 404, 400, 429)."""
    roles = ("CrossTenantInformation.ReadBasic.All",)
    info = graph.get(
        "/v1.0/tenantRelationships/findTenantInformationByDomainName(domainName='fabrikam.com')", roles=roles
    )
    assert_absorbed(info.json(), TenantInformation)
    errors = [
        graph._http.get("/v1.0/users"),
        graph.get("/v1.0/policies/authorizationPolicy"),
        graph.get("/v1.0/users/00000000-0000-4000-8000-000000000000"),
        graph.get("/v1.0/users?$top=0"),
    ]
    for response in errors:
        parsed = assert_absorbed(response.json(), ODataError)
        assert parsed.error.code and parsed.error.inner_error.request_id == response.headers["request-id"]


def test_catalog_resources_role_scopes_and_review_instances_are_absorbed(graph):
    """Governance's resource roles and review instances: the payloads the product reads and writes."""
    em = "/v1.0/identityGovernance/entitlementManagement"
    read, write = ("EntitlementManagement.Read.All",), ("EntitlementManagement.ReadWrite.All",)
    resources = graph.get(f"{em}/catalogs/{PARTNER_CATALOG_ID}/resources?$expand=roles,scopes", roles=read).json()
    parsed = assert_absorbed(resources, AccessPackageResourceCollectionResponse)
    group = next(r for r in parsed.value if r.origin_id == NORTHWIND_SUPPLY_CHAIN_GROUP_ID)
    member = next(r for r in group.roles if r.display_name == "Member")
    package = SEEDED_ACCESS_PACKAGES["Northwind supply chain"]
    body = {
        "role": {"originId": member.origin_id, "originSystem": "AadGroup", "resource": {"id": group.id}},
        "scope": {"originId": group.origin_id, "originSystem": "AadGroup"},
    }
    created = graph.request("POST", f"{em}/accessPackages/{package}/resourceRoleScopes", roles=write, json=body)
    assert_absorbed(created.json(), AccessPackageResourceRoleScope)
    expanded = graph.get(f"{em}/accessPackages/{package}?$expand=resourceRoleScopes($expand=role,scope)", roles=read)
    assert assert_absorbed(expanded.json(), AccessPackage).resource_role_scopes[0].role.origin_id == member.origin_id
    request = {
        "requestType": "adminRemove",
        "resource": {"id": next(r.id for r in parsed.value if r.origin_id != group.origin_id)},
        "catalog": {"id": PARTNER_CATALOG_ID},
    }
    removed = graph.request("POST", f"{em}/resourceRequests", roles=write, json=request)
    assert assert_absorbed(removed.json(), AccessPackageResourceRequest).state.value == "delivered"

    reviews = "/v1.0/identityGovernance/accessReviews/definitions"
    definition = {
        "displayName": "Guests",
        "scope": {
            "@odata.type": "#microsoft.graph.accessReviewQueryScope",
            "query": "/users",
            "queryType": "MicrosoftGraph",
        },
        "reviewers": [{"query": "./sponsors", "queryType": "MicrosoftGraph", "queryRoot": "decisions"}],
        "settings": {
            "instanceDurationInDays": 14,
            "recurrence": {
                "pattern": {"type": "absoluteMonthly", "interval": 3},
                "range": {"type": "noEnd", "startDate": "2025-01-06"},
            },
        },
    }
    created = graph.request("POST", reviews, roles=("AccessReview.ReadWrite.All",), json=definition).json()
    listing = graph.get(f"{reviews}/{created['id']}/instances", roles=("AccessReview.Read.All",)).json()
    instances = assert_absorbed(listing, AccessReviewInstanceCollectionResponse).value
    assert instances and instances[-1].status == "NotStarted" and instances[0].reviewers[0].query_root == "decisions"


def test_newer_cross_tenant_properties_are_absorbed(graph):
    """Default and partner with the m365, app service connect and redemption order blocks set: typed, no leftovers."""
    xtap = "/v1.0/policies/crossTenantAccessPolicy"
    allowed = {"accessType": "allowed", "targets": [{"target": "AllUsers", "targetType": "user"}]}
    graph.request(
        "PATCH",
        f"{xtap}/default",
        roles=POLICY_ROLES,
        json={
            "m365CollaborationOutbound": {"usersAndGroups": allowed},
            "invitationRedemptionIdentityProviderConfiguration": {
                "primaryIdentityProviderPrecedenceOrder": ["externalFederation", "azureActiveDirectory"],
                "fallbackIdentityProvider": "emailOneTimePasscode",
            },
        },
    )
    default = assert_absorbed(
        graph.get(f"{xtap}/default", roles=POLICY_ROLES).json(), CrossTenantAccessPolicyConfigurationDefault
    )
    order = default.invitation_redemption_identity_provider_configuration
    assert [p.value for p in order.primary_identity_provider_precedence_order] == [
        "externalFederation",
        "azureActiveDirectory",
    ]
    assert order.fallback_identity_provider.value == "emailOneTimePasscode"
    assert default.m365_collaboration_inbound.users.access_type.value == "blocked"
    assert default.app_service_connect_inbound.applications is not None
    created = graph.request(
        "POST",
        f"{xtap}/partners",
        roles=POLICY_ROLES,
        json={"tenantId": FABRIKAM_TENANT_ID, "m365CollaborationInbound": {"users": allowed}},
    )
    partner = assert_absorbed(created.json(), CrossTenantAccessPolicyConfigurationPartner)
    assert partner.m365_collaboration_inbound.users.access_type.value == "allowed"
    assert partner.automatic_user_consent_settings.inbound_allowed is None
    assert partner.is_in_multi_tenant_organization is False
