"""The governance section of an export, from Graph-shaped objects: what maps onto the format, and what stays a
comment (with DECIDE where a human chooses) instead of being dropped or guessed."""

from __future__ import annotations

import copy
from typing import Any

from config.desired_state import parse_desired_state
from lifecycle.export.governance import GovernancePosture, export_governance

FABRIKAM_TENANT = "9a3d526c-1b7e-4c2f-8d6a-5e0f3b7c9d21"
ORG_ID = "6f1d2c3b-4a5e-4f60-8b7a-9c0d1e2f3a4b"
CATALOG_ID = "c4a1e3f2-7b6d-4e5a-9c8b-1d2e3f4a5b60"
PACKAGE_ID = "a1f0c2d3-4e5b-4a6c-8d7e-9f0a1b2c3d41"
GROUP_ID = "0b1f7a2e-5c3d-4e8f-9a6b-7c8d9e0f1a2b"
SPONSOR_FALLBACK = "11111111-2222-4333-8444-555555555555"
ORGANIZATION = {"id": ORG_ID, "displayName": "Fabrikam, Inc.", "state": "configured"}


def _partners() -> dict[str, Any]:
    return {"fabrikam": {"displayName": "Fabrikam, Inc.", "tenantId": FABRIKAM_TENANT, "domains": ["fabrikam.com"]}}


def _request_policy(expiration: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "p-request",
        "displayName": "Partner requests",
        "allowedTargetScope": "specificConnectedOrganizationUsers",
        "specificAllowedTargets": [
            {"@odata.type": "#microsoft.graph.connectedOrganizationMembers", "connectedOrganizationId": ORG_ID}
        ],
        "expiration": expiration,
        "requestApprovalSettings": {
            "isApprovalRequiredForAdd": True,
            "stages": [
                {
                    "primaryApprovers": [{"@odata.type": "#microsoft.graph.internalSponsors"}],
                    "fallbackPrimaryApprovers": [
                        {"@odata.type": "#microsoft.graph.singleUser", "userId": SPONSOR_FALLBACK}
                    ],
                }
            ],
        },
    }


def _review(name: str, admins: str, **settings: Any) -> dict[str, Any]:
    """A definition as Graph stores it: /v1.0 prefixes, $count added, noEnd read back as numbered."""
    return {
        "id": f"r-{name}",
        "displayName": name,
        "descriptionForAdmins": admins,
        "descriptionForReviewers": "Confirm each guest.",
        "scope": {
            "@odata.type": "#microsoft.graph.accessReviewQueryScope",
            "query": "./members/microsoft.graph.user/?$count=true&$filter=(userType eq 'Guest')",
            "queryType": "MicrosoftGraph",
            "queryRoot": None,
        },
        "instanceEnumerationScope": {
            "@odata.type": "#microsoft.graph.accessReviewQueryScope",
            "query": "/v1.0/groups?$filter=(groupTypes/any(c:c+eq+'Unified'))&$count=true",
            "queryType": "MicrosoftGraph",
            "queryRoot": None,
        },
        "reviewers": [{"query": "./sponsors", "queryType": "MicrosoftGraph", "queryRoot": "decisions"}],
        "fallbackReviewers": [{"query": f"/v1.0/users/{SPONSOR_FALLBACK}", "queryType": "MicrosoftGraph"}],
        "settings": {
            "mailNotificationsEnabled": True,
            "reminderNotificationsEnabled": True,
            "justificationRequiredOnApproval": True,
            "defaultDecisionEnabled": True,
            "defaultDecision": "Deny",
            "instanceDurationInDays": 14,
            "autoApplyDecisionsEnabled": True,
            "recommendationsEnabled": True,
            "applyActions": [{"@odata.type": "#microsoft.graph.removeAccessApplyAction"}],
            "recurrence": {
                "pattern": {"type": "absoluteMonthly", "interval": 3},
                "range": {"type": "numbered", "startDate": "2025-01-06", "endDate": "9999-12-31"},
            },
        }
        | settings,
    }


