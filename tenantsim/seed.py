"""The seeded tenant: Contoso with its partners, members, guests in every lifecycle state, groups and policies.

Deterministic: the same (guests, random seed, anchor, posture) always gives the same document. The anchor is
the moment the tenant is "now" for the generated dates (today at midnight UTC unless given).
Two postures: "fresh" (a new tenant, wide open: service defaults) and "locked-down" (what
config/desired-state.sample.yaml asks for; tests/tenantsim checks the two agree).
"""

from __future__ import annotations

import json
import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

HOME_TENANT_ID = "3f2d6a1e-8c4b-4e7a-9b1d-2c5e7f9a0b13"
INITIAL_DOMAIN = "contoso.onmicrosoft.com"
VERIFIED_DOMAIN = "contoso.com"
FABRIKAM_COLLABORATORS_GROUP_ID = "0b1f7a2e-5c3d-4e8f-9a6b-7c8d9e0f1a2b"
NORTHWIND_SUPPLY_CHAIN_GROUP_ID = "1c2e8b3f-6d4e-4f9a-8b7c-8d9e0f1a2b3c"
WOODGROVE_AUDIT_GROUP_ID = "2d3f9c4a-7e5f-4a0b-9c8d-9e0f1a2b3c4d"
ADATUM_MARKETING_GROUP_ID = "3e4a0d5b-8f6a-4b1c-8d9e-0f1a2b3c4d5e"
PARTNER_EXTRANET_GROUP_ID = "4f5b1e6c-9a7b-4c2d-9e0f-1a2b3c4d5e6f"  # a Microsoft 365 group: guest reviews cover it
PROTECTED_GROUP_ID = "7d3e9f1a-2b4c-4d6e-8f0a-1b2c3d4e5f6a"
PARTNER_PORTAL_APP_ID = "4b6f2c1d-8e9a-4f3b-a5c7-d9e1f3a5b7c9"
FABRIKAM_TENANT_ID = "9a3d526c-1b7e-4c2f-8d6a-5e0f3b7c9d21"
NORTHWIND_TENANT_ID = "5c8e1f2a-6d3b-4a9e-b7c0-1d2e3f4a5b6c"
WOODGROVE_TENANT_ID = "e1b2c3d4-5f6a-4b7c-8d9e-0f1a2b3c4d5e"

GUEST_USER_ROLE_ID = "10dae51f-b6af-4016-8d66-8c2a99b929b3"
RESTRICTED_GUEST_USER_ROLE_ID = "2af84b1e-32c8-42b7-82bc-daa82404023b"
EMPTY_SIGN_IN = "0001-01-01T00:00:00Z"
POSTURES = ("fresh", "locked-down")
DEFAULT_GUESTS = 300

EXTERNAL_TENANTS: list[dict[str, Any]] = [
    {
        "tenantId": HOME_TENANT_ID,
        "displayName": "Contoso",
        "defaultDomainName": INITIAL_DOMAIN,
        "federationBrandName": None,
    },
    {
        "tenantId": FABRIKAM_TENANT_ID,
        "displayName": "Fabrikam, Inc.",
        "defaultDomainName": "fabrikam.onmicrosoft.com",
        "federationBrandName": None,
    },
    {
        "tenantId": NORTHWIND_TENANT_ID,
        "displayName": "Northwind Traders",
        "defaultDomainName": "northwindtraders.onmicrosoft.com",
        "federationBrandName": None,
    },
    {
        "tenantId": WOODGROVE_TENANT_ID,
        "displayName": "Woodgrove Bank",
        "defaultDomainName": "woodgrovebank.onmicrosoft.com",
        "federationBrandName": "Woodgrove",
    },
]

