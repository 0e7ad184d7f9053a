"""The desired-state file, seen the way the planner compares it: canonical Graph-shaped values.

The default policy is complete: a block the file leaves out is held to the service default (what a fresh
tenant has), so a fresh tenant shows drift only where the file asks for something else. Tenant
restrictions are the exception: their service default is not documented, so leaving them out leaves
them unmanaged. Partner blocks keep ``None``: it means "inherit the default".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from config.desired_state import ConditionalAccessPosture, CrossTenantBlocks, DesiredState, Waiver
from lifecycle.drift.normalise import B2B_BLOCKS, b2b_setting, domains, inbound_trust, resolve

GUEST_ROLE_IDS = {
    "user": "a0b1b346-4d3e-4e8b-98f8-753987be4970",
    "guestUser": "10dae51f-b6af-4016-8d66-8c2a99b929b3",
    "restrictedGuestUser": "2af84b1e-32c8-42b7-82bc-daa82404023b",
}
TENANT_RESTRICTIONS = "tenantRestrictions"
INBOUND_TRUST = "inboundTrust"
MANAGED_BLOCKS = (*B2B_BLOCKS, INBOUND_TRUST, TENANT_RESTRICTIONS)


def _everything(access: str) -> dict[str, Any]:
    return {
        "usersAndGroups": {"accessType": access, "targets": [{"target": "AllUsers", "targetType": "user"}]},
        "applications": {"accessType": access, "targets": [{"target": "AllApplications", "targetType": "application"}]},
    }


SERVICE_DEFAULT: dict[str, Any] = {
    "b2bCollaborationInbound": _everything("allowed"),
    "b2bCollaborationOutbound": _everything("allowed"),
    "b2bDirectConnectInbound": _everything("blocked"),
    "b2bDirectConnectOutbound": _everything("blocked"),
    INBOUND_TRUST: {
        "isMfaAccepted": False,
        "isCompliantDeviceAccepted": False,
        "isHybridAzureADJoinedDeviceAccepted": False,
    },
}


@dataclass(frozen=True, slots=True)
class DesiredPartner:
    key: str
    display_name: str
    tenant_id: str
    blocks: dict[str, Any]  # block name -> canonical value, None = inherit the default
    weak_mfa: bool


@dataclass(frozen=True, slots=True)
class DesiredFederation:
    partner: str
    display_name: str
    settings: dict[str, Any]  # issuerUri, passiveSignInUri, preferredAuthenticationProtocol, ...
    domains: list[str]


@dataclass(frozen=True, slots=True)
class DesiredPolicies:
    default: dict[str, Any]  # block name -> canonical value; tenantRestrictions None = unmanaged
    partners: dict[str, DesiredPartner]  # by lower-case tenant id
    allow_invites_from: str
    guest_user_role_id: str
    allowed_domains: list[str]
    blocked_domains: list[str]
    federations: list[DesiredFederation] = field(default_factory=list)
    conditional_access: ConditionalAccessPosture = field(default_factory=ConditionalAccessPosture)
    app_holds_guest_inviter: bool = False
    waivers: tuple[Waiver, ...] = ()  # applied by the planner, which knows the day


def _blocks(blocks: CrossTenantBlocks) -> dict[str, Any]:
    dumped = blocks.model_dump(by_alias=True)
    canonical: dict[str, Any] = {name: b2b_setting(dumped.get(name)) for name in (*B2B_BLOCKS, TENANT_RESTRICTIONS)}
    canonical[INBOUND_TRUST] = inbound_trust(dumped.get(INBOUND_TRUST))
    return canonical


def desired_policies(state: DesiredState) -> DesiredPolicies:
    file_default = _blocks(state.cross_tenant_access_default)
    default = {name: resolve(file_default[name], _canonical_service_default(name)) for name in MANAGED_BLOCKS}
    partners: dict[str, DesiredPartner] = {}
    federations: list[DesiredFederation] = []
    for key, partner in state.partners.items():
        if partner.tenant_id:
            partners[partner.tenant_id.lower()] = DesiredPartner(
                key=key,
                display_name=partner.display_name,
                tenant_id=partner.tenant_id.lower(),
                blocks=_blocks(partner.cross_tenant_access),
                weak_mfa=partner.weak_mfa,
            )
        if partner.federation is not None:
            settings = partner.federation.model_dump(by_alias=True, exclude={"domains"})
            federations.append(
                DesiredFederation(
                    partner=key,
                    display_name=partner.display_name,
                    settings={k: v for k, v in settings.items() if v is not None},
                    domains=domains(partner.federation.domains or partner.domains),
                )
            )
    listed = state.invitations.domains
    return DesiredPolicies(
        default=default,
        partners=partners,
        allow_invites_from=state.invitations.allow_invites_from,
        guest_user_role_id=GUEST_ROLE_IDS[state.invitations.guest_user_role],
        allowed_domains=domains(listed.domains) if listed.mode == "allowlist" else [],
        blocked_domains=domains(listed.domains) if listed.mode == "blocklist" else [],
        federations=federations,
        conditional_access=state.conditional_access,
        app_holds_guest_inviter=state.invitations.app_holds_guest_inviter,
        waivers=state.waivers,
    )


def _canonical_service_default(name: str) -> Any:
    if name == INBOUND_TRUST:
        return inbound_trust(SERVICE_DEFAULT[INBOUND_TRUST])
    return b2b_setting(SERVICE_DEFAULT.get(name))
