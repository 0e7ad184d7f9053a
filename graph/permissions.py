"""The Microsoft Graph application permissions this product is granted: the single source.

infra/grant-graph-permissions grants exactly this list to the managed identity (and the redemption reset's
list only when asked to), the README's permission table is generated from it, and the least-privilege tests
mint tenantsim tokens with exactly these roles (and with each one removed) to prove the product works with
the list and fails clearly without an entry.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from config.desired_state import DesiredState

JOBS_WITH_A_MODE = ("guest-sweep", "policy-drift", "governance", "redemption-reset")


@dataclass(frozen=True, slots=True)
class Permission:
    """One Graph application permission and why the product holds it.

    ``enforce_only`` names the jobs that need it only when they run in enforce mode (they only read in plan
    mode); a deployment whose jobs all plan is not granted it. ``plan_substitute`` is the read permission those
    jobs use instead while they plan. Every other job in ``jobs`` needs it whatever the modes.
    """

    name: str
    jobs: tuple[str, ...]
    why: str
    enforce_only: tuple[str, ...] = ()
    plan_substitute: str | None = None

    @property
    def always(self) -> tuple[str, ...]:
        return tuple(job for job in self.jobs if job not in self.enforce_only)


GRAPH_APPLICATION_PERMISSIONS: tuple[Permission, ...] = (
    Permission(
        "User.Read.All",
        ("onboarding", "guest-sweep", "redemption-reset", "guest-report"),
        "Find an existing guest by mail before inviting, enumerate guests, re-check a guest before acting, and "
        "read a guest's group memberships (transitiveMemberOf) when the safety gate checks the protected group, and "
        "read a deleted guest in deleted items before an undo of a run restores it, and read a departed sponsor's "
        "manager (GET /users/{id}/manager) to propose in a sponsor-reassign event.",
    ),
    Permission(
        "User.Invite.All",
        ("onboarding",),
        "POST /invitations: invite guests (least privilege for invitations; not enough to reset a redemption).",
    ),
    Permission(
        "User.EnableDisableAccount.All",
        ("onboarding", "guest-sweep"),
        "PATCH accountEnabled: disable offboarded guests (offboard tickets) and expired guests (sweep, enforce); "
        "re-enable the guests an operator's undo of a sweep run (restore) brings back.",
        enforce_only=("guest-sweep",),
    ),
    Permission(
        "User.DeleteRestore.All",
        ("guest-sweep",),
        "DELETE guests after the grace period (soft delete, restorable for 30 days); restore them from deleted "
        "items when an operator undoes the run (least privileged for restoring a user).",
        enforce_only=("guest-sweep",),
    ),
    Permission(
        "User.RevokeSessions.All",
        ("onboarding", "guest-sweep", "redemption-reset"),
        "POST revokeSignInSessions when a guest is offboarded, disabled by the sweep or its redemption is reset.",
        enforce_only=("guest-sweep", "redemption-reset"),
    ),
    Permission(
        "GroupMember.ReadBasic.All",
        ("guest-sweep", "redemption-reset", "guest-report"),
        "Read the members of the protected exclusions group when planning, nested groups included (transitive "
        "members: the least privileged permission); the sweep and the reset refuse to plan if they cannot.",
    ),
    Permission(
        "AuditLog.Read.All",
        ("guest-sweep", "guest-report"),
        "Read signInActivity to find inactive guests and show last sign-ins in the guest report (also needs an "
        "Entra ID P1/P2 licence).",
    ),
    Permission(
        "Policy.Read.All",
        ("policy-drift", "redemption-reset"),
        "Read cross-tenant access (the policy, its default and partners, each partner's user synchronization, the "
        "last shown as evidence only), authorization and conditional access policies to detect drift; the "
        "tenant's invitation redemption order to know which provider a partner domain's guests use.",
    ),
    Permission(
        "Policy.ReadWrite.CrossTenantAccess",
        ("policy-drift",),
        "Apply the desired cross-tenant access default and partner policies in enforce mode.",
        enforce_only=("policy-drift",),
        plan_substitute="Policy.Read.All",
    ),
    Permission(
        "Policy.ReadWrite.Authorization",
        ("policy-drift",),
        "Apply authorizationPolicy.allowInvitesFrom and the guest user role in enforce mode.",
        enforce_only=("policy-drift",),
        plan_substitute="Policy.Read.All",
    ),
    Permission(
        "Policy.ReadWrite.B2BManagementPolicy",
        ("policy-drift",),
        "Apply the invitation domain allow/block list (beta B2B management policy) in enforce mode; plan mode "
        "reads it with Policy.Read.B2BManagementPolicy.",
        enforce_only=("policy-drift",),
        plan_substitute="Policy.Read.B2BManagementPolicy",
    ),
    Permission(
        "CrossTenantInformation.ReadBasic.All",
        ("policy-drift", "redemption-reset"),
        "findTenantInformationByDomainName: which identity provider serves a partner domain.",
    ),
    Permission(
        "IdentityProvider.ReadWrite.All",
        ("policy-drift",),
        "Create SAML/WS-Fed direct federation for partner domains no Entra tenant verifies (enforce mode); plan "
        "mode reads it with IdentityProvider.Read.All.",
        enforce_only=("policy-drift",),
        plan_substitute="IdentityProvider.Read.All",
    ),
    Permission(
        "EntitlementManagement.ReadWrite.All",
        ("onboarding", "governance"),
        "Assign partners' access packages with an end date (and again to a restored guest that lost its package); "
        "ensure catalogs, packages and policies.",
    ),
    Permission(
        "AccessReview.ReadWrite.All",
        ("governance",),
        "Ensure the recurring guest and per-partner access review definitions; fix their drifted settings "
        "(enforce mode; plan mode reads them with AccessReview.Read.All).",
        enforce_only=("governance",),
        plan_substitute="AccessReview.Read.All",
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
        "reset ticket's newEmail before it is invited. Only with LIFECYCLE_RESET_ENABLED=true, in enforce mode.",
        enforce_only=("redemption-reset",),
    ),
)

# Granted only to deployments whose desired state manages the feature (the grant script's --feature NAME).
SIGNUP_REGISTRATION = "signup-registration"
GUEST_CONDITIONAL_ACCESS = "guest-conditional-access"
GUEST_IDENTITY_PROVIDERS = "guest-identity-providers"
GUEST_LIFECYCLE_POLICIES = "guest-lifecycle-policies"
FEATURE_PERMISSIONS: dict[str, tuple[Permission, ...]] = {
    # The sign-up connector's registration (desired state signUpRegistration). The API connector pages
    # (identityapiconnector-create/-list/-update) name APIConnectors.ReadWrite.All for reads and writes alike,
    # and the user flow's connector configuration is read and set with IdentityUserFlow.ReadWrite.All
    # (b2xidentityuserflow-get/put-apiconnectorconfiguration), so planning needs them as much as applying.
    SIGNUP_REGISTRATION: (
        Permission(
            "APIConnectors.ReadWrite.All",
            ("policy-drift",),
            "Read, create and correct the sign-up API connector (its URL and Basic authentication); Graph names no "
            "read-only permission for listing connectors. Only where the desired state has signUpRegistration.",
        ),
        Permission(
            "IdentityUserFlow.ReadWrite.All",
            ("policy-drift",),
            "Read and set which API connector each self-service sign-up user flow step calls; Graph names no "
            "read-only permission for that configuration. Only where the desired state has signUpRegistration.",
        ),
    ),
    # The guest Conditional Access policies (desired state guestConditionalAccess). Creating and updating a policy
    # needs Policy.ReadWrite.ConditionalAccess with Policy.Read.All and Application.Read.All
    # (conditionalaccessroot-post-policies, conditionalaccesspolicy-update); planning reads with Policy.Read.All,
    # already granted. The evidence of a report-only policy is in the sign-in logs (signin-list: AuditLog.Read.All).
    GUEST_CONDITIONAL_ACCESS: (
        Permission(
            "Policy.ReadWrite.ConditionalAccess",
            ("policy-drift",),
            "Create the guest Conditional Access policies report-only, correct them, and switch one on once an "
            "operator approves (enforce mode). Only where the desired state has guestConditionalAccess.",
            enforce_only=("policy-drift",),
            plan_substitute="Policy.Read.All",
        ),
        Permission(
            "Application.Read.All",
            ("policy-drift",),
            "Required by Graph beside Policy.ReadWrite.ConditionalAccess to write a Conditional Access policy "
            "(enforce mode). Only where the desired state has guestConditionalAccess.",
            enforce_only=("policy-drift",),
            plan_substitute="Policy.Read.All",
        ),
        Permission(
            "AuditLog.Read.All",
            ("policy-drift",),
            "Read the sign-in logs: what a report-only guest policy would have blocked. Only where the desired "
            "state has guestConditionalAccess.",
        ),
        Permission(
            "User.Read.All",
            ("policy-drift",),
            "Check that each break-glass user the guest policies exclude exists and is not a guest. Only where the "
            "desired state has guestConditionalAccess.",
        ),
    ),
    # Guest identity providers (desired state guestIdentityProviders). The email method is written with
    # Policy.ReadWrite.AuthenticationMethod and read with Policy.Read.All (emailauthenticationmethodconfiguration-
    # get/-update); Google federation with IdentityProvider.ReadWrite.All and the redemption order with
    # Policy.ReadWrite.CrossTenantAccess, both already granted to policy drift. The guardrails read which provider
    # each guest redeemed with from its identities (User.Read.All).
    GUEST_IDENTITY_PROVIDERS: (
        Permission(
            "Policy.ReadWrite.AuthenticationMethod",
            ("policy-drift",),
            "Turn email one-time passcode for guests on or off as the desired state says (enforce mode; it also "
            "governs every other authentication method, hence opt-in). Only where the desired state has "
            "guestIdentityProviders.",
            enforce_only=("policy-drift",),
            plan_substitute="Policy.Read.All",
        ),
        Permission(
            "User.Read.All",
            ("policy-drift",),
            "Read guests' identities: which provider each redeemed with, so email one-time passcode is not turned "
            "off, nor Google removed, under guests who use it. Only where the desired state has "
            "guestIdentityProviders.",
        ),
    ),
    # Microsoft's guest lifecycle policies (Lifecycle Workflows). The list, get, rules and report pages name
    # LifecyclePolicies-Guests.Read.All for reading guest policies; create, update and delete need
    # LifecyclePolicies-Guests.ReadWrite.All (identitygovernance-lifecycleworkflowscontainer-list-lifecyclepolicies,
    # -post-lifecyclepolicies, identitygovernance-lifecyclepolicy-update).
    GUEST_LIFECYCLE_POLICIES: (
        Permission(
            "LifecyclePolicies-Guests.ReadWrite.All",
            ("policy-drift",),
            "Read Microsoft's guest lifecycle policies and their reports (which guests each governs, their "
            "compliance), and create and correct them as the desired state says (enforce mode; plan mode reads with "
            "LifecyclePolicies-Guests.Read.All). Only where the desired state manages guest lifecycle policies.",
            enforce_only=("policy-drift",),
            plan_substitute="LifecyclePolicies-Guests.Read.All",
        ),
        # The excluded groups: found by display name (group-list) and read for their direct members, users and
        # nested groups (group-list-members), GroupMember.Read.All being the least privileged read both pages name.
        # The base grant's GroupMember.ReadBasic.All covers transitive members only (group-list-transitivemembers).
        Permission(
            "GroupMember.Read.All",
            ("policy-drift",),
            "Find the groups a guest lifecycle policy excludes by display name and read their direct members (users "
            "and nested groups): who the native engine leaves out, and the nested groups it ignores. Only where the "
            "desired state manages guest lifecycle policies.",
        ),
    ),
}

GRANTED: frozenset[str] = frozenset(p.name for p in GRAPH_APPLICATION_PERMISSIONS)
RESET_GRANT: frozenset[str] = frozenset(p.name for p in REDEMPTION_RESET_PERMISSIONS)


def feature_grant(*features: str) -> frozenset[str]:
    return frozenset(p.name for feature in features for p in FEATURE_PERMISSIONS[feature])


def features_of(desired: DesiredState) -> frozenset[str]:
    """The opt-in features a desired state manages, each needing its own permissions."""
    chosen = {
        SIGNUP_REGISTRATION: desired.sign_up_registration is not None,
        GUEST_CONDITIONAL_ACCESS: desired.guest_conditional_access is not None,
        GUEST_IDENTITY_PROVIDERS: desired.guest_identity_providers is not None,
        GUEST_LIFECYCLE_POLICIES: desired.guest_lifecycle_policies is not None,
    }
    return frozenset(feature for feature, on in chosen.items() if on)


def granted(*, redemption_reset: bool, features: Iterable[str] = ()) -> frozenset[str]:
    """What a deployment whose jobs all enforce holds: the base grant, plus the reset's when switched on, plus
    each opted-in feature's."""
    return (GRANTED | RESET_GRANT if redemption_reset else GRANTED) | feature_grant(*features)


