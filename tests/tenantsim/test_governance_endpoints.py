"""tenantsim's identity governance: entitlement management (v1.0 model) and access review definitions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from msgraph.generated.models.access_package import AccessPackage
from msgraph.generated.models.access_package_assignment_collection_response import (
    AccessPackageAssignmentCollectionResponse,
)
from msgraph.generated.models.access_package_assignment_policy import AccessPackageAssignmentPolicy
from msgraph.generated.models.access_package_assignment_request import AccessPackageAssignmentRequest
from msgraph.generated.models.access_package_catalog_collection_response import AccessPackageCatalogCollectionResponse
from msgraph.generated.models.access_package_resource_collection_response import (
    AccessPackageResourceCollectionResponse,
)
from msgraph.generated.models.access_package_resource_request import AccessPackageResourceRequest
from msgraph.generated.models.access_package_resource_role_scope import AccessPackageResourceRoleScope
from msgraph.generated.models.access_review_instance_collection_response import AccessReviewInstanceCollectionResponse
from msgraph.generated.models.access_review_schedule_definition import AccessReviewScheduleDefinition
from msgraph.generated.models.access_review_schedule_definition_collection_response import (
    AccessReviewScheduleDefinitionCollectionResponse,
)
from msgraph.generated.models.connected_organization import ConnectedOrganization
from msgraph.generated.models.entitlement_management_settings import EntitlementManagementSettings

from tenantsim.api.governance.state import governance_state
from tenantsim.seed import (
    NORTHWIND_SUPPLY_CHAIN_GROUP_ID,
    PARTNER_CATALOG_ID,
    PARTNER_EXTRANET_GROUP_ID,
    SEEDED_ACCESS_PACKAGES,
)
from tests.tenantsim.conftest import guests
from tests.tenantsim.sdk_models import assert_absorbed

EM = "/v1.0/identityGovernance/entitlementManagement"
REVIEWS = "/v1.0/identityGovernance/accessReviews/definitions"
WRITE = ("EntitlementManagement.ReadWrite.All",)
READ = ("EntitlementManagement.Read.All",)
REVIEW_WRITE = ("AccessReview.ReadWrite.All",)
FABRIKAM_PACKAGE = SEEDED_ACCESS_PACKAGES["Fabrikam engineering"]

# Request bodies of Microsoft's v1.0 documentation examples (microsoftgraph/microsoft-graph-docs-contrib).
DOC_CATALOG = {  # entitlementmanagement-post-catalogs.md
    "displayName": "sales",
    "description": "for employees working with sales and outside sales partners",
    "state": "published",
    "isExternallyVisible": True,
}
DOC_ORGANIZATION = {  # entitlementmanagement-post-connectedorganizations.md
    "displayName": "Connected organization name",
    "description": "Connected organization description",
    "identitySources": [
        {
            "@odata.type": "#microsoft.graph.domainIdentitySource",
            "domainName": "example.com",
            "displayName": "example.com",
        }
    ],
    "state": "proposed",
}
DOC_DIRECT_POLICY = {  # entitlementmanagement-post-assignmentpolicies.md, example 1
    "displayName": "New Policy",
    "description": "policy for assignment",
    "allowedTargetScope": "notSpecified",
    "specificAllowedTargets": [],
    "expiration": {"endDateTime": None, "duration": None, "type": "noExpiration"},
    "requestorSettings": {
        "enableTargetsToSelfAddAccess": False,
        "enableTargetsToSelfUpdateAccess": False,
        "enableTargetsToSelfRemoveAccess": False,
        "allowCustomAssignmentSchedule": True,
        "enableOnBehalfRequestorsToAddAccess": False,
        "enableOnBehalfRequestorsToUpdateAccess": False,
        "enableOnBehalfRequestorsToRemoveAccess": False,
        "onBehalfRequestors": [],
    },
    "requestApprovalSettings": {"isApprovalRequiredForAdd": False, "isApprovalRequiredForUpdate": False, "stages": []},
    "accessPackage": {"id": FABRIKAM_PACKAGE},
}
DOC_AUTO_POLICY = {  # entitlementmanagement-post-assignmentpolicies.md, example 3
    "displayName": "Sales department users",
    "description": "All users from sales department",
    "allowedTargetScope": "specificDirectoryUsers",
    "specificAllowedTargets": [
        {
            "@odata.type": "#microsoft.graph.attributeRuleMembers",
            "description": "Membership rule for all users from sales department",
            "membershipRule": '(user.department -eq "Sales")',
        }
    ],
    "automaticRequestSettings": {"requestAccessForAllowedTargets": True},
    "accessPackage": {"id": FABRIKAM_PACKAGE},
}
DOC_REVIEW = {  # accessreviewset-post-definitions.md, example 2
    "displayName": "Review inactive guests on teams",
    "descriptionForAdmins": "Control guest user access to our teams.",
    "descriptionForReviewers": "Information security is everyone's responsibility. Review our access policy for more.",
    "instanceEnumerationScope": {
        "@odata.type": "#microsoft.graph.accessReviewQueryScope",
        "query": (
            "/groups?$filter=(groupTypes/any(c:c+eq+'Unified') and resourceProvisioningOptions/Any(x:x eq 'Team')')"
        ),
        "queryType": "MicrosoftGraph",
    },
    "scope": {
        "@odata.type": "#microsoft.graph.accessReviewInactiveUsersQueryScope",
        "query": "./members/microsoft.graph.user/?$filter=(userType eq 'Guest')",
        "queryType": "MicrosoftGraph",
        "inactiveDuration": "P30D",
    },
    "reviewers": [{"query": "./owners", "queryType": "MicrosoftGraph"}],
    "fallbackReviewers": [{"query": "/users/fc9a2c2b-1ddc-486d-a211-5fe8ca77fa1f", "queryType": "MicrosoftGraph"}],
    "settings": {
        "mailNotificationsEnabled": True,
        "reminderNotificationsEnabled": True,
        "justificationRequiredOnApproval": True,
        "recommendationsEnabled": True,
        "instanceDurationInDays": 3,
        "recurrence": {
            "pattern": {"type": "absoluteMonthly", "dayOfMonth": 5, "interval": 3},
            "range": {"type": "noEnd", "startDate": "2020-05-04T00:00:00.000Z"},
        },
        "defaultDecisionEnabled": True,
        "defaultDecision": "Deny",
        "autoApplyDecisionsEnabled": True,
    },
}


@pytest.mark.parametrize(
    ("path", "body", "roles"),
    [
        (f"{EM}/catalogs", DOC_CATALOG, WRITE),
        (f"{EM}/connectedOrganizations", DOC_ORGANIZATION, WRITE),
        (f"{EM}/assignmentPolicies", DOC_DIRECT_POLICY, WRITE),
        (f"{EM}/assignmentPolicies", DOC_AUTO_POLICY, WRITE),
        (REVIEWS, DOC_REVIEW, REVIEW_WRITE),
    ],
    ids=["catalog", "connected-organization", "direct-policy", "auto-assignment-policy", "access-review"],
)
def test_documented_create_bodies_are_accepted(graph, path, body, roles):
    """Each documentation example body is created with 201."""
    response = graph.request("POST", path, roles=roles, json=body)
    assert response.status_code == 201, response.text


def test_the_seeded_catalog_holds_each_partner_package_with_a_direct_assignment_policy(graph):
    """A fresh tenant has the Partner collaboration catalog, four packages and a notSpecified policy each."""
    catalogs = graph.get(f"{EM}/catalogs?$filter=displayName eq 'Partner collaboration'", roles=READ).json()
    assert [c.id for c in assert_absorbed(catalogs, AccessPackageCatalogCollectionResponse).value] == [
        PARTNER_CATALOG_ID
    ]
    packages = graph.get(f"{EM}/catalogs/{PARTNER_CATALOG_ID}/accessPackages", roles=READ).json()["value"]
    assert sorted(p["displayName"] for p in packages) == sorted(SEEDED_ACCESS_PACKAGES)
    for package in packages:
        policies = graph.get(f"{EM}/accessPackages/{package['id']}/assignmentPolicies", roles=READ).json()["value"]
        assert [p["allowedTargetScope"] for p in policies] == ["notSpecified"]
        assert_absorbed(policies[0], AccessPackageAssignmentPolicy)


def test_every_governance_response_deserializes_into_its_sdk_model(graph):
    """Catalog, package, organisation, policy, settings and review bodies leave nothing over in the SDK models."""
    organization = graph.request("POST", f"{EM}/connectedOrganizations", roles=WRITE, json=DOC_ORGANIZATION).json()
    assert_absorbed(organization, ConnectedOrganization)
    package = graph.get(f"{EM}/accessPackages/{FABRIKAM_PACKAGE}?$expand=catalog", roles=READ).json()
    assert assert_absorbed(package, AccessPackage).catalog.id == PARTNER_CATALOG_ID
    policy = graph.request("POST", f"{EM}/assignmentPolicies", roles=WRITE, json=_request_policy(organization["id"]))
    parsed = assert_absorbed(policy.json(), AccessPackageAssignmentPolicy)
    assert parsed.request_approval_settings.stages[0].duration_before_automatic_denial.days == 14
    assert_absorbed(graph.get(f"{EM}/settings", roles=READ).json(), EntitlementManagementSettings)
    review = graph.request("POST", REVIEWS, roles=REVIEW_WRITE, json=DOC_REVIEW).json()
    assert assert_absorbed(review, AccessReviewScheduleDefinition).settings.recurrence.range.start_date.isoformat() == (
        "2020-05-04"
    )
    listing = graph.get(REVIEWS, roles=("AccessReview.Read.All",)).json()
    assert_absorbed(listing, AccessReviewScheduleDefinitionCollectionResponse)


def _request_policy(organization_id: str) -> dict:
    return {
        "displayName": "Partner requests",
        "allowedTargetScope": "specificConnectedOrganizationUsers",
        "specificAllowedTargets": [
            {"@odata.type": "#microsoft.graph.connectedOrganizationMembers", "connectedOrganizationId": organization_id}
        ],
        "expiration": {"type": "afterDuration", "duration": "P90D"},
        "requestApprovalSettings": {
            "isApprovalRequiredForAdd": True,
            "stages": [{"primaryApprovers": [{"@odata.type": "#microsoft.graph.internalSponsors"}]}],
        },
        "accessPackage": {"id": FABRIKAM_PACKAGE},
    }


def test_an_admin_assignment_request_is_delivered_asynchronously(graph, server, admin):
    """POST answers submitted; reads move it through delivering to delivered, and the assignment appears."""
    governance_state(server.simulator.directory).reads_until_delivered = 2
    guest = guests(admin)[0]
    body = {
        "requestType": "adminAdd",
        "assignment": {
            "targetId": guest["id"],
            "assignmentPolicyId": "a1f0c2d3-4e5b-4a6c-8d7e-9f0a1b2c3da1",
            "accessPackageId": FABRIKAM_PACKAGE,
        },
        "schedule": {"expiration": {"type": "afterDateTime", "endDateTime": "2027-01-01T00:00:00Z"}},
    }
    created = graph.request("POST", f"{EM}/assignmentRequests", roles=WRITE, json=body)
    assert created.status_code == 201 and created.json()["state"] == "submitted"
    assert_absorbed(created.json(), AccessPackageAssignmentRequest)
    path = f"{EM}/assignmentRequests/{created.json()['id']}"
    assert graph.get(path, roles=READ).json()["state"] == "delivering"
    assert graph.get(path, roles=READ).json()["state"] == "delivered"
    query = f"$filter=target/objectId eq '{guest['id']}' and accessPackage/id eq '{FABRIKAM_PACKAGE}'"
    listing = graph.get(f"{EM}/assignments?{query}&$expand=target,accessPackage", roles=READ).json()
    parsed = assert_absorbed(listing, AccessPackageAssignmentCollectionResponse)
    assert [a.state.value for a in parsed.value] == ["delivered"]
    assert parsed.value[0].target.object_id == guest["id"]
    assert parsed.value[0].schedule.expiration.end_date_time.year == 2027

    again = graph.request("POST", f"{EM}/assignmentRequests", roles=WRITE, json=body)
    assert again.status_code == 400  # a second live assignment of the same package is refused


def test_removing_a_guest_last_assignment_blocks_sign_in_as_the_settings_say(graph, admin):
    """adminRemove of the only assignment ends it and, with blockSignIn set, disables the external user."""
    graph.request("PATCH", f"{EM}/settings", roles=WRITE, json={"externalUserLifecycleAction": "blockSignIn"})
    guest = guests(admin)[1]
    add = {
        "requestType": "adminAdd",
        "assignment": {
            "targetId": guest["id"],
            "assignmentPolicyId": "a1f0c2d3-4e5b-4a6c-8d7e-9f0a1b2c3da1",
            "accessPackageId": FABRIKAM_PACKAGE,
        },
    }
    request = graph.request("POST", f"{EM}/assignmentRequests", roles=WRITE, json=add).json()
    graph.get(f"{EM}/assignmentRequests/{request['id']}", roles=READ)
    assignment = graph.get(f"{EM}/assignments?$filter=target/objectId eq '{guest['id']}'", roles=READ).json()["value"][
        0
    ]
    remove = {"requestType": "adminRemove", "assignment": {"id": assignment["id"]}}
    removal = graph.request("POST", f"{EM}/assignmentRequests", roles=WRITE, json=remove).json()
    assert graph.get(f"{EM}/assignmentRequests/{removal['id']}", roles=READ).json()["state"] == "delivered"
    user = next(u for u in admin.snapshot()["users"] if u["id"] == guest["id"])
    assert user["accountEnabled"] is False


def test_a_connected_organisation_policy_admits_only_that_organisation_guests(graph, admin):
    """A specificConnectedOrganizationUsers policy refuses a guest from another organisation."""
    organization = graph.request(
        "POST",
        f"{EM}/connectedOrganizations",
        roles=WRITE,
        json={
            "displayName": "Northwind",
            "identitySources": [
                {"@odata.type": "#microsoft.graph.domainIdentitySource", "domainName": "northwindtraders.com"}
            ],
            "state": "configured",
        },
    ).json()
    policy = graph.request("POST", f"{EM}/assignmentPolicies", roles=WRITE, json=_request_policy(organization["id"]))
    fabrikam_guest = next(g for g in guests(admin) if g["mail"].endswith("@fabrikam.com"))
    body = {
        "requestType": "adminAdd",
        "assignment": {
            "targetId": fabrikam_guest["id"],
            "assignmentPolicyId": policy.json()["id"],
            "accessPackageId": FABRIKAM_PACKAGE,
        },
    }
    assert graph.request("POST", f"{EM}/assignmentRequests", roles=WRITE, json=body).status_code == 400


def test_beta_requestor_settings_are_refused_on_v1(graph):
    """The beta allowedRequestors/scopeType model is not v1.0's: those properties are a 400, as is any unknown one."""
    beta = {**DOC_DIRECT_POLICY, "requestorSettings": {"scopeType": "AllExternalSubjects", "allowedRequestors": []}}
    assert graph.request("POST", f"{EM}/assignmentPolicies", roles=WRITE, json=beta).status_code == 400
    unknown = {**DOC_DIRECT_POLICY, "requestorScope": {"scopeType": "AllExternalSubjects"}}
    assert graph.request("POST", f"{EM}/assignmentPolicies", roles=WRITE, json=unknown).status_code == 400