# Which identity provider answers for each known email domain (AzureAD domains name their tenant, and
# `primary` marks the tenant's primary domain: fabrikam.co.uk is a second verified domain of Fabrikam).
DOMAINS: dict[str, dict[str, Any]] = {
    INITIAL_DOMAIN: {"identityProvider": "AzureAD", "tenantId": HOME_TENANT_ID},
    VERIFIED_DOMAIN: {"identityProvider": "AzureAD", "tenantId": HOME_TENANT_ID, "primary": True},
    "fabrikam.com": {"identityProvider": "AzureAD", "tenantId": FABRIKAM_TENANT_ID, "primary": True},
    "fabrikam.co.uk": {"identityProvider": "AzureAD", "tenantId": FABRIKAM_TENANT_ID},
    "northwindtraders.com": {"identityProvider": "AzureAD", "tenantId": NORTHWIND_TENANT_ID, "primary": True},
    "woodgrovebank.com": {"identityProvider": "AzureAD", "tenantId": WOODGROVE_TENANT_ID, "primary": True},
    "adatum.com": {"identityProvider": "Google", "tenantId": None},
    "gmail.com": {"identityProvider": "Google", "tenantId": None},
    "outlook.com": {"identityProvider": "MicrosoftAccount", "tenantId": None},
    "proseware.com": {"identityProvider": "EmailOTP", "tenantId": None},
}

# (domain, weight): partner organisations, Adatum (no Entra tenant), consumer domains, one unknown org.
GUEST_DOMAINS: list[tuple[str, int]] = [
    ("fabrikam.com", 22),
    ("fabrikam.co.uk", 6),
    ("northwindtraders.com", 14),
    ("woodgrovebank.com", 10),
    ("adatum.com", 16),
    ("gmail.com", 10),
    ("outlook.com", 8),
    ("proseware.com", 6),
]
# (state, weight): the lifecycle spread the product's rules act on.
GUEST_STATES: list[tuple[str, int]] = [
    ("pending", 14),
    ("pending_recent", 4),
    ("active", 42),
    ("inactive", 16),
    ("never_signed_in", 7),
    ("disabled", 10),
    ("new_active", 7),
]

FIRST_NAMES = [
    "Ada",
    "Alan",
    "Alex",
    "Amara",
    "Ana",
    "Anders",
    "Aisha",
    "Ben",
    "Bianca",
    "Carlos",
    "Chen",
    "Chloe",
    "Dan",
    "Dana",
    "Diego",
    "Elena",
    "Emma",
    "Eric",
    "Farah",
    "Felix",
    "Grace",
    "Hana",
    "Hugo",
    "Ines",
    "Ivan",
    "Jamal",
    "Jana",
    "Jin",
    "Jonas",
    "Julia",
    "Kai",
    "Karin",
    "Kofi",
    "Lara",
    "Leo",
    "Lina",
    "Luca",
    "Maya",
    "Mei",
    "Mateo",
    "Mila",
    "Nadia",
    "Noah",
    "Nora",
    "Olga",
    "Omar",
    "Pablo",
    "Priya",
    "Quinn",
    "Rahul",
    "Rosa",
    "Sami",
    "Sara",
    "Sofia",
    "Tariq",
    "Tess",
    "Theo",
    "Uma",
    "Vera",
    "Wei",
    "Yara",
    "Yusuf",
    "Zoe",
]
LAST_NAMES = [
    "Abbott",
    "Alvarez",
    "Bauer",
    "Becker",
    "Brooks",
    "Castro",
    "Chen",
    "Costa",
    "Dahl",
    "Diaz",
    "Eriksen",
    "Fischer",
    "Garcia",
    "Grant",
    "Haas",
    "Ito",
    "Jansen",
    "Kaur",
    "Kim",
    "Klein",
    "Kowalski",
    "Lang",
    "Larsen",
    "Lopez",
    "Meyer",
    "Moreau",
    "Nakamura",
    "Nguyen",
    "Novak",
    "Okafor",
    "Olsen",
    "Patel",
    "Perez",
    "Quinn",
    "Rossi",
    "Sato",
    "Schmidt",
    "Silva",
    "Singh",
    "Suzuki",
    "Tanaka",
    "Torres",
    "Vargas",
    "Weber",
    "Wong",
    "Yilmaz",
    "Zhang",
]
JOBS = ("Engineer", "Project Manager", "Consultant", "Analyst", "Designer", "Account Manager", "Auditor")
DEPARTMENTS = ("Engineering", "Sales", "Finance", "Legal", "Marketing", "Operations", "Procurement")


