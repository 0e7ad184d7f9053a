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
    """A partner's primary domain resolves to its tenant; consumer or unknown domains are 404."""
    roles = ("CrossTenantInformation.ReadBasic.All",)
    by_domain = graph.get(
        "/v1.0/tenantRelationships/findTenantInformationByDomainName(domainName='fabrikam.com')", roles=roles
    ).json()
    assert by_domain["tenantId"] == FABRIKAM_TENANT_ID
    by_id = graph.get(
        f"/v1.0/tenantRelationships/findTenantInformationByTenantId(tenantId='{NORTHWIND_TENANT_ID}')", roles=roles
    ).json()
    assert by_id["displayName"] == "Northwind Traders"
    for domain in ("gmail.com", "adatum.com", "nowhere.example"):
        url = f"/v1.0/tenantRelationships/findTenantInformationByDomainName(domainName='{domain}')"
        assert graph.get(url, roles=roles).status_code == 404


def test_a_second_verified_domain_is_found_only_when_the_lookup_answers_for_every_verified_domain(graph, admin):
    """fabrikam.co.uk is verified by Fabrikam but is not its primary domain: 404 under the documented reading
    (the parameter is a tenant's primary domain); tenantLookupDomains=verified resolves it to Fabrikam."""
    roles = ("CrossTenantInformation.ReadBasic.All",)
    url = "/v1.0/tenantRelationships/findTenantInformationByDomainName(domainName='fabrikam.co.uk')"
    missing = graph.get(url, roles=roles)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "Request_ResourceNotFound"
    admin.configure(tenantLookupDomains="verified")
    assert graph.get(url, roles=roles).json()["tenantId"] == FABRIKAM_TENANT_ID


def test_an_identity_provider_change_is_visible_to_tenant_lookup(graph, admin):
    """Moving adatum.com to an Entra tenant (inspection API) makes it resolve; moving it back, 404 again."""
    roles = ("CrossTenantInformation.ReadBasic.All",)
    url = "/v1.0/tenantRelationships/findTenantInformationByDomainName(domainName='adatum.com')"
    tenant_id = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
    admin.set_identity_provider("adatum.com", "AzureAD", tenant_id, tenantDisplayName="Adatum Corporation")
    assert graph.get(url, roles=roles).json()["tenantId"] == tenant_id
    admin.set_identity_provider("adatum.com", "Google")
    assert graph.get(url, roles=roles).status_code == 404


def _everyone(access: str, target: str = "AllUsers", target_type: str = "user") -> dict:
    return {"accessType": access, "targets": [{"target": target, "targetType": target_type}]}


def test_a_fresh_default_serves_the_newer_v1_properties(graph):
    """m365 collaboration, app service connect, the documented redemption order, consent flags false."""
    default = graph.get(f"{XTAP}/default", roles=READ).json()
    assert default["m365CollaborationInbound"] == {"users": _everyone("blocked")}
    assert default["m365CollaborationOutbound"] == {"usersAndGroups": _everyone("blocked")}
    assert default["appServiceConnectInbound"] == {
        "applications": _everyone("blocked", "AllApplications", "application")
    }
    assert default["invitationRedemptionIdentityProviderConfiguration"] == {
        "primaryIdentityProviderPrecedenceOrder": [
            "azureActiveDirectory",
            "externalFederation",
            "socialIdentityProviders",
        ],
        "fallbackIdentityProvider": "defaultConfiguredIdp",
    }
    assert default["automaticUserConsentSettings"] == {"inboundAllowed": False, "outboundAllowed": False}
    assert default["tenantRestrictions"] == {
        "usersAndGroups": _everyone("blocked"),
        "applications": _everyone("blocked", "AllApplications", "application"),
        "devices": None,
    }


def test_a_new_partner_inherits_every_block_and_its_consent_flags_are_null(graph):
    """POST partners: unset blocks null, automaticUserConsentSettings flags null, not in a multitenant org."""
    created = graph.request("POST", f"{XTAP}/partners", roles=XTAP_WRITE, json={"tenantId": FABRIKAM_TENANT_ID})
    assert created.status_code == 201
    body = created.json()
    assert body["automaticUserConsentSettings"] == {"inboundAllowed": None, "outboundAllowed": None}
    for name in ("m365CollaborationInbound", "m365CollaborationOutbound", "appServiceConnectInbound"):
        assert body[name] is None
    assert body["isInMultiTenantOrganization"] is False


