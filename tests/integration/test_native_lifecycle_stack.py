"""Microsoft's guest lifecycle policies through the composed product on the local stack (tenantsim and Azurite):
planned, created disabled, braked in shadow, approved on the command line, switched on in tenantsim, processed by
tenantsim's daily-run hook, and compared with Microsoft's per-guest compliance report, agreement and disagreement in
both directions; with an exclusion that only a nested group reaches flagged, and a lower-priority policy flagged as
never evaluating. The life runs under tenantsim's documented readings and under the other answer of every knob the
pages leave open (excluded groups inline, rules only on their own collection, rule PATCH served, a report before the
first processing, a new policy entering the order first).

The tenant: the seeded guests all sit directly in an excluded group ("Guests the sweep governs"), so the policies
govern only Woodgrove's guests, a partner the sample opts out of the product's sweep. Of those, three have been idle
for 200 days, one for 179 days (idle past 180 by the product's clock, two days after Microsoft's run), one idle for
200 days signs in after Microsoft's run, two are active, and one is left out only through a group nested in the
excluded group, which the native engine does not follow.
"""

from __future__ import annotations

import asyncio
import copy
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from app.bootstrap import bootstrap
from app.cli.common import ExitCode
from app.cli.main import app
from config.desired_state import DesiredState, load_desired_state
from config.settings import SAMPLE_DESIRED_STATE, Settings, load_settings
from graph.credentials import TenantSimCredential
from graph.permissions import Deployment, features_of, granted, required_names
from lifecycle.clock import FixedClock
from lifecycle.drift.entry import drift_ports, run_policy_drift
from lifecycle.drift.native_compare import REPORT
from lifecycle.drift.native_policies import RESOURCE, RULES
from lifecycle.drift.native_priority import RESOURCE as PRIORITY
from lifecycle.drift.report import DriftRun
from lifecycle.plans import Change
from tenantsim.client import TenantSimAdmin
from tenantsim.seed import DEFAULT_GUESTS, PROTECTED_GROUP_ID, build_seed

pytestmark = pytest.mark.stack

NS = "#microsoft.graph.identityGovernance"
POLICIES = "/v1.0/identityGovernance/lifecycleWorkflows/lifecyclePolicies"
WRITE = ["LifecyclePolicies-Guests.ReadWrite.All"]
EXCLUDED, NESTED = "Guests the sweep governs", "Woodgrove contractors"
EXCLUDED_ID, NESTED_ID = "5e0c2a71-3b9d-4f6e-8a1c-2d7b9e4f6a10", "6f1d3b82-4cae-4a7f-9b2d-3e8c0f5a7b21"
IDLE, UNSPONSORED = "Guests: idle for 180 days", "Guests: without a sponsor"
# The product's clock: two days after Microsoft's daily run (tenantsim's processing, at the wall clock).
LATER = timedelta(days=2)
DOCUMENTED = {
    "lifecyclePolicyExcludedGroups": "bind",
    "lifecyclePolicyRulesInline": True,
    "lifecyclePolicyRuleMethods": "none",
    "lifecyclePolicyReportBeforeProcessing": "notFound",
    "lifecyclePolicyNewPriority": "lowest",
}
OTHER_ANSWERS = {
    "lifecyclePolicyExcludedGroups": "inline",
    "lifecyclePolicyRulesInline": False,
    "lifecyclePolicyRuleMethods": "patch",
    "lifecyclePolicyReportBeforeProcessing": "notStarted",
    "lifecyclePolicyNewPriority": "highest",
}
SECTION = {
    "policies": {
        "idle": {
            "displayName": IDLE,
            "enabled": True,
            "owner": "native",
            "priority": 1,
            "excludedGroups": [EXCLUDED],
            "rules": [{"type": "inactivity", "days": 180}],
            "action": {"kind": "disableThenDelete", "deleteAfterDays": 30},
            "gracePeriodDays": 14,
            "notifications": {"offsetsDays": [7, 1], "fallbackRecipients": ["guest-admins@contoso.com"]},
        },
        "unsponsored": {
            "displayName": UNSPONSORED,
            "enabled": True,
            "owner": "native",
            "priority": 2,
            "excludedGroups": [EXCLUDED],
            "rules": [{"type": "sponsorPresence", "minimumSponsors": 1}],
            "action": {"kind": "disableOnly"},
        },
    }
}


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _woodgrove(template: dict[str, Any], name: str, idle_days: int, now: datetime) -> dict[str, Any]:
    mail, upn = f"{name}@woodgrovebank.com", f"{name}_woodgrovebank.com#EXT#@contoso.onmicrosoft.com"
    seen = _iso(now - timedelta(days=idle_days))
    guest = copy.deepcopy(template)
    guest.update(
        id=str(uuid.uuid4()),
        displayName=name.title(),
        givenName=name.title(),
        surname="Woodgrove",
        mail=mail,
        mailNickname=f"{name}_woodgrovebank.com_EXT_",
        userPrincipalName=upn,
        otherMails=[mail],
        proxyAddresses=[f"SMTP:{mail}"],
        identities=[{"signInType": "userPrincipalName", "issuer": "contoso.onmicrosoft.com", "issuerAssignedId": upn}],
        accountEnabled=True,
        externalUserState="Accepted",
        createdDateTime=_iso(now - timedelta(days=400)),
        externalUserStateChangeDateTime=_iso(now - timedelta(days=399)),
        signInActivity={
            "lastSignInDateTime": seen,
            "lastSuccessfulSignInDateTime": seen,
            "lastNonInteractiveSignInDateTime": seen,
        },
    )
    return guest