@dataclass(frozen=True, slots=True)
class Deployment:
    """The job modes of one deployment (the LIFECYCLE_*_MODE settings) and whether redemption reset is on."""

    modes: Mapping[str, str] = field(default_factory=dict)  # job -> "plan" | "enforce"; absent = plan
    redemption_reset: bool = False
    features: frozenset[str] = frozenset()  # opt-in features of FEATURE_PERMISSIONS the desired state manages

    @classmethod
    def all_enforcing(cls, *, redemption_reset: bool = False, features: Iterable[str] = ()) -> Deployment:
        return cls(dict.fromkeys(JOBS_WITH_A_MODE, "enforce"), redemption_reset, frozenset(features))

    def enforces(self, job: str) -> bool:
        if job == "redemption-reset" and not self.redemption_reset:
            return False
        return self.modes.get(job, "plan") == "enforce"


@dataclass(frozen=True, slots=True)
class Requirement:
    """One permission a deployment needs, and the jobs (with their mode) that need it."""

    name: str
    because: tuple[str, ...]


def required(deployment: Deployment) -> tuple[Requirement, ...]:
    """Exactly what ``deployment`` needs: write permissions only for jobs that enforce, their read substitutes
    for jobs that plan, the reset's grant only where the reset is on and enforcing."""
    needs: dict[str, list[str]] = {}
    listed = (
        *GRAPH_APPLICATION_PERMISSIONS,
        *(REDEMPTION_RESET_PERMISSIONS if deployment.redemption_reset else ()),
        *(p for feature in sorted(deployment.features) for p in FEATURE_PERMISSIONS[feature]),
    )
    for permission in listed:
        for job in permission.jobs:
            if job == "redemption-reset" and not deployment.redemption_reset:
                continue
            if job not in permission.enforce_only or deployment.enforces(job):
                needs.setdefault(permission.name, []).append(f"{job} ({_mode(deployment, job)})")
            elif permission.plan_substitute:
                needs.setdefault(permission.plan_substitute, []).append(f"{job} (plan)")
    return tuple(Requirement(name, tuple(dict.fromkeys(jobs))) for name, jobs in sorted(needs.items()))


def required_names(deployment: Deployment) -> frozenset[str]:
    return frozenset(r.name for r in required(deployment))


def _mode(deployment: Deployment, job: str) -> str:
    return ("enforce" if deployment.enforces(job) else "plan") if job in JOBS_WITH_A_MODE else "always"
