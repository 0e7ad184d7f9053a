"""The governance job on a fake Graph: plan, enforce, re-run, drift, recreate, guardrails, partial failure."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from adapters.memory import MemoryAuditLog
from config.desired_state import load_desired_state, parse_desired_state
from config.settings import SAMPLE_DESIRED_STATE
from lifecycle.clock import FixedClock
from lifecycle.errors import DesiredStateError
from lifecycle.governance import plan_from_dict, render, run_governance
from lifecycle.governance.ports import (
    CATALOG_RESOURCES,
    CATALOGS,
    ORGANIZATIONS,
    PACKAGES,
    POLICIES,
    REVIEWS,
    ROLE_SCOPES,
)
from lifecycle.governance.reviews import normal_query
from lifecycle.plans import EXIT_CLEAN, EXIT_DRIFT, EXIT_ERROR
from tests.fakes import FakeGovernanceGraph


@pytest.fixture
def desired():
    return load_desired_state(SAMPLE_DESIRED_STATE)


@pytest.fixture
def graph() -> FakeGovernanceGraph:
    return FakeGovernanceGraph()


async def _run(graph, desired, mode="plan", approved: frozenset[str] = frozenset()):
    audit = MemoryAuditLog()
    clock = FixedClock(datetime(2026, 3, 1, tzinfo=UTC))
    result = await run_governance(
        graph, desired=desired, audit=audit, clock=clock, mode=mode, approved_recreates=approved
    )
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


async def test_a_changed_review_scope_is_a_recreate_held_until_an_operator_approves_it(graph, desired):
    """A definition whose scope truly differs must be deleted and created again; that loses its instances and
    decisions, so enforce holds it (exit 2, the review untouched, the plan saying what would be lost) and only
    a run that approves the review's key recreates it."""
    await _run(graph, desired, "enforce")
    review = next(r for r in graph.objects[REVIEWS].values() if "review/partner/fabrikam" in r["descriptionForAdmins"])
    review["scope"]["query"] = "/groups/00000000-0000-4000-8000-000000000000/transitiveMembers"
    graph.instances[review["id"]] = [
        _instance("2025-07-13T00:00:00Z", "2025-07-27T00:00:00Z", "Completed"),
        _instance("2026-01-13T00:00:00Z", "2026-01-27T00:00:00Z", "InProgress"),
        _instance("2026-07-13T00:00:00Z", "2026-07-27T00:00:00Z", "NotStarted"),
    ]
    held, audit = await _run(graph, desired, "enforce")
    action = next(a for a in held["plan"]["actions"] if a["key"] == "review/partner/fabrikam")
    assert action["change"] == "recreate" and action["diffs"][0]["field"] == "scope.query"
    assert f"deleting definition {review['id']} loses its 2 instance(s) so far (1 in progress)" in action["reason"]
    assert any("--approve-recreate review/partner/fabrikam" in w for w in held["plan"]["warnings"])
    assert [h["key"] for h in held["held"]] == ["review/partner/fabrikam"] and held["applied"] == []
    assert review["id"] in graph.objects[REVIEWS] and ("delete", REVIEWS) not in graph.writes
    assert held["exitCode"] == EXIT_DRIFT and "governance.held" in {e.action for e in audit}
    assert "**held** recreate review/partner/fabrikam" in render(held)

    approved, _ = await _run(graph, desired, "enforce", approved=frozenset({"review/partner/fabrikam"}))
    assert [a["key"] for a in approved["applied"]] == ["review/partner/fabrikam"] and approved["held"] == []
    assert review["id"] not in graph.objects[REVIEWS] and len(graph.objects[REVIEWS]) == 2
    assert approved["exitCode"] == EXIT_CLEAN


async def test_a_renamed_review_is_found_by_its_key_and_renamed_back_not_duplicated(graph, desired):
    """The key marker in descriptionForAdmins identifies the definition even after a rename."""
    await _run(graph, desired, "enforce")
    review = next(r for r in graph.objects[REVIEWS].values() if "review/guests" in r["descriptionForAdmins"])
    review["displayName"] = "Renamed by someone"
    result, _ = await _run(graph, desired, "enforce")
    assert _changes(result) == {"review/guests": "update"}
    assert len(graph.objects[REVIEWS]) == 2 and review["displayName"] == "Quarterly guest access review"


