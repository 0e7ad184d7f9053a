"""The governance job on a fake Graph: plan, enforce, re-run, drift, recreate, guardrails, partial failure."""

from __future__ import annotations

import copy
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from config.desired_state import load_desired_state, parse_desired_state
from lifecycle.adapters.memory import MemoryAuditLog
from lifecycle.clock import FixedClock
from lifecycle.errors import PermissionDeniedError
from lifecycle.governance import plan_from_dict, render, run_governance
from lifecycle.governance.ports import CATALOGS, ORGANIZATIONS, PACKAGES, POLICIES, REVIEWS
from lifecycle.plans import EXIT_CLEAN, EXIT_DRIFT, EXIT_ERROR

SAMPLE = Path(__file__).resolve().parents[2] / "config" / "desired-state.sample.yaml"


class FakeGovernanceGraph:
    """Stores Graph JSON per kind; packages belong to a catalog and policies to a package, as in Graph."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, dict[str, Any]]] = {
            k: {} for k in (REVIEWS, ORGANIZATIONS, CATALOGS, PACKAGES, POLICIES)
        }
        self.settings: dict[str, Any] = {
            "externalUserLifecycleAction": "none",
            "durationUntilExternalUserDeletedAfterBlocked": "P30D",
        }
        self.writes: list[tuple[str, str]] = []
        self.refuse: set[str] = set()  # kinds whose creates are denied

    async def list(self, kind: str, parent_id: str | None = None) -> list[dict[str, Any]]:
        items = list(self.objects[kind].values())
        if kind == PACKAGES and parent_id:
            items = [i for i in items if i["catalog"]["id"] == parent_id]
        if kind == POLICIES and parent_id:
            items = [i for i in items if i["accessPackage"]["id"] == parent_id]
        return copy.deepcopy(items)

    async def get_settings(self) -> dict[str, Any]:
        return dict(self.settings)

    async def create(self, kind: str, body: dict[str, Any]) -> dict[str, Any]:
        if kind in self.refuse:
            raise PermissionDeniedError("Insufficient privileges", status=403, code="Authorization_RequestDenied")
        stored = {"id": str(uuid.uuid4()), **copy.deepcopy(body)}
        self.objects[kind][stored["id"]] = stored
        self.writes.append(("create", kind))
        return copy.deepcopy(stored)

    async def update(self, kind: str, object_id: str | None, body: dict[str, Any]) -> None:
        self.writes.append(("update", kind))
        if object_id is None:
            self.settings.update(body)
        else:
            self.objects[kind][object_id].update(copy.deepcopy(body))

    async def delete(self, kind: str, object_id: str) -> None:
        self.writes.append(("delete", kind))
        del self.objects[kind][object_id]

    def only(self, kind: str, **match: Any) -> dict[str, Any]:
        found = [o for o in self.objects[kind].values() if all(o.get(k) == v for k, v in match.items())]
        assert len(found) == 1, found
        return found[0]


@pytest.fixture
def desired():
    return load_desired_state(SAMPLE)


@pytest.fixture
def graph() -> FakeGovernanceGraph:
    return FakeGovernanceGraph()


async def _run(graph, desired, mode="plan"):
    audit = MemoryAuditLog()
    clock = FixedClock(datetime(2026, 3, 1, tzinfo=UTC))
    result = await run_governance(graph, desired=desired, audit=audit, clock=clock, mode=mode)
    return result, [e async for e in audit.entries()]


def _changes(result) -> dict[str, str]:
    return {a["key"]: a["change"] for a in result["plan"]["actions"] if a["change"] != "none"}


async def test_a_tenant_without_governance_plans_every_object_and_writes_nothing(graph, desired):
    """Plan mode on an empty tenant lists each review, organisation, catalog, package and policy as a create."""
    result, _ = await _run(graph, desired)
    changes = _changes(result)
    assert result["exitCode"] == EXIT_DRIFT
    assert changes["review/guests"] == changes["review/partner/fabrikam"] == "create"
    assert {changes[f"organization/{p}"] for p in ("fabrikam", "northwind", "woodgrove", "adatum")} == {"create"}
    assert changes["catalog"] == changes["package/adatum"] == changes["policy/adatum/request"] == "create"
    assert changes["settings"] == "update"
    assert graph.writes == []


async def test_enforce_creates_everything_once_and_a_second_run_is_clean(graph, desired):
    """After enforce the tenant matches; running enforce again writes nothing and duplicates nothing."""
    first, audit = await _run(graph, desired, "enforce")
    assert first["exitCode"] == EXIT_CLEAN and first["after"]["drift"] == 0 and not first["failed"]
    assert len(graph.objects[REVIEWS]) == 2 and len(graph.objects[ORGANIZATIONS]) == 4
    assert len(graph.objects[PACKAGES]) == 4 and len(graph.objects[POLICIES]) == 8
    assert {e.action for e in audit} >= {"governance.create", "governance.update", "governance.run"}
    writes = len(graph.writes)

    again, _ = await _run(graph, desired, "enforce")
    assert again["exitCode"] == EXIT_CLEAN and "applied" not in again
    assert len(graph.writes) == writes
    assert len(graph.objects[REVIEWS]) == 2 and len(graph.objects[POLICIES]) == 8


async def test_the_partner_policy_targets_the_partner_connected_organisation_with_sponsor_approval(graph, desired):
    """The request policy is the v1.0 shape: specific connected organisation, sponsor approval, expiry."""
    await _run(graph, desired, "enforce")
    organization = graph.only(ORGANIZATIONS, displayName="Fabrikam, Inc.")
    assert organization["identitySources"][0]["tenantId"] == "9a3d526c-1b7e-4c2f-8d6a-5e0f3b7c9d21"
    package = graph.only(PACKAGES, displayName="Fabrikam engineering")
    policy = next(
        p
        for p in graph.objects[POLICIES].values()
        if p["accessPackage"]["id"] == package["id"] and p["displayName"] == "Partner requests"
    )
    assert policy["allowedTargetScope"] == "specificConnectedOrganizationUsers"
    assert policy["specificAllowedTargets"][0]["connectedOrganizationId"] == organization["id"]
    assert policy["expiration"] == {"type": "afterDuration", "duration": "P365D"}
    stage = policy["requestApprovalSettings"]["stages"][0]
    assert stage["primaryApprovers"] == [{"@odata.type": "#microsoft.graph.internalSponsors"}]
    adatum = graph.only(ORGANIZATIONS, displayName="Adatum Corporation")
    assert adatum["identitySources"][0] == {
        "@odata.type": "#microsoft.graph.domainIdentitySource",
        "domainName": "adatum.com",
        "displayName": "adatum.com",
    }


async def test_a_drifted_review_setting_is_reported_field_by_field_and_fixed_in_place(graph, desired):
    """A default decision changed by hand shows as one field diff; enforce restores it keeping the id."""
    await _run(graph, desired, "enforce")
    review = next(r for r in graph.objects[REVIEWS].values() if "review/guests" in r["descriptionForAdmins"])
    review["settings"]["defaultDecision"] = "Approve"
    planned, _ = await _run(graph, desired)
    action = next(a for a in planned["plan"]["actions"] if a["key"] == "review/guests")
    assert action["change"] == "update"
    assert list(action["diffs"]) == [{"field": "settings.defaultDecision", "desired": "Deny", "actual": "Approve"}]
    assert planned["exitCode"] == EXIT_DRIFT

    fixed, _ = await _run(graph, desired, "enforce")
    assert fixed["exitCode"] == EXIT_CLEAN
    assert graph.objects[REVIEWS][review["id"]]["settings"]["defaultDecision"] == "Deny"


async def test_a_changed_review_scope_is_recreated_because_graph_cannot_update_it(graph, desired):
    """A definition whose scope differs is deleted and created again, never left reviewing the wrong group."""
    await _run(graph, desired, "enforce")
    review = next(r for r in graph.objects[REVIEWS].values() if "review/partner/fabrikam" in r["descriptionForAdmins"])
    review["scope"]["query"] = "/groups/00000000-0000-4000-8000-000000000000/transitiveMembers"
    result, _ = await _run(graph, desired, "enforce")
    action = next(a for a in result["plan"]["actions"] if a["key"] == "review/partner/fabrikam")
    assert action["change"] == "recreate" and action["diffs"][0]["field"] == "scope.query"
    assert review["id"] not in graph.objects[REVIEWS] and len(graph.objects[REVIEWS]) == 2
    assert result["exitCode"] == EXIT_CLEAN


async def test_a_renamed_review_is_found_by_its_key_and_renamed_back_not_duplicated(graph, desired):
    """The key marker in descriptionForAdmins identifies the definition even after a rename."""
    await _run(graph, desired, "enforce")
    review = next(r for r in graph.objects[REVIEWS].values() if "review/guests" in r["descriptionForAdmins"])
    review["displayName"] = "Renamed by someone"
    result, _ = await _run(graph, desired, "enforce")
    assert _changes(result) == {"review/guests": "update"}
    assert len(graph.objects[REVIEWS]) == 2 and review["displayName"] == "Quarterly guest access review"


async def test_drifted_lifecycle_settings_and_policy_expiry_are_fixed(graph, desired):
    """The external-user lifecycle setting and a policy's expiration are compared and restored."""
    await _run(graph, desired, "enforce")
    graph.settings["externalUserLifecycleAction"] = "blockSignIn"
    policy = next(p for p in graph.objects[POLICIES].values() if p["expiration"].get("duration") == "P90D")
    policy["expiration"] = {"type": "noExpiration"}
    planned, _ = await _run(graph, desired)
    diffs = {(a["key"], d["field"]) for a in planned["plan"]["actions"] for d in a["diffs"]}
    assert ("settings", "externalUserLifecycleAction") in diffs
    assert ("policy/woodgrove/request", "expiration.type") in diffs
    await _run(graph, desired, "enforce")
    assert graph.settings["externalUserLifecycleAction"] == "blockSignInAndDelete"
    assert policy["expiration"] == {"type": "afterDuration", "duration": "P90D"}