def build_seed(
    guests: int = DEFAULT_GUESTS,
    random_seed: int = 0,
    posture: str = "fresh",
    anchor: datetime | None = None,
) -> dict[str, Any]:
    """A complete seed document (plain JSON-able data) for the given size, randomness and posture."""
    if posture not in POSTURES:
        raise ValueError(f"unknown posture {posture!r}; choose one of {POSTURES}")
    now = anchor or datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    rng = random.Random(random_seed)
    names = _NameSource(rng)
    members = [_member(rng, names, now, index) for index in range(max(12, guests // 8))]
    sponsors = [m["id"] for m in members[: max(3, len(members) // 3)]]
    guest_users = [_guest(rng, names, now) for _ in range(guests)]
    fabrikam_guests = [g["id"] for g in guest_users if g["mail"].endswith(("@fabrikam.com", "@fabrikam.co.uk"))]
    accepted = [g["id"] for g in guest_users if g["externalUserState"] == "Accepted"]
    return {
        "name": posture,
        "anchor": _iso(now),
        "tenant": {
            "id": HOME_TENANT_ID,
            "displayName": "Contoso",
            "initialDomain": INITIAL_DOMAIN,
            "verifiedDomains": [INITIAL_DOMAIN, VERIFIED_DOMAIN],
        },
        "externalTenants": [dict(t) for t in EXTERNAL_TENANTS],
        "domains": {domain: dict(info) for domain, info in DOMAINS.items()},
        "users": members + guest_users,
        "sponsors": {g["id"]: [rng.choice(sponsors)] for g in guest_users},
        "groups": [
            _group(
                FABRIKAM_COLLABORATORS_GROUP_ID,
                "Fabrikam collaborators",
                "Fabrikam guests allowed into Contoso resources.",
                fabrikam_guests[:25],
            ),
            _group(
                PROTECTED_GROUP_ID,
                "Guest lifecycle exclusions",
                "Guests the lifecycle automation never disables or deletes.",
                accepted[:3],
            ),
            _group(_uuid(rng), "All employees", "Every Contoso employee.", [m["id"] for m in members]),
            *(_group(*group, []) for group in PARTNER_RESOURCE_GROUPS[1:]),
            _group(
                PARTNER_EXTRANET_GROUP_ID,
                "Contoso partner extranet",
                "The Microsoft 365 group (and team) partners' guests collaborate in.",
                accepted[3:15],
                group_types=["Unified"],
            ),
        ],
        "servicePrincipals": [
            {"id": _uuid(rng), "appId": PARTNER_PORTAL_APP_ID, "displayName": "Contoso Partner Portal"},
        ],
        "deletedItems": [],
        "policies": _locked_down_policies() if posture == "locked-down" else _fresh_policies(),
    }


# --- users ----------------------------------------------------------------------------------------


class _NameSource:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.used: set[str] = set()

    def person(self, domain: str) -> tuple[str, str, str]:
        first, last = self.rng.choice(FIRST_NAMES), self.rng.choice(LAST_NAMES)
        local = f"{first}.{last}".lower()
        candidate, n = local, 1
        while f"{candidate}@{domain}" in self.used:
            n += 1
            candidate = f"{local}{n}"
        self.used.add(f"{candidate}@{domain}")
        return first, last, candidate


# The first employees are fixed, well-known people (sponsors in examples and demo tickets).
NAMED_MEMBERS = (("Megan", "Bowen"), ("Adele", "Vance"), ("Alex", "Wilber"), ("Lee", "Gu"), ("Nestor", "Wilke"))


def _member(rng: random.Random, names: _NameSource, now: datetime, index: int) -> dict[str, Any]:
    if index < len(NAMED_MEMBERS):
        first, last = NAMED_MEMBERS[index]
        local = f"{first}.{last}".lower()
        names.used.add(f"{local}@{VERIFIED_DOMAIN}")
    else:
        first, last, local = names.person(VERIFIED_DOMAIN)
    mail = f"{local}@{VERIFIED_DOMAIN}"
    created = now - timedelta(days=rng.randint(200, 2500), seconds=rng.randint(0, 86399))
    last_sign_in = now - timedelta(days=rng.randint(0, 20), seconds=rng.randint(0, 86399))
    user = _base_user(rng, f"{first} {last}", first, last, mail, mail, created)
    user.update(
        userType="Member",
        creationType=None,
        jobTitle=rng.choice(JOBS),
        department=rng.choice(DEPARTMENTS),
        companyName="Contoso",
        officeLocation=rng.choice(("Seattle", "London", "Munich", "Singapore")),
        businessPhones=[f"+1 425 555 {rng.randint(1000, 9999)}"],
        proxyAddresses=[f"SMTP:{mail}"],
        identities=[{"signInType": "userPrincipalName", "issuer": INITIAL_DOMAIN, "issuerAssignedId": mail}],
        signInActivity=_sign_in(rng, last_sign_in, last_sign_in),
    )
    if index == 0:
        # An employee who also registered a personal address: invitations to it must be refused.
        user["otherMails"] = [f"{local}@outlook.com"]
    return user


def _guest(rng: random.Random, names: _NameSource, now: datetime) -> dict[str, Any]:
    domain = _weighted(rng, GUEST_DOMAINS)
    state = _weighted(rng, GUEST_STATES)
    first, last, local = names.person(domain)
    mail = f"{local}@{domain}"
    upn = guest_upn(mail)
    created_days = {
        "pending": rng.randint(14, 240),
        "pending_recent": rng.randint(0, 6),
        "new_active": rng.randint(1, 10),
    }.get(state, rng.randint(40, 1100))
    created = now - timedelta(days=created_days, seconds=rng.randint(0, 86399))
    user = _base_user(rng, f"{first} {last}", first, last, mail, upn, created)
    user.update(userType="Guest", creationType="Invitation", otherMails=[mail], proxyAddresses=[f"SMTP:{mail}"])
    user["identities"] = [{"signInType": "userPrincipalName", "issuer": INITIAL_DOMAIN, "issuerAssignedId": upn}]
    if state.startswith("pending"):
        user.update(externalUserState="PendingAcceptance", externalUserStateChangeDateTime=_iso(created))
        user["signInActivity"] = None if rng.random() < 0.5 else _empty_sign_in()
        return user
    redeemed = created + timedelta(hours=rng.randint(1, 24 * 10))
    redeemed = min(redeemed, now - timedelta(minutes=5))
    user.update(externalUserState="Accepted", externalUserStateChangeDateTime=_iso(redeemed))
    user["identities"] = redeemed_identities(domain, mail, rng.random() < 0.5)
    if state == "never_signed_in":
        user["signInActivity"] = None if rng.random() < 0.5 else _empty_sign_in()
        return user
    span = max((now - redeemed).days, 1)
    days_ago = {
        "active": rng.randint(0, min(45, span)),
        "new_active": rng.randint(0, min(3, span)),
        "inactive": rng.randint(min(100, span), max(min(100, span), span)),
        "disabled": rng.randint(min(60, span), max(min(60, span), span)),
    }[state]
    last_sign_in = max(now - timedelta(days=days_ago, seconds=rng.randint(0, 86399)), redeemed)
    non_interactive = min(last_sign_in + timedelta(hours=rng.randint(0, 72)), now)
    user["signInActivity"] = _sign_in(rng, last_sign_in, non_interactive)
    if state == "disabled":
        user["accountEnabled"] = False
    return user


def guest_upn(mail: str) -> str:
    """Graph's #EXT# user principal name for an invited address: <local>_<domain>#EXT#@<initial domain>."""
    local, _, domain = mail.partition("@")
    return f"{local}_{domain}#EXT#@{INITIAL_DOMAIN}"


def redeemed_identities(domain: str, mail: str, prefers_google: bool) -> list[dict[str, Any]]:
    """The identities a guest from `domain` has after redeeming, by the identity provider that served it."""
    upn_identity = {"signInType": "userPrincipalName", "issuer": INITIAL_DOMAIN, "issuerAssignedId": guest_upn(mail)}
    provider = DOMAINS.get(domain, {"identityProvider": "EmailOTP"})["identityProvider"]
    if domain == "adatum.com" and not prefers_google:
        provider = "EmailOTP"
    federated: dict[str, Any]
    if provider == "AzureAD":
        federated = {"signInType": "federated", "issuer": "ExternalAzureAD", "issuerAssignedId": None}
    elif provider == "Google":
        federated = {
            "signInType": "federated",
            "issuer": "google.com",
            "issuerAssignedId": str(uuid.uuid5(uuid.NAMESPACE_URL, mail).int % 10**21).rjust(21, "1"),
        }
    elif provider == "MicrosoftAccount":
        federated = {"signInType": "federated", "issuer": "MicrosoftAccount", "issuerAssignedId": None}
    else:
        federated = {"signInType": "federated", "issuer": "mail", "issuerAssignedId": mail}
    return [upn_identity, federated]


def _base_user(
    rng: random.Random, display: str, first: str, last: str, mail: str, upn: str, created: datetime
) -> dict[str, Any]:
    return {
        "id": _uuid(rng),
        "displayName": display,
        "givenName": first,
        "surname": last,
        "mail": mail,
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
        "userType": "Guest",
        "createdDateTime": _iso(created),
        "creationType": "Invitation",
        "externalUserState": None,
        "externalUserStateChangeDateTime": None,
        "identities": [],
        "otherMails": [],
        "proxyAddresses": [],
        "signInActivity": None,
        "signInSessionsValidFromDateTime": _iso(created),
        "employeeLeaveDateTime": None,
        "deletedDateTime": None,
    }


def _sign_in(rng: random.Random, interactive: datetime, non_interactive: datetime) -> dict[str, Any]:
    return {
        "lastSignInDateTime": _iso(interactive),
        "lastSignInRequestId": _uuid(rng),
        "lastNonInteractiveSignInDateTime": _iso(non_interactive),
        "lastNonInteractiveSignInRequestId": _uuid(rng),
        "lastSuccessfulSignInDateTime": _iso(max(interactive, non_interactive)),
        "lastSuccessfulSignInRequestId": _uuid(rng),
    }


def _empty_sign_in() -> dict[str, Any]:
    return {
        "lastSignInDateTime": EMPTY_SIGN_IN,
        "lastSignInRequestId": "",
        "lastNonInteractiveSignInDateTime": EMPTY_SIGN_IN,
        "lastNonInteractiveSignInRequestId": "",
        "lastSuccessfulSignInDateTime": EMPTY_SIGN_IN,
        "lastSuccessfulSignInRequestId": "",
    }


def _group(
    group_id: str, name: str, description: str, members: list[str], group_types: list[str] | None = None
) -> dict[str, Any]:
    unified = "Unified" in (group_types or [])
    return {
        "id": group_id,
        "displayName": name,
        "description": description,
        "mailEnabled": unified,
        "securityEnabled": not unified,
        "groupTypes": list(group_types or []),
        "members": members,
    }


# --- policies -------------------------------------------------------------------------------------


def target(access: str, keyword_or_id: str, target_type: str) -> dict[str, Any]:
    return {"accessType": access, "targets": [{"target": keyword_or_id, "targetType": target_type}]}


def b2b_setting(access: str) -> dict[str, Any]:
    return {
        "usersAndGroups": target(access, "AllUsers", "user"),
        "applications": target(access, "AllApplications", "application"),
    }


def service_default_policy() -> dict[str, Any]:
    """GET .../crossTenantAccessPolicy/default of a tenant nobody has configured.

    The B2B blocks and inbound trust are the get page's example; the redemption order is the documented
    default order (entra-docs redemption-experience.md). The Microsoft 365 collaboration and app service
    connect blocks have no documented service default: tenantsim serves them blocked for everyone.
    """
    return {
        "isServiceDefault": True,
        "inboundTrust": {
            "isMfaAccepted": False,
            "isCompliantDeviceAccepted": False,
            "isHybridAzureADJoinedDeviceAccepted": False,
        },
        "automaticUserConsentSettings": {"inboundAllowed": False, "outboundAllowed": False},
        "b2bCollaborationOutbound": b2b_setting("allowed"),
        "b2bCollaborationInbound": b2b_setting("allowed"),
        "b2bDirectConnectOutbound": b2b_setting("blocked"),
        "b2bDirectConnectInbound": b2b_setting("blocked"),
        "invitationRedemptionIdentityProviderConfiguration": default_redemption_order(),
        "tenantRestrictions": {**b2b_setting("blocked"), "devices": None},
        "m365CollaborationInbound": {"users": target("blocked", "AllUsers", "user")},
        "m365CollaborationOutbound": {"usersAndGroups": target("blocked", "AllUsers", "user")},
        "appServiceConnectInbound": {"applications": target("blocked", "AllApplications", "application")},
    }


def default_redemption_order() -> dict[str, Any]:
    """The documented default order: another Entra tenant, SAML/WS-Fed federation, Google; then the usual fallback."""
    return {
        "primaryIdentityProviderPrecedenceOrder": [
            "azureActiveDirectory",
            "externalFederation",
            "socialIdentityProviders",
        ],
        "fallbackIdentityProvider": "defaultConfiguredIdp",
    }


def new_partner_policy(tenant_id: str) -> dict[str, Any]:
    """A partner configuration where every setting block is null, i.e. inherited from the default.

    automaticUserConsentSettings is an object whose two flags are null until configured (resource page).
    """
    return {
        "tenantId": tenant_id,
        "isServiceProvider": False,
        "isInMultiTenantOrganization": False,
        "inboundTrust": None,
        "automaticUserConsentSettings": {"inboundAllowed": None, "outboundAllowed": None},
        "b2bCollaborationInbound": None,
        "b2bCollaborationOutbound": None,
        "b2bDirectConnectInbound": None,
        "b2bDirectConnectOutbound": None,
        "tenantRestrictions": None,
        "m365CollaborationInbound": None,
        "m365CollaborationOutbound": None,
        "appServiceConnectInbound": None,
    }


def default_authorization_policy() -> dict[str, Any]:
    return {
        "id": "authorizationPolicy",
        "displayName": "Authorization Policy",
        "description": "Used to manage authorization related settings across the company.",
        "allowInvitesFrom": "everyone",
        "allowedToSignUpEmailBasedSubscriptions": True,
        "allowedToUseSSPR": True,
        "allowEmailVerifiedUsersToJoinOrganization": False,
        "allowUserConsentForRiskyApps": False,
        "blockMsolPowerShell": False,
        "guestUserRoleId": GUEST_USER_ROLE_ID,
        "defaultUserRolePermissions": {
            "allowedToCreateApps": True,
            "allowedToCreateSecurityGroups": True,
            "allowedToCreateTenants": True,
            "allowedToReadBitlockerKeysForOwnedDevice": True,
            "allowedToReadOtherUsers": True,
            "permissionGrantPoliciesAssigned": ["ManagePermissionGrantsForSelf.microsoft-user-default-legacy"],
        },
    }


def domain_list_definition(allowed: list[str], blocked: list[str]) -> str:
    inner = {"AllowedDomains": allowed, "BlockedDomains": blocked} if allowed or blocked else {}
    return json.dumps({"B2BManagementPolicy": {"InvitationsAllowedAndBlockedDomainsPolicy": inner}})


def _fresh_policies() -> dict[str, Any]:
    return {
        "crossTenantAccessDefault": service_default_policy(),
        "crossTenantAccessPartners": [],
        "authorizationPolicy": default_authorization_policy(),
        "b2bManagementPolicies": [],
    }


def _locked_down_policies() -> dict[str, Any]:
    default = service_default_policy()
    default.update(isServiceDefault=False, b2bCollaborationInbound=b2b_setting("blocked"))
    fabrikam = new_partner_policy(FABRIKAM_TENANT_ID)
    fabrikam["b2bCollaborationInbound"] = {
        "usersAndGroups": target("allowed", FABRIKAM_COLLABORATORS_GROUP_ID, "group"),
        "applications": target("allowed", PARTNER_PORTAL_APP_ID, "application"),
    }
    fabrikam["inboundTrust"] = {
        "isMfaAccepted": True,
        "isCompliantDeviceAccepted": False,
        "isHybridAzureADJoinedDeviceAccepted": False,
    }
    northwind = new_partner_policy(NORTHWIND_TENANT_ID)
    northwind["b2bCollaborationInbound"] = {
        "usersAndGroups": target("allowed", "AllUsers", "user"),
        "applications": target("allowed", PARTNER_PORTAL_APP_ID, "application"),
    }
    woodgrove = new_partner_policy(WOODGROVE_TENANT_ID)
    woodgrove["b2bCollaborationInbound"] = b2b_setting("allowed")
    authorization = default_authorization_policy()
    authorization.update(allowInvitesFrom="adminsAndGuestInviters", guestUserRoleId=RESTRICTED_GUEST_USER_ROLE_ID)
    allowed = ["fabrikam.com", "fabrikam.co.uk", "northwindtraders.com", "woodgrovebank.com", "adatum.com"]
    return {
        "crossTenantAccessDefault": default,
        "crossTenantAccessPartners": [fabrikam, northwind, woodgrove],
        "authorizationPolicy": authorization,
        "b2bManagementPolicies": [
            {
                "id": "f596ef0d-42f9-0359-1aaa-12d02b38802a",
                "displayName": "B2BManagementPolicy",
                "description": None,
                "definition": [domain_list_definition(allowed, [])],
                "isOrganizationDefault": True,
                "deletedDateTime": None,
            }
        ],
    }


# --- helpers --------------------------------------------------------------------------------------


def _weighted(rng: random.Random, choices: list[tuple[str, int]]) -> str:
    values, weights = zip(*choices, strict=True)
    return rng.choices(values, weights=weights)[0]


def _uuid(rng: random.Random) -> str:
    # A version-4 UUID from the seeded generator, formatted directly (uuid.UUID is slow at 100k users).
    value = (rng.getrandbits(128) & ~(0xF000 << 64) | (0x4000 << 64)) & ~(0xC << 60) | (0x8 << 60)
    text = f"{value:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


# --- entitlement management -----------------------------------------------------------------------

PARTNER_CATALOG_ID = "c4a1e3f2-7b6d-4e5a-9c8b-1d2e3f4a5b60"
SEEDED_ACCESS_PACKAGES = {
    "Fabrikam engineering": "a1f0c2d3-4e5b-4a6c-8d7e-9f0a1b2c3d41",
    "Northwind supply chain": "a1f0c2d3-4e5b-4a6c-8d7e-9f0a1b2c3d42",
    "Woodgrove audit": "a1f0c2d3-4e5b-4a6c-8d7e-9f0a1b2c3d43",
    "Adatum marketing": "a1f0c2d3-4e5b-4a6c-8d7e-9f0a1b2c3d44",
}
SEED_CREATED = "2024-01-15T09:00:00Z"
# The groups partners' access packages give membership of: (id, display name, description). Fabrikam
# collaborators carries members from the start; the others are filled through access package assignments.
PARTNER_RESOURCE_GROUPS = (
    (FABRIKAM_COLLABORATORS_GROUP_ID, "Fabrikam collaborators", "Fabrikam guests allowed into Contoso resources."),
    (NORTHWIND_SUPPLY_CHAIN_GROUP_ID, "Northwind supply chain", "Northwind guests working on the supply chain portal."),
    (WOODGROVE_AUDIT_GROUP_ID, "Woodgrove audit", "Woodgrove auditors' workspace."),
    (ADATUM_MARKETING_GROUP_ID, "Adatum marketing", "Adatum agency staff on the marketing site."),
)


def entitlement_seed() -> dict[str, Any]:
    """The "Partner collaboration" catalog with each partner's access package and an admin direct-assignment
    policy, so onboarding can assign packages on a tenant that governance never configured."""
    catalog = {
        "id": PARTNER_CATALOG_ID,
        "displayName": "Partner collaboration",
        "description": "Access packages for partner organisations' guests.",
        "catalogType": "userManaged",
        "state": "published",
        "isExternallyVisible": True,
        "createdDateTime": SEED_CREATED,
        "modifiedDateTime": SEED_CREATED,
    }
    packages, policies = [], []
    for name, package_id in SEEDED_ACCESS_PACKAGES.items():
        packages.append(
            {
                "id": package_id,
                "displayName": name,
                "description": f"{name} for partner guests.",
                "isHidden": False,
                "createdDateTime": SEED_CREATED,
                "modifiedDateTime": SEED_CREATED,
                "_catalogId": PARTNER_CATALOG_ID,
            }
        )
        policies.append(direct_assignment_policy(package_id[:-2] + "a" + package_id[-1], package_id))
    # An administrator once put the partner groups into the catalog; which roles each package grants is
    # left to the governance job.
    resources = [
        group_catalog_resource(
            PARTNER_CATALOG_ID,
            {"id": group_id, "displayName": name, "description": description},
            SEED_CREATED,
            str(uuid.uuid5(uuid.NAMESPACE_OID, f"catalog-resource:{group_id}")),
        )
        for group_id, name, description in PARTNER_RESOURCE_GROUPS
    ]
    return {"catalogs": [catalog], "accessPackages": packages, "assignmentPolicies": policies, "resources": resources}


def group_catalog_resource(catalog_id: str, group: dict[str, Any], created: str, resource_id: str) -> dict[str, Any]:
    """A group as a catalog resource: its Owner and Member roles and its root scope, as Graph lists them."""

    def derived(name: str) -> str:
        return str(uuid.uuid5(uuid.UUID(resource_id), name))

    return {
        "id": resource_id,
        "displayName": group["displayName"],
        "description": group.get("description"),
        "originId": group["id"],
        "originSystem": "AadGroup",
        "attributes": [],
        "createdDateTime": created,
        "modifiedDateTime": created,
        "_catalogId": catalog_id,
        "_roles": [
            {"id": derived(role), "displayName": role, "description": None, "originId": f"{role}_{group['id']}"}
            for role in ("Owner", "Member")
        ],
        "_scopes": [
            {
                "id": derived("root"),
                "displayName": "Root",
                "description": "Root Scope",
                "originId": group["id"],
                "isRootScope": True,
            }
        ],
    }


def direct_assignment_policy(policy_id: str, package_id: str) -> dict[str, Any]:
    """An admin-only direct assignment policy in the v1.0 shape (nobody can request; admins assign)."""
    return {
        "id": policy_id,
        "displayName": "Admin direct assignment",
        "description": "Administrators assign this package directly; nobody can request it.",
        "allowedTargetScope": "notSpecified",
        "specificAllowedTargets": [],
        "expiration": {"endDateTime": None, "duration": None, "type": "noExpiration"},
        "requestorSettings": {
            "enableTargetsToSelfAddAccess": False,
            "enableTargetsToSelfUpdateAccess": False,
            "enableTargetsToSelfRemoveAccess": False,
            "allowCustomAssignmentSchedule": True,
            "enableOnBehalfRequestorsToAddAccess": False,
            "enableOnBehalfRequestorsToUpdateAccess": False,
            "enableOnBehalfRequestorsToRemoveAccess": False,
            "onBehalfRequestors": [],
        },
        "requestApprovalSettings": {
            "isApprovalRequiredForAdd": False,
            "isApprovalRequiredForUpdate": False,
            "isRequestorJustificationRequired": False,
            "stages": [],
        },
        "reviewSettings": None,
        "automaticRequestSettings": None,
        "createdDateTime": SEED_CREATED,
        "modifiedDateTime": SEED_CREATED,
        "_accessPackageId": package_id,
        "_catalogId": PARTNER_CATALOG_ID,
    }