def test_a_policy_is_replaced_with_put_and_keeps_its_id(graph):
    """PUT replaces the whole policy and answers 200 with it; PATCH is not a method Graph offers here."""
    created = graph.request("POST", f"{EM}/assignmentPolicies", roles=WRITE, json=DOC_DIRECT_POLICY).json()
    path = f"{EM}/assignmentPolicies/{created['id']}"
    replaced = graph.request(
        "PUT",
        path,
        roles=WRITE,
        json={**DOC_DIRECT_POLICY, "expiration": {"type": "afterDuration", "duration": "P30D"}},
    )
    assert replaced.status_code == 200 and replaced.json()["id"] == created["id"]
    assert graph.get(path, roles=READ).json()["expiration"]["duration"] == "P30D"
    assert graph.request("PATCH", path, roles=WRITE, json={"displayName": "x"}).status_code == 405


def test_review_definitions_page_with_top_and_skip_and_filter_by_scope(graph):
    """$top/$skip page with a nextLink; contains(scope/...query) finds the guest reviews."""
    for index in range(3):
        graph.request("POST", REVIEWS, roles=REVIEW_WRITE, json={**DOC_REVIEW, "displayName": f"Review {index}"})
    first = graph.get(f"{REVIEWS}?$top=2", roles=REVIEW_WRITE).json()
    assert len(first["value"]) == 2 and "$skip=2" in first["@odata.nextLink"]
    rest = graph.get(f"{REVIEWS}?$top=2&$skip=2", roles=REVIEW_WRITE).json()
    assert len(rest["value"]) == 1 and "@odata.nextLink" not in rest
    found = graph.get(
        f"{REVIEWS}?$filter=contains(scope/microsoft.graph.accessReviewQueryScope/query, './members')",
        roles=REVIEW_WRITE,
    ).json()
    assert len(found["value"]) == 3


