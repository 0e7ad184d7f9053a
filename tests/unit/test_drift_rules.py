"""Policy drift, pure parts: canonical comparison, null inheritance, guardrails, Conditional Access checks."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from adapters.memory import MemoryAuditLog
from config.desired_state import ConditionalAccessPosture, DesiredState, load_desired_state
from config.settings import SAMPLE_DESIRED_STATE
from lifecycle.clock import FixedClock
from lifecycle.drift import conditional_access
from lifecycle.drift.applier import apply_plan
from lifecycle.drift.desired import SERVICE_DEFAULT, desired_policies
from lifecycle.drift.guardrails import POLICY_SIZE_LIMIT, refusals, warnings
from lifecycle.drift.normalise import domain_definition, parse_domain_definition, target_configuration
from lifecycle.drift.planner import plan_policies
from lifecycle.drift.report import ApplyResult, DriftRun
from lifecycle.drift.snapshot import TenantSnapshot
from lifecycle.errors import TransientGraphError
from lifecycle.plans import Change

FABRIKAM = "9a3d526c-1b7e-4c2f-8d6a-5e0f3b7c9d21"
NORTHWIND = "5c8e1f2a-6d3b-4a9e-b7c0-1d2e3f4a5b6c"
WOODGROVE = "e1b2c3d4-5f6a-4b7c-8d9e-0f1a2b3c4d5e"
GROUP = "0b1f7a2e-5c3d-4e8f-9a6b-7c8d9e0f1a2b"
APP = "4b6f2c1d-8e9a-4f3b-a5c7-d9e1f3a5b7c9"


def _sample() -> dict[str, Any]:
    return load_desired_state(SAMPLE_DESIRED_STATE).model_dump(by_alias=True, exclude_none=True)


def _desired(mutate=None) -> DesiredState:
    raw = _sample()
    if mutate:
        mutate(raw)
    return DesiredState.model_validate(raw)


def _config(access: str, *targets: tuple[str, str]) -> dict[str, Any]:
    return {"accessType": access, "targets": [{"target": t, "targetType": k} for t, k in targets]}


def _locked_down_snapshot() -> TenantSnapshot:
    """What a tenant that already matches the sample looks like, in Graph's own spelling and order."""
    default = copy.deepcopy(SERVICE_DEFAULT)
    default["b2bCollaborationInbound"] = {
        "usersAndGroups": _config("blocked", ("allusers", "user")),
        "applications": _config("blocked", ("AllApplications", "application")),
    }
    default["isServiceDefault"] = False
    default["automaticUserConsentSettings"] = {"inboundAllowed": False, "outboundAllowed": False}
    partners = {
        FABRIKAM: {
            "tenantId": FABRIKAM,
            "inboundTrust": {"isMfaAccepted": True, "isCompliantDeviceAccepted": None},
            "b2bCollaborationInbound": {
                "usersAndGroups": _config("allowed", (GROUP.upper(), "group")),
                "applications": _config("allowed", (APP, "application")),
            },
            "b2bCollaborationOutbound": None,
            "isServiceProvider": False,
        },
        NORTHWIND: {
            "tenantId": NORTHWIND,
            "b2bCollaborationInbound": {
                "usersAndGroups": _config("allowed", ("AllUsers", "user")),
                "applications": _config("allowed", (APP, "application")),
            },
        },
        WOODGROVE: {
            "tenantId": WOODGROVE,
            "b2bCollaborationInbound": {
                "applications": _config("allowed", ("AllApplications", "application")),
                "usersAndGroups": _config("allowed", ("AllUsers", "user")),
            },
        },
    }
    definition = json.dumps(
        {
            "B2BManagementPolicy": {
                "InvitationsAllowedAndBlockedDomainsPolicy": {
                    "AllowedDomains": [
                        "Woodgrovebank.com",
                        "adatum.com",
                        "fabrikam.com",
                        "fabrikam.co.uk",
                        "northwindtraders.com",
                    ],
                    "BlockedDomains": [],
                },
                "AutoRedeemPolicy": {"AdminConsentedForUsersIntoTenantIds": []},
            }
        }
    )
    return TenantSnapshot(
        default=default,
        partners=partners,
        authorization={
            "allowInvitesFrom": "adminsAndGuestInviters",
            "guestUserRoleId": "2AF84B1E-32C8-42B7-82BC-DAA82404023B",
        },
        b2b_policies=[{"id": "p1", "isOrganizationDefault": True, "definition": [definition]}],
        federations=[],
        conditional_access=[_mfa_policy(), _legacy_policy()],
    )


