"""Cross-tenant access, authorizationPolicy, the beta B2B management policy and tenant lookups."""

from __future__ import annotations

from tenantsim.seed import FABRIKAM_TENANT_ID, NORTHWIND_TENANT_ID

XTAP = "/v1.0/policies/crossTenantAccessPolicy"
XTAP_WRITE = ("Policy.ReadWrite.CrossTenantAccess",)
B2B = "/beta/policies/b2bManagementPolicies"
B2B_WRITE = ("Policy.ReadWrite.B2BManagementPolicy",)
READ = ("Policy.Read.All",)


def test_a_fresh_tenant_has_the_service_default(graph):
    """Fresh posture: isServiceDefault, B2B collaboration allowed, direct connect blocked, no trust."""
    default = graph.get(f"{XTAP}/default", roles=READ).json()
    assert default["isServiceDefault"] is True
    assert default["b2bCollaborationInbound"]["usersAndGroups"]["accessType"] == "allowed"
    assert default["b2bDirectConnectInbound"]["usersAndGroups"]["accessType"] == "blocked"
    assert not any(default["inboundTrust"].values())
    assert graph.get(f"{XTAP}/partners", roles=READ).json()["value"] == []


def test_patching_the_default_merges_and_clears_is_service_default(graph):
    """PATCH default is 204; named sub-settings change, the rest stays; isServiceDefault becomes false."""
    blocked = {"accessType": "blocked", "targets": [{"target": "AllUsers", "targetType": "user"}]}
    response = graph.request(
        "PATCH", f"{XTAP}/default", roles=XTAP_WRITE, json={"b2bCollaborationInbound": {"usersAndGroups": blocked}}
    )
    assert response.status_code == 204
    default = graph.get(f"{XTAP}/default", roles=READ).json()
    assert default["isServiceDefault"] is False
    assert default["b2bCollaborationInbound"]["usersAndGroups"] == blocked
    assert default["b2bCollaborationInbound"]["applications"]["accessType"] == "allowed"


def test_partner_lifecycle_create_read_update_delete(graph):
    """POST 201 with unspecified blocks null; duplicate 409; GET; PATCH 204; DELETE 204 then 404."""
    created = graph.request(
        "POST",
        f"{XTAP}/partners",
        roles=XTAP_WRITE,
        json={
            "tenantId": FABRIKAM_TENANT_ID,
            "inboundTrust": {
                "isMfaAccepted": True,
                "isCompliantDeviceAccepted": False,
                "isHybridAzureADJoinedDeviceAccepted": False,
            },
        },
    )
    assert created.status_code == 201
    body = created.json()
    assert body["tenantId"] == FABRIKAM_TENANT_ID and body["b2bCollaborationInbound"] is None
    assert body["inboundTrust"]["isMfaAccepted"] is True
    duplicate = graph.request("POST", f"{XTAP}/partners", roles=XTAP_WRITE, json={"tenantId": FABRIKAM_TENANT_ID})
    assert duplicate.status_code == 409
    path = f"{XTAP}/partners/{FABRIKAM_TENANT_ID}"
    assert graph.request("PATCH", path, roles=XTAP_WRITE, json={"isServiceProvider": True}).status_code == 204
    assert graph.get(path, roles=READ).json()["isServiceProvider"] is True
    assert graph.request("PATCH", path, roles=XTAP_WRITE, json={"tenantId": NORTHWIND_TENANT_ID}).status_code == 400
    assert graph.request("DELETE", path, roles=XTAP_WRITE).status_code == 204
    assert graph.get(path, roles=READ).status_code == 404


def test_mis_cased_or_unknown_properties_are_refused(graph):
    """Graph rejects b2BDirectConnectInbound (wrong case) on partner create."""
    response = graph.request(
        "POST",
        f"{XTAP}/partners",
        roles=XTAP_WRITE,
        json={"tenantId": FABRIKAM_TENANT_ID, "b2BDirectConnectInbound": {}},
    )
    assert response.status_code == 400


def test_locked_down_posture_has_the_partner_policies(graph, admin):
    """The locked-down seed has the default blocked inbound and three partner policies."""
    admin.seed(builtin="locked-down", guests=5)
    default = graph.get(f"{XTAP}/default", roles=READ).json()
    assert default["b2bCollaborationInbound"]["usersAndGroups"]["accessType"] == "blocked"
    partners = graph.get(f"{XTAP}/partners", roles=READ).json()["value"]
    assert len(partners) == 3