def _tenant(now: datetime) -> tuple[dict[str, Any], dict[str, str]]:
    """The locked-down seed, its guests directly in the excluded group, and Woodgrove's eight guests."""
    document = build_seed(5, 7, "locked-down", now)
    seeded = [u for u in document["users"] if u["userType"] == "Guest"]
    sponsor = next(u["id"] for u in document["users"] if u["userType"] == "Member" and u["accountEnabled"])
    idle = {"ann": 200, "bob": 200, "cy": 200, "late": 179, "back": 200, "dee": 3, "eli": 3, "nested": 3}
    guests = {name: _woodgrove(seeded[0], name, days, now) for name, days in idle.items()}
    document["users"] += list(guests.values())
    document["sponsors"].update({g["id"]: [sponsor] for g in guests.values()})
    template = next(g for g in document["groups"] if g["id"] == PROTECTED_GROUP_ID)
    document["groups"] += [
        {**template, "id": EXCLUDED_ID, "displayName": EXCLUDED, "members": [g["id"] for g in seeded] + [NESTED_ID]},
        {**template, "id": NESTED_ID, "displayName": NESTED, "members": [guests["nested"]["id"]]},
    ]
    return document, {name: g["id"] for name, g in guests.items()}


def _desired() -> DesiredState:
    sample = load_desired_state(SAMPLE_DESIRED_STATE).model_dump(by_alias=True, mode="json", exclude_none=True)
    return DesiredState.model_validate({**sample, "guestLifecyclePolicies": SECTION})


@pytest.fixture
def stack(local_stack) -> Iterator[tuple[Settings, TenantSimAdmin]]:
    suffix = uuid.uuid4().hex[:8]
    settings = load_settings(
        {**local_stack.env, "LIFECYCLE_TABLE_PREFIX": f"nl{suffix}", "LIFECYCLE_QUEUE_PREFIX": f"nl{suffix}-"}
    )
    with TenantSimAdmin(local_stack.tenantsim_url) as admin:
        throttling = admin.config()["throttlingEnabled"]  # the session's tenantsim: left as it was found
        try:
            yield settings, admin
        finally:
            admin.configure(throttlingEnabled=throttling, **DOCUMENTED)
            # Each test seeds a locked-down tenant and applies policy drift to it; later tests expect the session's.
            admin.seed(builtin="fresh", guests=DEFAULT_GUESTS, random_seed=0)


