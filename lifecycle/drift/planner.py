"""Desired versus actual, field by field: the tenant read once (lifecycle.drift.snapshot), then canonical values
compared (pure).

Each action's ``payload`` is what apply sends: ``body`` (the Graph request body), and ``id`` when the
object is addressed by an id the desired state does not name.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import structlog

from lifecycle.drift import conditional_access, waivers
from lifecycle.drift.desired import INBOUND_TRUST, MANAGED_BLOCKS, TENANT_RESTRICTIONS, DesiredPolicies
from lifecycle.drift.fields import (
    DEFAULT_UNMANAGED,
    PARTNER_UNMANAGED,
    POLICY_UNMANAGED,
    UNMANAGED,
    Evidence,
    object_evidence,
)
from lifecycle.drift.guardrails import refusals, warnings
from lifecycle.drift.normalise import (
    INHERIT,
    b2b_setting,
    domain_definition,
    domains,
    inbound_trust,
    parse_domain_definition,
    resolve,
)
from lifecycle.drift.report import DriftPlan
from lifecycle.drift.resources import AUTHORIZATION, DEFAULT, DOMAIN_LIST, FEDERATION, PARTNERS, POLICY
from lifecycle.drift.snapshot import TenantSnapshot
from lifecycle.plans import Action, Change, FieldDiff, Refusal

log = structlog.get_logger(__name__)

DOMAIN_LIST_KEY = "invitationDomains"
FEDERATION_SETTINGS = (
    "displayName",
    "issuerUri",
    "passiveSignInUri",
    "preferredAuthenticationProtocol",
    "signingCertificate",
    "metadataExchangeUri",
)


def plan_policies(
    desired: DesiredPolicies,
    actual: TenantSnapshot,
    remove_unknown_partners: bool = False,
    *,
    today: date | None = None,
) -> DriftPlan:
    """The plan against ``desired`` with its active waivers in place. ``today`` (UTC) decides which waivers still
    stand; it is required when the file has any."""
    if desired.waivers and today is None:
        raise ValueError("the desired state has waivers: plan_policies needs today's date to judge them")
    found = waivers.statuses(desired.waivers, desired, today) if today is not None else []
    active = [s for s in found if s.state == waivers.ACTIVE]
    effective = waivers.waived(desired, active)
    plan = DriftPlan(job="policy-drift", waivers=found, evidence=evidence(desired, actual))
    plan.refusals = waivers.introduced_refusals(
        refusals(desired, actual.entra_domains), refusals(effective, actual.entra_domains), active
    ) + _unverified_federations(desired, actual)
    plan.warnings = warnings(effective)
    actions = [_default(effective, actual), *_partners(effective, actual, remove_unknown_partners)]
    actions.append(_authorization(desired, actual))
    actions.append(_domain_list(desired, actual, plan.warnings))
    actions.extend(_federations(desired, actual))
    actions.extend(
        conditional_access.check(desired.conditional_access, actual.conditional_access, actual.conditional_access_error)
    )
    plan.actions = waivers.annotate(actions, found) + waivers.expired_actions(found)
    return plan


def evidence(desired: DesiredPolicies, actual: TenantSnapshot) -> list[Evidence]:
    """What the tenant holds that this product leaves alone: every unmanaged property of the policy object, the
    default and each partner (a partner's only when set: null merely inherits), and every unknown one."""
    found = object_evidence(POLICY, POLICY, actual.policy, POLICY_UNMANAGED, show_unset=True)
    found += object_evidence(DEFAULT, "default", actual.default, DEFAULT_UNMANAGED, show_unset=True)
    if desired.default[TENANT_RESTRICTIONS] is None:
        note = "the desired-state file leaves the default's tenant restrictions out"
        found.append(
            Evidence(DEFAULT, "default", TENANT_RESTRICTIONS, actual.default.get(TENANT_RESTRICTIONS), UNMANAGED, note)
        )
    for tenant_id, partner in sorted(actual.partners.items()):
        found += object_evidence(PARTNERS, tenant_id, partner, PARTNER_UNMANAGED, show_unset=False)
        sync = actual.identity_sync.get(tenant_id)
        if sync is not None:
            value = {k: v for k, v in sync.items() if not k.startswith("@")}
            note = PARTNER_UNMANAGED["identitySynchronization"]
            found.append(Evidence(PARTNERS, tenant_id, "identitySynchronization", value, UNMANAGED, note))
    return found


def _unverified_federations(desired: DesiredPolicies, actual: TenantSnapshot) -> list[Refusal]:
    """Direct federation for a domain the tenant look-up could not place is refused, saying so plainly."""
    found = []
    for domain, tenant_id in sorted(actual.unverified_domains.items()):
        partner = next(f.partner for f in desired.federations if domain in f.domains)
        found.append(
            Refusal(
                "federation-domain-unverified",
                f"partner {partner}: no Entra tenant was found for {domain} by domain, but Graph finds tenants "
                f"by their primary domain only and the partner's Entra tenant {tenant_id} exists, so {domain} may "
                "be one of its domains; direct federation is only for domains no Entra tenant verifies",
            )
        )
    return found


def _canonical(name: str, value: Any) -> Any:
    return inbound_trust(value) if name == INBOUND_TRUST else b2b_setting(value)


def _block_diffs(name: str, want: Any, have: Any, want_label: Any = None, have_label: Any = None) -> list[FieldDiff]:
    """One FieldDiff per differing field of a block; a label replaces a side's value (e.g. "inherit")."""
    diffs = []
    for part in sorted(set(want or {}) | set(have or {})):
        wanted, had = (want or {}).get(part), (have or {}).get(part)
        if wanted != had:
            diffs.append(
                FieldDiff(
                    f"{name}.{part}",
                    wanted if want_label is None else want_label,
                    had if have_label is None else have_label,
                )
            )
    return diffs


def _default(desired: DesiredPolicies, actual: TenantSnapshot) -> Action:
    diffs: list[FieldDiff] = []
    body: dict[str, Any] = {}
    for name in MANAGED_BLOCKS:
        want = desired.default[name]
        if want is None:
            continue  # unmanaged (tenant restrictions left out of the file)
        found = _block_diffs(name, want, _canonical(name, actual.default.get(name)))
        if found:
            diffs += found
            body[name] = want
    if not diffs:
        return Action(DEFAULT, "default", Change.NONE, "matches the desired default policy")
    return Action(DEFAULT, "default", Change.UPDATE, "default policy differs", tuple(diffs), {"body": body})


def _partners(desired: DesiredPolicies, actual: TenantSnapshot, remove_unknown: bool) -> list[Action]:
    actions = []
    for tenant_id, partner in sorted(desired.partners.items(), key=lambda item: item[1].key):
        existing = actual.partners.get(tenant_id)
        diffs: list[FieldDiff] = []
        body: dict[str, Any] = {}
        for name in MANAGED_BLOCKS:
            baseline = desired.default[name]
            if baseline is None:
                baseline = _canonical(name, actual.default.get(name))
            want = partner.blocks[name]
            have = _canonical(name, existing.get(name)) if existing else None
            # Null inherits: compare what each side amounts to, never null against a value.
            effective_want, effective_have = resolve(want, baseline), resolve(have, baseline)
            if effective_want == effective_have:
                continue
            diffs += _block_diffs(
                name,
                effective_want,
                effective_have,
                want_label=INHERIT if want is None else None,
                have_label=INHERIT if have is None else None,
            )
            body[name] = effective_want if want is not None else None
        label = f"{partner.key} ({partner.display_name})"
        if not diffs:
            actions.append(Action(PARTNERS, tenant_id, Change.NONE, f"{label} matches"))
        elif existing is None:
            payload = {"body": {"tenantId": tenant_id, **body}}
            actions.append(
                Action(PARTNERS, tenant_id, Change.CREATE, f"{label} has no partner policy", tuple(diffs), payload)
            )
        else:
            actions.append(Action(PARTNERS, tenant_id, Change.UPDATE, f"{label} differs", tuple(diffs), {"body": body}))
    for tenant_id in sorted(set(actual.partners) - set(desired.partners)):
        if remove_unknown:
            actions.append(Action(PARTNERS, tenant_id, Change.DELETE, "partner policy not in the desired-state file"))
        else:
            actions.append(
                Action(
                    PARTNERS,
                    tenant_id,
                    Change.REPORT,
                    "partner policy not in the desired-state file (remove with --remove-unknown-partners)",
                )
            )
    return actions


def _authorization(desired: DesiredPolicies, actual: TenantSnapshot) -> Action:
    wanted = {"allowInvitesFrom": desired.allow_invites_from, "guestUserRoleId": desired.guest_user_role_id}
    diffs = []
    for name, want in wanted.items():
        have = actual.authorization.get(name)
        if str(want).lower() != str(have).lower():
            diffs.append(FieldDiff(name, want, have))
    if not diffs:
        return Action(AUTHORIZATION, AUTHORIZATION, Change.NONE, "invitation settings match")
    body = {d.field: d.desired for d in diffs}
    return Action(
        AUTHORIZATION, AUTHORIZATION, Change.UPDATE, "invitation settings differ", tuple(diffs), {"body": body}
    )


def _domain_list(desired: DesiredPolicies, actual: TenantSnapshot, notes: list[str]) -> Action:
    policy = next((p for p in actual.b2b_policies if p.get("isOrganizationDefault")), None)
    document: dict[str, Any] = {}
    have = {"allowedDomains": [], "blockedDomains": []}
    if policy is not None:
        try:
            document, have = parse_domain_definition(policy.get("definition"))
        except ValueError as exc:
            notes.append(f"the invitation domain policy's definition is not valid JSON ({exc}); it is rewritten")
    want = {"allowedDomains": desired.allowed_domains, "blockedDomains": desired.blocked_domains}
    diffs = tuple(FieldDiff(name, want[name], have[name]) for name in want if want[name] != have[name])
    if not diffs:
        return Action(DOMAIN_LIST, DOMAIN_LIST_KEY, Change.NONE, "invitation domain list matches")
    definition = [domain_definition(document, desired.allowed_domains, desired.blocked_domains)]
    if policy is None:
        body = {
            "displayName": "B2BManagementPolicy",
            "description": "Invitation domain allow/block list",  # required on create, like the display name
            "definition": definition,
            "isOrganizationDefault": True,
        }
        return Action(DOMAIN_LIST, DOMAIN_LIST_KEY, Change.CREATE, "no invitation domain policy", diffs, {"body": body})
    payload = {"id": policy["id"], "body": {"definition": definition}}
    return Action(DOMAIN_LIST, DOMAIN_LIST_KEY, Change.UPDATE, "invitation domain list differs", diffs, payload)


def _federations(desired: DesiredPolicies, actual: TenantSnapshot) -> list[Action]:
    actions = []
    for federation in desired.federations:
        if any(domain in actual.entra_domains or domain in actual.unverified_domains for domain in federation.domains):
            continue  # refused by the guardrails; nothing to plan
        want = {"displayName": federation.display_name, **federation.settings}
        existing = next(
            (c for c in actual.federations if set(federation.domains) & set(_config_domains(c))),
            None,
        )
        if existing is None:
            body = {
                "@odata.type": "microsoft.graph.samlOrWsFedExternalDomainFederation",
                **want,
                "domains": [{"@odata.type": "microsoft.graph.externalDomainName", "id": d} for d in federation.domains],
            }
            diffs = (
                *tuple(FieldDiff(name, value, None) for name, value in want.items()),
                FieldDiff("domains", federation.domains, None),
            )
            actions.append(
                Action(FEDERATION, federation.partner, Change.CREATE, "no direct federation", diffs, {"body": body})
            )
            continue
        changed = {
            name: value
            for name, value in want.items()
            if name in FEDERATION_SETTINGS and str(value).strip() != str(existing.get(name) or "").strip()
        }
        missing = [d for d in federation.domains if d not in _config_domains(existing)]
        diffs = tuple(FieldDiff(name, value, existing.get(name)) for name, value in changed.items())
        if missing:
            diffs += (FieldDiff("domains", federation.domains, _config_domains(existing)),)
        if not diffs:
            actions.append(Action(FEDERATION, federation.partner, Change.NONE, "direct federation matches"))
            continue
        payload = {"id": existing["id"], "body": changed, "addDomains": missing}
        actions.append(
            Action(FEDERATION, federation.partner, Change.UPDATE, "direct federation differs", diffs, payload)
        )
    return actions


def _config_domains(config: dict[str, Any]) -> list[str]:
    return domains(d.get("id") for d in config.get("domains") or [])