def test_authorization_policy_get_and_patch(graph):
    """The singleton starts wide open (everyone, Guest User role) and PATCH (204) changes it."""
    policy = graph.get("/v1.0/policies/authorizationPolicy", roles=READ).json()
    assert policy["allowInvitesFrom"] == "everyone"
    assert policy["guestUserRoleId"] == "10dae51f-b6af-4016-8d66-8c2a99b929b3"
    patch = {"allowInvitesFrom": "adminsAndGuestInviters", "guestUserRoleId": "2af84b1e-32c8-42b7-82bc-daa82404023b"}
    assert (
        graph.request(
            "PATCH", "/v1.0/policies/authorizationPolicy", roles=("Policy.ReadWrite.Authorization",), json=patch
        ).status_code
        == 204
    )
    assert (
        graph.get("/v1.0/policies/authorizationPolicy", roles=READ).json()["allowInvitesFrom"]
        == patch["allowInvitesFrom"]
    )
    bad = graph.request(
        "PATCH",
        "/v1.0/policies/authorizationPolicy",
        roles=("Policy.ReadWrite.Authorization",),
        json={"allowInvitesFrom": "anybody"},
    )
    assert bad.status_code == 400


def test_b2b_management_policy_crud_and_rules(graph):
    """beta only; one organization default; allow XOR block; PATCH answers the policy; DELETE 204."""
    definition = '{"B2BManagementPolicy":{"InvitationsAllowedAndBlockedDomainsPolicy":{"BlockedDomains":["x.com"]}}}'
    assert graph.get("/v1.0/policies/b2bManagementPolicies", roles=B2B_WRITE).status_code == 400
    created = graph.request(
        "POST",
        B2B,
        roles=B2B_WRITE,
        json={"displayName": "B2B", "description": "d", "definition": [definition], "isOrganizationDefault": True},
    )
    assert created.status_code == 201
    policy_id = created.json()["id"]
    second = graph.request(
        "POST",
        B2B,
        roles=B2B_WRITE,
        json={"displayName": "B2B 2", "description": "d", "definition": [definition], "isOrganizationDefault": True},
    )
    assert second.status_code == 400
    both = (
        '{"B2BManagementPolicy":{"InvitationsAllowedAndBlockedDomainsPolicy":{"AllowedDomains":["a.com"],'
        '"BlockedDomains":["b.com"]}}}'
    )
    assert graph.request("PATCH", f"{B2B}/{policy_id}", roles=B2B_WRITE, json={"definition": [both]}).status_code == 400
    updated = graph.request("PATCH", f"{B2B}/{policy_id}", roles=B2B_WRITE, json={"displayName": "Renamed"})
    assert updated.status_code == 200 and updated.json()["displayName"] == "Renamed"
    listed = graph.get(B2B, roles=("Policy.Read.B2BManagementPolicy",)).json()["value"]
    assert [p["id"] for p in listed] == [policy_id]
    assert graph.request("DELETE", f"{B2B}/{policy_id}", roles=B2B_WRITE).status_code == 204
    assert graph.get(f"{B2B}/{policy_id}", roles=B2B_WRITE).status_code == 404


def test_creating_a_b2b_management_policy_needs_a_description(graph):
    """The create page marks definition, description and displayName required."""
    definition = '{"B2BManagementPolicy":{"InvitationsAllowedAndBlockedDomainsPolicy":{"BlockedDomains":["x.com"]}}}'
    body = {"displayName": "B2B", "definition": [definition], "isOrganizationDefault": True}
    refused = graph.request("POST", B2B, roles=B2B_WRITE, json=body)
    assert refused.status_code == 400
    assert graph.request("POST", B2B, roles=B2B_WRITE, json={**body, "description": "Domain list"}).status_code == 201


def test_tenant_information_by_domain_and_by_id(graph, admin):
    """Partner domains resolve to their tenant; consumer or unknown domains are 404."""
    roles = ("CrossTenantInformation.ReadBasic.All",)
    by_domain = graph.get(
        "/v1.0/tenantRelationships/findTenantInformationByDomainName(domainName='fabrikam.co.uk')", roles=roles
    ).json()
    assert by_domain["tenantId"] == FABRIKAM_TENANT_ID
    by_id = graph.get(
        f"/v1.0/tenantRelationships/findTenantInformationByTenantId(tenantId='{NORTHWIND_TENANT_ID}')", roles=roles
    ).json()
    assert by_id["displayName"] == "Northwind Traders"
    for domain in ("gmail.com", "adatum.com", "nowhere.example"):
        url = f"/v1.0/tenantRelationships/findTenantInformationByDomainName(domainName='{domain}')"
        assert graph.get(url, roles=roles).status_code == 404


def test_an_identity_provider_change_is_visible_to_tenant_lookup(graph, admin):
    """Moving adatum.com to an Entra tenant (inspection API) makes it resolve; moving it back, 404 again."""
    roles = ("CrossTenantInformation.ReadBasic.All",)
    url = "/v1.0/tenantRelationships/findTenantInformationByDomainName(domainName='adatum.com')"
    tenant_id = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
    admin.set_identity_provider("adatum.com", "AzureAD", tenant_id, tenantDisplayName="Adatum Corporation")
    assert graph.get(url, roles=roles).json()["tenantId"] == tenant_id
    admin.set_identity_provider("adatum.com", "Google")
    assert graph.get(url, roles=roles).status_code == 404