def test_a_review_update_cannot_change_its_scope(graph):
    """PUT with a different scope is refused; the same definition with new settings is accepted."""
    review = graph.request("POST", REVIEWS, roles=REVIEW_WRITE, json=DOC_REVIEW).json()
    path = f"{REVIEWS}/{review['id']}"
    moved = {**DOC_REVIEW, "scope": {**DOC_REVIEW["scope"], "query": "/users"}}
    assert graph.request("PUT", path, roles=REVIEW_WRITE, json=moved).status_code == 400
    longer = {**DOC_REVIEW, "settings": {**DOC_REVIEW["settings"], "instanceDurationInDays": 7}}
    replaced = graph.request("PUT", path, roles=REVIEW_WRITE, json=longer)
    assert (replaced.status_code, replaced.content) == (204, b"")
    assert graph.get(path, roles=REVIEW_WRITE).json()["settings"]["instanceDurationInDays"] == 7
    assert graph.request("DELETE", path, roles=REVIEW_WRITE).status_code == 204
    assert graph.get(path, roles=REVIEW_WRITE).status_code == 404


@pytest.mark.parametrize(
    ("method", "path", "roles"),
    [
        ("GET", f"{EM}/catalogs", ("User.Read.All",)),
        ("POST", f"{EM}/catalogs", READ),
        ("GET", REVIEWS, READ),
        ("POST", REVIEWS, ("AccessReview.Read.All",)),
    ],
)
def test_governance_endpoints_need_their_permission(graph, method, path, roles):
    """Without the EntitlementManagement/AccessReview permission the answer is 403 Authorization_RequestDenied."""
    response = graph.request(method, path, roles=roles, json=DOC_CATALOG if method == "POST" else None)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "Authorization_RequestDenied"