def _policies(url: str, admin: TenantSimAdmin) -> dict[str, dict[str, Any]]:
    answer = httpx.get(f"{url}{POLICIES}", headers=admin.auth_headers(WRITE))
    return {p["displayName"]: p for p in answer.json()["value"]}


def _action(run: DriftRun, key: str, resource: str = RESOURCE):
    return next(a for a in run.actions if a.resource == resource and a.key == key)


@pytest.mark.parametrize("readings", [DOCUMENTED, OTHER_ANSWERS], ids=["documented", "other-answers"])
def test_a_native_policy_is_planned_braked_approved_applied_processed_and_compared(
    stack, local_stack, readings, monkeypatch
):
    settings, admin = stack
    url = local_stack.tenantsim_url
    now = datetime.now(UTC).replace(microsecond=0)
    document, ids = _tenant(now)
    admin.seed(document)
    admin.configure(throttlingEnabled=False, **readings)
    desired, clock = _desired(), FixedClock(now + LATER)

    async def composed(*_: Any, **__: Any):
        """The composition root as deployed: the Graph grant comes from the desired state's features."""
        return await bootstrap(settings, desired=desired, clock=clock)

    async def drift(mode: str = "plan", approvals: frozenset[str] = frozenset()) -> tuple[DriftRun, str]:
        services = await composed()
        try:
            run = await run_policy_drift(services, mode, approvals=approvals)  # type: ignore[arg-type]
            stored = await drift_ports(services).reports.get(run.run_id)
            return run, stored.markdown if stored is not None else ""
        finally:
            await services.close()

    planned, _ = asyncio.run(drift("plan"))
    assert planned.refusals == []
    assert _action(planned, "idle").change is Change.CREATE and _action(planned, "unsponsored").change is Change.CREATE
    assert _policies(url, admin) == {}

    created, _ = asyncio.run(drift("enforce"))  # the hourly timer
    assert created.refusals == [] and created.failed == []
    policies = _policies(url, admin)
    assert {name: p["isEnabled"] for name, p in policies.items()} == {IDLE: False, UNSPONSORED: False}

    held, report = asyncio.run(drift("enforce"))  # the timer again: it never approves
    assert held.failed == []
    idle = _action(held, "idle")
    assert idle.change is Change.REPORT and "trips the deletion brake" in idle.reason
    assert "--approve-enable lifecycle-idle" in idle.reason
    shadow = next(d.actual for d in idle.diffs if d.field == "shadowEvaluation")
    assert "would disable 5 of 8 governed guest(s)" in shadow and "ann@woodgrovebank.com" in shadow
    assert "ann@woodgrovebank.com" in report  # the stored report (Azurite) shows who it would act on
    # The lower policy acts on nobody in the shadow (the idle policy binds every guest first): within the brake.
    assert _action(held, "unsponsored").change is Change.UPDATE
    assert any(f"excluded group {EXCLUDED_ID} reaches 1 user(s) through nested groups" in w for w in held.warnings)
    assert "lifecycle policy unsponsored never evaluates for 8 guest(s) in its scope" in " ".join(held.warnings)
    order = _action(held, "user", PRIORITY)
    moved = readings["lifecyclePolicyNewPriority"] == "highest"  # the second policy entered the order first
    assert order.change is (Change.UPDATE if moved else Change.NONE)
    policies = _policies(url, admin)
    assert {name: p["isEnabled"] for name, p in policies.items()} == {IDLE: False, UNSPONSORED: True}

    monkeypatch.setattr("app.bootstrap.bootstrap", composed)
    approved = CliRunner().invoke(
        app, ["apply", "policies", "--approve-enable", "lifecycle-idle", "--yes"], env={"COLUMNS": "300"}
    )
    assert approved.exit_code in (ExitCode.OK, ExitCode.ATTENTION), approved.output
    policies = _policies(url, admin)
    assert {name: p["isEnabled"] for name, p in policies.items()} == {IDLE: True, UNSPONSORED: True}
    order = httpx.get(
        f"{url}/v1.0/identityGovernance/lifecycleWorkflows/lifecyclePolicyPriorityConfigurations/user",
        headers=admin.auth_headers(WRITE),
    ).json()["orderedPolicyIds"]
    assert order == [policies[IDLE]["id"], policies[UNSPONSORED]["id"]]

    assert set(admin.process_lifecycle_policies()) == {p["id"] for p in policies.values()}  # Microsoft's daily run
    admin.patch_user(
        ids["back"], signInActivity={"lastSignInDateTime": _iso(now), "lastSuccessfulSignInDateTime": _iso(now)}
    )

    compared, report = asyncio.run(drift("plan"))
    verdict = _action(compared, "idle", REPORT)
    assert verdict.change is Change.REPORT and "agreed on 6" in verdict.reason
    fields = {d.field: d for d in verdict.diffs}
    assert fields["noncompliantByProductOnly"].desired == "1 guest(s): late@woodgrovebank.com"
    assert fields["noncompliantByMicrosoftOnly"].actual == "1 guest(s): back@woodgrovebank.com"
    assert "noncompliantByMicrosoftOnly" in report and "late@woodgrovebank.com" in report
    assert any(
        "lifecycle policy unsponsored never evaluates for 8 guest(s) in its scope by Microsoft's report" in w
        for w in compared.warnings
    )
    assert _action(compared, "idle").change is Change.NONE  # on, as the file wants: nothing left to write