def test_the_newer_blocks_are_patchable_on_default_and_partner(graph):
    """PATCH m365CollaborationInbound (update page example 4) and appServiceConnectInbound: 204, stored."""
    inbound = {"m365CollaborationInbound": {"users": _everyone("allowed")}}
    assert graph.request("PATCH", f"{XTAP}/default", roles=XTAP_WRITE, json=inbound).status_code == 204
    assert (
        graph.get(f"{XTAP}/default", roles=READ).json()["m365CollaborationInbound"]
        == inbound["m365CollaborationInbound"]
    )
    graph.request("POST", f"{XTAP}/partners", roles=XTAP_WRITE, json={"tenantId": FABRIKAM_TENANT_ID})
    path = f"{XTAP}/partners/{FABRIKAM_TENANT_ID}"
    apps = {"appServiceConnectInbound": {"applications": _everyone("allowed", "AllApplications", "application")}}
    assert graph.request("PATCH", path, roles=XTAP_WRITE, json=apps).status_code == 204
    assert graph.get(path, roles=READ).json()["appServiceConnectInbound"] == apps["appServiceConnectInbound"]
    wrong_part = {"m365CollaborationInbound": {"usersAndGroups": _everyone("allowed")}}
    assert graph.request("PATCH", path, roles=XTAP_WRITE, json=wrong_part).status_code == 400


def test_the_redemption_order_takes_the_documented_members_only(graph):
    """Update examples 2 and 3 are 204; a fallback member as primary, a repeat or no fallback is 400."""
    name = "invitationRedemptionIdentityProviderConfiguration"
    federation_first = {
        "primaryIdentityProviderPrecedenceOrder": [
            "externalFederation",
            "azureActiveDirectory",
            "socialIdentityProviders",
        ],
        "fallbackIdentityProvider": "emailOneTimePasscode",
    }
    assert graph.request("PATCH", f"{XTAP}/default", roles=XTAP_WRITE, json={name: federation_first}).status_code == 204
    assert graph.get(f"{XTAP}/default", roles=READ).json()[name] == federation_first
    refused = [
        {
            "primaryIdentityProviderPrecedenceOrder": ["emailOneTimePasscode"],
            "fallbackIdentityProvider": "microsoftAccount",
        },
        {
            "primaryIdentityProviderPrecedenceOrder": ["azureActiveDirectory", "azureActiveDirectory"],
            "fallbackIdentityProvider": "defaultConfiguredIdp",
        },
        {"primaryIdentityProviderPrecedenceOrder": ["azureActiveDirectory"]},
        {"primaryIdentityProviderPrecedenceOrder": [], "fallbackIdentityProvider": "azureActiveDirectory"},
    ]
    for value in refused:
        assert graph.request("PATCH", f"{XTAP}/default", roles=XTAP_WRITE, json={name: value}).status_code == 400
    assert graph.get(f"{XTAP}/default", roles=READ).json()[name] == federation_first


def test_read_only_properties_are_refused(graph):
    """automaticUserConsentSettings on the default and isInMultiTenantOrganization on a partner: 400."""
    consent = {"automaticUserConsentSettings": {"inboundAllowed": True}}
    assert graph.request("PATCH", f"{XTAP}/default", roles=XTAP_WRITE, json=consent).status_code == 400
    graph.request("POST", f"{XTAP}/partners", roles=XTAP_WRITE, json={"tenantId": FABRIKAM_TENANT_ID})
    path = f"{XTAP}/partners/{FABRIKAM_TENANT_ID}"
    assert graph.request("PATCH", path, roles=XTAP_WRITE, json={"isInMultiTenantOrganization": True}).status_code == 400
    assert graph.request("PATCH", path, roles=XTAP_WRITE, json=consent).status_code == 204
    assert graph.get(path, roles=READ).json()["automaticUserConsentSettings"] == {
        "inboundAllowed": True,
        "outboundAllowed": None,
    }


def test_reset_to_system_default_restores_the_service_default(graph):
    """POST default/resetToSystemDefault: 204, isServiceDefault true again; needs the write permission."""
    blocked = {"b2bCollaborationInbound": {"usersAndGroups": _everyone("blocked")}}
    graph.request("PATCH", f"{XTAP}/default", roles=XTAP_WRITE, json=blocked)
    reset = f"{XTAP}/default/resetToSystemDefault"
    assert graph.request("POST", reset, roles=READ).status_code == 403
    assert graph.request("POST", reset, roles=XTAP_WRITE).status_code == 204
    default = graph.get(f"{XTAP}/default", roles=READ).json()
    assert default["isServiceDefault"] is True
    assert default["b2bCollaborationInbound"]["usersAndGroups"]["accessType"] == "allowed"


def test_cross_tenant_permissions_read_with_either_write_with_cross_tenant_access_only(graph):
    """GET: Policy.Read.All or Policy.ReadWrite.CrossTenantAccess; PATCH/POST/DELETE: the latter only."""
    assert graph.get(f"{XTAP}/default", roles=XTAP_WRITE).status_code == 200
    assert graph.get(f"{XTAP}/partners", roles=READ).status_code == 200
    inbound = {"m365CollaborationInbound": {"users": _everyone("allowed")}}
    assert graph.request("PATCH", f"{XTAP}/default", roles=READ, json=inbound).status_code == 403
    created = graph.request("POST", f"{XTAP}/partners", roles=READ, json={"tenantId": FABRIKAM_TENANT_ID})
    assert created.status_code == 403


