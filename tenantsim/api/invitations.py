"""POST /invitations: the B2B invitation manager, with the policies Graph enforces at invite time.

Checks, in order: request shape; authorizationPolicy.allowInvitesFrom for an app-only caller; the B2B
management policy's domain allow/block list; the cross-tenant access inbound B2B collaboration setting for
the invited user's Entra tenant (partner policy, else the default). Then an existing guest with that address
is reused (same object id, even while it is still replicating), an address owned by a member is refused,
or a new guest is created in PendingAcceptance. invitedUserSponsors must name existing users or groups; they
become the sponsors of a guest the invitation creates. What Graph does with them when the invitation reuses
an existing guest is not documented: here nothing (the product adds a reused guest's sponsor through
POST /users/{id}/sponsors/$ref).

allowInvitesFrom for app-only callers: `none` refuses every invitation (both revisions of the
create-invitation page). `adminsAndGuestInviters` is where the revisions disagree: the older one says
app-only invitations fail when invitations are restricted to administrators, the current one names only
disabled invitations. By default (config appOnlyInvitesNeedGuestInviter) an app is refused there unless its
service principal holds the Guest Inviter role (config guestInviterAppIds, empty by default); with the knob
off, the current revision's reading, it may invite. `adminsGuestInvitersAndAllMembers` and `everyone`
allow app-only invitations.

resetRedemption (invitation-post.md, its Example 2; entra-docs reset-redemption-status.md): User.ReadWrite.All
is the least privileged application permission, so a User.Invite.All token is refused with 403. The invited
address must already be the guest's mail or one of its otherMails (Graph's status for a miss is not
documented: 400 BadRequest here). The guest keeps its object id and goes back to PendingAcceptance; its mail,
otherMails, proxyAddresses and userPrincipalName stay as they are unless config
resetRedemptionRewritesAddresses says the service rewrites them.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any
from urllib.parse import quote, urlsplit

from tenantsim.api.sponsors import invited_user_sponsors
from tenantsim.directory import UserRecord
from tenantsim.errors import GraphError, bad_request, not_found
from tenantsim.runtime import Call, GraphResponse
from tenantsim.seed import guest_upn

# Graph refuses these anywhere in the address; '.' and '-' may not start or end the local part.
_FORBIDDEN = set('~!#$%^&*()+=[]{}\\/|;:"<>?,')
_DOMAIN_RE = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$", re.IGNORECASE)
ACCEPTED_FIELDS = frozenset(
    [
        "invitedUserEmailAddress",
        "inviteRedirectUrl",
        "invitedUserDisplayName",
        "sendInvitationMessage",
        "invitedUserMessageInfo",
        "invitedUserType",
        "resetRedemption",
        "invitedUser",
        "invitedUserSponsors",
        "@odata.type",
    ]
)


def create_invitation(call: Call) -> GraphResponse:
    call.require("invitations.create")
    body = call.request.body
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON invitation object.", code="BadRequest")
    unknown = set(body) - ACCEPTED_FIELDS
    if unknown:
        raise bad_request(f"Invalid property '{sorted(unknown)[0]}'.", code="BadRequest")
    if body.get("resetRedemption") is True:
        call.require("invitations.resetRedemption")
    email = body.get("invitedUserEmailAddress")
    if not isinstance(email, str) or not is_valid_email(email):
        raise _invalid_value("invitedUserEmailAddress")
    redirect = body.get("inviteRedirectUrl")
    if not isinstance(redirect, str) or not _is_absolute_url(redirect):
        raise _invalid_value("inviteRedirectUrl")
    user_type = body.get("invitedUserType", "Guest")
    if user_type not in {"Guest", "Member"}:
        raise _invalid_value("invitedUserType")
    domain = email.rsplit("@", 1)[1].lower()
    sim = call.sim
    _check_invites_allowed(call)
    _check_domain_list(call, domain)
    _check_cross_tenant_access(call, domain)
    sponsor_ids = invited_user_sponsors(call, body.get("invitedUserSponsors"))

    reset = body.get("resetRedemption") is True
    invited_user = body.get("invitedUser") or {}
    if reset:
        record = _reset_redemption(call, invited_user, email)
        status = "PendingAcceptance"
    else:
        created = not sim.directory.owners_of_address(email)
        record, status = _find_or_create_guest(call, email, body.get("invitedUserDisplayName"), user_type)
        if created and sponsor_ids:
            sim.directory.sponsors[record.data["id"]] = sponsor_ids
    sim.counters.invitations += 1
    invitation_id = str(uuid.uuid4())
    message_info = body.get("invitedUserMessageInfo") or {}
    response = {
        "@odata.context": call.context_url("invitations/$entity"),
        "id": invitation_id,
        "inviteRedeemUrl": _redeem_url(sim.directory.tenant_id, record.data["id"], invitation_id),
        "invitedUserDisplayName": body.get("invitedUserDisplayName"),
        "invitedUserType": user_type,
        "invitedUserEmailAddress": email,
        "sendInvitationMessage": bool(body.get("sendInvitationMessage", False)),
        "resetRedemption": reset,
        "inviteRedirectUrl": redirect,
        "status": status,
        "invitedUserMessageInfo": {
            "messageLanguage": message_info.get("messageLanguage"),
            "customizedMessageBody": message_info.get("customizedMessageBody"),
            "ccRecipients": message_info.get("ccRecipients") or [{"emailAddress": {"name": None, "address": None}}],
        },
        "invitedUser": {"id": record.data["id"]},
    }
    return GraphResponse(201, response)


def list_invitations(call: Call) -> GraphResponse:
    raise GraphError(405, "Request_BadRequest", "Specified HTTP method is not allowed for the request target.")


def is_valid_email(address: str) -> bool:
    local, sep, domain = address.rpartition("@")
    if not sep or not local or not domain or len(address) > 254:
        return False
    if any(c in _FORBIDDEN or c.isspace() for c in address) or "@" in local:
        return False
    if local[0] in ".-" or local[-1] in ".-" or ".." in local:
        return False
    return bool(_DOMAIN_RE.match(domain))


def _is_absolute_url(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in {"http", "https"} and bool(parts.netloc)


def _invalid_value(field: str) -> GraphError:
    return GraphError(400, "BadRequest", f"Invalid value specified for property '{field}' of resource 'Invitation'.")


def _redeem_url(tenant_id: str, user_id: str, invitation_id: str) -> str:
    inner = (
        f"https://invitations.microsoft.com/redeem/?tenant={tenant_id}&user={user_id}"
        f"&ticket={uuid.uuid5(uuid.NAMESPACE_URL, invitation_id).hex}&ver=2.0"
    )
    return f"https://login.microsoftonline.com/redeem?rd={quote(inner, safe='')}"


# --- policies enforced at invite time --------------------------------------------------------------


def _check_invites_allowed(call: Call) -> None:
    setting = call.sim.directory.authorization_policy.get("allowInvitesFrom", "everyone")
    config = call.sim.config
    restricted = (
        setting == "adminsAndGuestInviters"
        and config.app_only_invites_need_guest_inviter
        and call.caller.app_id not in config.guest_inviter_app_ids
    )
    if setting == "none" or restricted:
        raise GraphError(
            403,
            "Authorization_RequestDenied",
            "Guest invitations are not allowed for this caller: the tenant restricts who can invite "
            f"(allowInvitesFrom = {setting}).",
        )


def b2b_domain_lists(call: Call) -> tuple[list[str], list[str]]:
    """(allowed, blocked) domains of the organization-default B2B management policy; both empty = open."""
    policy = call.sim.directory.organization_default_b2b_policy()
    if policy is None:
        return [], []
    inner = parse_definition(policy.get("definition") or [])
    lists = _ci_get(_ci_get(inner, "B2BManagementPolicy") or {}, "InvitationsAllowedAndBlockedDomainsPolicy") or {}
    allowed = [d.lower() for d in _ci_get(lists, "AllowedDomains") or []]
    blocked = [d.lower() for d in _ci_get(lists, "BlockedDomains") or []]
    return allowed, blocked


def parse_definition(definition: list[str]) -> dict[str, Any]:
    if not definition:
        return {}
    text = definition[0]
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError:
        # The service's JSON reader also takes single-quoted strings (as in the beta doc's example).
        parsed = json.loads(text.replace("'", '"'))
    if not isinstance(parsed, dict):
        raise ValueError("definition must hold a JSON object")
    return parsed


def _ci_get(mapping: dict[str, Any], key: str) -> Any:
    return next((v for k, v in mapping.items() if k.lower() == key.lower()), None)


def _domain_matches(domain: str, listed: list[str]) -> bool:
    return any(domain == entry or domain.endswith("." + entry) for entry in listed)


def _check_domain_list(call: Call, domain: str) -> None:
    allowed, blocked = b2b_domain_lists(call)
    if (allowed and not _domain_matches(domain, allowed)) or (blocked and _domain_matches(domain, blocked)):
        raise GraphError(400, "BadRequest", f"The domain '{domain}' is currently blocked by your invitation policy.")


def _check_cross_tenant_access(call: Call, domain: str) -> None:
    directory = call.sim.directory
    tenant_id = (directory.domains.get(domain) or {}).get("tenantId")
    if directory.domains.get(domain, {}).get("identityProvider") != "AzureAD" or not tenant_id:
        return  # cross-tenant access settings govern Entra organisations only
    partner = directory.xtap_partners.get(tenant_id)
    setting = (partner or {}).get("b2bCollaborationInbound") or directory.xtap_default["b2bCollaborationInbound"]
    users = (setting or {}).get("usersAndGroups") or directory.xtap_default["b2bCollaborationInbound"]["usersAndGroups"]
    all_users = any(t.get("target") == "AllUsers" for t in users.get("targets", []))
    if users.get("accessType") == "blocked" and all_users:
        raise GraphError(
            400,
            "BadRequest",
            "This invitation is blocked by cross-tenant access settings. Admins in both your organization and the "
            "invited user's organization must configure cross-tenant access settings to allow the invitation.",
        )


# --- the guest object -----------------------------------------------------------------------------


def _find_or_create_guest(call: Call, email: str, display_name: Any, user_type: str) -> tuple[UserRecord, str]:
    directory = call.sim.directory
    owners = directory.owners_of_address(email)
    guests = [r for r in owners if r.data.get("userType") == "Guest"]
    if guests:
        existing = guests[0]
        state = existing.data.get("externalUserState")
        return existing, "Completed" if state == "Accepted" else "PendingAcceptance"
    if owners:
        raise GraphError(
            400,
            "BadRequest",
            f"The invited user already exists in the directory as object ID {owners[0].data['id']}.",
        )
    now = call.sim.now_iso()
    upn = guest_upn_for(directory.initial_domain, email)
    user = {
        "id": str(uuid.uuid4()),
        "displayName": display_name if isinstance(display_name, str) else email.split("@")[0],
        "givenName": None,
        "surname": None,
        "mail": email,
        "mailNickname": upn.split("@")[0].replace("#", "_"),
        "userPrincipalName": upn,
        "businessPhones": [],
        "jobTitle": None,
        "mobilePhone": None,
        "officeLocation": None,
        "preferredLanguage": None,
        "companyName": None,
        "department": None,
        "accountEnabled": True,
        "userType": user_type,
        "createdDateTime": now,
        "creationType": "Invitation",
        "externalUserState": "PendingAcceptance",
        "externalUserStateChangeDateTime": now,
        "identities": [
            {"signInType": "userPrincipalName", "issuer": directory.initial_domain, "issuerAssignedId": upn}
        ],
        "otherMails": [email],
        "proxyAddresses": [f"SMTP:{email}"],
        "signInActivity": None,
        "signInSessionsValidFromDateTime": now,
        "employeeLeaveDateTime": None,
        "deletedDateTime": None,
    }
    record = directory.add_user(user, visible_after=call.sim.clock() + call.sim.config.replication_delay_seconds)
    return record, "PendingAcceptance"


def guest_upn_for(initial_domain: str, email: str) -> str:
    return guest_upn(email).rsplit("@", 1)[0] + "@" + initial_domain


def _reset_redemption(call: Call, invited_user: Any, email: str) -> UserRecord:
    directory = call.sim.directory
    user_id = invited_user.get("id") if isinstance(invited_user, dict) else None
    if not isinstance(user_id, str):
        raise bad_request("resetRedemption requires invitedUser with the id of an existing user.", code="BadRequest")
    record = directory.users.get(user_id)
    if record is None or record.visible_after > call.sim.clock():
        raise not_found(user_id)
    others = [r for r in directory.owners_of_address(email) if r.data["id"] != user_id]
    if others:
        raise GraphError(
            400, "BadRequest", f"The invited user already exists in the directory as object ID {others[0].data['id']}."
        )
    if email.lower() not in _addresses_of(record.data):
        raise GraphError(
            400,
            "BadRequest",
            f"The invited user email address '{email}' is not an email address of user {user_id}: add it to the "
            "user's otherMails (or mail) before resetting its redemption.",
        )
    now = call.sim.now_iso()
    changes: dict[str, Any] = {
        "externalUserState": "PendingAcceptance",
        "externalUserStateChangeDateTime": now,
    }
    upn = record.data["userPrincipalName"]
    if call.sim.config.reset_redemption_rewrites_addresses and record.data.get("mail", "").lower() != email.lower():
        upn = guest_upn_for(directory.initial_domain, email)
        proxies = [p for p in record.data.get("proxyAddresses") or [] if p.lower() != f"smtp:{email.lower()}"]
        changes.update(
            mail=email,
            proxyAddresses=[f"SMTP:{email}", *(f"smtp:{p[5:]}" if p.startswith("SMTP:") else p for p in proxies)],
            userPrincipalName=upn,
        )
    changes["identities"] = [
        {"signInType": "userPrincipalName", "issuer": directory.initial_domain, "issuerAssignedId": upn}
    ]
    directory.update_user(user_id, changes)
    return record


def _addresses_of(user: dict[str, Any]) -> set[str]:
    """The addresses a reset may invite: the user's mail and its otherMails."""
    return {a.lower() for a in [user.get("mail"), *(user.get("otherMails") or [])] if isinstance(a, str) and a}