async def test_a_renamed_connected_organisation_is_found_by_its_tenant_filter_and_renamed_back(graph, desired):
    """Renamed by hand, and listed (as Microsoft's example lists it) without its source's tenant id, a
    partner's organisation is still found through the service's filter on that tenant: updated, never
    duplicated."""
    await _run(graph, desired, "enforce")
    fabrikam = graph.only(ORGANIZATIONS, displayName="Fabrikam, Inc.")
    fabrikam["displayName"] = "Renamed by hand"
    result, _ = await _run(graph, desired, "enforce")
    assert _changes(result)["organization/fabrikam"] == "update"
    assert len(graph.objects[ORGANIZATIONS]) == 4
    assert graph.objects[ORGANIZATIONS][fabrikam["id"]]["displayName"] == "Fabrikam, Inc."


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


FABRIKAM_GROUP = "0b1f7a2e-5c3d-4e8f-9a6b-7c8d9e0f1a2b"


def _role_scopes(graph, package_name):
    package = graph.only(PACKAGES, displayName=package_name)
    return [r for r in graph.objects[ROLE_SCOPES].values() if r["_parent"] == package["id"]]


async def test_each_package_grants_the_member_role_of_its_partner_groups_once_they_are_in_the_catalog(graph, desired):
    """Enforce adds each named group to the catalog, then its Member role to the partner's package; re-run is clean."""
    first, _ = await _run(graph, desired, "enforce")
    assert first["exitCode"] == EXIT_CLEAN
    catalog = graph.only(CATALOGS, displayName="Partner collaboration")
    groups = {r["originId"]: r for r in graph.objects[CATALOG_RESOURCES].values()}
    assert len(groups) == 4 and {r["_parent"] for r in groups.values()} == {catalog["id"]}
    scopes = _role_scopes(graph, "Fabrikam engineering")
    assert [(s["role"]["originId"], s["scope"]["originId"]) for s in scopes] == [
        (f"Member_{FABRIKAM_GROUP}", FABRIKAM_GROUP)
    ]
    assert graph.writes.index(("create", CATALOG_RESOURCES)) < graph.writes.index(("create", ROLE_SCOPES))
    writes = len(graph.writes)
    again, _ = await _run(graph, desired, "enforce")
    assert again["exitCode"] == EXIT_CLEAN and len(graph.writes) == writes


async def test_a_missing_catalog_group_is_planned_with_the_permission_it_needs(graph, desired):
    """The create's reason names Group.ReadWrite.All: EntitlementManagement alone cannot add a group to a catalog."""
    result, _ = await _run(graph, desired)
    action = next(a for a in result["plan"]["actions"] if a["key"] == f"resource/{FABRIKAM_GROUP}")
    assert action["change"] == "create" and "Group.ReadWrite.All" in action["reason"]
    assert action["payload"]["body"]["resource"] == {"originId": FABRIKAM_GROUP, "originSystem": "AadGroup"}


async def test_a_role_the_package_grants_beyond_the_desired_state_is_drift_and_removed_in_enforce(graph, desired):
    """An extra role scope on a governed package is a delete action in plan mode and gone after enforce."""
    await _run(graph, desired, "enforce")
    package = graph.only(PACKAGES, displayName="Fabrikam engineering")
    extra = graph.role_scope("Owner_" + FABRIKAM_GROUP, FABRIKAM_GROUP, package["id"])
    graph.objects[ROLE_SCOPES][extra["id"]] = extra

    planned, _ = await _run(graph, desired)
    assert _changes(planned) == {f"package/fabrikam/role:Owner_{FABRIKAM_GROUP}": "delete"}
    action = next(a for a in planned["plan"]["actions"] if a["change"] == "delete")
    assert action["diffs"][0] == {"field": "role", "desired": None, "actual": f"Owner (Owner_{FABRIKAM_GROUP})"}
    assert planned["exitCode"] == EXIT_DRIFT and extra["id"] in graph.objects[ROLE_SCOPES]

    fixed, audit = await _run(graph, desired, "enforce")
    assert fixed["exitCode"] == EXIT_CLEAN and extra["id"] not in graph.objects[ROLE_SCOPES]
    assert len(_role_scopes(graph, "Fabrikam engineering")) == 1
    assert any(e.action == "governance.delete" for e in audit)


