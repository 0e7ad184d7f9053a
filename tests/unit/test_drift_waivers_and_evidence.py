"""Policy drift, pure parts: waivers (validation, planning, expiry, guardrails) and evidence of what the product
leaves alone (unmanaged properties, properties it has never seen, request bodies holding managed fields only)."""

from __future__ import annotations

import copy
from datetime import date
from typing import Any

import pytest

from adapters.memory import MemoryAuditLog
from config.desired_state import DesiredState, parse_desired_state
from config.errors import DesiredStateError
from lifecycle.clock import FixedClock
from lifecycle.drift.applier import apply_plan
from lifecycle.drift.desired import desired_policies
from lifecycle.drift.fields import UNMANAGED, UNMANAGED_FIELD, UnmanagedWrite, assert_managed
from lifecycle.drift.planner import DEFAULT, PARTNERS, plan_policies
from lifecycle.drift.report import DriftRun
from lifecycle.plans import Action, Change
from tests.builders import NOW
from tests.unit.test_drift_rules import FABRIKAM, NORTHWIND, _locked_down_snapshot, _sample

TODAY = date(2026, 11, 23)
OWNER = "megan.bowen@contoso.com"


def _with_waivers(*waivers: dict[str, Any]) -> DesiredState:
    raw = _sample()
    raw["waivers"] = [{"owner": OWNER, "reason": "CHG0042", "expires": "2026-12-15", **w} for w in waivers]
    return DesiredState.model_validate(raw)


def _plan(desired: DesiredState, snapshot=None, today: date = TODAY):
    return plan_policies(desired_policies(desired), snapshot or _locked_down_snapshot(), today=today)


COMPLIANT = {"target": "partners.fabrikam", "field": "inboundTrust.isCompliantDeviceAccepted", "value": True}


# --- the file -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("waiver", "message"),
    [
        ({**COMPLIANT, "target": "partners.contoso"}, "unknown partner"),
        ({**COMPLIANT, "value": {"accessType": "allowed", "targets": []}}, "takes true or false"),
        ({**COMPLIANT, "field": "b2bCollaborationInbound.usersAndGroups", "value": True}, "accessType"),
        ({**COMPLIANT, "field": "isServiceProvider"}, "field"),
        ({**COMPLIANT, "value": "yes"}, "value"),
        (
            {
                **COMPLIANT,
                "target": "default",
                "field": "tenantRestrictions.applications",
                "value": {
                    "accessType": "blocked",
                    "targets": [{"target": "AllApplications", "targetType": "application"}],
                },
            },
            "tenantRestrictions unmanaged",
        ),
    ],
)
def test_a_waiver_the_file_cannot_honour_is_refused_naming_why(waiver, message):
    raw = _sample()
    raw["waivers"] = [{"owner": OWNER, "reason": "why", "expires": "2026-12-15", **waiver}]
    with pytest.raises(DesiredStateError, match=message):
        parse_desired_state(raw)


def test_a_field_waived_twice_is_refused():
    raw = _sample()
    raw["waivers"] = [{"owner": OWNER, "reason": "why", "expires": "2026-12-15", **COMPLIANT}] * 2
    with pytest.raises(DesiredStateError, match="waived twice"):
        parse_desired_state(raw)


def test_a_waiver_needs_an_owner_a_reason_and_an_expiry():
    raw = _sample()
    raw["waivers"] = [COMPLIANT]
    with pytest.raises(DesiredStateError) as raised:
        parse_desired_state(raw)
    assert {"owner", "reason", "expires"} <= {
        line.split(":")[0].rsplit(".", 1)[-1] for line in str(raised.value).split("\n  ")
    }


# --- planning ------------------------------------------------------------------------------------------


def test_an_active_waiver_is_planned_against_the_waived_value_and_named_in_the_reason():
    plan = _plan(_with_waivers(COMPLIANT))
    [action] = plan.drift
    assert (action.resource, action.key, action.change) == (PARTNERS, FABRIKAM, Change.UPDATE)
    assert [(d.field, d.desired, d.actual) for d in action.diffs] == [
        ("inboundTrust.isCompliantDeviceAccepted", True, False)
    ]
    assert action.payload["body"]["inboundTrust"]["isCompliantDeviceAccepted"] is True
    assert OWNER in action.reason and "2026-12-15" in action.reason
    assert action.payload["waived"][0]["owner"] == OWNER
    assert [(w.state, w.key) for w in plan.waivers] == [("active", FABRIKAM)]


