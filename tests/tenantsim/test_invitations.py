"""POST /invitations: validation, reuse, reset redemption and the policies enforced at invite time."""

from __future__ import annotations

import pytest

from tenantsim.seed import FABRIKAM_TENANT_ID, domain_list_definition
from tenantsim.tokens import DEFAULT_APP_ID
from tests.tenantsim.conftest import guests, members

INVITE = ("User.Invite.All",)
REDIRECT = "https://myapps.microsoft.com"


def invite(graph, email: str, **extra):
    body = {"invitedUserEmailAddress": email, "inviteRedirectUrl": REDIRECT, **extra}
    return graph.request("POST", "/v1.0/invitations", roles=INVITE, json=body)


def test_an_invitation_creates_a_pending_guest_with_an_ext_upn(graph, admin):
    """201 with invitedUser.id; the new user is a PendingAcceptance guest with the #EXT# UPN and identity."""
    response = invite(graph, "Zed.New@Fabrikam.com", invitedUserDisplayName="Zed New")
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "PendingAcceptance" and body["inviteRedeemUrl"].startswith("https://login.microsoftonline")
    user = next(u for u in admin.snapshot()["users"] if u["id"] == body["invitedUser"]["id"])
    assert user["userType"] == "Guest" and user["externalUserState"] == "PendingAcceptance"
    assert user["userPrincipalName"] == "Zed.New_Fabrikam.com#EXT#@contoso.onmicrosoft.com"
    assert user["identities"] == [
        {
            "signInType": "userPrincipalName",
            "issuer": "contoso.onmicrosoft.com",
            "issuerAssignedId": user["userPrincipalName"],
        }
    ]
    assert user["mail"] == "Zed.New@Fabrikam.com" and user["creationType"] == "Invitation"
    assert body["id"] != body["invitedUser"]["id"]


def test_reinviting_reuses_the_guest_even_during_replication_delay(graph, admin):
    """Two invitations for one address (case-insensitive) give one object, even before it replicates."""
    admin.configure(replicationDelaySeconds=30)
    first = invite(graph, "twice@fabrikam.com").json()["invitedUser"]["id"]
    second = invite(graph, "TWICE@fabrikam.com").json()["invitedUser"]["id"]
    assert first == second
    assert sum(1 for u in admin.snapshot()["users"] if u["mail"].lower() == "twice@fabrikam.com") == 1


def test_reinviting_a_redeemed_guest_reports_completed(graph, admin):
    """An existing accepted guest is reused and the invitation status is Completed."""
    accepted = next(g for g in guests(admin) if g["externalUserState"] == "Accepted")
    body = invite(graph, accepted["mail"]).json()
    assert body["invitedUser"]["id"] == accepted["id"] and body["status"] == "Completed"


@pytest.mark.parametrize(
    "address",
    [
        "a,b@fabrikam.com",
        "a b@fabrikam.com",
        ".dot@fabrikam.com",
        "dash-@fabrikam.com",
        "no-at-sign",
        "x@nodot",
        'q"uote@fabrikam.com',
        "semi;colon@fabrikam.com",
    ],
)
def test_addresses_graph_refuses_are_400(graph, address):
    """Characters and shapes Graph refuses in invitedUserEmailAddress are a 400 BadRequest."""
    response = invite(graph, address)
    assert response.status_code == 400 and response.json()["error"]["code"] == "BadRequest"


def test_a_relative_or_missing_redirect_url_is_400(graph):
    """inviteRedirectUrl must be an absolute http(s) URL."""
    body = {"invitedUserEmailAddress": "ok@fabrikam.com", "inviteRedirectUrl": "/relative"}
    assert graph.request("POST", "/v1.0/invitations", roles=INVITE, json=body).status_code == 400
    del body["inviteRedirectUrl"]
    assert graph.request("POST", "/v1.0/invitations", roles=INVITE, json=body).status_code == 400


def test_an_invited_user_type_other_than_guest_or_member_is_400(graph):
    """invitedUserType is Guest (the default) or Member."""
    assert invite(graph, "typed@fabrikam.com", invitedUserType="Admin").status_code == 400
    assert invite(graph, "typed@fabrikam.com", invitedUserType="Guest").status_code == 201


