"""Fakes of Microsoft's guest lifecycle policies and of the groups their scopes exclude, holding Graph's JSON.

Shapes from the v1.0 pages: guestLifecyclePolicy (https://learn.microsoft.com/graph/api/resources/identitygovernance-
guestlifecyclepolicy?view=graph-rest-1.0), its inline rules, enforcementAction and notificationSchedule; the report
and its subjects (lifecyclePolicyReport, lifecyclePolicySubjectReport: subject.id, compliance.status, relationship),
and the guest policies' priority configuration (orderedPolicyIds, changed with If-Match).
A created policy gets an id, ``policySource: userCreated``, ``versionNumber`` 1 (incremented on each update) and ids
for its rules. What a report says is what a test puts in ``reports``: Microsoft computes it on its own schedule.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import AsyncIterator
from typing import Any

from lifecycle.drift.native_ports import GUEST_POLICY_TYPE
from lifecycle.drift.native_scope import GroupMembers
from lifecycle.errors import BadRequestError, GraphError, NotFoundError


class PreconditionFailed(GraphError):
    """412: the If-Match etag is stale."""


class FakeGuestLifecyclePolicies:
    def __init__(self) -> None:
        self.policies: dict[str, dict[str, Any]] = {}
        self.reports: dict[str, dict[str, Any]] = {}  # policy id -> lifecyclePolicyReport
        self.subjects: dict[str, list[dict[str, Any]]] = {}  # policy id -> lifecyclePolicySubjectReport list
        self.writes: list[tuple[str, str, dict[str, Any]]] = []
        self.order: list[str] = []  # the guest policies' lifecyclePolicyPriorityConfiguration, highest first
        self.etag = 1

    async def list_guest_policies(self) -> list[dict[str, Any]]:
        return [copy.deepcopy(p) for p in self.policies.values() if p.get("@odata.type") == GUEST_POLICY_TYPE]

    async def create_guest_policy(self, body: dict[str, Any]) -> dict[str, Any]:
        policy = copy.deepcopy(body)
        policy.update(id=str(uuid.uuid4()), policySource="userCreated", versionNumber=1)
        for rule in policy.get("rules") or []:
            rule["id"] = str(uuid.uuid4())
        self.policies[policy["id"]] = policy
        self.order.append(policy["id"])  # where a new policy enters the order is undocumented: lowest here
        self.etag += 1
        self.writes.append(("create", policy["id"], copy.deepcopy(body)))
        return copy.deepcopy(policy)

    async def update_guest_policy(self, policy_id: str, body: dict[str, Any]) -> None:
        policy = self._policy(policy_id)
        policy.update(copy.deepcopy(body))
        policy["versionNumber"] = int(policy.get("versionNumber") or 0) + 1
        self.writes.append(("update", policy_id, copy.deepcopy(body)))

    async def update_rule(self, policy_id: str, rule_id: str, body: dict[str, Any]) -> None:
        policy = self._policy(policy_id)
        rule = next((r for r in policy.get("rules") or [] if r.get("id") == rule_id), None)
        if rule is None:
            raise NotFoundError(f"no rule {rule_id}", status=404, code="ResourceNotFound")
        rule.update(copy.deepcopy(body))
        self.writes.append(("update-rule", f"{policy_id}/{rule_id}", copy.deepcopy(body)))

    async def get_report(self, policy_id: str) -> dict[str, Any] | None:
        self._policy(policy_id)
        return copy.deepcopy(self.reports.get(policy_id))

    async def report_subjects(self, policy_id: str) -> AsyncIterator[dict[str, Any]]:
        for subject in self.subjects.get(policy_id, []):
            yield copy.deepcopy(subject)

    async def get_priority(self) -> dict[str, Any] | None:
        return {
            "id": "user",
            "subjectType": "user",
            "orderedPolicyIds": list(self.order),
            "@odata.etag": f'W/"{self.etag}"',
        }

    async def set_priority(self, ordered_policy_ids: list[str], etag: str | None) -> None:
        if etag is not None and etag != f'W/"{self.etag}"':
            raise PreconditionFailed("the priority configuration changed", status=412, code="PreconditionFailed")
        if sorted(ordered_policy_ids) != sorted(self.order):
            raise BadRequestError("every guest policy once", status=400, code="BadRequest")
        self.order, self.etag = list(ordered_policy_ids), self.etag + 1
        self.writes.append(("priority", "user", {"orderedPolicyIds": list(ordered_policy_ids)}))

    def publish_report(self, policy_id: str, verdicts: dict[str, str], relationship: str = "effective") -> None:
        """Microsoft's latest processing of the policy: each guest's compliance status."""
        self.reports[policy_id] = {
            "id": str(uuid.uuid4()),
            "policyVersion": self.policies[policy_id].get("versionNumber"),
            "subjectsInScopeCount": len(verdicts),
        }
        self.subjects[policy_id] = [
            {
                "id": str(uuid.uuid4()),
                "subject": {"id": guest},
                "relationship": relationship,
                "compliance": {"status": status, "evaluatedDateTime": "2026-11-23T00:00:00Z"},
            }
            for guest, status in verdicts.items()
        ]

    def named(self, display_name: str) -> dict[str, Any]:
        return next(p for p in self.policies.values() if p.get("displayName") == display_name)

    def _policy(self, policy_id: str) -> dict[str, Any]:
        if policy_id not in self.policies:
            raise NotFoundError(f"no lifecycle policy {policy_id}", status=404, code="ResourceNotFound")
        return self.policies[policy_id]


class FakeScopeGroups:
    """Groups by id: a display name and direct members (users and groups)."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}
        self.members: dict[str, GroupMembers] = {}

    def add(
        self,
        display_name: str,
        users: set[str] = frozenset(),  # type: ignore[assignment]
        groups: set[str] = frozenset(),  # type: ignore[assignment]
        group_id: str | None = None,
    ) -> str:
        group_id = group_id or str(uuid.uuid4())
        self.names[group_id] = display_name
        self.members[group_id] = GroupMembers(frozenset(users), frozenset(groups))
        return group_id

    async def groups_named(self, display_name: str) -> list[str]:
        return [group_id for group_id, name in self.names.items() if name == display_name]

    async def direct_members(self, group_id: str) -> GroupMembers:
        return self.members.get(group_id, GroupMembers())