def test_an_unknown_partner_is_404_on_get_patch_and_delete(graph):
    """The key is the tenant id; a tenant without a partner configuration is 404 Request_ResourceNotFound."""
    path = f"{XTAP}/partners/{NORTHWIND_TENANT_ID}"
    for method, kwargs in (("GET", {}), ("PATCH", {"json": {"isServiceProvider": True}}), ("DELETE", {})):
        roles = READ if method == "GET" else XTAP_WRITE
        response = graph.request(method, path, roles=roles, **kwargs)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "Request_ResourceNotFound"


def test_the_unset_redemption_order_knob_answers_null(graph, admin):
    """unsetRedemptionOrderAsNull: a tenant that never set the order answers null; a set order is served."""
    name = "invitationRedemptionIdentityProviderConfiguration"
    admin.configure(unsetRedemptionOrderAsNull=True)
    assert graph.get(f"{XTAP}/default", roles=READ).json()[name] is None
    otp = {
        "primaryIdentityProviderPrecedenceOrder": ["azureActiveDirectory", "externalFederation"],
        "fallbackIdentityProvider": "emailOneTimePasscode",
    }
    graph.request("PATCH", f"{XTAP}/default", roles=XTAP_WRITE, json={name: otp})
    assert graph.get(f"{XTAP}/default", roles=READ).json()[name] == otp


def test_a_partner_setting_patched_to_null_inherits_the_default_again(graph):
    """A null partner property inherits the default (resource page): a PATCH naming a block as null stores null,
    and only that block; the partner's other settings stay."""
    path = f"{XTAP}/partners/{FABRIKAM_TENANT_ID}"
    scoped = {"usersAndGroups": _everyone("blocked"), "applications": None}
    graph.request(
        "POST",
        f"{XTAP}/partners",
        roles=XTAP_WRITE,
        json={"tenantId": FABRIKAM_TENANT_ID, "b2bCollaborationInbound": scoped, "isServiceProvider": True},
    )
    reset = graph.request("PATCH", path, roles=XTAP_WRITE, json={"b2bCollaborationInbound": None})
    assert reset.status_code == 204
    partner = graph.get(path, roles=READ).json()
    assert partner["b2bCollaborationInbound"] is None
    assert partner["isServiceProvider"] is True


def test_the_partner_null_setting_knob_refuses_a_null_block(graph, admin):
    """partnerNullSetting=refuse: the other reading of the silent update page; a PATCH with a null block is 400
    and the stored block is unchanged."""
    admin.configure(partnerNullSetting="refuse")
    path = f"{XTAP}/partners/{FABRIKAM_TENANT_ID}"
    scoped = {"usersAndGroups": _everyone("blocked"), "applications": None}
    graph.request(
        "POST", f"{XTAP}/partners", roles=XTAP_WRITE, json={"tenantId": FABRIKAM_TENANT_ID, "inboundTrust": None}
    )
    graph.request("PATCH", path, roles=XTAP_WRITE, json={"b2bCollaborationInbound": scoped})
    refused = graph.request("PATCH", path, roles=XTAP_WRITE, json={"b2bCollaborationInbound": None})
    assert refused.status_code == 400
    assert "b2bCollaborationInbound" in refused.json()["error"]["message"]
    assert graph.get(path, roles=READ).json()["b2bCollaborationInbound"]["usersAndGroups"] == scoped["usersAndGroups"]


def test_identity_synchronization_is_put_read_and_deleted_and_holds_the_partner(graph):
    """identitySynchronization: 404 before any PUT; PUT 204 (displayName, userSyncInbound); GET 200; the partner
    cannot be deleted while it exists (delete page); DELETE 204; then the partner can go."""
    graph.request("POST", f"{XTAP}/partners", roles=XTAP_WRITE, json={"tenantId": FABRIKAM_TENANT_ID})
    partner = f"{XTAP}/partners/{FABRIKAM_TENANT_ID}"
    sync = f"{partner}/identitySynchronization"
    assert graph.get(sync, roles=READ).status_code == 404
    body = {"displayName": "Fabrikam", "userSyncInbound": {"isSyncAllowed": True}}
    assert graph.request("PUT", sync, roles=READ, json=body).status_code == 403
    assert graph.request("PUT", sync, roles=XTAP_WRITE, json=body).status_code == 204
    read = graph.get(sync, roles=READ).json()
    assert read["tenantId"] == FABRIKAM_TENANT_ID and read["userSyncInbound"] == {"isSyncAllowed": True}
    assert "identitySynchronization" not in graph.get(partner, roles=READ).json()  # a relationship, not a property
    assert graph.request("DELETE", partner, roles=XTAP_WRITE).status_code == 400
    assert graph.request("DELETE", sync, roles=XTAP_WRITE).status_code == 204
    assert graph.request("DELETE", partner, roles=XTAP_WRITE).status_code == 204


def test_the_v1_default_has_no_microsoft_365_capabilities(graph):
    """m365Capabilities is a beta relationship of the default: the v1.0 metadata has no such property or
    relationship, so the v1.0 default never carries it and the path is not served."""
    assert "m365Capabilities" not in graph.get(f"{XTAP}/default", roles=READ).json()
    assert graph.get(f"{XTAP}/default/m365Capabilities", roles=READ).status_code in {400, 404}
