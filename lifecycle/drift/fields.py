"""Every property Graph v1.0 gives the cross-tenant access objects, and what policy drift does with each.

Microsoft keeps adding settings to these objects. Each property the v1.0 metadata declares (and the pages
describe) is named here once:

- managed: in the desired state, planned field by field, checked by the guardrails, applied;
- unmanaged: known and deliberately left to whoever set it: shown as evidence in every plan and report,
  never drift, never sent in a PATCH (``assert_managed`` keeps every request body to managed names);
- bookkeeping: keys and flags the service keeps itself (``tenantId``, ``isServiceDefault``).

A property the product has never seen is reported as ``unmanaged-field`` evidence: never dropped, never
reset. Sources: api-reference/v1.0/resources/crosstenantaccesspolicyconfigurationdefault.md,
crosstenantaccesspolicyconfigurationpartner.md, crosstenantaccesspolicy.md and the v1.0 metadata.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lifecycle.drift.desired import INBOUND_TRUST, TENANT_RESTRICTIONS
from lifecycle.drift.normalise import B2B_BLOCKS, SUB_SETTINGS, TRUST_FIELDS

UNMANAGED = "unmanaged"
UNMANAGED_FIELD = "unmanaged-field"
# The product's own estimates for the guest lifecycle policies (lifecycle.drift.native_entry): evidence, not drift.
SHADOW_EVALUATION, LICENCE_EXPOSURE = "shadow-evaluation", "licence-exposure"

# The sub-properties of each managed block the product compares; anything else inside a managed block is
# evidence (tenantRestrictions.devices is known, anything new is an unmanaged-field).
MANAGED_PARTS: dict[str, tuple[str, ...]] = {
    **{name: SUB_SETTINGS for name in B2B_BLOCKS},
    INBOUND_TRUST: TRUST_FIELDS,
    TENANT_RESTRICTIONS: SUB_SETTINGS,
}
KNOWN_UNMANAGED_PARTS: dict[str, dict[str, str]] = {
    # resources/crosstenantaccesspolicytenantrestrictions.md: "isn't supported on the server side yet".
    TENANT_RESTRICTIONS: {
        "devices": "the tenant restrictions device filter: not in the desired state (not served yet)"
    },
}

M365 = "a Microsoft 365 collaboration setting; not in the desired state"
APP_SERVICE = "app service connect setting; not in the desired state"
CONSENT = "automatic user consent (redemption prompt suppression) is decided per partner by a person"

DEFAULT_UNMANAGED: dict[str, str] = {
    "automaticUserConsentSettings": "read-only on the default: always false (resource page)",
    "invitationRedemptionIdentityProviderConfiguration": (
        "the redemption order: read by redemption reset; written only through guestIdentityProviders.redemptionOrder"
        " (its own plan rows), never by a PATCH of the default's blocks"
    ),
    "m365CollaborationInbound": M365,
    "m365CollaborationOutbound": M365,
    "appServiceConnectInbound": APP_SERVICE,
}
PARTNER_UNMANAGED: dict[str, str] = {
    "automaticUserConsentSettings": CONSENT,
    "isServiceProvider": "whether the partner is a cloud service provider: set by a person",
    "isInMultiTenantOrganization": "read-only: the partner's membership of a multitenant organization",
    "m365CollaborationInbound": M365,
    "m365CollaborationOutbound": M365,
    "appServiceConnectInbound": APP_SERVICE,
    # Relationships, read on their own (identitySynchronization) or not at all (serviceProviderConstraints).
    "identitySynchronization": "cross-tenant user synchronization from the partner: managed by its own owner",
    "serviceProviderConstraints": "a relationship the product does not read",
}
POLICY_UNMANAGED: dict[str, str] = {
    "allowedCloudEndpoints": "the Microsoft clouds users may collaborate with; not in the desired state",
    "displayName": "the policy's name",
    "description": "the policy's description",
    "deletedDateTime": "directory bookkeeping",
    # default and partners are read and managed on their own; templates (multitenant organizations) are not read.
    "templates": "multitenant organization templates: a relationship the product does not read",
}
BOOKKEEPING = frozenset({"id", "tenantId", "isServiceDefault"})


@dataclass(frozen=True, slots=True)
class Evidence:
    """A value in the tenant the product shows and leaves alone: never drift, never written."""

    resource: str
    key: str
    field: str
    value: Any
    kind: str  # UNMANAGED or UNMANAGED_FIELD
    note: str


def _annotation(name: str) -> bool:
    return name.startswith("@") or "@odata." in name


def object_evidence(
    resource: str, key: str, payload: dict[str, Any], unmanaged: dict[str, str], *, show_unset: bool
) -> list[Evidence]:
    """Evidence for one object: its unmanaged properties (unset ones, null or false, only when ``show_unset``: on a
    partner they merely inherit), unknown parts of its managed blocks, and every property nobody named here."""
    found: list[Evidence] = []
    for name in sorted(payload):
        value = payload[name]
        if _annotation(name) or name in BOOKKEEPING:
            continue
        if name in MANAGED_PARTS:
            found += _block_evidence(resource, key, name, value)
        elif name in unmanaged:
            if show_unset or not is_unset(value):
                found.append(Evidence(resource, key, name, value, UNMANAGED, unmanaged[name]))
        elif name not in ("default", "partners"):
            found.append(
                Evidence(resource, key, name, value, UNMANAGED_FIELD, "a property this product has never seen")
            )
    return found


def is_unset(value: Any) -> bool:
    """Null, false or an object of nulls: on a partner, a setting nobody made (it inherits or is off)."""
    return value is None or value is False or value == {} or _all_null(value)


def _all_null(value: Any) -> bool:
    """An object whose every member is null (a partner's consent flags before anyone set them)."""
    return isinstance(value, dict) and bool(value) and all(v is None for v in value.values())


def _block_evidence(resource: str, key: str, name: str, block: Any) -> list[Evidence]:
    if not isinstance(block, dict):
        return []
    found = []
    known = KNOWN_UNMANAGED_PARTS.get(name, {})
    for part in sorted(block):
        if _annotation(part) or part in MANAGED_PARTS[name]:
            continue
        value = block[part]
        if part in known:
            if value is not None:
                found.append(Evidence(resource, key, f"{name}.{part}", value, UNMANAGED, known[part]))
        else:
            found.append(
                Evidence(
                    resource, key, f"{name}.{part}", value, UNMANAGED_FIELD, "a property this product has never seen"
                )
            )
    return found


class UnmanagedWrite(ValueError):
    """A request body would carry a property the product does not manage: a bug, refused before Graph sees it."""


def assert_managed(body: dict[str, Any], *, allowed: frozenset[str] = frozenset()) -> None:
    """Every top-level property of a cross-tenant request body must be managed (``allowed``: the key on a create),
    and every part of a managed block one the product compares."""
    for name, value in body.items():
        if name in allowed:
            continue
        if name not in MANAGED_PARTS:
            raise UnmanagedWrite(f"refusing to send {name!r}: policy drift does not manage it")
        if isinstance(value, dict):
            stray = sorted(set(value) - set(MANAGED_PARTS[name]))
            if stray:
                raise UnmanagedWrite(f"refusing to send {name}.{stray[0]}: policy drift does not manage it")