async def test_a_group_dropped_from_the_desired_state_leaves_the_package_and_then_the_catalog(graph, desired):
    """Removing a partner's group: its role scope is removed first, then the group leaves the catalog."""
    await _run(graph, desired, "enforce")
    raw = desired.model_dump(mode="json", by_alias=True, exclude_none=True)
    raw["governance"]["partners"]["fabrikam"]["groupMemberships"] = []
    fewer = parse_desired_state(raw)
    planned, _ = await _run(graph, fewer)
    assert _changes(planned) == {
        f"package/fabrikam/role:Member_{FABRIKAM_GROUP}": "delete",
        f"catalog/resource:{FABRIKAM_GROUP}": "delete",
    }
    graph.writes.clear()
    fixed, _ = await _run(graph, fewer, "enforce")
    assert fixed["exitCode"] == EXIT_CLEAN
    assert graph.writes == [("delete", ROLE_SCOPES), ("delete", CATALOG_RESOURCES)]
    assert FABRIKAM_GROUP not in {r["originId"] for r in graph.objects[CATALOG_RESOURCES].values()}


async def test_a_catalog_group_an_ungoverned_package_grants_is_left_alone(graph, desired):
    """A group no partner names stays in the catalog while a package the desired state does not own grants it."""
    await _run(graph, desired, "enforce")
    catalog = graph.only(CATALOGS, displayName="Partner collaboration")
    other = {"id": str(uuid.uuid4()), "displayName": "Contoso interns", "catalog": {"id": catalog["id"]}}
    graph.objects[PACKAGES][other["id"]] = other
    group = "4f5b1e6c-9a7b-4c2d-9e0f-1a2b3c4d5e6f"
    resource = {"id": str(uuid.uuid4()), "displayName": "Extranet", "originId": group, "originSystem": "AadGroup"}
    graph.objects[CATALOG_RESOURCES][resource["id"]] = {**resource, "_parent": catalog["id"]}
    used = graph.role_scope(f"Member_{group}", group, other["id"])
    graph.objects[ROLE_SCOPES][used["id"]] = used
    assert _changes((await _run(graph, desired))[0]) == {}

    del graph.objects[ROLE_SCOPES][used["id"]]
    assert _changes((await _run(graph, desired))[0]) == {f"catalog/resource:{group}": "delete"}


async def test_without_group_memberships_the_package_roles_are_not_governed(graph, desired):
    """A partner whose governance block leaves groupMemberships unset keeps whatever roles its package grants."""
    raw = desired.model_dump(mode="json", by_alias=True, exclude_none=True)
    for partner in raw["governance"]["partners"].values():
        partner.pop("groupMemberships")
    unmanaged = parse_desired_state(raw)
    await _run(graph, unmanaged, "enforce")
    assert graph.objects[CATALOG_RESOURCES] == {} and graph.objects[ROLE_SCOPES] == {}
    package = graph.only(PACKAGES, displayName="Fabrikam engineering")
    kept = graph.role_scope("Owner_" + FABRIKAM_GROUP, FABRIKAM_GROUP, package["id"])
    graph.objects[ROLE_SCOPES][kept["id"]] = kept
    assert _changes((await _run(graph, unmanaged))[0]) == {}


async def test_a_failed_catalog_group_fails_only_the_roles_that_need_it(graph, desired):
    """Without the right to add groups the role scopes cannot be created; everything else still lands."""
    graph.refuse.add(CATALOG_RESOURCES)
    result, _ = await _run(graph, desired, "enforce")
    failed = {f["key"] for f in result["failed"]}
    assert f"resource/{FABRIKAM_GROUP}" in failed and f"role/fabrikam/{FABRIKAM_GROUP}" in failed
    assert "policy/fabrikam/request" not in failed and graph.objects[ROLE_SCOPES] == {}
    assert result["exitCode"] == EXIT_ERROR


def test_group_memberships_take_object_ids_only():
    """A display name where an object id belongs is refused with the field named."""
    raw = load_desired_state(SAMPLE_DESIRED_STATE).model_dump(mode="json", by_alias=True, exclude_none=True)
    raw["governance"]["partners"]["fabrikam"]["groupMemberships"] = ["Fabrikam collaborators"]
    with pytest.raises(DesiredStateError, match="groupMemberships"):
        parse_desired_state(raw)


def _instance(start: str, end: str, status: str) -> dict[str, Any]:
    return {"id": str(uuid.uuid4()), "startDateTime": start, "endDateTime": end, "status": status}


