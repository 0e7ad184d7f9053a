"""The soak's verdict: what must hold after the run, checked against tenantsim's state and request log.

Each check returns violations (plain dicts naming the invariant and the object), never raises, so one
run lists every broken promise at once. The product's own records (work items, audit, rejections) are
compared with the tenant, not trusted on their own.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from lifecycle.models import AuditEntry, Rejection, WorkItem, WorkStatus
from tests.chaos.scenario import Tenant, Ticket

USER_WRITE = re.compile(r"^/(?:v1\.0|beta)/users/([0-9a-fA-F-]{36})(?:/|$)")
LIVE_ASSIGNMENT = {"delivered", "delivering", "partiallyDelivered"}


@dataclass
class Evidence:
    tenant: Tenant
    tickets: list[Ticket]
    before: dict[str, Any]  # tenantsim snapshot before the run
    after: dict[str, Any]  # and after it
    requests: list[dict[str, Any]]  # tenantsim's request log for the whole run
    assignments: list[dict[str, Any]]  # access package assignments after the run (Graph view)
    audit: list[AuditEntry]
    work_items: dict[str, WorkItem]
    rejections: list[Rejection]
    drift_after: int
    violations: list[dict[str, Any]] = field(default_factory=list)

    def violate(self, invariant: str, **detail: Any) -> None:
        self.violations.append({"invariant": invariant, **detail})


def check_all(evidence: Evidence) -> list[dict[str, Any]]:
    evidence.violations = []
    for check in (check_tickets, check_deletions, check_untouched, check_audit_matches_tenant, check_drift):
        check(evidence)
    return evidence.violations


def _users(snapshot: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {u["id"]: u for u in snapshot["users"]}


def _deleted(snapshot: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {u["id"]: u for u in snapshot["deletedItems"]}


def _targets(audit: Iterable[AuditEntry], *actions: str) -> set[str]:
    return {e.target for e in audit if e.action in actions}


def _live_assignments(evidence: Evidence) -> Counter[tuple[str, str]]:
    return Counter(
        (a["target"]["objectId"], a["accessPackage"]["id"])
        for a in evidence.assignments
        if a["state"] in LIVE_ASSIGNMENT
    )


def check_tickets(evidence: Evidence) -> None:
    """Every ticket ends exactly once: invited (one guest object, one assignment) or rejected with a reason."""
    after = _users(evidence.after)
    by_mail: dict[str, list[str]] = defaultdict(list)
    for user in after.values():
        if user.get("userType") == "Guest" and user.get("mail"):
            by_mail[user["mail"].lower()].append(user["id"])
    for mail, ids in by_mail.items():
        if len(ids) > 1:
            evidence.violate("one-guest-per-address", email=mail, objectIds=ids)
    live = _live_assignments(evidence)
    per_target = Counter(target for target, _package in live.elements())
    rejected_raw = {r.raw for r in evidence.rejections}
    rejected_keys = {r.key for r in evidence.rejections}

    for ticket in {t.ticket_id or t.body.decode(): t for t in evidence.tickets if not t.duplicate}.values():
        if ticket.ticket_id is None:  # not even JSON: only the raw body identifies it
            if ticket.body.decode() not in rejected_raw:
                evidence.violate("bad-ticket-not-rejected", body=ticket.body.decode()[:120])
            continue
        key = f"ticket:{ticket.ticket_id}"
        item = evidence.work_items.get(key)
        if item is None:
            evidence.violate("ticket-lost", key=key)
            continue
        if not item.status.is_final or item.status is WorkStatus.CANCELLED:
            evidence.violate("ticket-not-finished", key=key, status=item.status.value, lastError=item.last_error)
            continue
        if ticket.expect == "reject":
            if item.status is not WorkStatus.REJECTED or key not in rejected_keys:
                evidence.violate("bad-ticket-not-rejected", key=key, status=item.status.value)
            elif not item.result.get("code"):
                evidence.violate("rejected-without-reason", key=key)
            continue
        if ticket.expect in ("invite", "reuse"):
            if item.status is not WorkStatus.DONE:
                evidence.violate("valid-ticket-not-invited", key=key, status=item.status.value, result=item.result)
                continue
            object_id = item.result.get("objectId")
            holders = by_mail.get(ticket.email or "", [])
            if holders != [object_id]:
                evidence.violate("invited-guest-mismatch", key=key, objectId=object_id, guestsWithAddress=holders)
            if per_target.get(object_id, 0) != 1:
                evidence.violate(
                    "one-assignment", key=key, objectId=object_id, liveAssignments=per_target.get(object_id)
                )
            if ticket.expect == "reuse" and not item.result.get("reused"):
                evidence.violate("existing-guest-not-reused", key=key, objectId=object_id)
            continue
        if item.status is WorkStatus.REJECTED:
            if key not in rejected_keys:
                evidence.violate("rejected-without-reason", key=key)
            continue
        if ticket.expect == "offboard":
            guest = after.get(item.result.get("objectId", ""))
            if guest is None or guest.get("accountEnabled") is not False:
                evidence.violate("offboarded-guest-enabled", key=key, objectId=item.result.get("objectId"))


def check_deletions(evidence: Evidence) -> None:
    """No guest deleted unless the product disabled it a full grace period ago and it is still eligible."""
    before, after_deleted = _users(evidence.before), _deleted(evidence.after)
    allowed = set(evidence.tenant.delete_eligible)
    deletes = {m.group(1) for r in evidence.requests if r["method"] == "DELETE" and (m := USER_WRITE.match(r["path"]))}
    for object_id in after_deleted:
        if object_id not in before:
            evidence.violate("deleted-a-guest-onboarded-in-the-run", objectId=object_id)
        elif object_id not in allowed:
            evidence.violate("wrongful-deletion", objectId=object_id, mail=before[object_id].get("mail"))
        elif object_id not in deletes:
            evidence.violate("deleted-without-a-delete-call", objectId=object_id)
    for object_id in allowed - set(after_deleted):
        evidence.violate("eligible-guest-not-deleted", objectId=object_id)
    after = _users(evidence.after)
    for object_id in evidence.tenant.due:
        if object_id in after and after[object_id].get("accountEnabled") is not False:
            evidence.violate("due-guest-not-disabled", objectId=object_id)


def check_untouched(evidence: Evidence) -> None:
    """No member ever modified; no excluded or protected guest touched (state and write requests)."""
    before, after = _users(evidence.before), _users(evidence.after)
    members = {i for i, u in before.items() if u.get("userType") == "Member"}
    guarded = {i: "member" for i in members} | {i: "excluded" for i in evidence.tenant.untouchable}
    for object_id, why in guarded.items():
        if after.get(object_id) != before[object_id]:
            evidence.violate(f"{why}-modified", objectId=object_id)
    for request in evidence.requests:
        if request["method"] == "GET":
            continue
        found = USER_WRITE.match(request["path"])
        if found and found.group(1) in guarded:
            why = guarded[found.group(1)]
            evidence.violate(f"write-to-{why}", method=request["method"], path=request["path"])


def check_audit_matches_tenant(evidence: Evidence) -> None:
    """Every change in the tenant has its audit row, and every audited action shows in the tenant."""
    before, after, deleted = _users(evidence.before), _users(evidence.after), _deleted(evidence.after)
    audit = evidence.audit
    invited = _targets(audit, "guest.invited")
    disabled = _targets(audit, "guest.disabled")
    removed = _targets(audit, "guest.deleted")
    # A reset Graph accepted whose session revocation then failed is audited as such (the run's rerun revokes):
    # that row records the reset too.
    reset = _targets(audit, "guest.redemption-reset") | _targets(audit, "guest.redemption-reset-sessions-not-revoked")
    # The reset goes before the revocation: a reset Graph refused leaves the guest's sessions alone.
    reset_failed = _targets(audit, "guest.redemption-reset-failed")
    assigned = _targets(audit, "access.assigned", "access.already-assigned")
    sponsored = _targets(audit, "guest.sponsor-added")

    def expect(condition: bool, invariant: str, **detail: Any) -> None:
        if not condition:
            evidence.violate(invariant, **detail)

    for object_id in (set(after) | set(deleted)) - set(before):
        expect(object_id in invited, "created-guest-without-audit", objectId=object_id)
    for object_id in invited:
        expect(object_id in after or object_id in deleted, "audited-invitation-without-guest", objectId=object_id)
        expect(object_id not in before, "existing-guest-audited-as-invited", objectId=object_id)
    for object_id, user in after.items():
        if user.get("accountEnabled") is False and before.get(object_id, {}).get("accountEnabled", True) is not False:
            expect(object_id in disabled, "disable-without-audit", objectId=object_id)
    for object_id in disabled:
        state = after.get(object_id, {}).get("accountEnabled")
        expect(object_id in deleted or state is False, "audited-disable-not-in-tenant", objectId=object_id)
    for object_id in deleted:
        if object_id in before:
            expect(object_id in removed, "delete-without-audit", objectId=object_id)
    for object_id in removed:
        expect(object_id in deleted, "audited-delete-not-in-tenant", objectId=object_id)
    for object_id, user in after.items():
        previous = before.get(object_id)
        if previous and previous.get("externalUserState") == "Accepted" and user.get("externalUserState") != "Accepted":
            expect(object_id in reset, "reset-without-audit", objectId=object_id)
    for object_id in reset:
        state = after.get(object_id, {}).get("externalUserState")
        expect(state == "PendingAcceptance", "audited-reset-not-in-tenant", objectId=object_id, state=state)
    live_targets = {target for target, _package in _live_assignments(evidence)}
    for object_id in assigned:
        expect(object_id in live_targets, "audited-assignment-not-in-tenant", objectId=object_id)
    for object_id in live_targets - set(before):
        expect(object_id in assigned, "assignment-without-audit", objectId=object_id)
    sponsors_before, sponsors_after = evidence.before.get("sponsors", {}), evidence.after.get("sponsors", {})
    for object_id, sponsors in sponsors_after.items():
        if object_id in before and set(sponsors) - set(sponsors_before.get(object_id, [])):
            expect(object_id in sponsored, "sponsor-added-without-audit", objectId=object_id)
    for entry in audit:
        if entry.action == "guest.sponsor-added":
            held = entry.details.get("sponsor") in sponsors_after.get(entry.target, [])
            expect(held, "audited-sponsor-not-in-tenant", objectId=entry.target)
    audited_writes = disabled | removed | reset | reset_failed | sponsored
    revoked = set()
    for request in evidence.requests:
        found = USER_WRITE.match(request["path"])
        if request["method"] != "GET" and found and 200 <= request["status"] < 300:
            expect(found.group(1) in audited_writes, "user-write-without-audit", path=request["path"])
            if request["path"].endswith("/revokeSignInSessions"):
                revoked.add(found.group(1))
    for object_id in reset_failed - reset:  # refused and never reset afterwards: nothing may have been revoked
        expect(object_id not in revoked, "sessions-revoked-for-a-refused-reset", objectId=object_id)
    if evidence.after["policies"] != evidence.before["policies"]:
        applied = [e for e in audit if e.action.startswith("policy-drift.") and e.details.get("status") == "applied"]
        expect(bool(applied), "policy-change-without-audit")


def check_drift(evidence: Evidence) -> None:
    if evidence.drift_after:
        evidence.violate("drift-not-converged", drift=evidence.drift_after)