# --- catalog resources and resource role scopes -----------------------------------------------------

ADD_GROUP = ("EntitlementManagement.ReadWrite.All", "Group.ReadWrite.All")
NORTHWIND_PACKAGE = SEEDED_ACCESS_PACKAGES["Northwind supply chain"]


def _catalog_group(graph, group_id: str) -> dict:
    query = f"$filter=originId eq '{group_id}'&$expand=roles,scopes"
    body = graph.get(f"{EM}/catalogs/{PARTNER_CATALOG_ID}/resources?{query}", roles=READ).json()
    assert_absorbed(body, AccessPackageResourceCollectionResponse)
    return body["value"][0] if body["value"] else {}


def _member_role_scope(resource: dict) -> dict:
    """The request body of accesspackage-post-resourcerolescopes example 3: a group's Member role, root scope."""
    member = next(r for r in resource["roles"] if r["displayName"] == "Member")
    return {
        "role": {"originId": member["originId"], "originSystem": "AadGroup", "resource": {"id": resource["id"]}},
        "scope": {"originId": resource["originId"], "originSystem": "AadGroup"},
    }


def test_a_group_is_added_to_a_catalog_with_its_owner_and_member_roles_and_root_scope(graph):
    """adminAdd of an AadGroup answers delivered; the resource lists Owner/Member roles and one root scope."""
    body = {
        "requestType": "adminAdd",
        "resource": {"originId": PARTNER_EXTRANET_GROUP_ID, "originSystem": "AadGroup"},
        "catalog": {"id": PARTNER_CATALOG_ID},
    }
    created = graph.request("POST", f"{EM}/resourceRequests", roles=ADD_GROUP, json=body)
    assert created.status_code == 201 and created.json()["state"] == "delivered"
    assert_absorbed(created.json(), AccessPackageResourceRequest)
    resource = _catalog_group(graph, PARTNER_EXTRANET_GROUP_ID)
    assert resource["displayName"] == "Contoso partner extranet" and resource["originSystem"] == "AadGroup"
    assert sorted(r["originId"] for r in resource["roles"]) == [
        f"Member_{PARTNER_EXTRANET_GROUP_ID}",
        f"Owner_{PARTNER_EXTRANET_GROUP_ID}",
    ]
    assert [(s["originId"], s["isRootScope"]) for s in resource["scopes"]] == [(PARTNER_EXTRANET_GROUP_ID, True)]
    again = graph.request("POST", f"{EM}/resourceRequests", roles=ADD_GROUP, json=body)
    assert again.status_code == 400  # already in the catalog

    remove = {"requestType": "adminRemove", "resource": {"id": resource["id"]}, "catalog": {"id": PARTNER_CATALOG_ID}}
    assert graph.request("POST", f"{EM}/resourceRequests", roles=WRITE, json=remove).status_code == 201
    assert _catalog_group(graph, PARTNER_EXTRANET_GROUP_ID) == {}


def test_adding_a_group_to_a_catalog_needs_group_readwrite_besides_entitlement_management(graph):
    """With application permissions, EntitlementManagement.ReadWrite.All alone cannot put a group in a catalog."""
    body = {
        "requestType": "adminAdd",
        "resource": {"originId": PARTNER_EXTRANET_GROUP_ID, "originSystem": "AadGroup"},
        "catalog": {"id": PARTNER_CATALOG_ID},
    }
    response = graph.request("POST", f"{EM}/resourceRequests", roles=WRITE, json=body)
    assert response.status_code == 403 and response.json()["error"]["code"] == "Authorization_RequestDenied"


def test_a_package_grants_a_group_member_role_and_lists_it_expanded(graph):
    """POST resourceRoleScopes answers <roleId>_<scopeId>; the package expands it with role and scope; DELETE."""
    resource = _catalog_group(graph, NORTHWIND_SUPPLY_CHAIN_GROUP_ID)
    path = f"{EM}/accessPackages/{NORTHWIND_PACKAGE}/resourceRoleScopes"
    created = graph.request("POST", path, roles=WRITE, json=_member_role_scope(resource))
    assert created.status_code == 201, created.text
    assert_absorbed(created.json(), AccessPackageResourceRoleScope)
    member = next(r for r in resource["roles"] if r["displayName"] == "Member")
    assert created.json()["id"] == f"{member['id']}_{resource['scopes'][0]['id']}"
    assert graph.request("POST", path, roles=WRITE, json=_member_role_scope(resource)).status_code == 400

    expanded = graph.get(
        f"{EM}/accessPackages/{NORTHWIND_PACKAGE}?$expand=resourceRoleScopes($expand=role,scope)", roles=READ
    ).json()
    package = assert_absorbed(expanded, AccessPackage)
    assert [(s.role.origin_id, s.scope.origin_id) for s in package.resource_role_scopes] == [
        (f"Member_{NORTHWIND_SUPPLY_CHAIN_GROUP_ID}", NORTHWIND_SUPPLY_CHAIN_GROUP_ID)
    ]
    bare = graph.get(f"{EM}/accessPackages/{NORTHWIND_PACKAGE}?$expand=resourceRoleScopes", roles=READ).json()
    assert set(bare["resourceRoleScopes"][0]) == {"id", "createdDateTime"}

    remove = {"requestType": "adminRemove", "resource": {"id": resource["id"]}, "catalog": {"id": PARTNER_CATALOG_ID}}
    assert graph.request("POST", f"{EM}/resourceRequests", roles=WRITE, json=remove).status_code == 400  # in use
    assert graph.request("DELETE", f"{path}/{created.json()['id']}", roles=WRITE).status_code == 204
    after = graph.get(f"{EM}/accessPackages/{NORTHWIND_PACKAGE}?$expand=resourceRoleScopes", roles=READ).json()
    assert after["resourceRoleScopes"] == []