def _posture(**changes: Any) -> GovernancePosture:
    posture = GovernancePosture(
        settings={"externalUserLifecycleAction": "blockSignIn", "durationUntilExternalUserDeletedAfterBlocked": "P45D"},
        catalogs=[
            {"id": CATALOG_ID, "displayName": "Extranet", "description": "Ours", "state": "published",
             "isExternallyVisible": True, "catalogType": "userManaged"},
            {"id": "general", "displayName": "General", "catalogType": "serviceDefault", "state": "published"},
        ],
        packages={CATALOG_ID: [{"id": PACKAGE_ID, "displayName": "Engineering", "description": "Made by hand"}]},
        policies={PACKAGE_ID: [{"id": "p-direct", "displayName": "Admin direct assignment"},
                               _request_policy({"type": "afterDuration", "duration": "P180D"})]},
        role_scopes={PACKAGE_ID: [{"role": {"originId": f"Member_{GROUP_ID}", "originSystem": "AadGroup"},
                                   "scope": {"originId": GROUP_ID, "originSystem": "AadGroup"}}]},
        resources={CATALOG_ID: [{"originId": GROUP_ID, "originSystem": "AadGroup", "displayName": "Collaborators"}]},
        organizations=[ORGANIZATION],
        tenant_organizations={FABRIKAM_TENANT: [ORGANIZATION]},
    )  # fmt: skip
    for name, value in changes.items():
        setattr(posture, name, value)
    return posture


def _export(posture: GovernancePosture) -> tuple[dict[str, Any], list[str], dict[str, Any]]:
    partners = _partners()
    section, notes = export_governance(posture, partners)
    return section, notes, partners


def _loads(section: dict[str, Any], partners: dict[str, Any]) -> None:
    """The section is valid desired state."""
    parse_desired_state(
        {
            "tenant": {"id": "3f2d6a1e-8c4b-4e7a-9b1d-2c5e7f9a0b13", "primaryDomain": "contoso.com"},
            "partners": partners,
            "governance": section,
        }
    )


def test_a_package_whose_request_policy_admits_the_partners_organisation_becomes_its_access_package():
    section, notes, partners = _export(_posture())
    _loads(section, partners)
    assert partners["fabrikam"]["accessPackage"] == {"catalog": "Extranet", "name": "Engineering"}
    assert section["catalog"] == {"displayName": "Extranet", "description": "Ours", "externallyVisible": True}
    assert section["partners"]["fabrikam"] == {
        "connectedOrganizationState": "configured",
        "requestPolicy": True,
        "expiration": {"days": 180},
        "approvalBySponsor": True,
        "fallbackApprovers": [SPONSOR_FALLBACK],
        "groupMemberships": [GROUP_ID],
    }
    assert section["externalUserLifecycle"] == {"action": "blockSignIn", "deleteAfterDays": 45}
    # The description the job would rewrite is said, not silently lost; the built-in General catalog is no news.
    assert any("description of access package 'Engineering'" in n for n in notes)
    assert not any("General" in n for n in notes)


def test_a_request_policy_that_never_expires_is_a_decision_for_a_human():
    policies = {PACKAGE_ID: [_request_policy({"type": "noExpiration"})]}
    section, notes, partners = _export(_posture(policies=policies))
    _loads(section, partners)
    assert section["partners"]["fabrikam"]["expiration"] == {"days": 90}
    assert any(n.startswith("DECIDE: fabrikam's 'Partner requests' expiry") for n in notes)
    assert any("has no 'Admin direct assignment' policy" in n for n in notes)


def test_an_end_date_expiry_is_exported_as_that_date():
    expiration = {"type": "afterDateTime", "endDateTime": "2027-06-30T00:00:00Z"}
    section, _, partners = _export(_posture(policies={PACKAGE_ID: [_request_policy(expiration)]}))
    _loads(section, partners)
    assert section["partners"]["fabrikam"]["expiration"] == {"endDate": "2027-06-30"}


def test_an_assignment_policy_of_another_name_is_named_as_left_alone():
    policies = {PACKAGE_ID: [{"id": "p-x", "displayName": "Auditors"}, _request_policy({"type": "noExpiration"})]}
    _, notes, _ = _export(_posture(policies=policies))
    assert any("assignment policy 'Auditors' (p-x) of 'Engineering'; it is left as it is" in n for n in notes)


def test_a_package_granting_more_than_group_membership_leaves_its_roles_ungoverned():
    owner = {"role": {"originId": f"Owner_{GROUP_ID}", "displayName": "Owner", "originSystem": "AadGroup"},
             "scope": {"originId": GROUP_ID}}  # fmt: skip
    role_scopes = {PACKAGE_ID: [*_posture().role_scopes[PACKAGE_ID], owner]}
    section, notes, _ = _export(_posture(role_scopes=role_scopes))
    assert "groupMemberships" not in section["partners"]["fabrikam"]
    assert any("grants Owner of" in n for n in notes)


def test_a_catalog_group_no_package_grants_keeps_group_memberships_out_of_the_export():
    resources = {CATALOG_ID: [*_posture().resources[CATALOG_ID], {"originId": "idle", "originSystem": "AadGroup"}]}
    section, notes, _ = _export(_posture(resources=resources))
    assert "groupMemberships" not in section["partners"]["fabrikam"]
    assert any(n.startswith("DECIDE: groupMemberships is not exported") for n in notes)


