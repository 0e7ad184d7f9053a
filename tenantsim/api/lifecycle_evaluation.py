"""Evaluating guest lifecycle policies, and the reports Graph serves of it.

Microsoft evaluates enabled guest lifecycle policies once a day (entra-docs guest-lifecycle-policies.md);
tenantsim evaluates when a test asks (``POST /_tenantsim/lifecycle-policies/process``), as documented:

- scope: every guest (``userType`` Guest) unless it is a *direct* member of one of the scope's excluded groups
  (nested groups aren't evaluated);
- precedence: a guest binds to the highest-priority enabled policy whose scope holds it (``relationship``
  ``effective``); lower policies that also hold it show it ``inScopeButIneffective`` and don't evaluate it;
- rules: each enabled rule is evaluated and any violation makes the guest noncompliant;
- enforcement: a noncompliant guest's action falls due after the earliest rule grace period (a rule's own
  ``gracePeriodInDays``, else the policy's). tenantsim reports the schedule and applies no action to the guest.
"""

from __future__ import annotations

import base64
from datetime import datetime, timedelta
from typing import Any

from tenantsim.api.governance.state import LIVE_ASSIGNMENT, existing_governance_state
from tenantsim.api.lifecycle_policies import CONTAINER, NS, LifecycleState, lifecycle_state
from tenantsim.errors import GraphError, bad_request, found
from tenantsim.runtime import Call, GraphResponse, Simulator

USER_SUBJECT = f"#{NS}.lifecyclePolicyUserSubjectReference"
PAGE_SIZE = 100
SUBJECT_QUERY = frozenset({"$top", "$select", "$filter", "$skiptoken"})


def _instant(value: str | None) -> datetime | None:
    if not value or value.startswith("0001-"):
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _direct_members(sim: Simulator, group_ids: list[str]) -> set[str]:
    return {m for g in group_ids for m in sim.directory.groups.get(g, {}).get("members", [])}


INTERACTIVE = ("lastSignInDateTime", "lastSuccessfulSignInDateTime")


def _last_activity(sim: Simulator, user: dict[str, Any]) -> datetime | None:
    """The inactivity rule's page does not say which sign-ins count: knob lifecyclePolicyInactivitySignIns
    "interactive" (the default) reads lastSignInDateTime and lastSuccessfulSignInDateTime, "all" adds
    lastNonInteractiveSignInDateTime."""
    activity = user.get("signInActivity") or {}
    names = INTERACTIVE
    if sim.config.lifecycle_policy_inactivity_sign_ins == "all":
        names = (*INTERACTIVE, "lastNonInteractiveSignInDateTime")
    moments = [_instant(activity.get(k)) for k in names]
    return max((m for m in moments if m is not None), default=None)


def _violated(sim: Simulator, state: LifecycleState, rule: dict[str, Any], user: dict[str, Any], now: datetime) -> bool:
    kind = rule["@odata.type"].rsplit(".", 1)[-1]
    created = _instant(user.get("createdDateTime")) or now
    if kind == "inactivityRule":
        since = _last_activity(sim, user) or created
        return now - since > timedelta(days=rule["lastActivityThresholdInDays"])
    if kind == "sponsorPresenceRule":
        # A group-valued sponsor counts as one sponsor (entra-docs guest-lifecycle-policies.md).
        return len(sim.directory.sponsors.get(user["id"], [])) < rule["minimumSponsorCount"]
    if kind == "periodicAttestationRule":
        since = _instant(state.attestations.get(user["id"])) or created
        return now - since > timedelta(days=rule["attestationIntervalInDays"])
    if kind == "invitationRedemptionRule":
        if user.get("externalUserState") != "PendingAcceptance":
            return False
        since = _instant(user.get("externalUserStateChangeDateTime")) or created
        return now - since > timedelta(days=rule["invitationRedemptionThresholdInDays"])
    if kind == "accessPackageAssignmentRequiredRule":
        governance = existing_governance_state(sim.directory)
        assignments = governance.assignments.values() if governance else []
        return not any(a["_targetId"] == user["id"] and a["state"] in LIVE_ASSIGNMENT for a in assignments)
    raise AssertionError(kind)