@pytest.mark.parametrize("methods", ["none", "patch"])
def test_a_rule_changed_in_the_portal_is_put_back_whether_or_not_graph_serves_a_rules_patch(
    stack, local_stack, methods
):
    """v1.0 lists no method on a single rule (405, the documented reading): the product sends the policy's whole
    rules list instead; where the beta-style rule PATCH is served, it patches the rule by id."""
    settings, admin = stack
    url = local_stack.tenantsim_url
    now = datetime.now(UTC).replace(microsecond=0)
    document, _ = _tenant(now)
    admin.seed(document)
    admin.configure(throttlingEnabled=False, lifecyclePolicyRuleMethods=methods)
    section = {"policies": {"unsponsored": {**SECTION["policies"]["unsponsored"], "enabled": False}}}
    sample = load_desired_state(SAMPLE_DESIRED_STATE).model_dump(by_alias=True, mode="json", exclude_none=True)
    desired = DesiredState.model_validate({**sample, "guestLifecyclePolicies": section})

    async def drift(mode: str) -> DriftRun:
        services = await bootstrap(settings, desired=desired, clock=FixedClock(now))
        try:
            return await run_policy_drift(services, mode)  # type: ignore[arg-type]
        finally:
            await services.close()

    assert asyncio.run(drift("enforce")).failed == []
    policy = _policies(url, admin)[UNSPONSORED]
    rules = httpx.get(f"{url}{POLICIES}/{policy['id']}/rules", headers=admin.auth_headers(WRITE)).json()["value"]
    portal = {"@odata.type": f"{NS}.guestLifecyclePolicy", "rules": [{**rules[0], "minimumSponsorCount": 2}]}
    changed = httpx.patch(f"{url}{POLICIES}/{policy['id']}", json=portal, headers=admin.auth_headers(WRITE))
    assert changed.status_code == 204, changed.text

    admin.reset_counters()
    fixed = asyncio.run(drift("enforce"))
    assert fixed.failed == [] and _action(fixed, "unsponsored/sponsorPresence", RULES).change is Change.UPDATE
    patches = [(e["path"], e["status"]) for e in admin.requests() if e["method"] == "PATCH"]
    rule_path = f"{POLICIES}/{policy['id']}/rules/{rules[0]['id']}"
    if methods == "patch":
        assert patches == [(rule_path, 204)]
    else:
        assert patches == [(rule_path, 405), (f"{POLICIES}/{policy['id']}", 204)]
    after = httpx.get(f"{url}{POLICIES}/{policy['id']}/rules", headers=admin.auth_headers(WRITE)).json()["value"]
    assert [(r["id"], r["minimumSponsorCount"]) for r in after] == [(rules[0]["id"], 1)]
    settled = asyncio.run(drift("plan"))
    assert [a.key for a in settled.actions if a.resource == RULES] == []