def _mfa_policy(**changes: Any) -> dict[str, Any]:
    policy = {
        "displayName": "Guests: require MFA",
        "state": "enabled",
        "conditions": {
            "users": {
                "includeUsers": [],
                "includeGuestsOrExternalUsers": {
                    "guestOrExternalUserTypes": "internalGuest,b2bCollaborationGuest,b2bCollaborationMember",
                    "externalTenants": {"membershipKind": "all"},
                },
            },
            "applications": {"includeApplications": ["All"]},
            "clientAppTypes": ["all"],
        },
        "grantControls": {"operator": "OR", "builtInControls": ["mfa"]},
    }
    policy.update(changes)
    return policy


def _legacy_policy(**changes: Any) -> dict[str, Any]:
    policy = _mfa_policy(displayName="Guests: block legacy authentication")
    policy["conditions"] = {**policy["conditions"], "clientAppTypes": ["exchangeActiveSync", "other"]}
    policy["grantControls"] = {"operator": "OR", "builtInControls": ["block"]}
    policy.update(changes)
    return policy


def _plan(desired: DesiredState | None = None, snapshot: TenantSnapshot | None = None, **kwargs: Any):
    return plan_policies(desired_policies(desired or _desired()), snapshot or _locked_down_snapshot(), **kwargs)


# --- stable comparison -------------------------------------------------------------------------------


def test_a_tenant_matching_the_file_in_other_order_casing_and_with_server_fields_has_no_drift():
    """Target order, id and keyword casing, null trust fields and service-only fields never read as drift."""
    plan = _plan()
    assert plan.drift == [] and plan.refusals == [] and plan.exit_code == 0


def _someone_elses_settings(snapshot: TenantSnapshot) -> TenantSnapshot:
    """Properties the file does not manage, set by another administrator, plus one no release knows yet."""
    everyone = _config("allowed", ("AllUsers", "user"))
    snapshot.default.update(
        m365CollaborationInbound={"users": everyone},
        m365CollaborationOutbound={"usersAndGroups": everyone},
        appServiceConnectInbound={"applications": _config("allowed", ("AllApplications", "application"))},
        invitationRedemptionIdentityProviderConfiguration={
            "primaryIdentityProviderPrecedenceOrder": ["externalFederation", "azureActiveDirectory"],
            "fallbackIdentityProvider": "emailOneTimePasscode",
        },
        aSettingFromTheFuture={"anything": [1, "two", None]},
    )
    snapshot.partners[FABRIKAM].update(
        m365CollaborationInbound={"users": everyone},
        automaticUserConsentSettings={"inboundAllowed": True, "outboundAllowed": None},
        isInMultiTenantOrganization=True,
        aSettingFromTheFuture="unknown",
    )
    return snapshot


def test_properties_the_file_does_not_manage_are_neither_drift_nor_sent():
    """m365, app service connect, redemption order, consent and unknown properties: no drift, never in a body."""
    plan = _plan(snapshot=_someone_elses_settings(_locked_down_snapshot()))
    assert plan.drift == [] and plan.exit_code == 0
    snapshot = _someone_elses_settings(_locked_down_snapshot())
    snapshot.default["b2bCollaborationInbound"]["usersAndGroups"] = _config("allowed", ("AllUsers", "user"))
    snapshot.partners[FABRIKAM]["inboundTrust"] = {"isMfaAccepted": False}
    sent = {(a.resource, a.key): set(a.payload["body"]) for a in _plan(snapshot=snapshot).drift}
    assert sent == {
        ("crossTenantAccessPolicy/default", "default"): {"b2bCollaborationInbound"},
        ("crossTenantAccessPolicy/partners", FABRIKAM): {"inboundTrust"},
    }


def test_target_configurations_are_canonical_whatever_the_order_and_case():
    """Two spellings of the same targets normalise to one value; duplicates collapse."""
    one = _config("allowed", ("AllUsers", "user"), (GROUP, "group"))
    two = _config("allowed", (GROUP.upper(), "Group"), ("ALLUSERS", "user"), (GROUP, "group"))
    assert target_configuration(one) == target_configuration(two)