def test_a_package_nothing_ties_to_a_partner_is_listed_for_a_human_not_guessed_from_its_name():
    packages = {CATALOG_ID: [{"id": PACKAGE_ID, "displayName": "Fabrikam engineering", "description": "x"}]}
    section, notes, partners = _export(_posture(packages=packages, policies={PACKAGE_ID: []}))
    assert "accessPackage" not in partners["fabrikam"]
    assert any(n.startswith("DECIDE: access package 'Fabrikam engineering'") for n in notes)
    assert section["partners"]["fabrikam"] == {"connectedOrganizationState": "configured"}


def test_a_hand_made_review_of_every_guest_is_read_through_graphs_rewrites_into_guest_review():
    section, _, partners = _export(_posture(reviews=[_review("Quarterly guests", "made by hand")]))
    _loads(section, partners)
    assert section["guestReview"] == {
        "displayName": "Quarterly guests",
        "descriptionForReviewers": "Confirm each guest.",
        "recurrence": "absoluteMonthly",
        "interval": 3,
        "startDate": "2025-01-06",
        "instanceDurationDays": 14,
        "reviewers": [{"kind": "sponsors"}],
        "fallbackReviewers": [{"kind": "user", "id": SPONSOR_FALLBACK}],
        "autoApply": True,
        "defaultDecision": "Deny",
        "applyAction": "removeAccess",
        "recommendations": True,
        "justificationRequired": True,
    }


def test_a_review_the_format_cannot_hold_stays_a_comment():
    ending = _review("Guests once", "x")
    ending["settings"]["recurrence"]["range"] = {
        "type": "numbered",
        "numberOfOccurrences": 4,
        "startDate": "2025-01-06",
    }
    section, notes, _ = _export(_posture(reviews=[ending]))
    assert "guestReview" not in section
    assert any("not exported: access review 'Guests once' (r-Guests once): a recurrence that ends" in n for n in notes)


def _partner_review(interval: int) -> dict[str, Any]:
    review = _review("Partner review: Fabrikam, Inc.", "[governance-key: review/partner/fabrikam]")
    review["scope"]["query"] = f"/v1.0/groups/{GROUP_ID}/transitiveMembers/microsoft.graph.user/?$count=true&" + (
        "$filter=(userType eq 'Guest')"
    )
    review["instanceEnumerationScope"] = None
    review["reviewers"] = [{"query": f"/v1.0/groups/{GROUP_ID}/owners", "queryType": "MicrosoftGraph"}]
    review["settings"]["recurrence"]["pattern"]["interval"] = interval
    return review


def test_a_partner_review_names_the_partners_review_group_and_the_shared_partner_review():
    section, _, partners = _export(_posture(reviews=[_partner_review(6)]))
    _loads(section, partners)
    assert section["partners"]["fabrikam"]["reviewGroupId"] == GROUP_ID
    assert section["partnerReview"]["displayName"] == "Partner review"
    assert section["partnerReview"]["reviewers"] == [{"kind": "groupOwners"}]
    assert section["partnerReview"]["interval"] == 6


def test_partner_reviews_that_differ_keep_the_first_and_leave_the_other_for_a_human():
    second = copy.deepcopy(_partner_review(3))
    second["id"], second["displayName"] = "r-2", "Partner review: Northwind Traders"
    second["descriptionForAdmins"] = "[governance-key: review/partner/northwind]"
    partners = {
        **_partners(),
        "northwind": {"displayName": "Northwind Traders", "tenantId": "5c8e1f2a-6d3b-4a9e-b7c0-1d2e3f4a5b6c",
                      "domains": ["northwindtraders.com"]},
    }  # fmt: skip
    section, notes = export_governance(_posture(reviews=[_partner_review(6), second]), partners)
    assert section["partnerReview"]["interval"] == 6
    assert "reviewGroupId" not in section["partners"].get("northwind", {})
    assert any("DECIDE: not exported: access review 'Partner review: Northwind Traders'" in n for n in notes)


def test_a_deletion_delay_the_format_cannot_hold_is_said_and_a_default_exported():
    settings = {
        "externalUserLifecycleAction": "blockSignInAndDelete",
        "durationUntilExternalUserDeletedAfterBlocked": "PT12H",
    }
    section, notes, _ = _export(_posture(settings=settings))
    assert section["externalUserLifecycle"] == {"action": "blockSignInAndDelete", "deleteAfterDays": 30}
    assert any("durationUntilExternalUserDeletedAfterBlocked 'PT12H'" in n for n in notes)
