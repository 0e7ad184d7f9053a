"""The lockdown areas as desired-state sections: ``signUpRegistration``, ``guestConditionalAccess`` and
``guestIdentityProviders``, exported from the tenant as it is.

Each section is written only where the tenant holds something the section can describe so that policy drift,
planning the exported file against the same tenant, has nothing to write; what it cannot describe is a comment.
Secrets never leave Graph (it shows none back): the sign-up connector's password and Google's client secret are
named by the deployment setting they come from. A section opts the deployment into managing the area (and
into its permissions, infra/grant-graph-permissions --feature NAME), hence the DECIDE comment above each one.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from config.desired_state import GuestConditionalAccess, ManagedGuestPolicy, RedemptionOrder, SignUpRegistration
from lifecycle.drift.ca_evidence import REPORT_ONLY
from lifecycle.drift.ca_policies import LEGACY, MFA, canonical_policy, desired_body
from lifecycle.drift.identity_providers import REDEMPTION_PROPERTY, SECRET_SETTING, SOCIAL_TYPE
from lifecycle.drift.signup_connector import BASIC, PASSWORD_SETTING
from lifecycle.export.lockdown_reads import GUEST_CA, PROVIDERS, SIGN_UP, LockdownPosture

SECTIONS = (SIGN_UP, GUEST_CA, PROVIDERS)
STEPS = ("postFederationSignup", "postAttributeCollection")
CA_KEYS = {MFA: "requireMfa", LEGACY: "blockLegacyAuthentication"}
_SNAKE = {MFA: "require_mfa", LEGACY: "block_legacy_authentication"}
# What each area's reads need (graph/permissions.py; identityapiconnector-list.md, b2xidentityuserflow-get-
# apiconnectorconfiguration.md, conditionalaccessroot-list-policies.md, emailauthenticationmethodconfiguration-get.md,
# identitycontainer-list-identityproviders.md).
NEEDS = {
    SIGN_UP: "APIConnectors.ReadWrite.All and IdentityUserFlow.ReadWrite.All",
    GUEST_CA: "Policy.Read.All",
    PROVIDERS: "Policy.Read.All and IdentityProvider.Read.All",
}
FEATURES = {SIGN_UP: "signup-registration", GUEST_CA: "guest-conditional-access", PROVIDERS: "guest-identity-providers"}


def _opt_in(section: str) -> str:
    return (
        f"DECIDE: with {section} present, policy drift manages it and the deployment needs its permissions "
        f"(infra/grant-graph-permissions --feature {FEATURES[section]}); delete the section to leave it by hand."
    )


def export_lockdown(posture: LockdownPosture) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """The sections the tenant holds, and the comments for each (also for a section left out)."""
    document: dict[str, Any] = {}
    notes: dict[str, list[str]] = {}
    for section, build in ((SIGN_UP, _sign_up), (GUEST_CA, _guest_ca), (PROVIDERS, _providers)):
        if section in posture.unreadable:
            notes[section] = [
                f"not exported: the tenant's {section} could not be read ({posture.unreadable[section]}); "
                f"reading it needs {NEEDS[section]}"
            ]
            continue
        value, section_notes = build(posture)
        if value is not None:
            document[section] = value
            section_notes = [_opt_in(section), *section_notes]
        notes[section] = section_notes
    return document, notes


# --- signUpRegistration ------------------------------------------------------------------------------------


def _sign_up(posture: LockdownPosture) -> tuple[dict[str, Any] | None, list[str]]:
    notes: list[str] = []
    unexpanded = sorted(f for f, steps in posture.flows.items() if steps is None)
    if unexpanded:
        notes.append(
            f"not expressible: which connector the user flows {', '.join(unexpanded)} call cannot be read (Graph "
            "would not expand their apiConnectorConfiguration); they are left out"
        )
    attached: dict[str, dict[str, set[str]]] = {}  # connector id -> flow -> steps
    for flow_id, steps in posture.flows.items():
        for step in STEPS:
            connector = (steps or {}).get(step)
            if isinstance(connector, dict) and connector.get("id"):
                attached.setdefault(str(connector["id"]), {}).setdefault(flow_id, set()).add(step)
    basic = [c for c in posture.connectors if _is_basic(c)]
    candidates = [c for c in basic if str(c.get("id")) in attached] or basic
    if not candidates:
        others = len(posture.connectors)
        notes.append(
            "not exported: no API connector with HTTP Basic authentication"
            + (f" ({others} connector(s) of another kind, which the section cannot describe)" if others else "")
        )
        return None, notes
    chosen = max(candidates, key=lambda c: len(attached.get(str(c.get("id")), {})))
    for other in candidates:
        if other is not chosen:
            notes.append(f"DECIDE: API connector {other.get('displayName')!r} is left out: the section holds one")
    name = str(chosen.get("displayName") or "")
    if sum(1 for c in posture.connectors if c.get("displayName") == name) > 1:
        notes.append(f"DECIDE: more than one API connector is named {name!r}; policy drift refuses that: rename one")
    flows = attached.get(str(chosen.get("id")), {})
    groups = Counter(frozenset(steps) for steps in flows.values())
    steps = max(groups, key=lambda s: (groups[s], len(s))) if groups else frozenset({"postAttributeCollection"})
    kept = sorted(f for f, s in flows.items() if s == steps)
    for flow_id in sorted(set(flows) - set(kept)):
        notes.append(
            f"not expressible: user flow {flow_id} calls the connector at {', '.join(sorted(flows[flow_id]))}, not "
            f"at {', '.join(sorted(steps))} like the others; it is left out"
        )
    section = {
        "displayName": name,
        "targetUrl": str(chosen.get("targetUrl") or ""),
        "username": str((chosen.get("authenticationConfiguration") or {}).get("username") or ""),
        "userFlows": kept,
        "steps": [s for s in STEPS if s in steps],
    }
    notes.append(
        f"the connector's password is not exported (Graph never shows it): policy drift sends {PASSWORD_SETTING}, "
        "a Key Vault reference holding the secret the sign-up app checks as LIFECYCLE_SIGNUP_BASIC_PASSWORD"
    )
    try:
        SignUpRegistration.model_validate(section)
    except ValueError as exc:
        notes.append(f"not expressible: the connector {name!r} does not fit the section ({_reason(exc)})")
        return None, notes
    if not section["targetUrl"].startswith("https://"):
        notes.append("DECIDE: the connector's targetUrl is not https; policy drift refuses it until it is")
    return section, notes


def _is_basic(connector: dict[str, Any]) -> bool:
    kind = str((connector.get("authenticationConfiguration") or {}).get("@odata.type") or "").lstrip("#")
    return kind == BASIC


def _reason(exc: Exception) -> str:
    """The last line of a validation error: the reason itself."""
    return (str(exc).strip().splitlines() or [""])[-1].strip()


# --- guestConditionalAccess --------------------------------------------------------------------------------


def _without_exclusions(policy: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in canonical_policy(policy).items() if k not in ("excludeUsers", "excludeGroups")}


def _guest_ca(posture: LockdownPosture) -> tuple[dict[str, Any] | None, list[str]]:
    """A tenant policy is one of the product's when it is exactly the shape the product writes (guests on all
    applications, MFA or a block of legacy clients), whatever its name; its exclusions are the break-glass."""
    notes: list[str] = []
    shapes = {
        key: _without_exclusions(desired_body(key, ManagedGuestPolicy(display_name="x"), GuestConditionalAccess()))
        for key in CA_KEYS
    }
    section: dict[str, Any] = {}
    exclusions: tuple[list[str], list[str]] | None = None
    names = Counter(str(p.get("displayName")) for p in posture.conditional_access)
    for key, field_name in CA_KEYS.items():
        matching = [p for p in posture.conditional_access if _without_exclusions(p) == shapes[key]]
        section[field_name] = None
        if not matching:
            notes.append(f"{field_name}: no policy in the tenant has the shape the product writes; left alone")
            default_name = getattr(GuestConditionalAccess(), _SNAKE[key]).display_name
            if names[default_name]:
                notes.append(
                    f"DECIDE: a policy is named {default_name!r}, the product's default for {field_name}, but covers "
                    "or grants otherwise: a section naming it would rewrite it to the product's shape"
                )
            continue
        usable = [p for p in matching if p.get("state") in (REPORT_ONLY, "enabled") and names[p["displayName"]] == 1]
        for policy in matching:
            if policy not in usable:
                notes.append(
                    f"not expressible: {field_name} policy {policy.get('displayName')!r} (state "
                    f"{policy.get('state')}, or a name another policy shares)"
                )
        if not usable:
            continue
        policy = usable[0]
        users = (policy.get("conditions") or {}).get("users") or {}
        theirs = (sorted(users.get("excludeUsers") or []), sorted(users.get("excludeGroups") or []))
        if exclusions is not None and theirs != exclusions:
            notes.append(
                f"not expressible: {field_name} policy {policy.get('displayName')!r} excludes other accounts than "
                "the first one; the section has one break-glass list for both"
            )
            continue
        exclusions = theirs
        section[field_name] = {"displayName": policy["displayName"], "enabled": policy.get("state") == "enabled"}
        for extra in usable[1:]:
            notes.append(f"DECIDE: {field_name} policy {extra.get('displayName')!r} has the same shape; left out")
    if exclusions is None:
        notes.append("not exported: no guest Conditional Access policy of the product's shape")
        return None, notes
    section = {"breakGlassUserIds": exclusions[0], "breakGlassGroupIds": exclusions[1], **section}
    if not exclusions[0] and not exclusions[1]:
        notes.append("DECIDE: the policies exclude no break-glass account; policy drift refuses that: name one")
    return section, notes


# --- guestIdentityProviders --------------------------------------------------------------------------------


def _providers(posture: LockdownPosture) -> tuple[dict[str, Any] | None, list[str]]:
    notes: list[str] = []
    section: dict[str, Any] = {}
    email = posture.email.get("allowExternalIdToUseEmailOtp")
    if email in ("enabled", "disabled"):
        section["emailOneTimePasscode"] = email
    else:
        section["emailOneTimePasscode"] = None
        notes.append(
            f"DECIDE: email one-time passcode for guests is {email!r} (default: enabled only for tenants that did "
            "not use the preview); set enabled or disabled to manage it"
        )
    google = [
        p
        for p in posture.social
        if str(p.get("@odata.type", "")).lstrip("#") == SOCIAL_TYPE and p.get("identityProviderType") == "Google"
    ]
    if google:
        section["google"] = {"clientId": google[0].get("clientId"), "displayName": google[0].get("displayName")}
        notes.append(
            f"Google's client secret is not exported (Graph never shows it): policy drift sends {SECRET_SETTING}, a "
            "Key Vault reference"
        )
    else:
        notes.append("no Google federation: google is left out (false would remove one an administrator adds)")
    order = posture.default.get(REDEMPTION_PROPERTY)
    if isinstance(order, dict):
        wanted = {
            "primary": list(order.get("primaryIdentityProviderPrecedenceOrder") or []),
            "fallback": order.get("fallbackIdentityProvider"),
        }
        try:
            RedemptionOrder.model_validate(wanted)
        except ValueError as exc:
            notes.append(f"not expressible: the redemption order {wanted} ({_reason(exc)}); left alone")
        else:
            section["redemptionOrder"] = wanted
    else:
        notes.append("the default cross-tenant policy shows no redemption order: redemptionOrder is left out")
    return section, notes
