"""Cross-tenant access policy (default, partners), authorizationPolicy and the beta B2B management policy."""

from __future__ import annotations

import copy
import json
import uuid
from typing import Any

from tenantsim.api.invitations import parse_definition
from tenantsim.errors import GraphError, bad_request, found
from tenantsim.runtime import Call, GraphResponse
from tenantsim.seed import default_redemption_order, new_partner_policy, service_default_policy

B2B_SETTINGS = (
    "b2bCollaborationInbound",
    "b2bCollaborationOutbound",
    "b2bDirectConnectInbound",
    "b2bDirectConnectOutbound",
)
# Blocks of target configurations, each with the sub-settings its complex type has (v1.0 metadata).
TARGET_BLOCKS: dict[str, frozenset[str]] = {
    **{name: frozenset({"usersAndGroups", "applications"}) for name in B2B_SETTINGS},
    "tenantRestrictions": frozenset({"usersAndGroups", "applications", "devices"}),
    "m365CollaborationInbound": frozenset({"users"}),
    "m365CollaborationOutbound": frozenset({"usersAndGroups"}),
    "appServiceConnectInbound": frozenset({"applications"}),
}
NEWER_BLOCKS = ("m365CollaborationInbound", "m365CollaborationOutbound", "appServiceConnectInbound")
REDEMPTION = "invitationRedemptionIdentityProviderConfiguration"
# b2bIdentityProvidersType members the resource page allows in each place.
PRIMARY_PROVIDERS = frozenset({"azureActiveDirectory", "externalFederation", "socialIdentityProviders"})
FALLBACK_PROVIDERS = frozenset({"defaultConfiguredIdp", "emailOneTimePasscode", "microsoftAccount"})
DEFAULT_WRITABLE = frozenset((*B2B_SETTINGS, *NEWER_BLOCKS, "inboundTrust", "tenantRestrictions", REDEMPTION))
# automaticUserConsentSettings is read-only on the default (its flags are always false).
DEFAULT_READ_ONLY = frozenset({"automaticUserConsentSettings", "isServiceDefault"})
PARTNER_WRITABLE = frozenset(
    (
        *B2B_SETTINGS,
        *NEWER_BLOCKS,
        "inboundTrust",
        "automaticUserConsentSettings",
        "isServiceProvider",
        "tenantRestrictions",
    )
)
PARTNER_READ_ONLY = frozenset({"isInMultiTenantOrganization"})
# Partner settings whose null means "inherit the default" (resources/crosstenantaccesspolicyconfigurationpartner.md).
NULLABLE_PARTNER_SETTINGS = frozenset((*TARGET_BLOCKS, "inboundTrust", "automaticUserConsentSettings"))
AUTHORIZATION_WRITABLE = frozenset(
    [
        "allowEmailVerifiedUsersToJoinOrganization",
        "allowInvitesFrom",
        "allowUserConsentForRiskyApps",
        "allowedToSignUpEmailBasedSubscriptions",
        "allowedToUseSSPR",
        "blockMsolPowerShell",
        "defaultUserRolePermissions",
        "description",
        "displayName",
        "guestUserRoleId",
    ]
)
ALLOW_INVITES_FROM = frozenset({"none", "adminsAndGuestInviters", "adminsGuestInvitersAndAllMembers", "everyone"})
GUEST_ROLE_IDS = frozenset(
    {
        "a0b1b346-4d3e-4e8b-98f8-753987be4970",
        "10dae51f-b6af-4016-8d66-8c2a99b929b3",
        "2af84b1e-32c8-42b7-82bc-daa82404023b",
    }
)
ACCESS_TYPES = frozenset({"allowed", "blocked"})
TARGET_TYPES = frozenset({"user", "group", "application"})


# --- validation of the shared sub-types -------------------------------------------------------------


def _check_fields(
    body: Any, writable: frozenset[str], resource: str, read_only: frozenset[str] = frozenset()
) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.")
    for name in body:
        if name == "@odata.type":
            continue
        if name in read_only:
            raise bad_request(f"Property '{name}' is read-only and cannot be set on resource '{resource}'.")
        if name not in writable:
            raise bad_request(f"Invalid property '{name}' for resource '{resource}'.")
    return {k: v for k, v in body.items() if k != "@odata.type"}