def test_a_waived_value_already_in_the_tenant_is_no_drift_but_the_waiver_is_still_shown():
    snapshot = _locked_down_snapshot()
    snapshot.partners[FABRIKAM]["inboundTrust"]["isCompliantDeviceAccepted"] = True
    plan = _plan(_with_waivers(COMPLIANT), snapshot)
    assert plan.drift == [] and plan.exit_code == 0
    assert [w.label for w in plan.waivers] == ["partners.fabrikam inboundTrust.isCompliantDeviceAccepted"]
    assert "### waivers" in plan.to_markdown() and OWNER in plan.to_markdown()
    assert "waiver active" in plan.to_text() and plan.as_dict()["waivers"][0]["expires"] == "2026-12-15"


def test_a_waiver_stands_through_its_last_day_and_is_drift_of_its_own_after():
    snapshot = _locked_down_snapshot()
    snapshot.partners[FABRIKAM]["inboundTrust"]["isCompliantDeviceAccepted"] = True
    desired = _with_waivers(COMPLIANT)
    assert _plan(desired, snapshot, today=date(2026, 12, 15)).drift == []
    expired = _plan(desired, snapshot, today=date(2026, 12, 16))
    assert expired.exit_code == 2
    partner, waiver = expired.drift
    assert (partner.resource, [(d.desired, d.actual) for d in partner.diffs]) == (PARTNERS, [(False, True)])
    assert "waiver expired on 2026-12-15" in partner.reason
    assert (waiver.resource, waiver.change) == ("waivers", Change.REPORT)
    assert "expired on 2026-12-15" in waiver.reason and OWNER in waiver.reason


def test_an_expired_waiver_is_drift_even_when_the_tenant_already_matches_the_file():
    [waiver] = _plan(_with_waivers(COMPLIANT), today=date(2027, 1, 1)).drift
    assert waiver.resource == "waivers" and waiver.change is Change.REPORT


def test_a_waiver_on_an_inherited_block_keeps_every_other_part_inherited():
    """Northwind inherits its outbound collaboration (allowed for everyone by default); waiving its users to blocked
    sends the waived users and leaves applications at the default's value."""
    nobody = {"accessType": "blocked", "targets": [{"target": "AllUsers", "targetType": "user"}]}
    waiver = {"target": "partners.northwind", "field": "b2bCollaborationOutbound.usersAndGroups", "value": nobody}
    [action] = _plan(_with_waivers(waiver)).drift
    assert action.key == NORTHWIND
    assert [d.field for d in action.diffs] == ["b2bCollaborationOutbound.usersAndGroups"]
    body = action.payload["body"]["b2bCollaborationOutbound"]
    assert body["usersAndGroups"]["accessType"] == "blocked" and body["applications"]["accessType"] == "allowed"


def test_plan_policies_refuses_to_judge_waivers_without_a_date():
    with pytest.raises(ValueError, match="today"):
        plan_policies(desired_policies(_with_waivers(COMPLIANT)), _locked_down_snapshot())


# --- guardrails still apply ------------------------------------------------------------------------------


def test_no_waiver_can_make_the_default_trust_mfa_from_every_tenant():
    plan = _plan(_with_waivers({"target": "default", "field": "inboundTrust.isMfaAccepted", "value": True}))
    [refusal] = plan.refusals
    assert (
        refusal.rule == "default-inbound-trust" and "waivers in force" in refusal.message and OWNER in refusal.message
    )
    assert plan.exit_code == 1


async def test_a_refused_waiver_writes_nothing_in_enforce_mode():
    plan = _plan(_with_waivers({"target": "default", "field": "inboundTrust.isMfaAccepted", "value": True}))
    run = DriftRun(job=plan.job, actions=plan.actions, refusals=plan.refusals, mode="enforce")
    tenant = Recording()
    await apply_plan(run, tenant, MemoryAuditLog(), FixedClock(NOW))  # type: ignore[arg-type]
    assert tenant.calls == [] and run.results == []


def test_a_waiver_cannot_trust_the_mfa_of_a_partner_marked_weak():
    def weak(raw: dict[str, Any]) -> None:
        raw["partners"]["northwind"]["weakMfa"] = True

    raw = _sample()
    weak(raw)
    raw["waivers"] = [
        {
            "target": "partners.northwind",
            "field": "inboundTrust.isMfaAccepted",
            "value": True,
            "owner": OWNER,
            "reason": "x",
            "expires": "2026-12-15",
        }
    ]
    plan = _plan(DesiredState.model_validate(raw))
    assert [r.rule for r in plan.refusals] == ["weak-mfa-trusted"]