def test_a_role_from_outside_the_package_catalog_is_refused(graph):
    """The role's resource must be in the package's catalog."""
    path = f"{EM}/accessPackages/{NORTHWIND_PACKAGE}/resourceRoleScopes"
    body = {
        "role": {"originId": "Member_x", "originSystem": "AadGroup", "resource": {"id": "not-a-resource"}},
        "scope": {"originId": "x", "originSystem": "AadGroup"},
    }
    assert graph.request("POST", path, roles=WRITE, json=body).status_code == 400


def test_a_delivered_assignment_makes_the_guest_a_member_of_the_package_groups_until_it_ends(graph, admin):
    """Assignment delivery adds the target to the groups whose Member role the package grants; removal takes it away."""
    resource = _catalog_group(graph, NORTHWIND_SUPPLY_CHAIN_GROUP_ID)
    path = f"{EM}/accessPackages/{NORTHWIND_PACKAGE}/resourceRoleScopes"
    assert graph.request("POST", path, roles=WRITE, json=_member_role_scope(resource)).status_code == 201
    guest = guests(admin)[2]
    add = {
        "requestType": "adminAdd",
        "assignment": {
            "targetId": guest["id"],
            "assignmentPolicyId": "a1f0c2d3-4e5b-4a6c-8d7e-9f0a1b2c3da2",
            "accessPackageId": NORTHWIND_PACKAGE,
        },
    }
    request = graph.request("POST", f"{EM}/assignmentRequests", roles=WRITE, json=add).json()
    assert graph.get(f"{EM}/assignmentRequests/{request['id']}", roles=READ).json()["state"] == "delivered"
    members = f"/v1.0/groups/{NORTHWIND_SUPPLY_CHAIN_GROUP_ID}/members"
    listed = graph.get(members, roles=("GroupMember.Read.All",)).json()["value"]
    assert [m["id"] for m in listed] == [guest["id"]]

    assignment = graph.get(f"{EM}/assignments?$filter=target/objectId eq '{guest['id']}'", roles=READ).json()
    remove = {"requestType": "adminRemove", "assignment": {"id": assignment["value"][0]["id"]}}
    removal = graph.request("POST", f"{EM}/assignmentRequests", roles=WRITE, json=remove).json()
    graph.get(f"{EM}/assignmentRequests/{removal['id']}", roles=READ)
    assert graph.get(members, roles=("GroupMember.Read.All",)).json()["value"] == []


# --- access review instances ------------------------------------------------------------------------


def _weekly_review(start: datetime, duration_days: int, **extra) -> dict:
    settings = {
        **DOC_REVIEW["settings"],
        "instanceDurationInDays": duration_days,
        "recurrence": {
            "pattern": {"type": "weekly", "interval": 1},
            "range": {"type": "noEnd", "startDate": start.date().isoformat()},
        },
    }
    body = {k: v for k, v in DOC_REVIEW.items() if k != "instanceEnumerationScope"}
    reviewers = [{"query": f"/users/{MEGAN}", "queryType": "MicrosoftGraph"}]
    scope = {**DOC_REVIEW["scope"], "query": "/users"}
    return {**body, "scope": scope, "reviewers": reviewers, "settings": settings, **extra}


def test_a_recurring_review_lists_its_past_current_and_next_instance_by_the_clock(graph):
    """Weekly, 3 days long, from 8 days ago: that one Completed, yesterday's InProgress, next week's NotStarted."""
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    review = graph.request("POST", REVIEWS, roles=REVIEW_WRITE, json=_weekly_review(today - timedelta(days=8), 3))
    listing = graph.get(f"{REVIEWS}/{review.json()['id']}/instances", roles=("AccessReview.Read.All",)).json()
    parsed = assert_absorbed(listing, AccessReviewInstanceCollectionResponse)
    assert [(i.start_date_time.date(), i.status) for i in parsed.value] == [
        ((today - timedelta(days=8)).date(), "Completed"),
        ((today - timedelta(days=1)).date(), "InProgress"),
        ((today + timedelta(days=6)).date(), "NotStarted"),
    ]
    assert parsed.value[1].end_date_time - parsed.value[1].start_date_time == timedelta(days=3)
    again = graph.get(f"{REVIEWS}/{review.json()['id']}/instances", roles=("AccessReview.Read.All",)).json()
    assert [i["id"] for i in again["value"]] == [i["id"] for i in listing["value"]]  # stable ids
    current = graph.get(
        f"{REVIEWS}/{review.json()['id']}/instances?$filter=status eq 'InProgress'", roles=("AccessReview.Read.All",)
    ).json()
    assert len(current["value"]) == 1


def test_a_review_of_all_microsoft_365_groups_gets_one_instance_per_group(graph):
    """instanceEnumerationScope over Unified groups: each occurrence has an instance per group, scope anchored there."""
    today = datetime.now(UTC)
    enumeration = {
        "@odata.type": "#microsoft.graph.accessReviewQueryScope",
        "query": "/groups?$filter=(groupTypes/any(c:c+eq+'Unified'))&$count=true",
        "queryType": "MicrosoftGraph",
    }
    scope = {
        "@odata.type": "#microsoft.graph.accessReviewQueryScope",
        "query": "./members/microsoft.graph.user/?$count=true&$filter=(userType eq 'Guest')",
        "queryType": "MicrosoftGraph",
    }
    body = _weekly_review(today - timedelta(days=1), 14, scope=scope, instanceEnumerationScope=enumeration)
    review = graph.request("POST", REVIEWS, roles=REVIEW_WRITE, json=body).json()
    listing = graph.get(f"{REVIEWS}/{review['id']}/instances", roles=("AccessReview.Read.All",)).json()
    assert [i["status"] for i in listing["value"]] == ["InProgress", "NotStarted"]
    assert listing["value"][0]["scope"]["query"].startswith(f"/v1.0/groups/{PARTNER_EXTRANET_GROUP_ID}/members")