def test_without_the_group_read_the_policies_are_not_written_and_the_plan_names_the_permission(stack, local_stack):
    """The feature's grant less GroupMember.Read.All: a group named in the file cannot be found, nor any excluded
    group's members read, so nothing is created and the refusal says what is missing."""
    settings, admin = stack
    url = local_stack.tenantsim_url
    now = datetime.now(UTC).replace(microsecond=0)
    document, _ = _tenant(now)
    admin.seed(document)
    admin.configure(throttlingEnabled=False)
    desired = _desired()
    roles = granted(redemption_reset=False, features=features_of(desired)) - {"GroupMember.Read.All"}

    async def enforce() -> DriftRun:
        credential = TenantSimCredential(url, roles=roles)
        services = await bootstrap(settings, desired=desired, clock=FixedClock(now), credential=credential)
        try:
            return await run_policy_drift(services, "enforce")
        finally:
            await services.close()

    run = asyncio.run(enforce())
    refused = [r for r in run.refusals if r.rule == "lifecycle-groups-unreadable"]
    assert refused and all("GroupMember.Read.All" in r.message for r in refused)
    assert _policies(url, admin) == {}


def test_a_deployment_granted_without_the_feature_is_told_which_permission_the_policies_need(stack, local_stack):
    """The base grant only: the policies cannot be listed, so the plan is refused with the permission and the grant
    script's feature named; the cross-tenant areas are still planned."""
    settings, admin = stack
    url = local_stack.tenantsim_url
    admin.seed(_tenant(datetime.now(UTC).replace(microsecond=0))[0])
    admin.configure(throttlingEnabled=False)

    async def plan() -> DriftRun:
        credential = TenantSimCredential(url, roles=granted(redemption_reset=False))
        services = await bootstrap(settings, desired=_desired(), credential=credential)
        try:
            return await run_policy_drift(services, "plan")
        finally:
            await services.close()

    run = asyncio.run(plan())
    [refused] = [r for r in run.refusals if r.rule.startswith("lifecycle-")]
    assert refused.rule == "lifecycle-policies-unreadable"
    assert "LifecyclePolicies-Guests.Read.All" in refused.message
    assert "--feature guest-lifecycle-policies" in refused.message
    assert any(a.resource.startswith("crossTenantAccessPolicy/") for a in run.actions)


def test_planning_needs_only_the_plan_mode_grant(stack, local_stack):
    """A deployment whose jobs all plan holds LifecyclePolicies-Guests.Read.All, not the read-write one: the policies,
    their order and the excluded groups are read, the shadow pass made, and nothing is refused."""
    settings, admin = stack
    url = local_stack.tenantsim_url
    now = datetime.now(UTC).replace(microsecond=0)
    admin.seed(_tenant(now)[0])
    admin.configure(throttlingEnabled=False)
    desired = _desired()
    roles = required_names(Deployment(features=features_of(desired)))
    assert "LifecyclePolicies-Guests.ReadWrite.All" not in roles

    async def plan() -> DriftRun:
        credential = TenantSimCredential(url, roles=roles)
        services = await bootstrap(settings, desired=desired, clock=FixedClock(now), credential=credential)
        try:
            return await run_policy_drift(services, "plan")
        finally:
            await services.close()

    run = asyncio.run(plan())
    assert run.refusals == []
    assert _action(run, "idle").change is Change.CREATE
    shadow = next(d.actual for d in _action(run, "idle").diffs if d.field == "shadowEvaluation")
    assert "would disable 4 of 8 governed guest(s)" in shadow  # by the wall clock, late is not yet 180 days idle