# --- evidence and managed-only writes ---------------------------------------------------------------------


def test_unmanaged_and_unknown_properties_are_evidence_never_drift():
    snapshot = _locked_down_snapshot()
    snapshot.default["m365CollaborationInbound"] = {"users": {"accessType": "allowed", "targets": []}}
    snapshot.default["someFutureSetting"] = {"enabled": True}
    snapshot.partners[FABRIKAM]["isServiceProvider"] = True
    snapshot.partners[FABRIKAM]["b2bCollaborationInbound"]["futurePart"] = {"accessType": "blocked"}
    snapshot.policy = {"id": "crossTenantAccessPolicy", "allowedCloudEndpoints": ["microsoftonline.us"]}
    snapshot.identity_sync = {FABRIKAM: {"tenantId": FABRIKAM, "userSyncInbound": {"isSyncAllowed": True}}}
    plan = plan_policies(desired_policies(DesiredState.model_validate(_sample())), snapshot)
    assert plan.drift == []
    found = {(e.resource, e.key, e.field): e.kind for e in plan.evidence}
    assert found[(DEFAULT, "default", "m365CollaborationInbound")] == UNMANAGED
    assert found[(DEFAULT, "default", "someFutureSetting")] == UNMANAGED_FIELD
    assert found[(DEFAULT, "default", "tenantRestrictions")] == UNMANAGED  # the file leaves it out
    assert found[(PARTNERS, FABRIKAM, "isServiceProvider")] == UNMANAGED
    assert found[(PARTNERS, FABRIKAM, "b2bCollaborationInbound.futurePart")] == UNMANAGED_FIELD
    assert found[(PARTNERS, FABRIKAM, "identitySynchronization")] == UNMANAGED
    assert found[("crossTenantAccessPolicy", "crossTenantAccessPolicy", "allowedCloudEndpoints")] == UNMANAGED
    assert (PARTNERS, NORTHWIND, "isServiceProvider") not in found  # unset on a partner: inherits, not shown
    assert "someFutureSetting" in plan.to_markdown() and "unmanaged-field" in plan.to_text()


def test_a_request_body_with_an_unmanaged_property_is_refused_before_graph():
    assert_managed({"tenantId": FABRIKAM, "inboundTrust": {"isMfaAccepted": True}}, allowed=frozenset({"tenantId"}))
    with pytest.raises(UnmanagedWrite, match="m365CollaborationInbound"):
        assert_managed({"m365CollaborationInbound": {"users": None}})
    with pytest.raises(UnmanagedWrite, match=r"tenantRestrictions\.devices"):
        assert_managed({"tenantRestrictions": {"devices": {"mode": "allowed"}}})


class Recording:
    """A tenant that records every write and accepts it."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    async def update_default(self, body: dict[str, Any]) -> None:
        self.calls.append(("update_default", copy.deepcopy(body)))

    async def update_partner(self, tenant_id: str, body: dict[str, Any]) -> None:
        self.calls.append(("update_partner", copy.deepcopy(body)))


async def test_the_applier_never_sends_an_unmanaged_property_and_says_so():
    """An action whose body names an unmanaged property (a bug) fails as unmanaged-write; the tenant is not called."""
    bad = Action(DEFAULT, "default", Change.UPDATE, "bug", payload={"body": {"appServiceConnectInbound": None}})
    run = DriftRun(job="policy-drift", actions=[bad], mode="enforce")
    tenant = Recording()
    await apply_plan(run, tenant, MemoryAuditLog(), FixedClock(NOW))  # type: ignore[arg-type]
    assert tenant.calls == []
    [result] = run.results
    assert not result.ok and result.error is not None and result.error["code"] == "unmanaged-write"


def test_the_readme_waiver_example_is_a_valid_waiver_of_the_sample():
    """The README's waivers example loads against the sample file and stands on the builders' day."""
    import re
    from pathlib import Path

    import yaml

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```yaml\n(waivers:\n.*?)```", readme, re.S)
    assert block, "README lost its waivers example"
    raw = _sample()
    raw.update(yaml.safe_load(block.group(1)))
    [status] = _plan(parse_desired_state(raw)).waivers
    assert (status.state, status.field) == ("active", "inboundTrust.isCompliantDeviceAccepted")
