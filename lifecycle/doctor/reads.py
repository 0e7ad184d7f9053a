"""The Graph reads each job depends on, with the permission and the licence each needs.

Names of permissions are those of graph/permissions.py (the product's grant); licences are named where
Microsoft's pages require one: signInActivity needs Microsoft Entra ID P1 or P2 (resources/user.md), and so do
the sign-in logs (signin-list.md); access reviews and entitlement management are Microsoft Entra ID Governance
features.

A read with a ``section`` serves an opt-in area: it runs only for a desired state that declares that section
(its DesiredState attribute), as only such a deployment is granted what it needs.
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
    section: str | None = None  # the opt-in desired-state section it serves (a DesiredState attribute)
    # Why Graph may refuse the read although the token holds ``permission``, and what the job does without it:
    # such a refusal warns instead of failing.
    refused_despite_grant: str | None = None


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

SIGN_UP, GUEST_CA, PROVIDERS = "sign_up_registration", "guest_conditional_access", "guest_identity_providers"
NATIVE = "guest_lifecycle_policies"
# The opt-in areas' reads (graph/permissions.py FEATURE_PERMISSIONS names the grant of each).
FEATURE_READS: tuple[GraphRead, ...] = (
    GraphRead(
        "apiConnectors",
        "list API connectors (signUpRegistration: the sign-up connector)",
        ("policy-drift",),
        "APIConnectors.ReadWrite.All",  # identityapiconnector-list.md names no read-only permission
        section=SIGN_UP,
    ),
    GraphRead(
        "userFlows",
        "list the self-service sign-up user flows (signUpRegistration)",
        ("policy-drift",),
        "IdentityUserFlow.ReadWrite.All",  # also what reads each flow's apiConnectorConfiguration
        section=SIGN_UP,
    ),
    GraphRead(
        "signInLogs",
        "read the sign-in logs (guestConditionalAccess: what a report-only policy would have blocked)",
        ("policy-drift",),
        "AuditLog.Read.All",
        P1_P2,
        section=GUEST_CA,
        refused_despite_grant=(
            "signin-list.md's known issue also asks for Directory.Read.All, which the product is not granted; "
            "the plan then says it cannot tell what a report-only guest policy would have blocked"
        ),
    ),
    GraphRead(
        "emailAuthenticationMethod",
        "read the email authentication method (guestIdentityProviders: email one-time passcode)",
        ("policy-drift",),
        "Policy.Read.All",
        section=PROVIDERS,
    ),
    GraphRead(
        "identityProviders",
        "list the identity providers (guestIdentityProviders: Google federation)",
        ("policy-drift",),
        "IdentityProvider.Read.All",
        section=PROVIDERS,
    ),
    GraphRead(
        "lifecyclePolicies",
        "list guest lifecycle policies (guestLifecyclePolicies)",
        ("policy-drift",),
        # identitygovernance-lifecycleworkflowscontainer-list-lifecyclepolicies (v1.0): the guest policies' read
        "LifecyclePolicies-Guests.Read.All",
        ID_GOVERNANCE,
        section=NATIVE,
    ),
)
READ_NAMES = frozenset(r.name for r in (*READS, *FEATURE_READS))