async def test_each_review_current_instance_is_reported_as_evidence_never_as_drift(graph, desired):
    """The run lists per review the occurrence under way and its status; instances never change the plan."""
    await _run(graph, desired, "enforce")
    guests = next(r for r in graph.objects[REVIEWS].values() if "review/guests" in r["descriptionForAdmins"])
    partner = next(r for r in graph.objects[REVIEWS].values() if "review/partner" in r["descriptionForAdmins"])
    graph.instances[guests["id"]] = [
        _instance("2026-01-05T00:00:00Z", "2026-01-19T00:00:00Z", "Completed"),
        _instance("2026-04-05T00:00:00Z", "2026-04-19T00:00:00Z", "NotStarted"),
        _instance("2026-02-05T00:00:00Z", "2026-02-19T00:00:00Z", "InProgress"),
        _instance("2026-02-05T00:00:00Z", "2026-02-19T00:00:00Z", "Completed"),  # one group's finished early
    ]
    graph.instances[partner["id"]] = [_instance("2026-07-13T00:00:00Z", "2026-07-27T00:00:00Z", "NotStarted")]

    result, _ = await _run(graph, desired)
    assert result["exitCode"] == EXIT_CLEAN and result["plan"]["drift"] == 0
    evidence = {e["key"]: e for e in result["reviewInstances"]}
    assert evidence["review/guests"]["instances"] == 4
    assert evidence["review/guests"]["current"] == {
        "startDateTime": "2026-02-05T00:00:00Z",
        "endDateTime": "2026-02-19T00:00:00Z",
        "status": "InProgress",
        "instances": 2,
    }
    assert evidence["review/partner/fabrikam"]["current"]["status"] == "NotStarted"
    text = render(result)
    assert "- review/guests: InProgress 2026-02-05 to 2026-02-19 (2 instances)" in text
    assert "- review/partner/fabrikam: NotStarted 2026-07-13 to 2026-07-27" in text


async def test_reviews_not_yet_in_the_tenant_have_no_evidence(graph, desired):
    """Plan mode on an empty tenant reads no instances: there is no definition to ask about."""
    result, _ = await _run(graph, desired)
    assert result["reviewInstances"] == []


async def test_group_memberships_of_a_partner_without_a_governed_package_are_a_warning(graph, desired):
    """Groups named for a partner whose package is in another catalog are not silently dropped: the plan warns."""
    raw = desired.model_dump(mode="json", by_alias=True, exclude_none=True)
    raw["partners"]["adatum"]["accessPackage"]["catalog"] = "Somewhere else"
    result, _ = await _run(graph, parse_desired_state(raw))
    assert any("adatum.groupMemberships is ignored" in w for w in result["plan"]["warnings"])
    assert not any(a["key"].startswith("role/adatum/") for a in result["plan"]["actions"])


# --- review definitions as Graph stores them ------------------------------------------------------


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        (
            "./members/microsoft.graph.user/?$filter=(userType eq 'Guest')",
            "./members/microsoft.graph.user/?$count=true&$filter=(userType eq 'Guest')",
        ),
        (
            "/groups?$filter=(groupTypes/any(c:c eq 'Unified'))",
            "/v1.0/groups?$filter=(groupTypes/any(c:c+eq+'Unified'))&$count=true",
        ),
        ("/groups/g1/transitiveMembers", "/v1.0/groups/g1/transitiveMembers"),
        ("/users/u1", "https://graph.microsoft.com/v1.0/users/u1"),
        ("/groups/g1/members?$top=5&$filter=x eq 1", "/groups/g1/members?$filter=x  eq  1&$top=5"),
    ],
)
def test_a_query_graph_spells_differently_normalises_to_the_one_sent(sent, stored):
    """Version prefix, $count, option order, + for space and a slash before the options are not a change."""
    assert normal_query(sent) == normal_query(stored)


def test_a_query_that_reviews_something_else_stays_different():
    """A different group, path or filter is a real change."""
    assert normal_query("/groups/g1/transitiveMembers") != normal_query("/v1.0/groups/g2/transitiveMembers")
    assert normal_query("./members?$filter=(userType eq 'Guest')") != normal_query("./members")
    assert normal_query("/groups/g1/members") != normal_query("/groups/g1/transitiveMembers")


