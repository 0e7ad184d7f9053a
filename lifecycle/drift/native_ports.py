"""The port to Microsoft's own guest lifecycle policies (Lifecycle Workflows), in Graph's JSON shapes.

Microsoft documents the API on v1.0 under ``/identityGovernance/lifecycleWorkflows/lifecyclePolicies``
(https://learn.microsoft.com/en-us/graph/api/identitygovernance-lifecycleworkflowscontainer-list-lifecyclepolicies?view=graph-rest-1.0):
a polymorphic collection of ``lifecyclePolicy`` objects of which ``guestLifecyclePolicy`` governs guests, each
with inline compliance ``rules`` (``inactivityRule``, ``sponsorPresenceRule``, ``periodicAttestationRule``, ...;
combined with AND), an ``enforcementAction``, a ``notificationSchedule``, a ``scope`` (a ``subjectSet``, for example
``allExcludingGroupsSubjectSet`` with its ``excludedGroups``) and a ``report`` whose ``subjects`` give each guest's
compliance and enforcement. Reading needs ``LifecyclePolicies-Guests.Read.All``, writing
``LifecyclePolicies-Guests.ReadWrite.All``.

The v1.0 CSDL the product checks names against predates these types, so the adapter speaks raw JSON with the
names the documentation pages give; the core sees the same JSON.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol

GUEST_POLICY_TYPE = "#microsoft.graph.identityGovernance.guestLifecyclePolicy"
# What reading them needs, and the grant script's feature that adds it (graph.permissions).
READ_PERMISSION = "LifecyclePolicies-Guests.Read.All"
FEATURE = "guest-lifecycle-policies"


class GuestLifecyclePolicies(Protocol):
    """The tenant's guest lifecycle policies. Raises lifecycle.errors.GraphError."""

    async def list_guest_policies(self) -> list[dict[str, Any]]:
        """Every ``guestLifecyclePolicy`` (other subject types are left out), each with its ``rules`` and its
        ``scope`` including the excluded groups' ids, however Graph has to be asked for them."""
        ...

    async def create_guest_policy(self, body: dict[str, Any]) -> dict[str, Any]:
        """POST a ``guestLifecyclePolicy`` with its inline rules; returns the created policy."""
        ...

    async def update_guest_policy(self, policy_id: str, body: dict[str, Any]) -> None:
        """PATCH the policy's own properties (not its rules)."""
        ...

    async def update_rule(self, policy_id: str, rule_id: str, body: dict[str, Any]) -> None:
        """PATCH one of the policy's rules."""
        ...

    async def get_report(self, policy_id: str) -> dict[str, Any] | None:
        """The policy's latest ``lifecyclePolicyReport``; None when the policy has not been processed yet."""
        ...

    def report_subjects(self, policy_id: str) -> AsyncIterator[dict[str, Any]]:
        """Every ``lifecyclePolicySubjectReport`` of the latest report, page by page."""
        ...