def test_an_unknown_body_property_is_400(graph, admin):
    """A property the invitation type does not declare is refused and creates nobody."""
    response = invite(graph, "unknown.prop@fabrikam.com", invitedUserShoeSize=9)
    assert response.status_code == 400 and "invitedUserShoeSize" in response.json()["error"]["message"]
    assert not any(g["mail"] == "unknown.prop@fabrikam.com" for g in guests(admin))


def test_an_address_owned_by_a_member_is_refused(graph, admin):
    """mail or otherMails of a member cannot be invited; no guest is created."""
    employee = members(admin)[0]
    assert invite(graph, employee["mail"]).status_code == 400
    assert invite(graph, employee["otherMails"][0]).status_code == 400
    assert not any(g["mail"] == employee["otherMails"][0] for g in guests(admin))


RESET = ("User.ReadWrite.All",)


def reset(graph, user_id: str, email: str, roles: tuple[str, ...] = RESET):
    body = {
        "invitedUserEmailAddress": email,
        "inviteRedirectUrl": REDIRECT,
        "resetRedemption": True,
        "invitedUser": {"id": user_id},
    }
    return graph.request("POST", "/v1.0/invitations", roles=roles, json=body)


def _accepted(admin) -> dict:
    return next(g for g in guests(admin) if g["externalUserState"] == "Accepted")


def _user(admin, user_id: str) -> dict:
    return next(u for u in admin.snapshot()["users"] if u["id"] == user_id)


def test_reset_redemption_keeps_the_object_and_returns_it_to_pending_acceptance(graph, admin):
    """resetRedemption with invitedUser.id at the guest's own mail: 201, same id, PendingAcceptance again."""
    accepted = _accepted(admin)
    response = reset(graph, accepted["id"], accepted["mail"])
    assert response.status_code == 201
    body = response.json()
    assert body["invitedUser"]["id"] == accepted["id"] and body["resetRedemption"] is True
    assert body["status"] == "PendingAcceptance"
    user = _user(admin, accepted["id"])
    assert user["externalUserState"] == "PendingAcceptance"
    assert user["userPrincipalName"] == accepted["userPrincipalName"] and user["mail"] == accepted["mail"]


@pytest.mark.parametrize("roles", [("User.Invite.All",), ("User.Invite.All", "User.ReadUpdate.All", "User.Read.All")])
def test_reset_redemption_without_user_readwrite_all_is_403_and_changes_nothing(graph, admin, roles):
    """Resetting needs User.ReadWrite.All (or Directory.ReadWrite.All): User.Invite.All alone is Graph's 403."""
    accepted = _accepted(admin)
    response = reset(graph, accepted["id"], accepted["mail"], roles=roles)
    assert response.status_code == 403 and response.json()["error"]["code"] == "Authorization_RequestDenied"
    assert _user(admin, accepted["id"])["externalUserState"] == "Accepted"
    assert admin.counters()["invitations"] == 0


@pytest.mark.parametrize("roles", [("User.ReadWrite.All",), ("Directory.ReadWrite.All",)])
def test_reset_redemption_is_allowed_with_user_or_directory_readwrite_all(graph, admin, roles):
    """Either documented permission lets the reset through; a plain invitation still needs only User.Invite.All."""
    accepted = _accepted(admin)
    assert reset(graph, accepted["id"], accepted["mail"], roles=roles).status_code == 201
    assert invite(graph, "plain.invite@fabrikam.com").status_code == 201


def test_reset_to_an_address_the_guest_does_not_have_is_400_and_changes_nothing(graph, admin):
    """The new address must already be the guest's mail or in its otherMails: otherwise 400, guest untouched."""
    accepted = _accepted(admin)
    response = reset(graph, accepted["id"], "not.yet.added@fabrikam.co.uk")
    assert response.status_code == 400 and response.json()["error"]["code"] == "BadRequest"
    assert "otherMails" in response.json()["error"]["message"]
    assert _user(admin, accepted["id"]) == accepted
    assert admin.counters()["invitations"] == 0


