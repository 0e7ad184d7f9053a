"""The Microsoft Graph application permissions this product is granted: the single source.

infra/grant-graph-permissions grants exactly this list to the managed identity (and the redemption reset's
list only when asked to), the README's permission table is generated from it, and the least-privilege tests
mint tenantsim tokens with exactly these roles (and with each one removed) to prove the product works with
the list and fails clearly without an entry.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Permission:
    name: str
    jobs: tuple[str, ...]
    why: str


GRAPH_APPLICATION_PERMISSIONS: tuple[Permission, ...] = (
    Permission(
        "User.Read.All",
        ("onboarding", "guest-sweep", "redemption-reset", "sign-up"),
        "Find an existing guest by mail before inviting, enumerate guests, re-check a guest before acting.",
    ),
    Permission(
        "User.Invite.All",
        ("onboarding",),
        "POST /invitations: invite guests (least privilege for invitations; not enough to reset a redemption).",
    ),
    Permission(
        "User.EnableDisableAccount.All",
        ("guest-sweep", "onboarding"),
        "PATCH accountEnabled: disable expired guests (sweep) and offboarded guests (offboard tickets).",
    ),
    Permission(
        "User.DeleteRestore.All",
        ("guest-sweep",),
        "DELETE guests after the grace period (soft delete, restorable for 30 days).",
    ),
    Permission(
        "User.RevokeSessions.All",
        ("guest-sweep", "redemption-reset"),
        "POST revokeSignInSessions when a guest is disabled or its redemption is reset.",
    ),
    Permission(
        "GroupMember.Read.All",
        ("guest-sweep",),
        "Read the members of the protected exclusions group; the sweep refuses to run if it cannot.",
    ),
    Permission(
        "AuditLog.Read.All",
        ("guest-sweep",),
        "Read signInActivity to find inactive guests (also needs an Entra ID P1/P2 licence).",
    ),
    Permission(
        "Policy.Read.All",
        ("policy-drift", "redemption-reset"),
        "Read cross-tenant access, authorization and conditional access policies to detect drift; the "
        "tenant's invitation redemption order to know which provider a partner domain's guests use.",
    ),
    Permission(
        "Policy.ReadWrite.CrossTenantAccess",
        ("policy-drift",),
        "Apply the desired cross-tenant access default and partner policies in enforce mode.",
    ),
    Permission(
        "Policy.ReadWrite.Authorization",
        ("policy-drift",),
        "Apply authorizationPolicy.allowInvitesFrom and the guest user role in enforce mode.",
    ),
    Permission(
        "Policy.ReadWrite.B2BManagementPolicy",
        ("policy-drift", "onboarding"),
        "Read and apply the invitation domain allow/block list (beta B2B management policy).",
    ),
    Permission(
        "CrossTenantInformation.ReadBasic.All",
        ("policy-drift", "redemption-reset"),
        "findTenantInformationByDomainName: which identity provider serves a partner domain.",
    ),
    Permission(
        "IdentityProvider.ReadWrite.All",
        ("policy-drift",),
        "Read and create SAML/WS-Fed direct federation for partner domains no Entra tenant verifies.",
    ),
    Permission(
        "EntitlementManagement.ReadWrite.All",
        ("onboarding", "governance"),
        "Assign partners' access packages with an end date; ensure catalogs, packages and policies.",
    ),
    Permission(
        "AccessReview.ReadWrite.All",
        ("governance",),
        "Ensure the recurring guest and per-partner access review definitions; fix their drifted settings.",
    ),
)

# Granted only where redemption reset is switched on (LIFECYCLE_RESET_ENABLED=true; the grant script's
# --redemption-reset). Graph names User.ReadWrite.All as the least privileged application permission for a
# reset (invitation-post); it also covers the otherMails/mail update of a ticket's newEmail (user-update names
# User-Mail.ReadWrite.All as least privileged there, which User.ReadWrite.All already includes) and the
# revocation of sessions. It lets the app change any user's profile (not create or delete users, not roles),
# so it is an explicit opt-in rather than part of every deployment.
REDEMPTION_RESET_PERMISSIONS: tuple[Permission, ...] = (
    Permission(
        "User.ReadWrite.All",
        ("redemption-reset",),
        "POST /invitations with resetRedemption (least privilege for a reset), and PATCH otherMails/mail of a "
        "reset ticket's newEmail before it is invited. Only with LIFECYCLE_RESET_ENABLED=true.",
    ),
)

GRANTED: frozenset[str] = frozenset(p.name for p in GRAPH_APPLICATION_PERMISSIONS)
RESET_GRANT: frozenset[str] = frozenset(p.name for p in REDEMPTION_RESET_PERMISSIONS)


def granted(*, redemption_reset: bool) -> frozenset[str]:
    """What a deployment holds: the base grant, plus the reset's when redemption reset is switched on."""
    return GRANTED | RESET_GRANT if redemption_reset else GRANTED
