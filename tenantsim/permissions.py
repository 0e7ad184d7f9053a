"""What Graph requires, operation by operation: the simulator's knowledge of Graph application permissions.

Each operation maps to alternatives; a token passes when its `roles` hold every permission of at least one
alternative. Sources: the "Permissions" table of each operation's page in microsoft-graph-docs-contrib
(api-reference/v1.0, beta for b2bManagementPolicies) and the permissions reference. The product's own grant
list lives in graph/permissions.py; this module describes Graph, not the product.
"""

from __future__ import annotations

from collections.abc import Iterable

Requirement = tuple[frozenset[str], ...]


def _any_of(*alternatives: str | tuple[str, ...]) -> Requirement:
    return tuple(frozenset((alt,) if isinstance(alt, str) else alt) for alt in alternatives)


USERS_READ = _any_of("User.Read.All", "User.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All")

REQUIREMENTS: dict[str, Requirement] = {
    "users.read": USERS_READ,
    # signInActivity needs AuditLog.Read.All on top of a users read permission (user-list doc).
    "users.read.signInActivity": _any_of("AuditLog.Read.All"),
    # accountEnabled alone: User.EnableDisableAccount.All together with User.Read.All is the least privilege.
    "users.update.accountEnabled": _any_of(
        ("User.EnableDisableAccount.All", "User.Read.All"), "User.ReadWrite.All", "Directory.ReadWrite.All"
    ),
    # PATCH /users/{id}: User.ReadUpdate.All is the least privileged application permission (user-update doc).
    "users.update": _any_of("User.ReadUpdate.All", "User.ReadWrite.All", "Directory.ReadWrite.All"),
    # otherMails (and mail, treated alike): User-Mail.ReadWrite.All is the least privileged (user-update doc);
    # whether User.ReadUpdate.All covers them is not stated (config userReadUpdateCoversMail).
    "users.update.mail": _any_of("User-Mail.ReadWrite.All", "User.ReadWrite.All", "Directory.ReadWrite.All"),
    "users.delete": _any_of("User.DeleteRestore.All", "User.ReadWrite.All", "Directory.ReadWrite.All"),
    "users.revokeSignInSessions": _any_of("User.RevokeSessions.All", "User.ReadWrite.All", "Directory.ReadWrite.All"),
    # GET /users/{id}/sponsors: User.Read.All, or User.ReadWrite.All (user-list-sponsors-permissions include).
    "users.sponsors.read": _any_of("User.Read.All", "User.ReadWrite.All"),
    # POST /users/{id}/sponsors/$ref: User.ReadWrite.All and nothing else (user-post-sponsors-permissions include).
    "users.sponsors.add": _any_of("User.ReadWrite.All"),
    # GET /users/{id}/manager: the application row of user-list-manager.md.
    "users.manager.read": _any_of(
        "User.Read.All", "User.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"
    ),
    # GET /directory/deletedItems/microsoft.graph.user: User.Read.All (directory-deleteditems-list.md); the
    # permissions changelog adds User.DeleteRestore.All for this list.
    "deletedItems.list": _any_of(
        "User.Read.All", "User.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All", "User.DeleteRestore.All"
    ),
    # GET /directory/deletedItems/{id}: the user rows of directory-deleteditems-get.md.
    "deletedItems.read": USERS_READ,
    # Restore: User.ReadWrite.All (directory-deleteditems-restore.md), User.DeleteRestore.All least privileged
    # (permissions changelog, Dec 2024).
    "deletedItems.restore": _any_of("User.DeleteRestore.All", "User.ReadWrite.All", "Directory.ReadWrite.All"),
    # The restore page's own reading (SimConfig.restore_needs_user_read_write_all).
    "deletedItems.restore.pageOnly": _any_of("User.ReadWrite.All", "Directory.ReadWrite.All"),
    # Permanent delete: see SimConfig.deleted_user_purge_app_only; with it, the changelog's permissions.
    "deletedItems.delete": _any_of("User.DeleteRestore.All", "User.ReadWrite.All", "Directory.ReadWrite.All"),
    # GET /groups/{id}/members (group-list-members-permissions include).
    "groups.read": _any_of(
        "GroupMember.Read.All",
        "GroupMember.ReadWrite.All",
        "Group.Read.All",
        "Group.ReadWrite.All",
        "Directory.Read.All",
    ),
    # GET /groups (group-list-permissions include): GroupMember.Read.All is the least privileged read; the include
    # also lists Group-NestingSupport.ReadWrite.All and Group.ManageProtection.All.
    "groups.list": _any_of(
        "Group-NestingSupport.ReadWrite.All",
        "GroupMember.Read.All",
        "Group.Read.All",
        "Group.ReadWrite.All",
        "Group.ManageProtection.All",
        "Directory.Read.All",
        "Directory.ReadWrite.All",
    ),
    # GET /groups/{id}/transitiveMembers: GroupMember.ReadBasic.All is the least privileged
    # (group-list-transitivemembers-permissions include).
    "groups.read.transitiveMembers": _any_of(
        "GroupMember.ReadBasic.All",
        "GroupMember.Read.All",
        "GroupMember.ReadWrite.All",
        "Group.ReadBasic.All",
        "Group.Read.All",
        "Group.ReadWrite.All",
        "Directory.Read.All",
    ),
    # GET /users/{id}/transitiveMemberOf (user-list-transitivememberof): any of these, User.Read.All least.
    "users.transitiveMemberOf": _any_of(
        "User.Read.All", "GroupMember.Read.All", "Group.Read.All", "Directory.Read.All", "Directory.ReadWrite.All"
    ),
    "invitations.create": _any_of("User.Invite.All", "User.ReadWrite.All", "Directory.ReadWrite.All"),
    # resetRedemption: User.ReadWrite.All is the least privileged application permission (invitation-post).
    "invitations.resetRedemption": _any_of("User.ReadWrite.All", "Directory.ReadWrite.All"),
    "crossTenantAccess.read": _any_of("Policy.Read.All", "Policy.ReadWrite.CrossTenantAccess"),
    "crossTenantAccess.write": _any_of("Policy.ReadWrite.CrossTenantAccess"),
    "authorizationPolicy.read": _any_of("Policy.Read.All", "Policy.ReadWrite.Authorization"),
    "authorizationPolicy.write": _any_of("Policy.ReadWrite.Authorization"),
    "b2bManagementPolicy.read": _any_of("Policy.Read.B2BManagementPolicy", "Policy.ReadWrite.B2BManagementPolicy"),
    "b2bManagementPolicy.write": _any_of("Policy.ReadWrite.B2BManagementPolicy"),
    "tenantInformation.read": _any_of("CrossTenantInformation.ReadBasic.All"),
    "conditionalAccess.read": _any_of("Policy.Read.All", "Policy.ReadWrite.ConditionalAccess"),
    # Creating (and here deleting) a policy: Policy.Read.All, Policy.ReadWrite.ConditionalAccess and
    # Application.Read.All together (conditionalaccessroot-post-policies.md).
    "conditionalAccess.write": _any_of(
        ("Policy.ReadWrite.ConditionalAccess", "Policy.Read.All", "Application.Read.All")
    ),
    # Listing federation configurations documents Domain.Read.All; writes need IdentityProvider.ReadWrite.All.
    "federation.read": _any_of(
        "Domain.Read.All", "Domain.ReadWrite.All", "IdentityProvider.Read.All", "IdentityProvider.ReadWrite.All"
    ),
    "federation.write": _any_of("IdentityProvider.ReadWrite.All", "Domain.ReadWrite.All"),
    "entitlementManagement.read": _any_of("EntitlementManagement.Read.All", "EntitlementManagement.ReadWrite.All"),
    "entitlementManagement.write": _any_of("EntitlementManagement.ReadWrite.All"),
    # Adding a group to a catalog: with application permissions the app "should also be assigned the
    # Group.ReadWrite.All permission" (entitlementmanagement-post-resourcerequests).
    "entitlementManagement.addGroupResource": _any_of(("EntitlementManagement.ReadWrite.All", "Group.ReadWrite.All")),
    # API connectors: the create, list, get and update pages name APIConnectors.ReadWrite.All alone, reads included.
    "apiConnectors.read": _any_of("APIConnectors.ReadWrite.All"),
    "apiConnectors.write": _any_of("APIConnectors.ReadWrite.All"),
    # b2xIdentityUserFlow get/list: IdentityUserFlow.Read.All or .ReadWrite.All; create: ReadWrite.All.
    "userFlows.read": _any_of("IdentityUserFlow.Read.All", "IdentityUserFlow.ReadWrite.All"),
    "userFlows.write": _any_of("IdentityUserFlow.ReadWrite.All"),
    # Getting and setting apiConnectorConfiguration: IdentityUserFlow.ReadWrite.All alone, reading included
    # (b2xidentityuserflow-get-apiconnectorconfiguration.md, -put-apiconnectorconfiguration.md).
    "userFlows.apiConnectorConfiguration": _any_of("IdentityUserFlow.ReadWrite.All"),
    # GET /auditLogs/signIns: AuditLog.Read.All; the page's known issue adds Directory.Read.All (a separate check
    # under the signInListNeedsDirectoryRead knob).
    "auditLogs.signIns": _any_of("AuditLog.Read.All"),
    "auditLogs.signIns.directory": _any_of("Directory.Read.All", "Directory.ReadWrite.All"),
    # The email OTP method: read with Policy.Read.All or Policy.ReadWrite.AuthenticationMethod, written with the
    # latter (emailauthenticationmethodconfiguration-get.md, -update.md).
    "authenticationMethods.read": _any_of("Policy.Read.All", "Policy.ReadWrite.AuthenticationMethod"),
    "authenticationMethods.write": _any_of("Policy.ReadWrite.AuthenticationMethod"),
    # Social identity providers (identitycontainer-list-identityproviders.md, -post-identityproviders.md).
    "identityProviders.read": _any_of("IdentityProvider.Read.All", "IdentityProvider.ReadWrite.All"),
    "identityProviders.write": _any_of("IdentityProvider.ReadWrite.All"),
    # Guest lifecycle policies: the guest tables of the list, get, create, update, delete and report pages
    # (identitygovernance-lifecycleworkflowscontainer-list-lifecyclepolicies.md and its siblings).
    "lifecyclePolicies.guests.read": _any_of(
        "LifecyclePolicies-Guests.Read.All", "LifecyclePolicies-Guests.ReadWrite.All"
    ),
    "lifecyclePolicies.guests.write": _any_of("LifecyclePolicies-Guests.ReadWrite.All"),
    "accessReview.read": _any_of("AccessReview.Read.All", "AccessReview.ReadWrite.All"),
    "accessReview.write": _any_of("AccessReview.ReadWrite.All"),
}


def is_allowed(operation: str, roles: Iterable[str]) -> bool:
    held = frozenset(roles)
    return any(alternative <= held for alternative in REQUIREMENTS[operation])
