"""Guest lifecycle policies (Lifecycle Workflows) as tenantsim serves them: the policy collection, its limits and
validation, rules, versions, priority, and the report a processing run writes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tenantsim.seed import PROTECTED_GROUP_ID
from tests.tenantsim.conftest import guests

NS = "#microsoft.graph.identityGovernance"
POLICIES = "/v1.0/identityGovernance/lifecycleWorkflows/lifecyclePolicies"
PRIORITY = "/v1.0/identityGovernance/lifecycleWorkflows/lifecyclePolicyPriorityConfigurations"
READ = ("LifecyclePolicies-Guests.Read.All",)
WRITE = ("LifecyclePolicies-Guests.ReadWrite.All",)


def policy_body(name: str = "Inactive guests", **overrides) -> dict:
    body = {
        "@odata.type": f"{NS}.guestLifecyclePolicy",
        "displayName": name,
        "description": "Guests who stop signing in are disabled, then deleted.",
        "isEnabled": True,
        "gracePeriodInDays": 7,
        "enforcementAction": {
            "@odata.type": f"{NS}.disableThenDeleteEnforcementAction",
            "deletionGracePeriodInDays": 30,
        },
        "notificationSchedule": {
            "@odata.type": f"{NS}.lifecyclePolicyNotificationSettings",
            "additionalFallbackRecipients": ["guest-admins@contoso.com"],
            "offsetsAfterNonComplianceInDays": [14, 7, 1],
        },
        "rules": [
            {"@odata.type": f"{NS}.inactivityRule", "isEnabled": True, "lastActivityThresholdInDays": 90},
            {"@odata.type": f"{NS}.sponsorPresenceRule", "isEnabled": True, "minimumSponsorCount": 1},
        ],
        "scope": None,
    }
    body.update(overrides)
    return body


def excluding(*group_ids: str) -> dict:
    return {
        "@odata.type": f"{NS}.allExcludingGroupsSubjectSet",
        "excludedGroups@odata.bind": [f"https://graph.microsoft.com/v1.0/groups/{g}" for g in group_ids],
    }


def create(graph, body: dict | None = None) -> dict:
    created = graph.request("POST", POLICIES, roles=WRITE, json=body or policy_body())
    assert created.status_code == 201, created.text
    return created.json()


def test_a_created_guest_policy_answers_201_with_its_rules_version_1_and_user_created(graph):
    created = create(graph)
    assert created["@odata.type"] == f"{NS}.guestLifecyclePolicy"
    assert (created["versionNumber"], created["policySource"], created["isEnabled"]) == (1, "userCreated", True)
    assert [r["@odata.type"] for r in created["rules"]] == [f"{NS}.inactivityRule", f"{NS}.sponsorPresenceRule"]
    assert all(r["id"] for r in created["rules"]) and not any("ruleType" in r for r in created["rules"])
    bare = policy_body("Defaults", enforcementAction={"@odata.type": f"{NS}.disableThenDeleteEnforcementAction"})
    del bare["gracePeriodInDays"]
    defaults = create(graph, bare)
    assert (defaults["gracePeriodInDays"], defaults["enforcementAction"]["deletionGracePeriodInDays"]) == (7, 30)
    got = graph.get(f"{POLICIES}/{created['id']}", roles=READ).json()
    assert got["rules"] == created["rules"] and got["notificationSchedule"]["offsetsAfterNonComplianceInDays"] == [
        14,
        7,
        1,
    ]
    listed = graph.get(POLICIES, roles=READ).json()["value"]
    assert [p["id"] for p in listed] == [created["id"], defaults["id"]]


def test_reads_need_a_guest_policy_permission_and_writes_the_read_write_one(graph):
    assert graph.get(POLICIES, roles=("User.Read.All",)).status_code == 403
    assert graph.request("POST", POLICIES, roles=READ, json=policy_body()).status_code == 403
    assert graph.get(POLICIES, roles=WRITE).status_code == 200


def test_the_eleventh_guest_policy_is_refused_with_the_per_subject_limit_code(graph, admin):
    for n in range(10):
        create(graph, policy_body(f"Policy {n}"))
    refused = graph.request("POST", POLICIES, roles=WRITE, json=policy_body("Policy 11"))
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "lifecyclePoliciesPerSubjectLimitExceeded"
    admin.configure(guestLifecyclePolicyLimit=20)
    assert graph.request("POST", POLICIES, roles=WRITE, json=policy_body("Policy 11")).status_code == 201


def test_more_than_ten_rules_or_excluded_groups_are_refused_with_their_codes(graph, admin):
    rule = {"@odata.type": f"{NS}.sponsorPresenceRule", "isEnabled": True, "minimumSponsorCount": 1}
    too_many_rules = graph.request("POST", POLICIES, roles=WRITE, json=policy_body(rules=[rule] * 11))
    assert too_many_rules.json()["error"]["code"] == "lifecyclePolicyRulesLimitExceeded"
    groups = [g["id"] for g in admin.snapshot()["groups"]]
    assert len(groups) >= 5
    eleven = [*groups, *(f"00000000-0000-0000-0000-0000000000{n:02d}" for n in range(11 - len(groups)))]
    too_many_groups = graph.request("POST", POLICIES, roles=WRITE, json=policy_body(scope=excluding(*eleven)))
    assert too_many_groups.json()["error"]["code"] == "lifecyclePolicyExcludedGroupsLimitExceeded"


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"@odata.type": f"{NS}.lifecyclePolicy"}, "an abstract type"),
        ({"displayName": None}, "no display name"),
        ({"enforcementAction": {"@odata.type": f"{NS}.archiveEnforcementAction"}}, "an unknown action"),
        ({"rules": [{"@odata.type": f"{NS}.inactivityRule", "isEnabled": True}]}, "a rule without its threshold"),
        ({"rules": [{"@odata.type": f"{NS}.inactivityRule", "lastActivityThresholdInDays": 90, "days": 1}]}, "foreign"),
        (
            {"rules": [{"@odata.type": f"{NS}.invitationRedemptionRule", "invitationRedemptionThresholdInDays": 31}]},
            "31",
        ),
        (
            {
                "rules": [
                    {"@odata.type": f"{NS}.sponsorPresenceRule", "minimumSponsorCount": 1, "gracePeriodInDays": 31}
                ]
            },
            "g",
        ),
        ({"priority": 1}, "a property the type does not have"),
        ({"scope": {"@odata.type": f"{NS}.selectedObjectsSubjectSet"}}, "a scope type tenantsim does not serve"),
    ],
)
def test_an_invalid_policy_is_refused_with_400(graph, change, why):
    refused = graph.request("POST", POLICIES, roles=WRITE, json=policy_body(**change))
    assert refused.status_code == 400, why


def test_admin_center_ranges_are_enforced_unless_the_knob_lifts_them(graph, admin):
    short = policy_body(rules=[{"@odata.type": f"{NS}.inactivityRule", "lastActivityThresholdInDays": 10}])
    assert graph.request("POST", POLICIES, roles=WRITE, json=short).status_code == 400
    admin.configure(lifecyclePolicyPortalRanges=False)
    assert graph.request("POST", POLICIES, roles=WRITE, json=short).status_code == 201


def test_an_update_answers_204_and_increments_the_version_keeping_the_previous_one(graph):
    created = create(graph)
    path = f"{POLICIES}/{created['id']}"
    assert graph.request("PATCH", path, roles=WRITE, json={"displayName": "x"}).status_code == 400  # no @odata.type
    update = {"@odata.type": f"{NS}.guestLifecyclePolicy", "displayName": "Inactive guests (v2)", "isEnabled": False}
    assert graph.request("PATCH", path, roles=WRITE, json=update).status_code == 204
    got = graph.get(path, roles=READ).json()
    assert (got["displayName"], got["isEnabled"], got["versionNumber"]) == ("Inactive guests (v2)", False, 2)
    assert got["rules"] == created["rules"]
    versions = graph.get(f"{path}/versions", roles=READ).json()["value"]
    assert [(v["versionNumber"], v["displayName"]) for v in versions] == [(1, "Inactive guests")]


def test_a_patch_naming_what_the_update_page_does_not_list_is_refused_under_the_knob(graph, admin):
    """The update page lists description, displayName, enforcementAction, isEnabled, notificationSchedule and
    scope: gracePeriodInDays and rules are the unlisted ones, taken by default and refused with "refuse"."""
    created = create(graph)
    path = f"{POLICIES}/{created['id']}"
    kind = {"@odata.type": f"{NS}.guestLifecyclePolicy"}
    assert graph.request("PATCH", path, roles=WRITE, json={**kind, "gracePeriodInDays": 10}).status_code == 204
    admin.configure(lifecyclePolicyUpdateUnlisted="refuse")
    for unlisted in ({"gracePeriodInDays": 12}, {"rules": created["rules"]}):
        refused = graph.request("PATCH", path, roles=WRITE, json={**kind, "isEnabled": False, **unlisted})
        assert refused.status_code == 400, unlisted
    assert graph.request("PATCH", path, roles=WRITE, json={**kind, "isEnabled": False}).status_code == 204
    got = graph.get(path, roles=READ).json()
    assert (got["gracePeriodInDays"], got["isEnabled"], got["versionNumber"]) == (10, False, 3)


def test_rules_are_listed_and_on_v1_changed_through_the_policy_not_one_by_one(graph, admin):
    created = create(graph)
    path = f"{POLICIES}/{created['id']}"
    rules = graph.get(f"{path}/rules", roles=READ).json()["value"]
    assert rules == created["rules"]
    inactivity = rules[0]
    patch = {"@odata.type": inactivity["@odata.type"], "lastActivityThresholdInDays": 120}
    assert graph.request("PATCH", f"{path}/rules/{inactivity['id']}", roles=WRITE, json=patch).status_code == 405
    whole = {"@odata.type": f"{NS}.guestLifecyclePolicy", "rules": [{**inactivity, **patch}, rules[1]]}
    assert graph.request("PATCH", path, roles=WRITE, json=whole).status_code == 204
    after = graph.get(f"{path}/rules", roles=READ).json()["value"]
    assert [r["id"] for r in after] == [r["id"] for r in rules] and after[0]["lastActivityThresholdInDays"] == 120
    admin.configure(lifecyclePolicyRuleMethods="patch")
    patch["lastActivityThresholdInDays"] = 180
    assert graph.request("PATCH", f"{path}/rules/{inactivity['id']}", roles=WRITE, json=patch).status_code == 204
    one = graph.get(f"{path}/rules/{inactivity['id']}", roles=READ).json()
    assert one["lastActivityThresholdInDays"] == 180
    assert graph.get(path, roles=READ).json()["versionNumber"] == 3


def test_excluded_groups_are_bound_and_read_back_with_expand_or_inline_under_the_knob(graph, admin):
    created = create(graph, policy_body(scope=excluding(PROTECTED_GROUP_ID)))
    path = f"{POLICIES}/{created['id']}"
    plain = graph.get(path, roles=READ).json()["scope"]
    assert plain == {"@odata.type": f"{NS}.allExcludingGroupsSubjectSet"}
    expanded = graph.get(path, roles=READ, params={"$expand": "scope"}).json()["scope"]
    assert [g["id"] for g in expanded["excludedGroups"]] == [PROTECTED_GROUP_ID]
    admin.configure(lifecyclePolicyExcludedGroups="inline")
    inline = {"@odata.type": f"{NS}.allExcludingGroupsSubjectSet", "excludedGroups": [{"id": PROTECTED_GROUP_ID}]}
    second = create(graph, policy_body("Second", scope=inline))
    assert [g["id"] for g in second["scope"]["excludedGroups"]] == [PROTECTED_GROUP_ID]
    assert (
        graph.request("POST", POLICIES, roles=WRITE, json=policy_body(scope=excluding(PROTECTED_GROUP_ID))).status_code
        == 400
    )


def test_a_new_policy_takes_the_lowest_priority_and_the_order_changes_with_the_etag(graph):
    first, second = create(graph, policy_body("First")), create(graph, policy_body("Second"))
    config = graph.get(f"{PRIORITY}/user", roles=READ).json()
    assert config["orderedPolicyIds"] == [first["id"], second["id"]]
    reorder = {"orderedPolicyIds": [second["id"], first["id"]]}
    assert graph.request("PATCH", f"{PRIORITY}/user", roles=WRITE, json=reorder).status_code == 412
    etag = {"If-Match": config["@odata.etag"]}
    assert graph.request("PATCH", f"{PRIORITY}/user", roles=WRITE, json=reorder, headers=etag).status_code == 204
    listed = graph.get(POLICIES, roles=READ).json()["value"]
    assert [p["id"] for p in listed] == [second["id"], first["id"]]


def test_the_report_is_absent_until_processed_then_counts_the_guests_in_scope(graph, admin):
    created = create(graph, policy_body(scope=excluding(PROTECTED_GROUP_ID)))
    path = f"{POLICIES}/{created['id']}"
    assert graph.get(f"{path}/report", roles=READ).status_code == 404
    admin.configure(lifecyclePolicyReportBeforeProcessing="notStarted")
    assert graph.get(f"{path}/report", roles=READ).json()["scopeProcessing"]["currentStatus"] == "notStarted"
    assert admin.process_lifecycle_policies() == [created["id"]]
    report = graph.get(f"{path}/report", roles=READ).json()
    protected = next(g for g in admin.snapshot()["groups"] if g["id"] == PROTECTED_GROUP_ID)["members"]
    assert report["subjectsInScopeCount"] == len(guests(admin)) - len(protected)
    assert report["policyVersion"] == 1 and report["scopeProcessing"]["latestAttempt"]["status"] == "completed"


def test_a_disabled_policy_is_not_processed(graph, admin):
    create(graph, policy_body(isEnabled=False))
    assert admin.process_lifecycle_policies() == []


def test_exclusion_honours_direct_membership_only(graph, admin):
    guest_ids = [g["id"] for g in guests(admin)]
    protected = next(g for g in admin.snapshot()["groups"] if g["id"] == PROTECTED_GROUP_ID)["members"]
    nested_group = next(g["id"] for g in admin.snapshot()["groups"] if g["id"] != PROTECTED_GROUP_ID)
    admin.add_group_member(PROTECTED_GROUP_ID, nested_group)
    nested_guest = next(g for g in guest_ids if g not in protected)
    admin.add_group_member(nested_group, nested_guest)
    created = create(graph, policy_body(scope=excluding(PROTECTED_GROUP_ID)))
    admin.process_lifecycle_policies()
    subjects = graph.get(f"{POLICIES}/{created['id']}/report/subjects", roles=READ, params={"$top": 999}).json()
    ids = {s["id"] for s in subjects["value"]}
    assert nested_guest in ids and not ids & set(protected)


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_rules_are_anded_and_the_action_falls_due_after_the_grace_period(graph, admin):
    guest, other = guests(admin)[:2]
    long_ago = _iso(_now() - timedelta(days=200))
    recent = _iso(_now() - timedelta(days=1))
    for user in (guest, other):
        admin.patch_user(user["id"], createdDateTime=long_ago, signInActivity={"lastSignInDateTime": recent})
    admin.patch_user(other["id"], signInActivity={"lastSignInDateTime": long_ago})  # inactive
    created = create(graph, policy_body(gracePeriodInDays=7))
    admin.process_lifecycle_policies()
    path = f"{POLICIES}/{created['id']}/report/subjects"
    active = graph.get(path, roles=READ, params={"$filter": f"id eq '{guest['id']}'"}).json()["value"][0]
    assert (active["relationship"], active["compliance"]["status"]) == ("effective", "compliant")
    assert active["enforcement"]["status"] == "notRequired"
    inactive = graph.get(path, roles=READ, params={"$filter": f"id eq '{other['id']}'"}).json()["value"][0]
    assert inactive["compliance"]["status"] == "nonCompliant"
    assert inactive["enforcement"]["status"] == "waiting" and inactive["enforcement"]["nextAction"] == "disable"
    assert inactive["effectivePolicy"] == {"id": created["id"], "version": 1}
    assert inactive["subject"] == {"@odata.type": f"{NS}.lifecyclePolicyUserSubjectReference", "id": other["id"]}
    admin.configure(clockOffsetSeconds=8 * 86400)
    admin.process_lifecycle_policies()
    later = graph.get(path, roles=READ, params={"$filter": f"id eq '{other['id']}'"}).json()["value"][0]
    assert later["enforcement"]["status"] == "actionDue"


@pytest.mark.parametrize(("reading", "status"), [("interactive", "nonCompliant"), ("all", "compliant")])
def test_a_non_interactive_sign_in_keeps_a_guest_active_only_under_the_knob(graph, admin, reading, status):
    """The inactivity rule's page does not say which sign-ins count: a guest whose only recent activity is a
    non-interactive token refresh is inactive under "interactive" (the default) and active under "all"."""
    admin.configure(lifecyclePolicyInactivitySignIns=reading)
    guest = guests(admin)[0]
    long_ago, recent = _iso(_now() - timedelta(days=200)), _iso(_now() - timedelta(days=1))
    activity = {
        "lastSignInDateTime": long_ago,
        "lastSuccessfulSignInDateTime": long_ago,
        "lastNonInteractiveSignInDateTime": recent,
    }
    admin.patch_user(guest["id"], createdDateTime=long_ago, signInActivity=activity)
    created = create(graph)
    admin.process_lifecycle_policies()
    path = f"{POLICIES}/{created['id']}/report/subjects"
    subject = graph.get(path, roles=READ, params={"$filter": f"id eq '{guest['id']}'"}).json()["value"][0]
    assert subject["compliance"]["status"] == status


def test_attestation_and_redemption_rules_use_the_attestation_and_the_invitation_state(graph, admin):
    pending = next(g for g in guests(admin) if g["externalUserState"] == "PendingAcceptance")
    accepted = next(g for g in guests(admin) if g["externalUserState"] == "Accepted")
    old = _iso(_now() - timedelta(days=100))
    admin.patch_user(pending["id"], createdDateTime=old, externalUserStateChangeDateTime=old)
    admin.patch_user(accepted["id"], createdDateTime=old)
    admin.attest_guest(accepted["id"])
    rules = [
        {"@odata.type": f"{NS}.invitationRedemptionRule", "invitationRedemptionThresholdInDays": 30},
        {"@odata.type": f"{NS}.periodicAttestationRule", "attestationIntervalInDays": 90},
    ]
    created = create(graph, policy_body(rules=rules))
    admin.process_lifecycle_policies()
    path = f"{POLICIES}/{created['id']}/report/subjects"
    by_id = {s["id"]: s for s in graph.get(path, roles=READ, params={"$top": 999}).json()["value"]}
    assert by_id[pending["id"]]["compliance"]["status"] == "nonCompliant"
    assert by_id[accepted["id"]]["compliance"]["status"] == "compliant"


def test_only_the_highest_priority_policy_binds_a_guest(graph, admin):
    first, second = create(graph, policy_body("First")), create(graph, policy_body("Second"))
    admin.process_lifecycle_policies()
    lower = graph.get(f"{POLICIES}/{second['id']}/report/subjects", roles=READ, params={"$top": 1}).json()["value"][0]
    assert lower["relationship"] == "inScopeButIneffective" and lower["compliance"]["status"] == "notEvaluated"
    assert lower["effectivePolicy"]["id"] == first["id"]


def test_subjects_are_paged_with_next_links_and_refuse_undocumented_options(graph, admin):
    created = create(graph)
    admin.process_lifecycle_policies()
    path = f"{POLICIES}/{created['id']}/report/subjects"
    seen, url = [], f"{path}?$top=7"
    while url:
        page = graph.get(url, roles=READ).json()
        seen += [s["id"] for s in page["value"]]
        url = page.get("@odata.nextLink", "").replace(graph.server.url, "") or None
    assert sorted(seen) == sorted(g["id"] for g in guests(admin))
    for option in ("$skip", "$orderby", "$count", "$expand"):
        assert graph.get(path, roles=READ, params={option: "1"}).status_code == 400, option
    assert graph.get(path, roles=READ, params={"$filter": "relationship eq 'effective'"}).status_code == 400


def test_a_deleted_policy_leaves_the_list_and_the_priority_order(graph):
    kept, gone = create(graph, policy_body("Kept")), create(graph, policy_body("Gone"))
    assert graph.request("DELETE", f"{POLICIES}/{gone['id']}", roles=WRITE).status_code == 204
    assert graph.get(f"{POLICIES}/{gone['id']}", roles=READ).status_code == 404
    assert [p["id"] for p in graph.get(POLICIES, roles=READ).json()["value"]] == [kept["id"]]
    assert graph.get(f"{PRIORITY}/user", roles=READ).json()["orderedPolicyIds"] == [kept["id"]]
    restore = "/v1.0/identityGovernance/lifecycleWorkflows/deletedItems/lifecyclePolicies"
    assert graph.get(restore, roles=READ).status_code == 400