def _enforcement(policy: dict[str, Any], violated: list[dict[str, Any]], first: datetime, now: datetime) -> dict:
    graces = [
        r["gracePeriodInDays"] if r["gracePeriodInDays"] is not None else policy["gracePeriodInDays"] for r in violated
    ]
    due = first + timedelta(days=min(graces))
    action = policy["enforcementAction"]["@odata.type"].rsplit(".", 1)[-1]
    next_action = "delete" if action == "deleteOnlyEnforcementAction" else "disable"
    return {
        "status": "actionDue" if now >= due else "waiting",
        "isLocked": False,
        "isTerminal": False,
        "lastAction": "none",
        "lastActionDateTime": None,
        "nextAction": next_action,
        "nextActionDateTime": _iso(due),
    }


NOT_REQUIRED = {
    "status": "notRequired",
    "isLocked": False,
    "isTerminal": False,
    "lastAction": "none",
    "lastActionDateTime": None,
    "nextAction": None,
    "nextActionDateTime": None,
}


def process(sim: Simulator, policy_id: str | None = None) -> list[str]:
    """One run of the daily evaluation over every enabled guest policy (or one); returns the processed ids."""
    state = lifecycle_state(sim.directory)
    if policy_id is not None:
        found(state.policies, policy_id)
    now = sim.now()
    ordered = [state.policies[p] for p in state.order]
    guests = [r.data for r in sim.directory.users.values() if r.data.get("userType") == "Guest"]
    bound: dict[str, dict[str, Any]] = {}  # guest id -> the enabled policy it binds to
    processed = []
    for policy in ordered:
        if not policy["isEnabled"]:
            continue
        excluded = _direct_members(sim, policy["_excludedGroupIds"])
        in_scope = [g for g in guests if g["id"] not in excluded]
        subjects = []
        for guest in in_scope:
            effective = bound.setdefault(guest["id"], policy)
            subjects.append(_subject(sim, state, policy, effective, guest, now))
        if policy_id is None or policy["id"] == policy_id:
            _write_report(state, policy, subjects, now)
            processed.append(policy["id"])
    return processed


def _subject(
    sim: Simulator,
    state: LifecycleState,
    policy: dict[str, Any],
    effective: dict[str, Any],
    guest: dict[str, Any],
    now: datetime,
) -> dict[str, Any]:
    report: dict[str, Any] = {
        "id": guest["id"],
        "subject": {"@odata.type": USER_SUBJECT, "id": guest["id"]},
        "effectivePolicy": {"id": effective["id"], "version": effective["versionNumber"]},
    }
    if effective is not policy:
        # Policies with lower precedence aren't evaluated for the guest.
        report.update(
            relationship="inScopeButIneffective",
            compliance={"status": "notEvaluated", "evaluatedDateTime": None},
            enforcement=dict(NOT_REQUIRED),
        )
        return report
    violated = [r for r in policy["_rules"] if r["isEnabled"] and _violated(sim, state, r, guest, now)]
    key = (policy["id"], guest["id"])
    if violated:
        first = _instant(state.first_violation.setdefault(key, _iso(now))) or now
        compliance, enforcement = "nonCompliant", _enforcement(policy, violated, first, now)
    else:
        state.first_violation.pop(key, None)
        compliance, enforcement = "compliant", dict(NOT_REQUIRED)
    report.update(
        relationship="effective",
        compliance={"status": compliance, "evaluatedDateTime": _iso(now)},
        enforcement=enforcement,
    )
    return report


def _write_report(state: LifecycleState, policy: dict[str, Any], subjects: list[dict[str, Any]], now: datetime) -> None:
    previous = state.reports.get(policy["id"])
    state.reports[policy["id"]] = {
        "id": previous["id"] if previous else f"{policy['id'][:8]}-report",
        "policyVersion": policy["versionNumber"],
        "scopeProcessing": {
            "currentStatus": "idle",
            "currentStartedDateTime": None,
            "latestAttempt": {
                "status": "completed",
                "startedDateTime": _iso(now),
                "completedDateTime": _iso(now),
                "error": None,
            },
            "lastSuccessfulProcessingDateTime": _iso(now),
        },
        "subjectsInScopeCount": len(subjects),
    }
    state.subjects[policy["id"]] = subjects