def test_a_changed_target_is_drift_on_exactly_that_field():
    """Fabrikam's group swapped in the tenant: one FieldDiff on usersAndGroups, an update with the whole block."""
    snapshot = _locked_down_snapshot()
    snapshot.partners[FABRIKAM]["b2bCollaborationInbound"]["usersAndGroups"] = _config("allowed", ("AllUsers", "user"))
    plan = _plan(snapshot=snapshot)
    (action,) = plan.drift
    assert action.change is Change.UPDATE and action.key == FABRIKAM
    assert [d.field for d in action.diffs] == ["b2bCollaborationInbound.usersAndGroups"]
    sent = action.payload["body"]["b2bCollaborationInbound"]
    assert sent["usersAndGroups"]["targets"] == [{"target": GROUP, "targetType": "group"}]
    assert sent["applications"]["targets"] == [{"target": APP, "targetType": "application"}]


def test_default_trust_and_authorization_and_domain_drift_are_each_reported():
    """Each kind of drift in the default, the invitation settings and the domain list is its own action."""
    snapshot = _locked_down_snapshot()
    snapshot.default["inboundTrust"]["isMfaAccepted"] = True
    snapshot.authorization["allowInvitesFrom"] = "everyone"
    snapshot.b2b_policies[0]["definition"] = [domain_definition({}, ["fabrikam.com"], [])]
    plan = _plan(snapshot=snapshot)
    fields = {(a.resource, d.field) for a in plan.drift for d in a.diffs}
    assert fields == {
        ("crossTenantAccessPolicy/default", "inboundTrust.isMfaAccepted"),
        ("authorizationPolicy", "allowInvitesFrom"),
        ("b2bManagementPolicies", "allowedDomains"),
    }
    authorization = next(a for a in plan.drift if a.resource == "authorizationPolicy")
    assert authorization.payload == {"body": {"allowInvitesFrom": "adminsAndGuestInviters"}}


def test_rewriting_the_domain_list_keeps_the_policy_s_other_settings():
    """The definition written back keeps sibling keys such as AutoRedeemPolicy."""
    snapshot = _locked_down_snapshot()
    document, _ = parse_domain_definition(snapshot.b2b_policies[0]["definition"])
    written = json.loads(domain_definition(document, ["a.com"], []))
    assert written["B2BManagementPolicy"]["AutoRedeemPolicy"] == {"AdminConsentedForUsersIntoTenantIds": []}
    assert written["B2BManagementPolicy"]["InvitationsAllowedAndBlockedDomainsPolicy"] == {"AllowedDomains": ["a.com"]}


# --- null inheritance ----------------------------------------------------------------------------------


def test_an_explicit_partner_block_equal_to_the_default_is_not_drift_against_null():
    """File null (inherit) vs tenant explicit-but-equal to the desired default: same behaviour, no drift."""
    snapshot = _locked_down_snapshot()
    snapshot.partners[NORTHWIND]["b2bDirectConnectInbound"] = copy.deepcopy(SERVICE_DEFAULT["b2bDirectConnectInbound"])
    snapshot.partners[NORTHWIND]["inboundTrust"] = {"isMfaAccepted": False}
    assert _plan(snapshot=snapshot).drift == []


def test_an_explicit_partner_block_that_differs_from_the_default_is_reset_to_inherit():
    """File null vs a tenant value other than the default: drift, shown as inherit, and PATCHed back to null."""
    snapshot = _locked_down_snapshot()
    snapshot.partners[NORTHWIND]["b2bDirectConnectInbound"] = {
        "usersAndGroups": _config("allowed", ("AllUsers", "user")),
        "applications": _config("blocked", ("AllApplications", "application")),
    }
    (action,) = _plan(snapshot=snapshot).drift
    assert action.change is Change.UPDATE
    assert [(d.field, d.desired) for d in action.diffs] == [("b2bDirectConnectInbound.usersAndGroups", "inherit")]
    assert action.payload == {"body": {"b2bDirectConnectInbound": None}}