def _check_target_block(name: str, value: Any) -> None:
    if value is None:
        return
    parts = TARGET_BLOCKS[name]
    if not isinstance(value, dict) or set(value) - parts - {"@odata.type"}:
        raise bad_request(f"Invalid value for '{name}': expected {' and/or '.join(sorted(parts))}.")
    for part, config in value.items():
        if config is None or part in {"@odata.type", "devices"}:
            continue
        if not isinstance(config, dict) or config.get("accessType") not in ACCESS_TYPES:
            raise bad_request(f"Invalid accessType in '{name}.{part}'.")
        for entry in config.get("targets") or []:
            if not isinstance(entry, dict) or entry.get("targetType") not in TARGET_TYPES or not entry.get("target"):
                raise bad_request(f"Invalid target in '{name}.{part}'.")


def _check_redemption(value: Any) -> dict[str, Any]:
    """Primary providers from the three primary members, no repeats; the fallback is required."""
    if not isinstance(value, dict) or set(value) - {
        "primaryIdentityProviderPrecedenceOrder",
        "fallbackIdentityProvider",
        "@odata.type",
    }:
        raise bad_request(f"Invalid value for '{REDEMPTION}'.")
    primary = value.get("primaryIdentityProviderPrecedenceOrder") or []
    if (
        not isinstance(primary, list)
        or any(p not in PRIMARY_PROVIDERS for p in primary)
        or len(set(primary)) != len(primary)
    ):
        raise bad_request(
            f"Invalid value for '{REDEMPTION}.primaryIdentityProviderPrecedenceOrder': "
            f"expected distinct members of {', '.join(sorted(PRIMARY_PROVIDERS))}."
        )
    if value.get("fallbackIdentityProvider") not in FALLBACK_PROVIDERS:
        raise bad_request(
            f"'{REDEMPTION}.fallbackIdentityProvider' is required: one of {', '.join(sorted(FALLBACK_PROVIDERS))}."
        )
    return {
        "primaryIdentityProviderPrecedenceOrder": list(primary),
        "fallbackIdentityProvider": value["fallbackIdentityProvider"],
    }


def _merge_block(current: dict[str, Any] | None, patch: dict[str, Any] | None) -> dict[str, Any] | None:
    """A PATCH of one block replaces the sub-settings it names and keeps the others."""
    if patch is None:
        return None
    merged = copy.deepcopy(current) if current else {}
    merged.update(copy.deepcopy(patch))
    return merged


def _apply(target: dict[str, Any], body: dict[str, Any]) -> None:
    for name, value in body.items():
        if name in TARGET_BLOCKS:
            _check_target_block(name, value)
            target[name] = _merge_block(target.get(name), value)
        elif name in {"inboundTrust", "automaticUserConsentSettings"}:
            if value is not None and not isinstance(value, dict):
                raise bad_request(f"Invalid value for '{name}'.")
            target[name] = {**(target.get(name) or {}), **value} if value is not None else None
        elif name == REDEMPTION:
            target[name] = _check_redemption(value)
        else:
            target[name] = copy.deepcopy(value)


# --- cross-tenant access policy --------------------------------------------------------------------


def get_cross_tenant_access_policy(call: Call) -> GraphResponse:
    call.require("crossTenantAccess.read")
    return GraphResponse(
        200,
        {
            "@odata.context": call.context_url("policies/crossTenantAccessPolicy/$entity"),
            "id": "crossTenantAccessPolicy",
            "displayName": "CrossTenantAccessPolicy",
            "allowedCloudEndpoints": [],
        },
    )


def get_default(call: Call) -> GraphResponse:
    call.require("crossTenantAccess.read")
    body = {"@odata.context": call.context_url("policies/crossTenantAccessPolicy/default/$entity")}
    body.update(copy.deepcopy(call.sim.directory.xtap_default))
    if call.sim.config.unset_redemption_order_as_null and body.get(REDEMPTION) == default_redemption_order():
        body[REDEMPTION] = None  # knob: a tenant that never set the order answers null rather than the default
    return GraphResponse(200, body)


