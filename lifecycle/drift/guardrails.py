"""Guardrails: desired states that are refused (nothing is applied) and risky-but-legal ones that warn."""

from __future__ import annotations

from typing import Any

from lifecycle.drift.desired import GUEST_ROLE_IDS, INBOUND_TRUST, DesiredPolicies
from lifecycle.drift.normalise import domain_definition, resolve
from lifecycle.plans import Refusal

# The whole B2B management policy is limited to 25 KB (graph-contract.md section 6).
POLICY_SIZE_LIMIT = 25_000
RIGHTS_MANAGEMENT_APP = "00000012-0000-0000-c000-000000000000"
COLLABORATION_INBOUND = "b2bCollaborationInbound"


def _allows_everyone(setting: dict[str, Any] | None) -> bool:
    if setting is None:
        return False
    users, apps = setting.get("usersAndGroups"), setting.get("applications")
    return bool(
        users
        and apps
        and users["accessType"] == "allowed"
        and {"target": "AllUsers", "targetType": "user"} in users["targets"]
        and apps["accessType"] == "allowed"
        and {"target": "AllApplications", "targetType": "application"} in apps["targets"]
    )


def refusals(desired: DesiredPolicies, entra_domains: dict[str, str]) -> list[Refusal]:
    """Every reason to refuse ``desired``. ``entra_domains`` maps federated domains to the tenant verifying them."""
    found: list[Refusal] = []
    trust = desired.default[INBOUND_TRUST] or {}
    trusted = [name for name, value in trust.items() if value]
    if trusted:
        found.append(
            Refusal(
                "default-inbound-trust",
                f"the default policy trusts {', '.join(trusted)} from every external tenant; "
                "trust MFA or device claims per partner instead",
            )
        )
    if desired.allowed_domains and desired.blocked_domains:
        found.append(
            Refusal(
                "domain-allow-and-block-list",
                "the invitation domain policy holds an allowlist or a blocklist, never both; "
                "switching modes discards the other list",
            )
        )
    size = len(domain_definition({}, desired.allowed_domains, desired.blocked_domains))
    if size > POLICY_SIZE_LIMIT:
        found.append(
            Refusal(
                "domain-list-size",
                f"the invitation domain list needs {size} characters; the service stores at most {POLICY_SIZE_LIMIT}",
            )
        )
    default_inbound = desired.default[COLLABORATION_INBOUND]
    if _allows_everyone(default_inbound):
        scoped = sorted(
            partner.key
            for partner in desired.partners.values()
            if partner.blocks[COLLABORATION_INBOUND] is not None
            and not _allows_everyone(resolve(partner.blocks[COLLABORATION_INBOUND], default_inbound))
        )
        if scoped:
            found.append(
                Refusal(
                    "default-open-while-partners-scoped",
                    f"the default policy lets every tenant's users into every application while partners "
                    f"{', '.join(scoped)} are scoped; block the default inbound or drop the partner scoping",
                )
            )
    for partner in desired.partners.values():
        effective = resolve(partner.blocks[INBOUND_TRUST], desired.default[INBOUND_TRUST]) or {}
        if partner.weak_mfa and effective.get("isMfaAccepted"):
            found.append(
                Refusal(
                    "weak-mfa-trusted",
                    f"partner {partner.key} is marked weakMfa but its inbound trust accepts its MFA claims",
                )
            )
    found.extend(_onboarding_refusals(desired))
    for domain, tenant in sorted(entra_domains.items()):
        partner = next(f.partner for f in desired.federations if domain in f.domains)
        found.append(
            Refusal(
                "federation-entra-domain",
                f"partner {partner}: {domain} is verified by the Entra tenant {tenant}; "
                "direct federation is only for domains no Entra tenant verifies",
            )
        )
    return found


def _onboarding_refusals(desired: DesiredPolicies) -> list[Refusal]:
    """allowInvitesFrom values that would stop the product's own (app-only) invitations.

    invitation-post.md: app-only invitations fail when invitations are disabled; an older revision adds "or
    restricted to administrators", which adminsAndGuestInviters is unless the app holds Guest Inviter.
    """
    if desired.allow_invites_from == "none":
        return [
            Refusal(
                "invitations-disabled",
                "allowInvitesFrom none disables invitations for everyone, this product's onboarding included; "
                "use adminsAndGuestInviters with the Guest Inviter role assigned to the product's identity",
            )
        ]
    if desired.allow_invites_from == "adminsAndGuestInviters" and not desired.app_holds_guest_inviter:
        return [
            Refusal(
                "onboarding-needs-guest-inviter",
                "allowInvitesFrom adminsAndGuestInviters can refuse this product's app-only invitations unless its "
                "identity holds the Guest Inviter directory role: assign it (infra/grant-graph-permissions) and "
                "declare it with invitations.appHoldsGuestInviter: true",
            )
        ]
    return []


def warnings(desired: DesiredPolicies) -> list[str]:
    found: list[str] = []
    if desired.allow_invites_from in {"everyone", "adminsGuestInvitersAndAllMembers"}:
        found.append(f"allowInvitesFrom is {desired.allow_invites_from}: invitations are not limited to admins")
    if desired.guest_user_role_id == GUEST_ROLE_IDS["user"]:
        found.append("guests get the User role: they can read the directory like members")
    if not desired.allowed_domains and not desired.blocked_domains:
        found.append("no invitation domain list: guests may be invited from any domain")
    for direct_connect in ("b2bDirectConnectInbound", "b2bDirectConnectOutbound"):
        if _allows_everyone(desired.default[direct_connect]):
            found.append(f"the default {direct_connect} allows every tenant")
    outbound_apps = (desired.default["b2bCollaborationOutbound"] or {}).get("applications") or {}
    if outbound_apps.get("accessType") == "blocked" and any(
        t["target"] == "AllApplications" for t in outbound_apps.get("targets", [])
    ):
        found.append(
            "outbound collaboration blocks every application: keep the Rights Management app "
            f"({RIGHTS_MANAGEMENT_APP}) allowed or protected documents stop opening"
        )
    for partner in sorted(desired.partners.values(), key=lambda p: p.key):
        inbound = partner.blocks[COLLABORATION_INBOUND]
        if inbound is not None and _allows_everyone(resolve(inbound, desired.default[COLLABORATION_INBOUND])):
            found.append(f"partner {partner.key}: every user may reach every application")
        trust = partner.blocks[INBOUND_TRUST] or {}
        devices = [n for n in ("isCompliantDeviceAccepted", "isHybridAzureADJoinedDeviceAccepted") if trust.get(n)]
        if devices:
            found.append(f"partner {partner.key}: trusts the partner's device claims ({', '.join(devices)})")
    return found
