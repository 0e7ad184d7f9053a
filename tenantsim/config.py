"""Runtime knobs of the simulator, changeable through PUT /_tenantsim/config."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar

from tenantsim.errors import bad_request


@dataclass(slots=True)
class SimConfig:
    # Seconds during which a just-created user answers 404 by id and is left out of queries.
    replication_delay_seconds: float = 0.0
    throttling_enabled: bool = True
    # 10 means every throttling window (and so every Retry-After) is ten times shorter.
    time_compression: float = 1.0
    # Multiplies every quota; tests use a small value to reach a limit with a few requests.
    quota_scale: float = 1.0
    # Max page size with signInActivity selected: 500 in the current doc, 120 in older versions.
    sign_in_activity_page_cap: int = 500
    # Apps whose service principal holds the Guest Inviter directory role. None by default: a deployment
    # that needs the role must be seen to grant it (infra/grant-graph-permissions assigns it).
    guest_inviter_app_ids: list[str] = field(default_factory=list)
    # allowInvitesFrom adminsAndGuestInviters and an app-only caller without Guest Inviter. The docs disagree:
    # an older invitation-post.md revision says app-only invitations fail when invitations are restricted to
    # administrators (true, the default: refused); the current revision names only disabled invitations
    # (false: allowed).
    app_only_invites_need_guest_inviter: bool = True
    # Whether the tenant holds a Microsoft Entra ID P1 or P2 licence. Without one, reading signInActivity is
    # refused (resources/user.md; the error is Microsoft's support article on non-premium tenants).
    entra_id_premium: bool = True
    # How far the tenant's clock runs ahead of the wall clock: timestamps, access review instances and
    # access package assignment expiry follow it (tokens, throttling and replication delay do not).
    clock_offset_seconds: float = 0.0
    # GET crossTenantAccessPolicy/default: the redemption order of a tenant that never set one. The pages do
    # not say whether it is the documented default order (default) or null; true answers null.
    unset_redemption_order_as_null: bool = False
    # Access review definitions as Graph stores them (contract: access-reviews.md). The get example shows
    # absolute queries (scope, instanceEnumerationScope, reviewers) returned with a /v1.0 prefix; the create
    # and list examples return them as sent.
    review_query_version_prefix: bool = True
    # A noEnd recurrence range returned as numbered, endDate 9999-12-31 (list examples, create example 2);
    # create example 1 returns it as noEnd.
    review_no_end_as_numbered: bool = True
    # ./owners is documented for reviews of all groups only (accessreviews-reviewers-concept); a review of one
    # group names /groups/{id}/owners. False refuses ./owners without an instanceEnumerationScope.
    review_relative_owners_on_single_group: bool = False
    # A redemption reset to another of the guest's addresses: whether Graph also rewrites mail, proxyAddresses
    # and the #EXT# userPrincipalName to the invited address. No page says mail moves; entra-docs'
    # reset-redemption-status.md says the UPN stays (an older revision said it changes to the new email) and
    # recommends setting mail yourself. Strict default: nothing moves, the client sets what it wants.
    reset_redemption_rewrites_addresses: bool = False
    # Whether User.ReadUpdate.All (least privileged for PATCH /users in general) also covers mail and otherMails.
    # user-update.md names User-Mail.ReadWrite.All as least privileged for otherMails and is silent on this.
    user_read_update_covers_mail: bool = False
    # An adminAdd assignment request whose target user is still replicating: "notFound" answers 404 as Graph
    # does for a just-created object it cannot see yet; "accept" takes the request at once.
    assignment_target_unreplicated: str = "notFound"
    # What moves an assignment request on. The create-request page says the assignment is created
    # "subsequently" and names no trigger: "onRead" steps a request each time it is read; "background" steps
    # every open request before each call to the tenant, read or not.
    assignment_request_processing: str = "onRead"
    # A second add request for a target and package while the first is still open: no page says. "accept" takes
    # it (both are processed); "refuse" answers 400.
    assignment_request_while_open: str = "accept"
    # $expand=assignmentPolicies on a list of access packages: the list-assignmentPolicies page tells callers to
    # list access packages with it; the list-accessPackages page names only $select and $filter. "expand"
    # serves each package's policies, "ignore" serves the packages without them, "refuse" answers 400.
    access_package_policies_expand: str = "expand"
    # $filter on the accessPackages and assignmentPolicies lists: both list pages name $filter with a displayName
    # example and no other property. "displayName" (default) takes that one and answers 400 to any other;
    # "navigation" also takes `id` and `catalog/id` (packages), `catalog/id` and `accessPackage/id` (policies).
    access_package_list_filters: str = "displayName"
    # identitySources in the answer to creating a connected organization: "empty" as the create example shows,
    # "echo" the source that was sent (later reads show it either way).
    connected_organization_create_sources: str = "empty"
    # $expand on federation configurations, which no page documents: "refuse" (400) or "ignore".
    federation_expand: str = "refuse"
    # Whether listed federation configurations carry their domains, as the list and get examples show.
    federation_domains_inline: bool = True
    # Which domains findTenantInformationByDomainName resolves: "primary" (the parameter is a tenant's
    # primary domain) or "verified" (any domain the tenant verified).
    tenant_lookup_domains: str = "primary"
    # PATCH of a partner configuration naming a setting block as null. The partner resource page says a null
    # property inherits the default; neither it nor the update page says a PATCH may set one back to null.
    # "inherit" (default) stores the null, so the block inherits again; "refuse" answers 400.
    partner_null_setting: str = "inherit"

    # GET b2xUserFlows/{id}/apiConnectorConfiguration?$expand=...: the method page documents $expand ("expand");
    # the b2xIdentityUserFlow resource page says $expand is not supported for that method ("refuse": 400).
    api_connector_configuration_expand: str = "expand"
    # GET /auditLogs/signIns: signin-list.md states a known issue that makes it require Directory.Read.All as
    # well as AuditLog.Read.All (true, the default); false reads the logs with AuditLog.Read.All alone.
    sign_in_list_needs_directory_read: bool = True

    CHOICES: ClassVar[dict[str, frozenset[str]]] = {
        "access_package_policies_expand": frozenset({"expand", "ignore", "refuse"}),
        "access_package_list_filters": frozenset({"displayName", "navigation"}),
        "api_connector_configuration_expand": frozenset({"expand", "refuse"}),
        "assignment_target_unreplicated": frozenset({"notFound", "accept"}),
        "assignment_request_processing": frozenset({"onRead", "background"}),
        "assignment_request_while_open": frozenset({"accept", "refuse"}),
        "connected_organization_create_sources": frozenset({"empty", "echo"}),
        "federation_expand": frozenset({"refuse", "ignore"}),
        "expand_nested_select": frozenset({"honour", "ignore"}),
        "tenant_lookup_domains": frozenset({"primary", "verified"}),
        "partner_null_setting": frozenset({"inherit", "refuse"}),
        "lifecycle_policy_excluded_groups": frozenset({"bind", "inline"}),
        "lifecycle_policy_rule_methods": frozenset({"none", "patch"}),
        "lifecycle_policy_new_priority": frozenset({"lowest", "highest"}),
        "lifecycle_policy_report_before_processing": frozenset({"notFound", "notStarted"}),
        "lifecycle_policy_update_unlisted": frozenset({"accept", "refuse"}),
        "lifecycle_policy_inactivity_sign_ins": frozenset({"interactive", "all"}),
    }
    # Adding a sponsor that is already there: user-post-sponsors.md is silent. False (default) answers 400
    # Request_BadRequest with the directory's "added object references already exist" message, as Graph is
    # observed to answer for references; True answers 204 as for a new reference.
    duplicate_sponsor_no_content: bool = False
    # Permanently deleting a user from deletedItems with an application permission: the delete page says not
    # supported (default False: 403); the permissions changelog (Dec 2024) names User.DeleteRestore.All as its
    # least privileged permission (True).
    deleted_user_purge_app_only: bool = False
    # How long a deleted user stays in deletedItems before Entra deletes it permanently. The directory resource
    # and the restore page say "up to 30 days"; tenantsim keeps it exactly 30 days by default, and a smaller
    # value gives the shorter reading of "up to".
    deleted_item_retention_days: float = 30.0
    # Restoring a deleted user: directory-deleteditems-restore.md lists User.ReadWrite.All for users; the permissions
    # changelog names User.DeleteRestore.All as least privileged for it. False (default) follows the changelog;
    # True accepts only what the restore page lists.
    restore_needs_user_read_write_all: bool = False
    # $select nested in $expand=sponsors(...): user-list-sponsors.md shows $expand=sponsors($select=id,displayName);
    # known-issues.md says directory objects support no nested $select in $expand. "honour" (default) follows the
    # sponsors page; "ignore" answers the expanded sponsors with their default properties.
    expand_nested_select: str = "honour"
    # Whether the users list takes $expand together with signInActivity in $select: no page says. True (default)
    # answers both; False refuses the combination with 400, so a client must manage without one of them.
    expand_with_sign_in_activity: bool = True
    # json-batching.md: a batch's responses may come in another order than its requests. False (default)
    # answers them in reverse request order, so clients must correlate by id; True keeps the request order.
    batch_responses_in_request_order: bool = False
    # Guest lifecycle policies (contract: lifecycle-policies.md). How many guest policies a tenant holds: the
    # Graph pages say 10 per subject type (the default); the Entra guide says a tenant can have up to 20.
    guest_lifecycle_policy_limit: int = 10
    # Whether Graph refuses rule and grace values outside the ranges the admin center offers (the Entra guide);
    # the Graph pages state ranges only for invitationRedemptionThresholdInDays and a rule's grace period.
    lifecycle_policy_portal_ranges: bool = True
    # How scope.excludedGroups (a relationship of a complex property) is written and read: "bind" sends
    # excludedGroups@odata.bind and reads them with $expand=scope; "inline" sends and reads group objects.
    lifecycle_policy_excluded_groups: str = "bind"
    # Whether a policy's rules come inline on get and list without $expand, as the examples show.
    lifecycle_policy_rules_inline: bool = True
    # GET/PATCH of one rule on v1.0: the v1.0 rule page lists no methods ("none", the default); the beta pages
    # document them ("patch").
    lifecycle_policy_rule_methods: str = "none"
    # Where a new policy enters the priority order: no page says; "lowest" as a restored policy does.
    lifecycle_policy_new_priority: str = "lowest"
    # GET .../report before the policy was ever processed: 404 ("notFound") or a report whose scope processing
    # has "notStarted" ("notStarted"); no page shows either.
    lifecycle_policy_report_before_processing: str = "notFound"
    # A PATCH of a policy naming gracePeriodInDays or rules, which the update page's property table leaves out:
    # "accept" (the default) changes them, "refuse" answers 400 as for a property the update does not list.
    lifecycle_policy_update_unlisted: str = "accept"
    # Which sign-ins keep a guest active for an inactivity rule: the rule's page does not say. "interactive" (the
    # default) counts lastSignInDateTime and lastSuccessfulSignInDateTime; "all" adds the non-interactive ones.
    lifecycle_policy_inactivity_sign_ins: str = "interactive"
    # How long the server keeps an idle connection open: Graph documents no idle timeout. 30 (default) outlasts
    # the clients' own reuse (httpx 5 s, aiohttp 15 s); 5, uvicorn's default, closes a connection as a client
    # may be reusing it, so a request can meet a closed socket. Read at each new connection.
    idle_connection_seconds: float = 30.0

    def update(self, changes: dict[str, Any]) -> None:
        known = {f.name: f for f in fields(self)}
        for camel, value in changes.items():
            name = _snake(camel)
            if name not in known:
                raise bad_request(f"Unknown tenantsim config setting '{camel}'.")
            current = getattr(self, name)
            if isinstance(current, bool):
                if not isinstance(value, bool):
                    raise bad_request(f"'{camel}' must be a boolean.")
            elif isinstance(current, int | float):
                if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                    raise bad_request(f"'{camel}' must be a non-negative number.")
                value = type(current)(value)
            elif isinstance(current, str):
                if value not in self.CHOICES[name]:
                    raise bad_request(f"'{camel}' must be one of {', '.join(sorted(self.CHOICES[name]))}.")
            elif isinstance(current, list) and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
                raise bad_request(f"'{camel}' must be a list of strings.")
            setattr(self, name, value)
        if self.time_compression <= 0:
            raise bad_request("'timeCompression' must be positive.")

    def as_json(self) -> dict[str, Any]:
        return {_camel(k): v for k, v in asdict(self).items()}


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)