def update_default(call: Call) -> GraphResponse:
    call.require("crossTenantAccess.write")
    body = _check_fields(
        call.request.body, DEFAULT_WRITABLE, "crossTenantAccessPolicyConfigurationDefault", DEFAULT_READ_ONLY
    )
    default = copy.deepcopy(call.sim.directory.xtap_default)
    _apply(default, body)
    for name in B2B_SETTINGS:
        if default.get(name) is None:
            raise bad_request(f"'{name}' cannot be null on the default configuration.")
    default["isServiceDefault"] = False
    call.sim.directory.xtap_default = default
    return GraphResponse(204)


def reset_default(call: Call) -> GraphResponse:
    """resetToSystemDefault: no body, 204, and the default is the service default again."""
    call.require("crossTenantAccess.write")
    if call.request.body not in (None, {}, b"", ""):
        raise bad_request("Do not supply a request body for resetToSystemDefault.")
    call.sim.directory.xtap_default = service_default_policy()
    return GraphResponse(204)


def _partner_body(call: Call, partner: dict[str, Any], entity: bool) -> dict[str, Any]:
    fragment = "policies/crossTenantAccessPolicy/partners/$entity" if entity else None
    body = {"@odata.context": call.context_url(fragment)} if fragment else {}
    body.update(copy.deepcopy(partner))
    return body


def list_partners(call: Call) -> GraphResponse:
    call.require("crossTenantAccess.read")
    partners = [_partner_body(call, p, entity=False) for p in call.sim.directory.xtap_partners.values()]
    return GraphResponse(
        200,
        {
            "@odata.context": call.context_url("policies/crossTenantAccessPolicy/partners"),
            "value": partners,
        },
    )


def create_partner(call: Call) -> GraphResponse:
    call.require("crossTenantAccess.write")
    body = _check_fields(
        call.request.body,
        PARTNER_WRITABLE | {"tenantId"},
        "crossTenantAccessPolicyConfigurationPartner",
        PARTNER_READ_ONLY,
    )
    tenant_id = body.pop("tenantId", None)
    if not isinstance(tenant_id, str) or not _is_guid(tenant_id):
        raise bad_request("'tenantId' is required and must be a tenant id (GUID).")
    partners = call.sim.directory.xtap_partners
    if tenant_id in partners:
        raise GraphError(409, "Conflict", f"A partner policy for tenant '{tenant_id}' already exists.")
    partner = new_partner_policy(tenant_id)
    _apply(partner, body)
    partners[tenant_id] = partner
    return GraphResponse(201, _partner_body(call, partner, entity=True))


def _partner(call: Call, tenant_id: str) -> dict[str, Any]:
    return found(call.sim.directory.xtap_partners, tenant_id)


def get_partner(call: Call, tenant_id: str) -> GraphResponse:
    call.require("crossTenantAccess.read")
    return GraphResponse(200, _partner_body(call, _partner(call, tenant_id), entity=True))


def update_partner(call: Call, tenant_id: str) -> GraphResponse:
    call.require("crossTenantAccess.write")
    body = call.request.body
    if isinstance(body, dict) and "tenantId" in body:
        raise bad_request("Property 'tenantId' is read-only and cannot be set.")
    body = _check_fields(body, PARTNER_WRITABLE, "crossTenantAccessPolicyConfigurationPartner", PARTNER_READ_ONLY)
    nulled = sorted(name for name in NULLABLE_PARTNER_SETTINGS if name in body and body[name] is None)
    if nulled and call.sim.config.partner_null_setting == "refuse":
        # knob partnerNullSetting: the pages do not say a PATCH may set a setting back to null (inherit)
        raise bad_request(f"Invalid value for '{nulled[0]}': null is not accepted.")
    updated = copy.deepcopy(_partner(call, tenant_id))
    _apply(updated, body)
    call.sim.directory.xtap_partners[tenant_id] = updated
    return GraphResponse(204)


def delete_partner(call: Call, tenant_id: str) -> GraphResponse:
    """The delete page: a configuration with a user synchronization policy cannot go before that policy."""
    call.require("crossTenantAccess.write")
    _partner(call, tenant_id)
    if tenant_id in call.sim.directory.xtap_identity_sync:
        raise bad_request(
            f"The partner configuration for tenant '{tenant_id}' has a user synchronization policy; "
            "delete its identitySynchronization first."
        )
    del call.sim.directory.xtap_partners[tenant_id]
    return GraphResponse(204)


# --- a partner's user synchronization policy (identitySynchronization) ------------------------------