def _with_governance(desired, **changes):
    raw = desired.model_dump(mode="json", by_alias=True, exclude_none=True)
    raw["governance"].update(changes)
    return parse_desired_state(raw)


async def test_auto_applied_deny_without_reviewers_is_refused_and_nothing_is_written(graph, desired):
    """A review that would remove every guest unreviewed refuses the whole run (exit 1), even in enforce."""
    raw = desired.model_dump(mode="json", by_alias=True, exclude_none=True)
    raw["governance"]["guestReview"].update(reviewers=[], fallbackReviewers=[])
    result, _ = await _run(graph, parse_desired_state(raw), "enforce")
    assert result["exitCode"] == EXIT_ERROR
    assert [r["rule"] for r in result["plan"]["refusals"]] == ["review-without-reviewers"]
    assert graph.writes == []


async def test_a_policy_longer_than_the_partner_engagement_is_refused(graph, desired):
    """An assignment policy may not outlive the partner's maxEngagementDays."""
    raw = desired.model_dump(mode="json", by_alias=True, exclude_none=True)
    raw["governance"]["partners"]["woodgrove"]["expiration"] = {"days": 400}
    result, _ = await _run(graph, parse_desired_state(raw))
    assert [r["rule"] for r in result["plan"]["refusals"]] == ["policy-outlives-engagement"]
    assert result["exitCode"] == EXIT_ERROR


