"""tenantsim's identity governance: entitlement management (v1.0 model) and access review definitions."""

from __future__ import annotations

import pytest
from msgraph.generated.models.access_package import AccessPackage
from msgraph.generated.models.access_package_assignment_collection_response import (
    AccessPackageAssignmentCollectionResponse,
)
from msgraph.generated.models.access_package_assignment_policy import AccessPackageAssignmentPolicy
from msgraph.generated.models.access_package_assignment_request import AccessPackageAssignmentRequest
from msgraph.generated.models.access_package_catalog_collection_response import AccessPackageCatalogCollectionResponse
from msgraph.generated.models.access_review_schedule_definition import AccessReviewScheduleDefinition
from msgraph.generated.models.access_review_schedule_definition_collection_response import (
    AccessReviewScheduleDefinitionCollectionResponse,
)
from msgraph.generated.models.connected_organization import ConnectedOrganization
from msgraph.generated.models.entitlement_management_settings import EntitlementManagementSettings

from tenantsim.api.governance import governance_state
from tenantsim.seed import PARTNER_CATALOG_ID, SEEDED_ACCESS_PACKAGES
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
    assert graph.request("PUT", path, roles=REVIEW_WRITE, json=longer).status_code == 200
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