def get_report(call: Call, policy_id: str) -> GraphResponse:
    call.require("lifecyclePolicies.guests.read")
    state = lifecycle_state(call.sim.directory)
    found(state.policies, policy_id)
    report = state.reports.get(policy_id)
    if report is None:
        if call.sim.config.lifecycle_policy_report_before_processing == "notFound":
            raise GraphError(
                404, "Request_ResourceNotFound", f"No report exists yet for lifecycle policy '{policy_id}'."
            )
        report = {
            "id": f"{policy_id[:8]}-report",
            "policyVersion": state.policies[policy_id]["versionNumber"],
            "scopeProcessing": {
                "currentStatus": "notStarted",
                "currentStartedDateTime": None,
                "latestAttempt": None,
                "lastSuccessfulProcessingDateTime": None,
            },
            "subjectsInScopeCount": 0,
        }
    context = call.context_url(f"{CONTAINER}/lifecyclePolicies('{policy_id}')/report/$entity")
    return GraphResponse(200, {"@odata.context": context, **_selected(call, report)})


def _selected(call: Call, record: dict[str, Any]) -> dict[str, Any]:
    raw = call.request.query.get("$select")
    if not raw:
        return dict(record)
    names = {n.strip() for n in raw.split(",")}
    unknown = names - set(record)
    if unknown:
        raise bad_request(f"Could not find a property named '{sorted(unknown)[0]}'.")
    return {k: v for k, v in record.items() if k in names or k == "id"}


def list_subjects(call: Call, policy_id: str) -> GraphResponse:
    """$top, $select and $filter=id eq '{id}' only; the page refuses $skip, $orderby, $search, $count, $expand."""
    call.require("lifecyclePolicies.guests.read")
    query = call.request.query
    refused = sorted(set(query) - SUBJECT_QUERY)
    if refused:
        raise GraphError(400, "BadRequest", f"Query option '{refused[0]}' is not supported for report subjects.")
    state = lifecycle_state(call.sim.directory)
    found(state.policies, policy_id)
    subjects = state.subjects.get(policy_id, [])
    if "$filter" in query:
        wanted = _id_filter(query["$filter"])
        subjects = [s for s in subjects if s["id"] == wanted]
    try:
        top = int(query.get("$top", PAGE_SIZE))
        start = int(base64.urlsafe_b64decode(query["$skiptoken"]).decode()) if "$skiptoken" in query else 0
    except ValueError as exc:
        raise bad_request("$top must be an integer and $skiptoken one this service gave.") from exc
    if not 1 <= top <= 999:
        raise bad_request("$top must be between 1 and 999.")
    context = call.context_url(f"{CONTAINER}/lifecyclePolicies('{policy_id}')/report/subjects")
    body: dict[str, Any] = {
        "@odata.context": context,
        "value": [_selected(call, s) for s in subjects[start : start + top]],
    }
    if start + top < len(subjects):
        token = base64.urlsafe_b64encode(str(start + top).encode()).decode()
        body["@odata.nextLink"] = call.next_link({"$skiptoken": token})
    return GraphResponse(200, body)


def _id_filter(raw: str) -> str:
    parts = raw.split()
    if (
        len(parts) != 3
        or parts[0] != "id"
        or parts[1] != "eq"
        or not (parts[2].startswith("'") and parts[2].endswith("'"))
    ):
        raise bad_request(f"Invalid filter clause: {raw!r}; report subjects filter on id eq '{{subjectId}}' only.")
    return parts[2][1:-1]


def record_attestation(sim: Simulator, user_id: str, at: str | None) -> dict[str, Any]:
    """Test hook: a sponsor attested that the guest still needs access (done in My Access in Entra)."""
    found(sim.directory.users, user_id)
    moment = at or sim.now_iso()
    if _instant(moment) is None:
        raise bad_request("'attestedDateTime' must be an ISO 8601 instant.")
    lifecycle_state(sim.directory).attestations[user_id] = moment
    return {"userId": user_id, "attestedDateTime": moment}