async def test_a_failed_connected_organisation_stops_only_the_policies_that_need_it(graph, desired):
    """Denied organisation creates fail their request policies; reviews, packages and direct policies land."""
    graph.refuse.add(ORGANIZATIONS)
    result, _ = await _run(graph, desired, "enforce")
    failed = {f["key"] for f in result["failed"]}
    assert {f"organization/{p}" for p in ("fabrikam", "northwind", "woodgrove", "adatum")} <= failed
    assert "policy/fabrikam/request" in failed and "policy/fabrikam/direct" not in failed
    assert len(graph.objects[REVIEWS]) == 2 and len(graph.objects[PACKAGES]) == 4
    assert result["exitCode"] == EXIT_ERROR


async def test_the_rendered_plan_names_each_change_and_the_json_round_trips(graph, desired):
    """The markdown shows resource, key and field; the JSON plan reads back into the same Plan."""
    result, _ = await _run(graph, desired)
    text = render(result)
    assert "| accessReviews/definitions | review/guests | create |" in text
    assert "| entitlementManagement/settings | settings | update | externalUserLifecycleAction |" in text
    assert plan_from_dict(result["plan"]).as_dict() == result["plan"]


async def test_an_unknown_mode_is_refused_before_anything_is_read(graph, desired):
    """Only plan and enforce exist; a typo never silently means one of them."""
    with pytest.raises(ValueError, match="mode"):
        await _run(graph, desired, "apply")