@pytest.mark.parametrize("query", ["./sponsors", "./manager"])
def test_per_decision_reviewers_need_query_root_decisions(graph, query):
    """Each guest's sponsors or manager review that guest: without queryRoot decisions the definition is refused."""
    without = {**DOC_REVIEW, "reviewers": [{"query": query, "queryType": "MicrosoftGraph"}]}
    assert graph.request("POST", REVIEWS, roles=REVIEW_WRITE, json=without).status_code == 400
    reviewers = [{"query": query, "queryType": "MicrosoftGraph", "queryRoot": "decisions"}]
    created = graph.request("POST", REVIEWS, roles=REVIEW_WRITE, json={**DOC_REVIEW, "reviewers": reviewers})
    assert created.status_code == 201 and created.json()["reviewers"][0]["queryRoot"] == "decisions"


# --- access review definitions as Graph stores them -------------------------------------------------

MEGAN = "fc9a2c2b-1ddc-486d-a211-5fe8ca77fa1f"
ADELE = "398164b1-5196-49dd-ada2-364b49f99b27"
REVIEW_KNOBS_OFF = {"reviewQueryVersionPrefix": False, "reviewNoEndAsNumbered": False}


def _single_group_review(reviewers: list[dict], group: str = PARTNER_EXTRANET_GROUP_ID) -> dict:
    """A review of one group's guests, shaped like the get example (accessreviewscheduledefinition-get)."""
    body = {k: v for k, v in DOC_REVIEW.items() if k != "instanceEnumerationScope"}
    scope = {
        "@odata.type": "#microsoft.graph.accessReviewQueryScope",
        "query": f"/groups/{group}/transitiveMembers/microsoft.graph.user/?$filter=(userType eq 'Guest')",
        "queryType": "MicrosoftGraph",
    }
    return {**body, "scope": scope, "reviewers": reviewers}


def test_a_stored_definition_comes_back_as_graph_rewrites_it(graph):
    """Create example 2 read back: the scope gains $count=true before its $filter, the group enumeration after
    it, the user fallback reviewer a /v1.0 prefix, and the noEnd range is numbered until 9999-12-31."""
    created = graph.request("POST", REVIEWS, roles=REVIEW_WRITE, json=DOC_REVIEW).json()
    listed = graph.get(REVIEWS, roles=REVIEW_WRITE).json()["value"]
    fetched = graph.get(f"{REVIEWS}/{created['id']}", roles=REVIEW_WRITE).json()
    for stored in (created, fetched, next(r for r in listed if r["id"] == created["id"])):
        assert stored["scope"]["query"] == "./members/microsoft.graph.user/?$count=true&$filter=(userType eq 'Guest')"
        assert stored["instanceEnumerationScope"]["query"] == (
            "/v1.0/groups?$filter=(groupTypes/any(c:c+eq+'Unified') and "
            "resourceProvisioningOptions/Any(x:x eq 'Team')')&$count=true"
        )
        assert [r["query"] for r in stored["reviewers"]] == ["./owners"]
        assert [r["query"] for r in stored["fallbackReviewers"]] == [f"/v1.0/users/{MEGAN}"]
        span = stored["settings"]["recurrence"]["range"]
        assert (span["type"], span["numberOfOccurrences"], span["endDate"]) == ("numbered", 0, "9999-12-31")
    assert_absorbed(fetched, AccessReviewScheduleDefinition)


def test_a_single_group_review_is_stored_under_v1_0_and_keeps_an_existing_count(graph):
    """The get example's shape: absolute scope, enumeration and reviewer queries under /v1.0, $count not doubled."""
    body = _single_group_review([{"query": f"/users/{ADELE}", "queryType": "MicrosoftGraph"}])
    body["scope"]["query"] = body["scope"]["query"].replace("/?$filter", "/?$count=true&$filter")
    body["instanceEnumerationScope"] = {
        "@odata.type": "#microsoft.graph.accessReviewQueryScope",
        "query": f"/groups/{PARTNER_EXTRANET_GROUP_ID}",
        "queryType": "MicrosoftGraph",
    }
    stored = graph.request("POST", REVIEWS, roles=REVIEW_WRITE, json=body).json()
    assert stored["scope"]["query"] == (
        f"/v1.0/groups/{PARTNER_EXTRANET_GROUP_ID}/transitiveMembers/microsoft.graph.user/"
        "?$count=true&$filter=(userType eq 'Guest')"
    )
    assert stored["instanceEnumerationScope"]["query"] == f"/v1.0/groups/{PARTNER_EXTRANET_GROUP_ID}"
    assert stored["reviewers"][0]["query"] == f"/v1.0/users/{ADELE}"


def test_with_the_rewrite_knobs_off_queries_and_ranges_come_back_as_sent(graph, admin):
    """Create example 1's answer: no /v1.0 prefix and a noEnd range left noEnd (the $count is still added)."""
    admin.configure(**REVIEW_KNOBS_OFF)
    stored = graph.request("POST", REVIEWS, roles=REVIEW_WRITE, json=DOC_REVIEW).json()
    assert stored["scope"]["query"] == "./members/microsoft.graph.user/?$count=true&$filter=(userType eq 'Guest')"
    assert stored["instanceEnumerationScope"]["query"].startswith("/groups?$filter=")
    assert [r["query"] for r in stored["fallbackReviewers"]] == [f"/users/{MEGAN}"]
    span = stored["settings"]["recurrence"]["range"]
    assert (span["type"], span["endDate"]) == ("noEnd", None)


def test_a_review_stored_as_numbered_until_9999_keeps_recurring(graph):
    """The numbered 9999-12-31 range Graph stores for noEnd still lists the current and the next instance."""
    start = datetime.now(UTC) - timedelta(days=1)
    review = graph.request("POST", REVIEWS, roles=REVIEW_WRITE, json=_weekly_review(start, 3)).json()
    assert review["settings"]["recurrence"]["range"]["type"] == "numbered"
    listing = graph.get(f"{REVIEWS}/{review['id']}/instances", roles=("AccessReview.Read.All",)).json()["value"]
    assert [i["status"] for i in listing] == ["InProgress", "NotStarted"]


