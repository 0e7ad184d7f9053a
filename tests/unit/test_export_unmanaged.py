"""The desired-state export names the partner settings the format cannot hold: exactly policy drift's unmanaged
ones that someone set, never a setting that only inherits."""

from __future__ import annotations

import copy

from lifecycle.drift.desired import SERVICE_DEFAULT
from lifecycle.export.build import TenantPosture, build

UNTOUCHED = "9a3d526c-1b7e-4c2f-8d6a-5e0f3b7c9d21"
CONFIGURED = "5c8e1f2a-6d3b-4a9e-b7c0-1d2e3f4a5b6c"
EVERYONE = {"accessType": "allowed", "targets": [{"target": "AllUsers", "targetType": "user"}]}


def _partner(tenant_id: str, **settings: object) -> dict[str, object]:
    """A partner as Graph answers a new one: blocks null, consent flags null, not a provider."""
    return {
        "tenantId": tenant_id,
        "isServiceProvider": False,
        "isInMultiTenantOrganization": False,
        "automaticUserConsentSettings": {"inboundAllowed": None, "outboundAllowed": None},
        "inboundTrust": None,
        "m365CollaborationOutbound": None,
        **settings,
    }


def test_only_the_unmanaged_settings_someone_made_are_named():
    posture = TenantPosture(
        tenant_id="2f3c4d5e-6a7b-4c8d-9e0f-1a2b3c4d5e6f",
        primary_domain="contoso.com",
        default=copy.deepcopy(SERVICE_DEFAULT),
        partners=[
            _partner(UNTOUCHED),
            _partner(CONFIGURED, isServiceProvider=True, m365CollaborationOutbound={"usersAndGroups": EVERYONE}),
        ],
        partner_names={UNTOUCHED: "Fabrikam", CONFIGURED: "Northwind"},
        partner_domains={UNTOUCHED: "fabrikam.com", CONFIGURED: "northwindtraders.com"},
        authorization={
            "allowInvitesFrom": "adminsAndGuestInviters",
            "guestUserRoleId": "2af84b1e-32c8-42b7-82bc-daa82404023b",
        },
        b2b_policies=[],
        federations=[],
    )
    notes = [n for n in build(posture).notes.get("partners", []) if n.startswith("not expressible")]
    assert notes == [
        "not expressible for northwind: isServiceProvider, m365CollaborationOutbound (kept as the tenant has them)"
    ]