def test_reset_to_an_address_added_to_other_mails_leaves_mail_and_upn_alone(graph, admin):
    """Add the address to otherMails (User-Mail.ReadWrite.All), then reset: same object, mail and UPN unchanged."""
    accepted = _accepted(admin)
    patch = graph.request(
        "PATCH",
        f"/v1.0/users/{accepted['id']}",
        roles=("User-Mail.ReadWrite.All",),
        json={"otherMails": [*accepted["otherMails"], "moved@fabrikam.co.uk"]},
    )
    assert patch.status_code == 204
    body = reset(graph, accepted["id"], "Moved@Fabrikam.co.uk").json()
    assert body["invitedUser"]["id"] == accepted["id"] and body["invitedUserEmailAddress"] == "Moved@Fabrikam.co.uk"
    user = _user(admin, accepted["id"])
    assert user["externalUserState"] == "PendingAcceptance"
    assert user["mail"] == accepted["mail"] and user["userPrincipalName"] == accepted["userPrincipalName"]
    assert user["proxyAddresses"] == accepted["proxyAddresses"]
    assert "moved@fabrikam.co.uk" in user["otherMails"]


def test_reset_rewrites_mail_and_upn_only_when_configured(graph, admin):
    """resetRedemptionRewritesAddresses (the older reading): the reset moves mail, proxyAddresses and the UPN."""
    admin.configure(resetRedemptionRewritesAddresses=True)
    accepted = _accepted(admin)
    graph.request(
        "PATCH",
        f"/v1.0/users/{accepted['id']}",
        roles=RESET,
        json={"otherMails": [*accepted["otherMails"], "moved@fabrikam.co.uk"]},
    )
    assert reset(graph, accepted["id"], "moved@fabrikam.co.uk").status_code == 201
    user = _user(admin, accepted["id"])
    assert user["mail"] == "moved@fabrikam.co.uk" and user["proxyAddresses"][0] == "SMTP:moved@fabrikam.co.uk"
    assert user["userPrincipalName"].startswith("moved_fabrikam.co.uk#EXT#@")
    assert graph.get(f"/v1.0/users?$filter=mail eq '{accepted['mail']}'").json()["value"] == []


def test_reset_to_an_address_of_another_user_is_400(graph, admin):
    """An address another object owns cannot be the reset's address, even if listed on the guest."""
    first, second = [g for g in guests(admin) if g["externalUserState"] == "Accepted"][:2]
    response = reset(graph, first["id"], second["mail"])
    assert response.status_code == 400 and "already exists" in response.json()["error"]["message"]


def test_reset_redemption_of_an_unknown_user_is_404(graph):
    """resetRedemption needs an existing invitedUser.id."""
    response = reset(graph, "00000000-0000-4000-8000-000000000000", "x@fabrikam.com")
    assert response.status_code == 404


def test_the_domain_allow_list_of_the_b2b_management_policy_is_enforced(graph, admin):
    """With an allow list, other domains are refused; listed ones (and subdomains) pass."""
    admin.seed(builtin="locked-down", guests=10)
    # The locked-down posture restricts invitations to Guest Inviters; the deployment assigns the app that role.
    admin.configure(guestInviterAppIds=[DEFAULT_APP_ID])
    refused = invite(graph, "someone@gmail.com")
    assert refused.status_code == 400 and "blocked by your invitation policy" in refused.json()["error"]["message"]
    assert invite(graph, "someone@adatum.com").status_code == 201


def test_the_domain_block_list_is_enforced(graph, admin):
    """A blocked domain is refused; everything else passes."""
    graph.request(
        "POST",
        "/beta/policies/b2bManagementPolicies",
        roles=("Policy.ReadWrite.B2BManagementPolicy",),
        json={
            "displayName": "B2B",
            "description": "Invitation domain block list",
            "isOrganizationDefault": True,
            "definition": [domain_list_definition([], ["gmail.com"])],
        },
    )
    assert invite(graph, "a@gmail.com").status_code == 400
    assert invite(graph, "a@outlook.com").status_code == 201