def test_a_missing_partner_whose_file_entry_only_inherits_needs_no_policy():
    """A partner with every block null in the file and none in the tenant is not drift."""

    def inherit_only(raw):
        raw["partners"]["northwind"]["crossTenantAccess"] = {}

    snapshot = _locked_down_snapshot()
    del snapshot.partners[NORTHWIND]
    assert _plan(_desired(inherit_only), snapshot).drift == []


# --- unknown partners ------------------------------------------------------------------------------------


def test_an_unknown_partner_is_reported_and_only_deleted_with_the_flag():
    """A tenant partner absent from the file is REPORT by default and DELETE with remove_unknown_partners."""
    snapshot = _locked_down_snapshot()
    stranger = "11111111-2222-4333-8444-555555555555"
    snapshot.partners[stranger] = {"tenantId": stranger, "inboundTrust": None}
    (reported,) = _plan(snapshot=snapshot).drift
    assert (reported.key, reported.change) == (stranger, Change.REPORT)
    (removed,) = _plan(snapshot=snapshot, remove_unknown_partners=True).drift
    assert (removed.key, removed.change) == (stranger, Change.DELETE)


# --- guardrails -----------------------------------------------------------------------------------------


def _rules(desired: DesiredState, entra: dict[str, str] | None = None) -> set[str]:
    return {r.rule for r in refusals(desired_policies(desired), entra or {})}


def test_the_sample_desired_state_passes_every_guardrail():
    """The locked-down sample is refused by nothing."""
    assert _rules(_desired()) == set()


def test_mfa_or_device_trust_on_the_default_is_refused():
    """Trusting every tenant's MFA (or device) claims is refused, with the reason."""

    def trust_all(raw):
        raw["crossTenantAccessDefault"]["inboundTrust"]["isCompliantDeviceAccepted"] = True

    found = refusals(desired_policies(_desired(trust_all)), {})
    assert [r.rule for r in found] == ["default-inbound-trust"]
    assert "isCompliantDeviceAccepted" in found[0].message and "per partner" in found[0].message


def test_an_open_default_while_partners_are_scoped_is_refused():
    """Default inbound left at the service default (everyone) while Fabrikam is scoped: refused, naming it."""

    def open_default(raw):
        del raw["crossTenantAccessDefault"]["b2bCollaborationInbound"]

    found = refusals(desired_policies(_desired(open_default)), {})
    assert [r.rule for r in found] == ["default-open-while-partners-scoped"]
    assert "fabrikam" in found[0].message and "northwind" in found[0].message


def test_trusting_the_mfa_of_a_partner_marked_weak_mfa_is_refused():
    """weakMfa with isMfaAccepted: refused."""

    def weak(raw):
        raw["partners"]["fabrikam"]["weakMfa"] = True

    assert _rules(_desired(weak)) == {"weak-mfa-trusted"}


def test_an_allowlist_and_a_blocklist_at_once_are_refused():
    """Both invitation lists non-empty cannot be stored by the service: refused."""
    desired = desired_policies(_desired())
    both = type(desired)(**{**{f: getattr(desired, f) for f in desired.__slots__}, "blocked_domains": ["x.com"]})
    assert {r.rule for r in refusals(both, {})} == {"domain-allow-and-block-list"}


def test_a_domain_list_over_the_service_limit_is_refused():
    """A list whose definition exceeds 25,000 characters is refused with its size."""

    def huge(raw):
        raw["invitations"]["domains"]["domains"] = [f"partner-domain-{n:05d}.example.com" for n in range(1000)]

    found = refusals(desired_policies(_desired(huge)), {})
    assert [r.rule for r in found] == ["domain-list-size"]
    assert str(POLICY_SIZE_LIMIT) in found[0].message


def test_federation_for_a_domain_an_entra_tenant_verifies_is_refused():
    """findTenantInformationByDomainName found a tenant: direct federation is refused for that domain."""

    def federate(raw):
        raw["partners"]["fabrikam"]["federation"] = {
            "issuerUri": "https://sts.fabrikam.com/",
            "passiveSignInUri": "https://sts.fabrikam.com/adfs/ls",
            "preferredAuthenticationProtocol": "wsFed",
            "signingCertificate": "MIIC",
        }

    desired = _desired(federate)
    found = refusals(desired_policies(desired), {"fabrikam.com": FABRIKAM})
    assert [r.rule for r in found] == ["federation-entra-domain"]
    assert "fabrikam.com" in found[0].message and FABRIKAM in found[0].message