SYNC_WRITABLE = frozenset({"displayName", "userSyncInbound"})


def get_identity_sync(call: Call, tenant_id: str) -> GraphResponse:
    call.require("crossTenantAccess.read")
    _partner(call, tenant_id)
    policy = found(call.sim.directory.xtap_identity_sync, tenant_id)
    fragment = f"policies/crossTenantAccessPolicy/partners('{tenant_id}')/identitySynchronization/$entity"
    return GraphResponse(200, {"@odata.context": call.context_url(fragment), **copy.deepcopy(policy)})


def put_identity_sync(call: Call, tenant_id: str) -> GraphResponse:
    """PUT creates or replaces the policy: displayName and userSyncInbound; 204."""
    call.require("crossTenantAccess.write")
    _partner(call, tenant_id)
    body = _check_fields(call.request.body, SYNC_WRITABLE | {"tenantId"}, "crossTenantIdentitySyncPolicyPartner")
    if body.get("tenantId") not in (None, tenant_id):
        raise bad_request("Property 'tenantId' must name the partner configuration's tenant.")
    inbound = body.get("userSyncInbound")
    if inbound is not None and (
        not isinstance(inbound, dict)
        or set(inbound) - {"isSyncAllowed", "@odata.type"}
        or not isinstance(inbound.get("isSyncAllowed", False), bool)
    ):
        raise bad_request("Invalid value for 'userSyncInbound': expected {isSyncAllowed: Boolean}.")
    call.sim.directory.xtap_identity_sync[tenant_id] = {
        "tenantId": tenant_id,
        "displayName": body.get("displayName"),
        "userSyncInbound": {"isSyncAllowed": bool((inbound or {}).get("isSyncAllowed", False))},
    }
    return GraphResponse(204)


def delete_identity_sync(call: Call, tenant_id: str) -> GraphResponse:
    call.require("crossTenantAccess.write")
    _partner(call, tenant_id)
    found(call.sim.directory.xtap_identity_sync, tenant_id)
    del call.sim.directory.xtap_identity_sync[tenant_id]
    return GraphResponse(204)


# --- authorizationPolicy ---------------------------------------------------------------------------


def get_authorization_policy(call: Call) -> GraphResponse:
    call.require("authorizationPolicy.read")
    body = {"@odata.context": call.context_url("policies/authorizationPolicy/$entity")}
    body.update(copy.deepcopy(call.sim.directory.authorization_policy))
    return GraphResponse(200, body)


def update_authorization_policy(call: Call) -> GraphResponse:
    call.require("authorizationPolicy.write")
    body = _check_fields(call.request.body, AUTHORIZATION_WRITABLE, "authorizationPolicy")
    if "allowInvitesFrom" in body and body["allowInvitesFrom"] not in ALLOW_INVITES_FROM:
        raise bad_request("Invalid value specified for property 'allowInvitesFrom' of resource 'authorizationPolicy'.")
    if "guestUserRoleId" in body and body["guestUserRoleId"] not in GUEST_ROLE_IDS:
        raise bad_request("Invalid value specified for property 'guestUserRoleId' of resource 'authorizationPolicy'.")
    policy = call.sim.directory.authorization_policy
    for name, value in body.items():
        if name == "defaultUserRolePermissions":
            if not isinstance(value, dict):
                raise bad_request("Invalid value specified for property 'defaultUserRolePermissions'.")
            policy[name] = {**policy.get(name, {}), **value}
        else:
            policy[name] = value
    return GraphResponse(204)


# --- beta: b2bManagementPolicies ---------------------------------------------------------------------

B2B_POLICY_WRITABLE = frozenset(
    {"displayName", "description", "definition", "isOrganizationDefault", "deletedDateTime"}
)


def _validated_b2b(body: dict[str, Any]) -> dict[str, Any]:
    clean: dict[str, Any] = {}
    for name, value in body.items():
        if name == "deletedDateTime":
            continue
        if name == "isOrganizationDefault" and isinstance(value, str) and value.lower() in {"true", "false"}:
            value = value.lower() == "true"  # the service's reader converts "true"/"false" (doc example)
        if name == "definition":
            value = _validated_definition(value)
        clean[name] = value
    return clean


