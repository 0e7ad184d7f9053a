"""The tenant's posture (Graph JSON) as a desired-state document, with comments where a human must decide.

Pure: lifecycle.export.run reads the tenant and hands the answers here. What the format cannot express is
written as a comment, never dropped in silence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from lifecycle.drift.desired import GUEST_ROLE_IDS
from lifecycle.drift.fields import PARTNER_UNMANAGED, is_unset
from lifecycle.drift.normalise import B2B_BLOCKS, SUB_SETTINGS, TRUST_FIELDS, parse_domain_definition
from lifecycle.export.governance import GovernancePosture, domain_organizations, export_governance, partner_key_of
from lifecycle.export.lifecycle_policies import SECTION as NATIVE
from lifecycle.export.lifecycle_policies import NativePosture, export_native
from lifecycle.export.lockdown import SECTIONS, export_lockdown
from lifecycle.export.lockdown_reads import LockdownPosture

ROLE_NAMES = {role_id: name for name, role_id in GUEST_ROLE_IDS.items()}
# Partner properties the desired-state format has no field for: policy drift's unmanaged ones
# (lifecycle/drift/fields.py; resources/crosstenantaccesspolicyconfigurationpartner.md).
PARTNER_UNEXPRESSED = tuple(PARTNER_UNMANAGED)


@dataclass
class TenantPosture:
    tenant_id: str
    primary_domain: str
    default: dict[str, Any]
    partners: list[dict[str, Any]]
    partner_names: dict[str, str]  # tenant id -> displayName (findTenantInformationByTenantId)
    partner_domains: dict[str, str]  # tenant id -> defaultDomainName
    authorization: dict[str, Any]
    b2b_policies: list[dict[str, Any]]
    federations: list[dict[str, Any]]
    governance: GovernancePosture = field(default_factory=GovernancePosture)
    lockdown: LockdownPosture | None = None  # None: the lockdown areas were not read
    native: NativePosture | None = None  # None: the guest lifecycle policies were not read


@dataclass
class Exported:
    document: dict[str, Any]
    notes: dict[str, list[str]]  # top-level key -> comments written above it


def slug(name: str, taken: set[str], known: str | None = None) -> str:
    """A partner key: ``known`` (the key the governance job made the partner's objects under) when free, else
    one made from the name."""
    if known and known not in taken:
        taken.add(known)
        return known
    base = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:55] or "partner"
    if not base[0].isalnum():
        base = f"p{base}"
    key, n = base, 2
    while key in taken:
        key, n = f"{base}-{n}", n + 1
    taken.add(key)
    return key


def _block(value: Any) -> dict[str, Any] | None:
    if not isinstance(value, dict):
        return None
    out = {}
    for name in SUB_SETTINGS:
        config = value.get(name)
        if isinstance(config, dict) and config.get("accessType"):
            out[name] = {
                "accessType": config["accessType"],
                "targets": [
                    {"target": t.get("target"), "targetType": t.get("targetType")} for t in config.get("targets") or []
                ],
            }
    return out or None


def _trust(value: Any) -> dict[str, bool] | None:
    return {name: bool(value.get(name)) for name in TRUST_FIELDS} if isinstance(value, dict) else None


def _blocks(policy: dict[str, Any], *, default: bool) -> dict[str, Any]:
    blocks: dict[str, Any] = {}
    for name in B2B_BLOCKS:
        if (block := _block(policy.get(name))) is not None:
            blocks[name] = block
    if (trust := _trust(policy.get("inboundTrust"))) is not None:
        blocks["inboundTrust"] = trust
    restrictions = _block(policy.get("tenantRestrictions"))
    if restrictions is not None and len(restrictions) == len(SUB_SETTINGS):
        blocks["tenantRestrictions"] = restrictions
    return blocks


def _allows_everyone(block: dict[str, Any] | None) -> bool:
    users = (block or {}).get("usersAndGroups") or {}
    return users.get("accessType") == "allowed" and any(t.get("target") == "AllUsers" for t in users.get("targets", []))


def build(posture: TenantPosture) -> Exported:
    notes: dict[str, list[str]] = {}
    default = _blocks(posture.default, default=True)
    if _allows_everyone(default.get("b2bCollaborationInbound")):
        notes["crossTenantAccessDefault"] = [
            "DECIDE: the default lets users of every external tenant in (b2bCollaborationInbound allows AllUsers).",
            "A locked-down posture blocks them here and allows each partner below.",
        ]
    partners: dict[str, Any] = {}
    partner_notes: list[str] = []
    taken: set[str] = set()
    for policy in sorted(posture.partners, key=lambda p: str(p.get("tenantId"))):
        tenant_id = str(policy.get("tenantId", "")).lower()
        organizations = posture.governance.tenant_organizations.get(tenant_id) or []
        # The connected organisation's name is the one the governance job compares; the tenant's is the fallback.
        name = next((str(o["displayName"]) for o in organizations if o.get("displayName")), None)
        name = name or posture.partner_names.get(tenant_id) or tenant_id
        key = slug(name, taken, partner_key_of(organizations))
        entry: dict[str, Any] = {"displayName": name, "tenantId": tenant_id}
        domain = posture.partner_domains.get(tenant_id)
        entry["domains"] = [domain] if domain else [f"{key}.invalid"]
        if not domain:
            partner_notes.append(f"DECIDE: {key}: the tenant's domain could not be looked up; replace {key}.invalid.")
        blocks = _blocks(policy, default=False)
        if blocks:
            entry["crossTenantAccess"] = blocks
        extra = [p for p in PARTNER_UNEXPRESSED if not is_unset(policy.get(p))]
        if extra:
            partner_notes.append(f"not expressible for {key}: {', '.join(extra)} (kept as the tenant has them)")
        partners[key] = entry
    for config in posture.federations:
        domains = [str(d.get("id")).lower() for d in config.get("domains") or [] if d.get("id")]
        organizations = [o for d, o in domain_organizations(posture.governance) if d in domains[:1]]
        name = next((str(o["displayName"]) for o in organizations if o.get("displayName")), None)
        if name and config.get("displayName") and name != config["displayName"]:
            partner_notes.append(
                f"DECIDE: federation {config['displayName']!r} and its partner's connected organisation {name!r} "
                "differ in name; the format names both after the partner's displayName, so one gets renamed"
            )
        name = name or str(config.get("displayName") or (domains[0] if domains else "federation"))
        key = slug(name, taken, partner_key_of(organizations))
        if not domains or not config.get("signingCertificate"):
            partner_notes.append(f"not expressible: federation {name!r} (no domains or no signing certificate)")
            continue
        federation = {
            k: config[k]
            for k in ("issuerUri", "passiveSignInUri", "preferredAuthenticationProtocol", "signingCertificate")
        }
        if config.get("metadataExchangeUri"):
            federation["metadataExchangeUri"] = config["metadataExchangeUri"]
        partners[key] = {"displayName": name, "domains": domains, "federation": federation}
    known_domains = {d for p in partners.values() for d in p["domains"]}
    for domain, organization in domain_organizations(posture.governance):
        if domain in known_domains:
            continue
        # A partner without an Entra tenant (email one-time passcode or Google): known only as a connected
        # organisation with a domain identity source.
        name = str(organization.get("displayName") or domain)
        key = slug(name, taken, partner_key_of([organization]))
        partners[key] = {"displayName": name, "domains": [domain]}
        known_domains.add(domain)
    if partner_notes:
        notes["partners"] = partner_notes
    invitations, invitation_notes = _invitations(posture)
    notes["invitations"] = invitation_notes
    governance, governance_notes = export_governance(posture.governance, partners)
    notes["governance"] = governance_notes
    document = {
        "schemaVersion": 1,
        "tenant": {"id": posture.tenant_id, "primaryDomain": posture.primary_domain},
        "invitations": invitations,
        "crossTenantAccessDefault": default,
        "partners": partners,
        "governance": governance,
    }
    if posture.lockdown is None:
        notes.update({section: ["not exported: this export read no lockdown area"] for section in SECTIONS})
    else:
        sections, section_notes = export_lockdown(posture.lockdown)
        document.update(sections)
        notes.update(section_notes)
    native, notes[NATIVE] = export_native(posture.native)
    if native is not None:
        document[NATIVE] = native
    return Exported(document, notes)


def _invitations(posture: TenantPosture) -> tuple[dict[str, Any], list[str]]:
    notes = [
        "DECIDE: appHoldsGuestInviter is exported false: whether this app holds Guest Inviter is not read here;",
        "set it true once infra/grant-graph-permissions --assign-guest-inviter has assigned the role.",
    ]
    allow = str(posture.authorization.get("allowInvitesFrom") or "everyone")
    if allow == "everyone":
        notes.append("DECIDE: allowInvitesFrom everyone lets guests invite guests.")
    role_id = str(posture.authorization.get("guestUserRoleId") or "").lower()
    invitations: dict[str, Any] = {"allowInvitesFrom": allow, "appHoldsGuestInviter": False}
    if role_id in ROLE_NAMES:
        invitations["guestUserRole"] = ROLE_NAMES[role_id]
    else:
        notes.append(f"not expressible: guestUserRoleId {role_id!r} is none of the three guest roles")
    policy = next((p for p in posture.b2b_policies if p.get("isOrganizationDefault")), None)
    lists = {"allowedDomains": [], "blockedDomains": []}
    if policy is not None:
        try:
            _, lists = parse_domain_definition(policy.get("definition"))
        except ValueError:
            notes.append("not expressible: the B2B management policy's definition is not valid JSON")
    if lists["allowedDomains"]:
        invitations["domains"] = {"mode": "allowlist", "domains": lists["allowedDomains"]}
    elif lists["blockedDomains"]:
        invitations["domains"] = {"mode": "blocklist", "domains": lists["blockedDomains"]}
    else:
        invitations["domains"] = {"mode": "none", "domains": []}
    return invitations, notes


def render(exported: Exported) -> str:
    """YAML with each top-level block's comments above it."""
    lines = ["# Exported from the tenant by `python -m lifecycle export desired-state`.", ""]
    for key, value in exported.document.items():
        for note in exported.notes.get(key, []):
            lines.append(f"# {note}")
        lines.append(yaml.safe_dump({key: value}, sort_keys=False, allow_unicode=True).rstrip())
        lines.append("")
    for key, notes in exported.notes.items():
        if key not in exported.document and notes:
            # A section left out keeps its comments: why, and what a human would set.
            lines.extend([f"# {key}:", *(f"#   {note}" for note in notes), ""])
    return "\n".join(lines)