def test_risky_but_legal_choices_warn_without_refusing():
    """allowInvitesFrom everyone and no domain list warn; the plan is not refused."""

    def loose(raw):
        raw["invitations"]["allowInvitesFrom"] = "everyone"
        raw["invitations"]["domains"] = {"mode": "none", "domains": []}

    desired = desired_policies(_desired(loose))
    assert refusals(desired, {}) == []
    text = " | ".join(warnings(desired))
    assert "allowInvitesFrom is everyone" in text and "any domain" in text


def test_a_refused_plan_exits_one_even_with_drift():
    """Refusals win over drift in the exit code."""

    def trust_all(raw):
        raw["crossTenantAccessDefault"]["inboundTrust"]["isMfaAccepted"] = True

    plan = _plan(_desired(trust_all))
    assert plan.refusals and plan.exit_code == 1


# --- Conditional Access ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "satisfied"),
    [
        (_mfa_policy(), True),
        (_mfa_policy(state="enabledForReportingButNotEnforced"), False),
        (_mfa_policy(grantControls={"operator": "OR", "builtInControls": ["compliantDevice"]}), False),
        (
            _mfa_policy(
                conditions={
                    "users": {"includeUsers": ["All"], "excludeUsers": ["GuestsOrExternalUsers"]},
                    "applications": {"includeApplications": ["All"]},
                }
            ),
            False,
        ),
    ],
)
def test_guest_mfa_needs_an_enabled_policy_covering_guests_that_requires_mfa(policy, satisfied):
    """Report-only state, another control or excluded guests do not satisfy the MFA expectation."""
    actions = conditional_access.check(ConditionalAccessPosture(block_legacy_authentication=False), [policy])
    assert (actions[0].change is Change.NONE) is satisfied


def test_a_named_authentication_strength_must_be_the_one_required():
    """With authenticationStrength named in the file, plain MFA is not enough; the named strength is."""
    posture = ConditionalAccessPosture(
        authentication_strength="Phishing-resistant MFA", block_legacy_authentication=False
    )
    plain = conditional_access.check(posture, [_mfa_policy()])
    strong = _mfa_policy(
        grantControls={"operator": "OR", "authenticationStrength": {"displayName": "Phishing-resistant MFA"}}
    )
    assert plain[0].change is Change.REPORT
    assert conditional_access.check(posture, [strong])[0].change is Change.NONE


def test_missing_or_unreadable_conditional_access_is_reported_never_written():
    """No legacy-auth block: REPORT; unreadable: REPORT naming the error; neither has a payload to apply."""
    actions = conditional_access.check(ConditionalAccessPosture(), [_mfa_policy()])
    assert [(a.key, a.change) for a in actions] == [
        ("guest-mfa", Change.NONE),
        ("guest-legacy-authentication", Change.REPORT),
    ]
    unreadable = conditional_access.check(ConditionalAccessPosture(), None, "ThrottledError: 429")
    assert all(a.change is Change.REPORT and "429" in a.diffs[0].actual and not a.payload for a in unreadable)


# --- the run's exit code ------------------------------------------------------------------------------


def test_an_enforce_run_exits_one_on_a_failed_apply_and_two_on_report_only_drift():
    """Failed writes make the run an error; drift that apply cannot fix (report only) stays exit 2."""
    snapshot = _locked_down_snapshot()
    snapshot.authorization["allowInvitesFrom"] = "everyone"
    snapshot.conditional_access = []
    plan = _plan(snapshot=snapshot)
    run = DriftRun(job=plan.job, actions=plan.actions, mode="enforce")
    run.results = [ApplyResult("authorizationPolicy", "authorizationPolicy", "update", ok=False, error={"status": 503})]
    assert run.exit_code == 1
    run.results = [ApplyResult("authorizationPolicy", "authorizationPolicy", "update", ok=True)]
    assert run.exit_code == 2 and {a.resource for a in run.outstanding} == {"identity/conditionalAccess/policies"}


# --- applying: partners before the default's lockdown --------------------------------------------------