def test_reviewers_are_updated_only_while_individual_users_review(graph):
    """One user for another is accepted with 204; a change to or from group owners is refused with 400; the
    same non-user reviewers sent again (as sent or as stored) are no change and pass."""
    users = graph.request("POST", REVIEWS, roles=REVIEW_WRITE, json=_weekly_review(datetime.now(UTC), 3)).json()
    other = {**_weekly_review(datetime.now(UTC), 3), "reviewers": [{"query": f"/users/{ADELE}"}]}
    assert graph.request("PUT", f"{REVIEWS}/{users['id']}", roles=REVIEW_WRITE, json=other).status_code == 204
    assert graph.get(f"{REVIEWS}/{users['id']}", roles=REVIEW_WRITE).json()["reviewers"][0]["query"].endswith(ADELE)
    sponsors = {**other, "reviewers": [{"query": "./sponsors", "queryRoot": "decisions"}]}
    refused = graph.request("PUT", f"{REVIEWS}/{users['id']}", roles=REVIEW_WRITE, json=sponsors)
    assert refused.status_code == 400 and "individual users" in refused.json()["error"]["message"]

    owners = graph.request("POST", REVIEWS, roles=REVIEW_WRITE, json=DOC_REVIEW).json()
    path = f"{REVIEWS}/{owners['id']}"
    to_user = {**DOC_REVIEW, "reviewers": [{"query": f"/users/{ADELE}", "queryType": "MicrosoftGraph"}]}
    assert graph.request("PUT", path, roles=REVIEW_WRITE, json=to_user).status_code == 400
    assert graph.get(path, roles=REVIEW_WRITE).json()["reviewers"][0]["query"] == "./owners"
    assert graph.request("PUT", path, roles=REVIEW_WRITE, json=DOC_REVIEW).status_code == 204
    as_stored = {k: v for k, v in owners.items() if k not in ("@odata.context", "id")}
    assert graph.request("PUT", path, roles=REVIEW_WRITE, json=as_stored).status_code == 204


def test_relative_owners_need_a_review_of_all_groups(graph, admin):
    """./owners on a one-group review is refused; /groups/{id}/owners is how that review names them. The knob
    reviewRelativeOwnersOnSingleGroup accepts ./owners there too."""
    relative = _single_group_review([{"query": "./owners", "queryType": "MicrosoftGraph"}])
    refused = graph.request("POST", REVIEWS, roles=REVIEW_WRITE, json=relative)
    assert refused.status_code == 400 and "/groups/{id}/owners" in refused.json()["error"]["message"]
    as_fallback = {**_single_group_review([]), "fallbackReviewers": [{"query": "./owners"}]}
    assert graph.request("POST", REVIEWS, roles=REVIEW_WRITE, json=as_fallback).status_code == 400
    owners = f"/groups/{PARTNER_EXTRANET_GROUP_ID}/owners"
    named = graph.request("POST", REVIEWS, roles=REVIEW_WRITE, json=_single_group_review([{"query": owners}]))
    assert named.status_code == 201 and named.json()["reviewers"][0]["query"] == f"/v1.0{owners}"
    admin.configure(reviewRelativeOwnersOnSingleGroup=True)
    assert graph.request("POST", REVIEWS, roles=REVIEW_WRITE, json=relative).status_code == 201


# --- assignment requests for a guest still replicating ------------------------------------------------

DIRECT_POLICY = "a1f0c2d3-4e5b-4a6c-8d7e-9f0a1b2c3da1"


def _invited(graph, email: str) -> str:
    invited = graph.request(
        "POST",
        "/v1.0/invitations",
        roles=("User.Invite.All",),
        json={"invitedUserEmailAddress": email, "inviteRedirectUrl": "https://myapps.microsoft.com"},
    )
    assert invited.status_code == 201
    return invited.json()["invitedUser"]["id"]


def _admin_add(user_id: str) -> dict:
    return {
        "requestType": "adminAdd",
        "assignment": {"targetId": user_id, "assignmentPolicyId": DIRECT_POLICY, "accessPackageId": FABRIKAM_PACKAGE},
    }


def test_an_assignment_request_for_a_guest_still_replicating_is_a_404_until_it_replicates(graph, server, admin):
    """The replica taking the request cannot see a guest invited moments ago: 404 Request_ResourceNotFound and
    no request recorded; once the guest has replicated the same request is accepted."""
    admin.configure(replicationDelaySeconds=60)
    user_id = _invited(graph, "just.invited@fabrikam.com")
    refused = graph.request("POST", f"{EM}/assignmentRequests", roles=WRITE, json=_admin_add(user_id))
    assert refused.status_code == 404 and refused.json()["error"]["code"] == "Request_ResourceNotFound"
    assert graph.get(f"{EM}/assignmentRequests", roles=READ).json()["value"] == []

    server.simulator.directory.users[user_id].visible_after = 0.0  # replication has caught up
    accepted = graph.request("POST", f"{EM}/assignmentRequests", roles=WRITE, json=_admin_add(user_id))
    assert accepted.status_code == 201 and accepted.json()["state"] == "submitted"


def test_with_the_accepting_reading_a_guest_still_replicating_can_be_assigned_at_once(graph, admin):
    """assignmentTargetUnreplicated=accept: the request for a guest still replicating is taken at once."""
    admin.configure(replicationDelaySeconds=60, assignmentTargetUnreplicated="accept")
    user_id = _invited(graph, "accepted.at.once@fabrikam.com")
    accepted = graph.request("POST", f"{EM}/assignmentRequests", roles=WRITE, json=_admin_add(user_id))
    assert accepted.status_code == 201
    assert graph.get(f"/v1.0/users/{user_id}", roles=("User.Read.All",)).status_code == 404  # still replicating


# --- connected organisations: the documented look-up and create answer -----------------------------------

FABRIKAM_TENANT = "9a3d526c-1b7e-4c2f-8d6a-5e0f3b7c9d21"
TENANT_SOURCE = {
    "@odata.type": "#microsoft.graph.azureActiveDirectoryTenant",
    "tenantId": FABRIKAM_TENANT,
    "displayName": "Fabrikam",
}


def _organization(graph, name: str, source: dict) -> dict:
    body = {"displayName": name, "identitySources": [source], "state": "configured"}
    created = graph.request("POST", f"{EM}/connectedOrganizations", roles=WRITE, json=body)
    assert created.status_code == 201
    return created.json()


