"""The soak's invariant checks fire on the breakage each one names (small hand-made tenants, no stack)."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime

from lifecycle.models import AuditEntry, Rejection, WorkItem, WorkStatus
from tests.chaos.invariants import Evidence, check_all
from tests.chaos.scenario import Tenant, Ticket

NOW = datetime(2026, 11, 23, tzinfo=UTC)
MEMBER = "11111111-0000-0000-0000-000000000001"
GUEST = "22222222-0000-0000-0000-000000000002"
OLD = "33333333-0000-0000-0000-000000000003"
EXCLUDED = "44444444-0000-0000-0000-000000000004"
PACKAGE = "a1f0c2d3-4e5b-4a6c-8d7e-9f0a1b2c3d41"


def user(object_id: str, mail: str, user_type: str = "Guest", **fields) -> dict:
    return {"id": object_id, "mail": mail, "userType": user_type, "accountEnabled": True, **fields}


def onboard(ticket_id: str, email: str) -> Ticket:
    body = json.dumps({"ticketId": ticket_id, "email": email}).encode()
    return Ticket(body, "invite", ticket_id, email)


def healthy() -> Evidence:
    """A run that kept every promise: one ticket invited a guest, the sweep deleted an eligible one."""
    tenant = Tenant({}, NOW, delete_eligible=[OLD], excluded=[EXCLUDED])
    before = {
        "users": [
            user(MEMBER, "megan@contoso.com", "Member"),
            user(OLD, "old@fabrikam.com", accountEnabled=False),
            user(EXCLUDED, "vip@fabrikam.com"),
        ],
        "deletedItems": [],
        "policies": {"p": 1},
    }
    after = copy.deepcopy(before)
    after["deletedItems"] = [after["users"].pop(1)]
    after["users"].append(user(GUEST, "ana@fabrikam.com", externalUserState="PendingAcceptance"))
    item = WorkItem("ticket:T1", "onboard", WorkStatus.DONE, result={"objectId": GUEST})
    return Evidence(
        tenant=tenant,
        tickets=[onboard("T1", "ana@fabrikam.com")],
        before=before,
        after=after,
        requests=[
            {"method": "POST", "path": "/v1.0/invitations", "status": 201},
            {"method": "DELETE", "path": f"/v1.0/users/{OLD}", "status": 204},
        ],
        assignments=[{"state": "delivered", "target": {"objectId": GUEST}, "accessPackage": {"id": PACKAGE}}],
        audit=[
            AuditEntry(NOW, "guest.invited", GUEST, "onboard ticket T1"),
            AuditEntry(NOW, "access.assigned", GUEST, "package"),
            AuditEntry(NOW, "guest.deleted", OLD, "rule disabled-past-grace"),
        ],
        work_items={"ticket:T1": item},
        rejections=[],
        drift_after=0,
    )


def names(evidence: Evidence) -> set[str]:
    return {v["invariant"] for v in check_all(evidence)}


def test_a_run_that_kept_every_promise_has_no_violation():
    assert check_all(healthy()) == []


def test_a_ticket_without_a_final_work_item_is_lost():
    evidence = healthy()
    evidence.work_items.clear()
    assert "ticket-lost" in names(evidence)


def test_a_ticket_left_failed_is_not_finished():
    evidence = healthy()
    evidence.work_items["ticket:T1"].status = WorkStatus.DEAD_LETTERED
    assert "ticket-not-finished" in names(evidence)


def test_two_guests_for_one_address_and_a_second_assignment_are_caught():
    evidence = healthy()
    twin = "55555555-0000-0000-0000-000000000005"
    evidence.after["users"].append(user(twin, "ANA@fabrikam.com"))
    evidence.audit.append(AuditEntry(NOW, "guest.invited", twin, "again"))
    evidence.assignments.append(dict(evidence.assignments[0]))
    assert {"one-guest-per-address", "invited-guest-mismatch", "one-assignment"} <= names(evidence)


def test_a_bad_ticket_that_was_not_rejected_with_a_reason_is_caught():
    evidence = healthy()
    evidence.tickets.append(Ticket(b'{"broken', "reject"))
    assert "bad-ticket-not-rejected" in names(evidence)
    evidence.rejections.append(Rejection("body:1", "ticket", "malformed-json", "not JSON", NOW, {}, '{"broken'))
    assert "bad-ticket-not-rejected" not in names(evidence)


def test_deleting_a_guest_outside_the_eligible_set_is_a_wrongful_deletion():
    evidence = healthy()
    evidence.tenant.delete_eligible = []
    assert "wrongful-deletion" in names(evidence)


def test_touching_a_member_or_an_excluded_guest_is_caught_in_state_and_in_the_request_log():
    evidence = healthy()
    evidence.after["users"][0]["accountEnabled"] = False
    evidence.requests.append({"method": "POST", "path": f"/v1.0/users/{EXCLUDED}/revokeSignInSessions", "status": 204})
    found = names(evidence)
    assert {"member-modified", "write-to-excluded", "disable-without-audit"} <= found


def test_a_tenant_change_without_its_audit_row_and_an_audit_row_without_its_change_are_caught():
    evidence = healthy()
    evidence.audit = [e for e in evidence.audit if e.action != "guest.invited"]
    evidence.audit.append(AuditEntry(NOW, "guest.disabled", EXCLUDED, "never happened"))
    assert {"created-guest-without-audit", "audited-disable-not-in-tenant"} <= names(evidence)


def test_a_sponsor_added_without_its_audit_row_and_an_audited_sponsor_missing_are_caught():
    """A reused guest's new sponsor needs its guest.sponsor-added row; the row needs the sponsor in the tenant."""
    evidence = healthy()
    evidence.before["users"].append(user(GUEST.replace("2", "5"), "lena@fabrikam.com"))
    reused = evidence.before["users"][-1]["id"]
    evidence.after["users"].append(copy.deepcopy(evidence.before["users"][-1]))
    evidence.before["sponsors"], evidence.after["sponsors"] = {reused: []}, {reused: [MEMBER]}
    evidence.requests.append({"method": "POST", "path": f"/v1.0/users/{reused}/sponsors/$ref", "status": 204})
    assert {"sponsor-added-without-audit", "user-write-without-audit"} <= names(evidence)
    evidence.audit.append(AuditEntry(NOW, "guest.sponsor-added", reused, "ticket T2", details={"sponsor": MEMBER}))
    assert names(evidence) == set()
    evidence.after["sponsors"] = {reused: []}
    assert "audited-sponsor-not-in-tenant" in names(evidence)


def test_remaining_fixable_drift_fails_the_run():
    evidence = healthy()
    evidence.drift_after = 1
    assert names(evidence) == {"drift-not-converged"}