async def test_reviews_graph_stores_rewritten_plan_no_change_and_delete_nothing(graph, desired):
    """After enforce on a tenant that stores reviews as Graph does, the next enforce plans nothing for them:
    no recreate (which would delete running reviews and their decisions) and no update."""
    graph.rewrite_reviews = True
    await _run(graph, desired, "enforce")
    stored = list(graph.objects[REVIEWS].values())
    assert {r["settings"]["recurrence"]["range"]["type"] for r in stored} == {"numbered"}
    assert any(r["scope"]["query"].startswith("/v1.0/groups/") for r in stored)
    graph.writes.clear()
    again, _ = await _run(graph, desired, "enforce")
    assert again["exitCode"] == EXIT_CLEAN and again["plan"]["drift"] == 0
    assert graph.writes == [] and sorted(graph.objects[REVIEWS]) == sorted(r["id"] for r in stored)


async def test_a_review_update_sends_back_the_scope_and_reviewers_as_graph_stores_them(graph, desired):
    """A settings drift is a PUT of the whole definition carrying the stored scope and the stored spelling of
    unchanged reviewers, so Graph never reads it as a scope or reviewer change."""
    graph.rewrite_reviews = True
    await _run(graph, desired, "enforce")
    review = next(r for r in graph.objects[REVIEWS].values() if "review/partner/fabrikam" in r["descriptionForAdmins"])
    review["settings"]["instanceDurationInDays"] = 3
    planned, _ = await _run(graph, desired)
    assert _changes(planned) == {"review/partner/fabrikam": "update"}
    fixed, _ = await _run(graph, desired, "enforce")
    assert fixed["exitCode"] == EXIT_CLEAN
    [put] = graph.puts
    assert put["scope"]["query"] == review["scope"]["query"] and put["scope"]["query"].startswith("/v1.0/")
    assert [r["query"] for r in put["reviewers"]] == [r["query"] for r in review["reviewers"]]
    assert put["settings"]["instanceDurationInDays"] == 14


def _with_reviewers(desired, review: str, reviewers: list[dict[str, str]]):
    raw = desired.model_dump(mode="json", by_alias=True, exclude_none=True)
    raw["governance"][review]["reviewers"] = reviewers
    return parse_desired_state(raw)


async def test_a_reviewer_change_graph_cannot_update_is_a_held_recreate(graph, desired):
    """Sponsors to a named user: Graph updates reviewers only while individual users review, so the plan is
    a recreate explained as such, held in enforce; the definition keeps its reviewers and id."""
    await _run(graph, desired, "enforce")
    review = next(r for r in graph.objects[REVIEWS].values() if "review/guests" in r["descriptionForAdmins"])
    changed = _with_reviewers(desired, "guestReview", [{"kind": "user", "id": str(uuid.uuid4())}])
    result, _ = await _run(graph, changed, "enforce")
    action = next(a for a in result["plan"]["actions"] if a["key"] == "review/guests")
    assert action["change"] == "recreate" and "only while individual users review" in action["reason"]
    assert [d["field"] for d in action["diffs"]] == ["reviewers"]
    assert [h["key"] for h in result["held"]] == ["review/guests"] and result["exitCode"] == EXIT_DRIFT
    assert graph.objects[REVIEWS][review["id"]]["reviewers"][0]["query"] == "./sponsors"


async def test_a_reviewer_change_between_individual_users_is_updated_in_place(graph, desired):
    """One named user for another is the update Graph allows: a PUT, the same definition id."""
    first = _with_reviewers(desired, "guestReview", [{"kind": "user", "id": str(uuid.uuid4())}])
    await _run(graph, first, "enforce")
    review = next(r for r in graph.objects[REVIEWS].values() if "review/guests" in r["descriptionForAdmins"])
    user = str(uuid.uuid4())
    result, _ = await _run(graph, _with_reviewers(desired, "guestReview", [{"kind": "user", "id": user}]), "enforce")
    assert _changes(result) == {"review/guests": "update"} and result["exitCode"] == EXIT_CLEAN
    assert graph.objects[REVIEWS][review["id"]]["reviewers"][0]["query"] == f"/users/{user}"


async def test_group_owners_review_as_the_group_s_owners_on_one_group_and_relatively_on_all_groups(graph, desired):
    """The partner review of one group names /groups/{id}/owners; the review of all groups keeps ./owners."""
    await _run(graph, desired, "enforce")
    partner = next(r for r in graph.objects[REVIEWS].values() if "review/partner" in r["descriptionForAdmins"])
    group = desired.governance.partners["fabrikam"].review_group_id
    assert [r["query"] for r in partner["reviewers"]] == [f"/groups/{group}/owners"]
    guests = next(r for r in graph.objects[REVIEWS].values() if "review/guests" in r["descriptionForAdmins"])
    assert [r["query"] for r in guests["fallbackReviewers"]] == ["./owners"]