def test_cross_tenant_access_blocks_invitations_from_a_blocked_tenant(graph, admin):
    """Default inbound B2B collaboration blocked: Entra partners without an allowing policy are refused."""
    admin.seed(builtin="locked-down", guests=10)
    # The locked-down posture restricts invitations to Guest Inviters; the deployment assigns the app that role.
    admin.configure(guestInviterAppIds=[DEFAULT_APP_ID])
    graph.request(
        "DELETE",
        f"/v1.0/policies/crossTenantAccessPolicy/partners/{FABRIKAM_TENANT_ID}",
        roles=("Policy.ReadWrite.CrossTenantAccess",),
    )
    refused = invite(graph, "blocked@fabrikam.com")
    assert refused.status_code == 400 and "cross-tenant access" in refused.json()["error"]["message"]
    assert invite(graph, "allowed@northwindtraders.com").status_code == 201
    assert invite(graph, "no-tenant@adatum.com").status_code == 201


def test_allow_invites_from_none_refuses_app_only_invitations(graph):
    """allowInvitesFrom = none: every invitation is refused with 403."""
    graph.request(
        "PATCH",
        "/v1.0/policies/authorizationPolicy",
        roles=("Policy.ReadWrite.Authorization",),
        json={"allowInvitesFrom": "none"},
    )
    response = invite(graph, "a@fabrikam.com")
    assert response.status_code == 403 and response.json()["error"]["code"] == "Authorization_RequestDenied"


def _restrict_invitations_to_admins_and_guest_inviters(graph) -> None:
    graph.request(
        "PATCH",
        "/v1.0/policies/authorizationPolicy",
        roles=("Policy.ReadWrite.Authorization",),
        json={"allowInvitesFrom": "adminsAndGuestInviters"},
    )


def test_admins_and_guest_inviters_needs_the_guest_inviter_role_for_the_app(graph, admin):
    """adminsAndGuestInviters: an app holding Guest Inviter may invite; another app may not."""
    # Opt in: the default tenant gives no app the role, as a real tenant does until it is assigned.
    admin.configure(guestInviterAppIds=[DEFAULT_APP_ID])
    _restrict_invitations_to_admins_and_guest_inviters(graph)
    assert invite(graph, "a@fabrikam.com").status_code == 201
    other_app = graph.as_(*INVITE, app_id="11111111-2222-4333-8444-555555555555")
    body = {"invitedUserEmailAddress": "b@fabrikam.com", "inviteRedirectUrl": REDIRECT}
    assert graph._http.post("/v1.0/invitations", headers=other_app, json=body).status_code == 403


def test_by_default_no_app_holds_guest_inviter_so_admins_and_guest_inviters_refuses_app_only(graph, admin):
    """Out of the box the product's app is no Guest Inviter: the older doc revision's refusal applies."""
    _restrict_invitations_to_admins_and_guest_inviters(graph)
    response = invite(graph, "a@fabrikam.com")
    assert response.status_code == 403 and response.json()["error"]["code"] == "Authorization_RequestDenied"
    assert "adminsAndGuestInviters" in response.json()["error"]["message"]


def test_the_current_doc_reading_lets_app_only_invite_under_admins_and_guest_inviters(graph, admin):
    """appOnlyInvitesNeedGuestInviter off (the current revision names only disabled invitations): 201."""
    admin.configure(appOnlyInvitesNeedGuestInviter=False)
    _restrict_invitations_to_admins_and_guest_inviters(graph)
    assert invite(graph, "a@fabrikam.com").status_code == 201
    graph.request(
        "PATCH",
        "/v1.0/policies/authorizationPolicy",
        roles=("Policy.ReadWrite.Authorization",),
        json={"allowInvitesFrom": "none"},
    )
    assert invite(graph, "b@fabrikam.com").status_code == 403


def test_get_on_invitations_is_not_allowed(graph):
    """There is no list of invitations: GET is a 405."""
    assert graph.get("/v1.0/invitations", roles=INVITE).status_code == 405


def test_invitations_are_counted(graph, admin):
    """The inspection counters count invitations and writes."""
    invite(graph, "c1@fabrikam.com")
    invite(graph, "c2@fabrikam.com")
    counters = admin.counters()
    assert counters["invitations"] == 2 and counters["writes"] == 2