class RecordingTenant:
    """Takes drift writes in order; the partner policy of ``failing`` answers a transient error."""

    def __init__(self, failing: str | None = None) -> None:
        self.failing, self.writes = failing, []

    async def update_default(self, body):
        self.writes.append("default")

    async def create_partner(self, body):
        if body["tenantId"] == self.failing:
            raise TransientGraphError("Graph answered 503 ServiceUnavailable", status=503)
        self.writes.append(f"partner:{body['tenantId']}")

    async def update_partner(self, tenant_id, body):
        self.writes.append(f"partner:{tenant_id}")

    async def update_authorization_policy(self, body):
        self.writes.append("authorization")

    async def create_b2b_management_policy(self, body):
        self.writes.append("domains")

    async def update_b2b_management_policy(self, policy_id, body):
        self.writes.append("domains")

    async def create_federation(self, body):
        self.writes.append("federation")

    async def update_federation(self, federation_id, body):
        self.writes.append("federation")

    async def add_federation_domain(self, federation_id, domain):
        self.writes.append("federation")


def _fresh_tenant_run() -> DriftRun:
    """The plan for a fresh tenant: service default (inbound open), no partner policies, anyone invites."""
    snapshot = _locked_down_snapshot()
    snapshot.default, snapshot.partners = copy.deepcopy(SERVICE_DEFAULT), {}
    snapshot.authorization["allowInvitesFrom"] = "everyone"
    plan = _plan(snapshot=snapshot)
    return DriftRun(job=plan.job, actions=plan.actions, mode="enforce")


async def test_partner_policies_are_written_before_the_default_locks_inbound_down():
    """No moment where the default blocks inbound while a partner's allowing policy is still missing."""
    tenant, run = RecordingTenant(), _fresh_tenant_run()
    await apply_plan(run, tenant, MemoryAuditLog(), FixedClock(datetime(2026, 11, 23, tzinfo=UTC)))
    partners = [i for i, w in enumerate(tenant.writes) if w.startswith("partner:")]
    assert len(partners) == 3 and max(partners) < tenant.writes.index("default")


async def test_the_lockdown_waits_for_the_next_run_when_a_partner_policy_could_not_be_written():
    """A partner whose policy failed is not locked out: the default is held back (audited), the rest applies."""
    tenant, run = RecordingTenant(failing=FABRIKAM), _fresh_tenant_run()
    audit = MemoryAuditLog()
    await apply_plan(run, tenant, audit, FixedClock(datetime(2026, 11, 23, tzinfo=UTC)))
    assert "default" not in tenant.writes and "authorization" in tenant.writes
    held = next(r for r in run.results if r.resource == "crossTenantAccessPolicy/default")
    assert not held.ok and "partner" in held.error["heldBack"]
    rows = [e async for e in audit.entries()]
    assert any(e.target.startswith("crossTenantAccessPolicy/default") and "failed" in e.reason for e in rows)
    assert run.exit_code == 1


def test_admins_and_guest_inviters_without_the_declared_guest_inviter_role_is_refused():
    """The product's onboarding invites app-only: restricting invitations to Guest Inviters is refused unless the
    deployment declares its identity holds the role; with the declaration (the sample) nothing is refused."""

    def undeclared(raw):
        raw["invitations"]["appHoldsGuestInviter"] = False

    found = refusals(desired_policies(_desired(undeclared)), {})
    assert [r.rule for r in found] == ["onboarding-needs-guest-inviter"]
    assert "Guest Inviter" in found[0].message and "appHoldsGuestInviter" in found[0].message
    assert _rules(_desired()) == set()
    plan = _plan(_desired(undeclared))
    assert plan.exit_code == 1 and [r.rule for r in plan.refusals] == ["onboarding-needs-guest-inviter"]


def test_disabling_invitations_is_refused_because_onboarding_could_not_invite_at_all():
    """allowInvitesFrom none stops every invitation, declared Guest Inviter or not."""

    def disabled(raw):
        raw["invitations"]["allowInvitesFrom"] = "none"

    assert _rules(_desired(disabled)) == {"invitations-disabled"}


def test_wider_invitation_settings_need_no_guest_inviter_declaration():
    """Members (and everyone) may invite: app-only invitations work, so nothing is refused for onboarding."""

    def open_to_members(raw):
        raw["invitations"]["allowInvitesFrom"] = "adminsGuestInvitersAndAllMembers"
        raw["invitations"]["appHoldsGuestInviter"] = False

    assert _rules(_desired(open_to_members)) == set()