def test_connected_organisations_are_found_by_the_tenant_of_their_identity_source(graph):
    """`identitySources/any(is:is/microsoft.graph.azureActiveDirectoryTenant/tenantId eq '...')` keeps the
    organisations with that tenant's source (any lambda name, any GUID casing); displayName eq still works."""
    fabrikam = _organization(graph, "Fabrikam", TENANT_SOURCE)
    _organization(graph, "Adatum", {"@odata.type": "#microsoft.graph.domainIdentitySource", "domainName": "adatum.com"})
    for expression in (
        f"identitySources/any(is:is/microsoft.graph.azureActiveDirectoryTenant/tenantId eq '{FABRIKAM_TENANT}')",
        f"identitySources/any(s: s/microsoft.graph.azureActiveDirectoryTenant/tenantId eq '{FABRIKAM_TENANT.upper()}')",
    ):
        found = graph.get(f"{EM}/connectedOrganizations", roles=READ, params={"$filter": expression}).json()
        assert [o["id"] for o in found["value"]] == [fabrikam["id"]]
    unknown_tenant = "ffffffff-0000-0000-0000-000000000000"
    nobody = f"identitySources/any(is:is/microsoft.graph.azureActiveDirectoryTenant/tenantId eq '{unknown_tenant}')"
    assert graph.get(f"{EM}/connectedOrganizations", roles=READ, params={"$filter": nobody}).json()["value"] == []
    by_name = graph.get(f"{EM}/connectedOrganizations", roles=READ, params={"$filter": "displayName eq 'Adatum'"})
    assert [o["displayName"] for o in by_name.json()["value"]] == ["Adatum"]
    unsupported = "identitySources/any(is:is/microsoft.graph.domainIdentitySource/domainName eq 'adatum.com')"
    assert graph.get(f"{EM}/connectedOrganizations", roles=READ, params={"$filter": unsupported}).status_code == 400


def test_creating_a_connected_organisation_answers_empty_identity_sources_that_reads_then_show(graph, admin):
    """As the create example shows, the 201 carries `identitySources: []`; get and list show the source.
    With connectedOrganizationCreateSources=echo the 201 carries the source that was sent."""
    created = _organization(graph, "Fabrikam", TENANT_SOURCE)
    assert created["identitySources"] == []
    got = graph.get(f"{EM}/connectedOrganizations/{created['id']}", roles=READ).json()
    assert got["identitySources"] == [TENANT_SOURCE]
    assert_absorbed(got, ConnectedOrganization)

    admin.configure(connectedOrganizationCreateSources="echo")
    echoed = _organization(graph, "Fabrikam again", TENANT_SOURCE)
    assert echoed["identitySources"] == [TENANT_SOURCE]


# --- listing packages with their assignment policies ------------------------------------------------------


def test_the_package_and_policy_lists_filter_on_the_display_name_and_the_navigation_ids_as_configured(graph, admin):
    """Both list pages name $filter with a displayName example and no other property. Knob accessPackageListFilters:
    "displayName" (default) answers 400 to a filter on the catalog, the package or the id, so a caller cannot come
    to rely on one unnoticed; "navigation" serves those too."""
    packages, policies = f"{EM}/accessPackages", f"{EM}/assignmentPolicies"
    named = graph.get(packages, roles=READ, params={"$filter": "displayName eq 'Northwind supply chain'"})
    assert [p["id"] for p in named.json()["value"]] == [NORTHWIND_PACKAGE]
    direct = graph.get(policies, roles=READ, params={"$filter": "displayName eq 'Admin direct assignment'"}).json()
    assert direct["value"] and {p["displayName"] for p in direct["value"]} == {"Admin direct assignment"}
    navigation = (
        (packages, f"catalog/id eq '{PARTNER_CATALOG_ID}'"),
        (packages, f"id eq '{NORTHWIND_PACKAGE}'"),
        (policies, f"catalog/id eq '{PARTNER_CATALOG_ID}'"),
        (policies, f"accessPackage/id eq '{NORTHWIND_PACKAGE}'"),
    )
    for path, clause in navigation:
        assert graph.request("GET", path, roles=READ, params={"$filter": clause}).status_code == 400, clause

    admin.configure(accessPackageListFilters="navigation")
    in_catalog = graph.get(packages, roles=READ, params={"$filter": navigation[0][1]}).json()["value"]
    assert NORTHWIND_PACKAGE in {p["id"] for p in in_catalog}
    assert [p["id"] for p in graph.get(packages, roles=READ, params={"$filter": navigation[1][1]}).json()["value"]] == [
        NORTHWIND_PACKAGE
    ]
    own = graph.get(policies, roles=READ, params={"$filter": navigation[3][1]}).json()["value"]
    listed = graph.get(f"{EM}/accessPackages/{NORTHWIND_PACKAGE}/assignmentPolicies", roles=READ).json()["value"]
    assert own and [p["id"] for p in own] == [p["id"] for p in listed]
    assert graph.get(policies, roles=READ, params={"$filter": navigation[2][1]}).json()["value"]


@pytest.mark.parametrize("path", [f"{EM}/accessPackages", f"{EM}/catalogs/{PARTNER_CATALOG_ID}/accessPackages"])
def test_listed_packages_carry_their_policies_expanded_ignored_or_refused_as_configured(graph, admin, path):
    """The list-assignmentPolicies page says to list packages with $expand=assignmentPolicies; the
    list-accessPackages page names only $select and $filter: knob accessPackagePoliciesExpand offers the
    expansion (default), the packages without it, or a 400."""
    url = f"{path}?$expand=assignmentPolicies"
    expanded = graph.get(url, roles=READ).json()["value"]
    package = next(p for p in expanded if p["id"] == NORTHWIND_PACKAGE)
    own = graph.get(f"{EM}/accessPackages/{NORTHWIND_PACKAGE}/assignmentPolicies", roles=READ).json()["value"]
    assert [p["id"] for p in package["assignmentPolicies"]] == [p["id"] for p in own] and own

    admin.configure(accessPackagePoliciesExpand="ignore")
    ignored = graph.get(url, roles=READ).json()["value"]
    assert ignored and all("assignmentPolicies" not in p for p in ignored)

    admin.configure(accessPackagePoliciesExpand="refuse")
    assert graph.request("GET", url, roles=READ).status_code == 400
    assert graph.get(path, roles=READ).status_code == 200
