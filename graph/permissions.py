"""The Microsoft Graph application permissions this product is granted: the single source.

infra/grant-graph-permissions grants exactly this list to the managed identity, the README's permission
table is generated from it, and the least-privilege tests mint tenantsim tokens with exactly these roles
(and with each one removed) to prove the product works with the list and fails clearly without an entry.
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
        ("onboarding", "redemption-reset"),
        "POST /invitations: invite guests and reset their redemption (least privilege for invitations).",
    ),
    Permission(
        "User.EnableDisableAccount.All",
        ("guest-sweep", "onboarding"),
        "PATCH accountEnabled: disable expired guests (sweep) and offboarded guests (offboard tickets).",
    ),
    Permission(
        "User.ReadUpdate.All",
        ("redemption-reset",),
        "PATCH mail/otherMails before a reset-redemption ticket's new address is invited (least privilege "
        "for user updates; no create or delete).",
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
        "GroupMember.ReadBasic.All",
        ("guest-sweep",),
        "Read the members of the protected exclusions group, nested groups included (transitive members: the "
        "least privileged permission); the sweep refuses to run if it cannot.",
    ),
    Permission(
        "AuditLog.Read.All",
        ("guest-sweep",),
        "Read signInActivity to find inactive guests (also needs an Entra ID P1/P2 licence).",
    ),
    Permission(
        "Policy.Read.All",
        ("policy-drift",),
        "Read cross-tenant access, authorization and conditional access policies to detect drift.",
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

GRANTED: frozenset[str] = frozenset(p.name for p in GRAPH_APPLICATION_PERMISSIONS)
