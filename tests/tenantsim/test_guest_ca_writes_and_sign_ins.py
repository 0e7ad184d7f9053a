"""Conditional Access updates and the sign-in logs that show what a report-only policy would have done."""

from __future__ import annotations

import pytest

from tests.tenantsim.test_policy_extras import CA, CA_WRITE, GUEST_MFA

SIGN_INS = "/v1.0/auditLogs/signIns"
LOGS = ("AuditLog.Read.All", "Directory.Read.All", "Policy.Read.All")
EVOLVABLE = {"Prefer": "include-unknown-enum-members"}


def _event(policy_id: str, result: str, user: str = "u1", at: str | None = None) -> dict:
    event = {
        "userId": user,
        "userPrincipalName": f"{user}_fabrikam.com#EXT#@contoso.onmicrosoft.com",
        "clientAppUsed": "Browser",
        "appliedConditionalAccessPolicies": [{"id": policy_id, "displayName": "Guests: require MFA", "result": result}],
    }
    return {**event, "createdDateTime": at} if at else event


def test_an_update_answers_204_keeps_what_it_leaves_out_and_switches_state(graph):
    created = graph.request(
        "POST", CA, roles=CA_WRITE, json={**GUEST_MFA, "state": "enabledForReportingButNotEnforced"}
    )
    policy_id = created.json()["id"]
    answer = graph.request("PATCH", f"{CA}/{policy_id}", roles=CA_WRITE, json={"state": "enabled"})
    assert answer.status_code == 204
    got = graph.get(f"{CA}/{policy_id}", roles=("Policy.Read.All",)).json()
    assert got["state"] == "enabled" and got["grantControls"] == GUEST_MFA["grantControls"]
    assert got["modifiedDateTime"] is not None


@pytest.mark.parametrize(
    "body", [{"state": "on"}, {"secret": 1}, {"conditions": []}], ids=["state", "unknown", "shape"]
)
def test_an_update_with_a_bad_body_is_refused(graph, body):
    policy_id = graph.request("POST", CA, roles=CA_WRITE, json=GUEST_MFA).json()["id"]
    assert graph.request("PATCH", f"{CA}/{policy_id}", roles=CA_WRITE, json=body).status_code == 400


def test_an_update_needs_the_three_write_permissions(graph):
    policy_id = graph.request("POST", CA, roles=CA_WRITE, json=GUEST_MFA).json()["id"]
    roles = ("Policy.ReadWrite.ConditionalAccess", "Policy.Read.All")
    assert graph.request("PATCH", f"{CA}/{policy_id}", roles=roles, json={"state": "disabled"}).status_code == 403


def test_report_only_results_read_as_unknown_future_value_unless_the_client_asks_for_them(graph, admin):
    admin.add_sign_ins(_event("p1", "reportOnlyFailure"))
    plain = graph.get(SIGN_INS, roles=LOGS).json()["value"][0]["appliedConditionalAccessPolicies"][0]
    asked = graph.get(SIGN_INS, roles=LOGS, headers=EVOLVABLE).json()["value"][0]["appliedConditionalAccessPolicies"][0]
    assert plain["result"] == "unknownFutureValue" and asked["result"] == "reportOnlyFailure"


def test_sign_ins_are_filtered_by_applied_policy_and_time_and_listed_newest_first(graph, admin):
    admin.add_sign_ins(
        _event("p1", "reportOnlyFailure", "old", "2026-01-01T00:00:00Z"),
        _event("p1", "reportOnlySuccess", "new", "2026-06-01T00:00:00Z"),
        _event("p2", "success", "other", "2026-06-02T00:00:00Z"),
    )
    query = "$filter=createdDateTime ge 2026-02-01T00:00:00Z and appliedConditionalAccessPolicies/any(p:p/id eq 'p1')"
    found = graph.get(f"{SIGN_INS}?{query}", roles=LOGS, headers=EVOLVABLE).json()["value"]
    assert [e["userId"] for e in found] == ["new"]
    everything = graph.get(SIGN_INS, roles=LOGS).json()["value"]
    assert [e["userId"] for e in everything] == ["other", "new", "old"]
    assert graph.get(f"{SIGN_INS}?$filter=userId eq 'x'", roles=LOGS).status_code == 400


def test_sign_ins_page_with_top_and_a_next_link(graph, admin):
    admin.add_sign_ins(*(_event("p1", "success", f"u{i}") for i in range(3)))
    first = graph.get(f"{SIGN_INS}?$top=2", roles=LOGS).json()
    assert len(first["value"]) == 2
    rest = graph.get(first["@odata.nextLink"].split(graph.server.url, 1)[1], roles=LOGS).json()
    assert len(rest["value"]) == 1 and "@odata.nextLink" not in rest


def test_the_applied_policies_are_shown_only_to_callers_that_read_conditional_access(graph, admin):
    admin.add_sign_ins(_event("p1", "failure"))
    roles = ("AuditLog.Read.All", "Directory.Read.All")
    assert graph.get(SIGN_INS, roles=roles).json()["value"][0]["appliedConditionalAccessPolicies"] == []


def test_reading_sign_ins_needs_directory_read_all_too_unless_the_known_issue_is_gone(graph, admin):
    assert graph.get(SIGN_INS, roles=("AuditLog.Read.All", "Policy.Read.All")).status_code == 403
    admin.configure(signInListNeedsDirectoryRead=False)
    assert graph.get(SIGN_INS, roles=("AuditLog.Read.All", "Policy.Read.All")).status_code == 200
    assert graph.get(SIGN_INS, roles=("Policy.Read.All",)).status_code == 403


def test_a_tenant_without_premium_cannot_read_sign_ins(graph, admin):
    admin.configure(entraIdPremium=False)
    answer = graph.get(SIGN_INS, roles=LOGS)
    assert answer.status_code == 403
    assert answer.json()["error"]["code"] == "Authentication_RequestFromNonPremiumTenantOrB2CTenant"