def _validated_definition(value: Any) -> list[str]:
    if not isinstance(value, list) or len(value) != 1 or not isinstance(value[0], str):
        raise bad_request("'definition' must be a collection holding one JSON string.")
    try:
        parsed = parse_definition(value)
    except (ValueError, json.JSONDecodeError) as exc:
        raise bad_request(f"'definition' is not valid JSON: {exc}") from exc
    policy = next((v for k, v in parsed.items() if k.lower() == "b2bmanagementpolicy"), None)
    if not isinstance(policy, dict):
        raise bad_request("'definition' must hold a B2BManagementPolicy object.")
    lists = next((v for k, v in policy.items() if k.lower() == "invitationsallowedandblockeddomainspolicy"), None)
    if isinstance(lists, dict):
        allowed = next((v for k, v in lists.items() if k.lower() == "alloweddomains"), None) or []
        blocked = next((v for k, v in lists.items() if k.lower() == "blockeddomains"), None) or []
        if allowed and blocked:
            raise bad_request("A B2B management policy has either an allow list or a block list, not both.")
    return value


def _b2b_body(call: Call, policy: dict[str, Any], entity: bool) -> dict[str, Any]:
    body: dict[str, Any] = (
        {"@odata.context": call.context_url("policies/b2bManagementPolicies/$entity")} if entity else {}
    )
    body["@odata.type"] = "#microsoft.graph.b2bManagementPolicy"
    body.update(copy.deepcopy(policy))
    return body


def list_b2b_policies(call: Call) -> GraphResponse:
    call.require("b2bManagementPolicy.read")
    return GraphResponse(
        200,
        {
            "@odata.context": call.context_url("policies/b2bManagementPolicies"),
            "value": [_b2b_body(call, p, entity=False) for p in call.sim.directory.b2b_policies.values()],
        },
    )


def _ensure_single_default(call: Call, policy_id: str | None, wants_default: bool) -> None:
    existing = call.sim.directory.organization_default_b2b_policy()
    if wants_default and existing is not None and existing["id"] != policy_id:
        raise bad_request("Another object with the same value for property isOrganizationDefault already exists.")


def create_b2b_policy(call: Call) -> GraphResponse:
    call.require("b2bManagementPolicy.write")
    body = _validated_b2b(_check_fields(call.request.body, B2B_POLICY_WRITABLE, "b2bManagementPolicy"))
    # policyroot-post-b2bmanagementpolicies.md: definition, description and displayName are required.
    if "definition" not in body or not body.get("displayName") or not isinstance(body.get("description"), str):
        raise bad_request("'displayName', 'description' and 'definition' are required.")
    _ensure_single_default(call, None, bool(body.get("isOrganizationDefault")))
    policy = {
        "id": str(uuid.uuid4()),
        "deletedDateTime": None,
        "description": body.get("description"),
        "displayName": body["displayName"],
        "definition": body["definition"],
        "isOrganizationDefault": bool(body.get("isOrganizationDefault", False)),
    }
    call.sim.directory.b2b_policies[policy["id"]] = policy
    return GraphResponse(201, _b2b_body(call, policy, entity=True))


def _b2b_policy(call: Call, policy_id: str) -> dict[str, Any]:
    return found(call.sim.directory.b2b_policies, policy_id)


def get_b2b_policy(call: Call, policy_id: str) -> GraphResponse:
    call.require("b2bManagementPolicy.read")
    return GraphResponse(200, _b2b_body(call, _b2b_policy(call, policy_id), entity=True))


def update_b2b_policy(call: Call, policy_id: str) -> GraphResponse:
    """The beta update doc answers 200 with the updated policy."""
    call.require("b2bManagementPolicy.write")
    policy = _b2b_policy(call, policy_id)
    body = _validated_b2b(_check_fields(call.request.body, B2B_POLICY_WRITABLE, "b2bManagementPolicy"))
    if "isOrganizationDefault" in body:
        _ensure_single_default(call, policy_id, bool(body["isOrganizationDefault"]))
    policy.update(body)
    return GraphResponse(200, _b2b_body(call, policy, entity=True))


def delete_b2b_policy(call: Call, policy_id: str) -> GraphResponse:
    call.require("b2bManagementPolicy.write")
    _b2b_policy(call, policy_id)
    del call.sim.directory.b2b_policies[policy_id]
    return GraphResponse(204)


def _is_guid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True
