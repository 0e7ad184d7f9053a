"""Export of the tenant's guest lifecycle policies: what the section can describe round-trips with nothing to write;
what it cannot is a comment, never a guess; the owner is never exported."""

from __future__ import annotations

import asyncio

from config.desired_state import DeletionBrake
from config.lifecycle_policies import GuestLifecyclePolicies, NativePolicy
from lifecycle.drift.native_bodies import desired_body
from lifecycle.drift.native_policies import plan_policy
from lifecycle.drift.native_scope import resolve_scope
from lifecycle.drift.native_shadow import PolicyShadow
from lifecycle.errors import PermissionDeniedError
from lifecycle.export.lifecycle_policies import NEEDS, export_native, read_native
from lifecycle.plans import Change
from tests.fakes.lifecycle_policies import FakeGuestLifecyclePolicies, FakeScopeGroups

GROUP = "2c1f0e3a-7b6d-4f1e-9a8c-5d4e3f2a1b0c"
POLICY = NativePolicy.model_validate(
    {
        "displayName": "Guests: idle & unsponsored",
        "description": "made in the portal",
        "enabled": True,
        "owner": "native",
        "excludedGroups": [GROUP],
        "rules": [
            {"type": "inactivity", "days": 120, "gracePeriodDays": 3},
            {"type": "sponsorPresence", "minimumSponsors": 1, "enabled": False},
            {"type": "accessPackageAssignmentRequired"},
        ],
        "action": {"kind": "disableThenDelete", "deleteAfterDays": 30},
        "gracePeriodDays": 14,
        "notifications": {"offsetsDays": [1, 7], "fallbackRecipients": ["Admins@contoso.com"]},
    }
)


def _tenant(*policies: dict) -> FakeGuestLifecyclePolicies:
    port = FakeGuestLifecyclePolicies()
    for body in policies:
        asyncio.run(port.create_guest_policy(body))
    return port


def _body(policy: NativePolicy, enabled: bool = True) -> dict:
    scope = asyncio.run(resolve_scope("x", policy, None, FakeScopeGroups()))
    return {**desired_body(policy, scope), "isEnabled": enabled}


def test_an_exported_policy_plans_nothing_against_the_tenant_it_came_from_and_leaves_the_owner_to_decide():
    port = _tenant(_body(POLICY))
    section, notes = export_native(asyncio.run(read_native(port)))
    assert section is not None and "owner" not in section["policies"]["guests-idle-unsponsored"]
    assert any("set each policy's owner" in n for n in notes)
    exported = GuestLifecyclePolicies.model_validate(section).policies["guests-idle-unsponsored"]
    scope = asyncio.run(resolve_scope("idle", exported, None, FakeScopeGroups()))
    existing = asyncio.run(port.list_guest_policies())[0]
    shadow = PolicyShadow("idle", exported.action.kind)
    actions = plan_policy("idle", exported, scope, existing, shadow, DeletionBrake(), 0, approved=False)
    assert [a.change for a in actions] == [Change.NONE]


def test_what_the_section_cannot_describe_is_a_comment_not_a_guess():
    odd = _body(POLICY)
    odd["displayName"] = "Unknown rule"
    odd["rules"] = [{"@odata.type": "#microsoft.graph.identityGovernance.somethingNewRule", "isEnabled": True}]
    instant = _body(POLICY)
    instant.update(displayName="Instant delete", gracePeriodInDays=0)
    instant["enforcementAction"] = {"@odata.type": "#microsoft.graph.identityGovernance.deleteOnlyEnforcementAction"}
    section, notes = export_native(asyncio.run(read_native(_tenant(odd, instant))))
    assert section is None
    assert any("'Unknown rule'" in n and "somethingNew" in n for n in notes)
    assert any("'Instant delete'" in n and "gracePeriodDays" in n for n in notes)


def test_a_refused_read_leaves_the_section_out_saying_what_it_needs():
    class Refused(FakeGuestLifecyclePolicies):
        async def list_guest_policies(self):
            raise PermissionDeniedError("denied", status=403, code="Authorization_RequestDenied")

    section, notes = export_native(asyncio.run(read_native(Refused())))
    assert section is None and NEEDS in notes[0] and "denied" in notes[0]
    assert export_native(None) == (None, ["not exported: this export read no guest lifecycle policies"])
