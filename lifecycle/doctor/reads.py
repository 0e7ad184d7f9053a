"""The Graph reads each job depends on, with the permission and the licence each needs.

Names of permissions are those of graph/permissions.py (the product's grant); licences are named where
Microsoft's pages require one: signInActivity needs Microsoft Entra ID P1 or P2 (resources/user.md); access
reviews and entitlement management are Microsoft Entra ID Governance features.
"""

from __future__ import annotations

from dataclasses import dataclass

P1_P2 = "Microsoft Entra ID P1 or P2"
ID_GOVERNANCE = "Microsoft Entra ID Governance"
NON_PREMIUM_CODE = "Authentication_RequestFromNonPremiumTenantOrB2CTenant"


@dataclass(frozen=True, slots=True)
class GraphRead:
    name: str
    what: str
    jobs: tuple[str, ...]
    permission: str
    licence: str | None = None


READS: tuple[GraphRead, ...] = (
    GraphRead("users", "list users", ("onboarding", "guest-sweep", "redemption-reset"), "User.Read.All"),
    GraphRead(
        "signInActivity",
        "list guests with signInActivity",
        ("guest-sweep",),
        "AuditLog.Read.All (with User.Read.All)",
        P1_P2,
    ),
    GraphRead(
        "crossTenantAccess",
        "read the cross-tenant access default and partners",
        ("policy-drift", "redemption-reset"),
        "Policy.Read.All",
    ),
    GraphRead(
        "authorizationPolicy", "read the authorization policy", ("onboarding", "policy-drift"), "Policy.Read.All"
    ),
    GraphRead(
        "b2bManagementPolicy",
        "read the B2B management policy (beta: the invitation domain list)",
        ("policy-drift",),
        "Policy.Read.B2BManagementPolicy",
    ),
    GraphRead(
        "federation",
        "read SAML/WS-Fed direct federation",
        ("policy-drift",),
        "IdentityProvider.Read.All",
    ),
    GraphRead("conditionalAccess", "read Conditional Access policies", ("policy-drift",), "Policy.Read.All"),
    GraphRead(
        "tenantInformation",
        "look up tenant information (findTenantInformationByTenantId)",
        ("policy-drift", "redemption-reset"),
        "CrossTenantInformation.ReadBasic.All",
    ),
    GraphRead(
        "entitlementManagement",
        "list entitlement management catalogs",
        ("onboarding", "governance"),
        "EntitlementManagement.ReadWrite.All",
        ID_GOVERNANCE,
    ),
    GraphRead(
        "accessReviews",
        "list access review definitions",
        ("governance",),
        "AccessReview.Read.All",
        ID_GOVERNANCE,
    ),
)
READ_NAMES = frozenset(r.name for r in READS)
