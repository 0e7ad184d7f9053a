"""Microsoft's guest lifecycle policies on Graph v1.0: the adapter of lifecycle.drift.native_ports.

Raw JSON with the names of the documentation pages (msgraph-sdk's models predate these types):
``/identityGovernance/lifecycleWorkflows/lifecyclePolicies`` (list, create, get, update), its ``rules``, its
``report`` and the report's ``subjects`` (identitygovernance-lifecycleworkflowscontainer-list-lifecyclepolicies,
-post-lifecyclepolicies, identitygovernance-lifecyclepolicy-update, -list-report,
identitygovernance-lifecyclepolicyreport-list-subjects). LifecyclePolicies-Guests.Read.All reads,
LifecyclePolicies-Guests.ReadWrite.All writes.

Where the pages leave a shape open, the adapter works with either answer (tenantsim's contract,
lifecycle-policies.md, names both):

- rules come inline on get and list in the examples; when a policy comes without them, they are read from
  ``{id}/rules``;
- ``scope.excludedGroups`` is a relationship: the adapter asks for it with ``$expand=scope`` and writes it with
  ``excludedGroups@odata.bind``; if Graph refuses the bind, it sends the groups inline instead;
- the v1.0 rule page says a single rule can't be updated directly: when ``PATCH rules/{id}`` is refused, the
  rule is changed by sending the policy's whole ``rules`` collection in a PATCH of the policy (which the update
  page does not list either: refused too, the error names the admin center);
- the update page does not list ``gracePeriodInDays``: a PATCH refused for it is sent again without it, so the
  rest of the change (a switch off, say) is written, and the refusal is raised naming the admin center;
- a policy never processed may have no report (404) or one whose processing has not started: both are None.

``GraphLifecyclePolicyPriority`` is the adapter of lifecycle.drift.native_priority: the guest policies' order,
``/identityGovernance/lifecycleWorkflows/lifecyclePolicyPriorityConfigurations/user``
(identitygovernance-lifecyclepolicypriorityconfiguration-get, -update), read with LifecyclePolicies-Guests.Read.All
and changed with a PATCH of ``orderedPolicyIds`` guarded by ``If-Match`` (LifecyclePolicies-Guests.ReadWrite.All).
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote as url_quote

from kiota_abstractions.method import Method
from msgraph import GraphServiceClient

from graph.origin import GraphOrigin
from graph.raw import RawGraph
from lifecycle.drift.native_ports import GUEST_POLICY_TYPE
from lifecycle.drift.native_priority import KEY as PRIORITY_KEY
from lifecycle.errors import BadRequestError, GraphError, NotFoundError

POLICIES = "/identityGovernance/lifecycleWorkflows/lifecyclePolicies"
PRIORITY = "/identityGovernance/lifecycleWorkflows/lifecyclePolicyPriorityConfigurations"
EXCLUDING_GROUPS = "#microsoft.graph.identityGovernance.allExcludingGroupsSubjectSet"
SUBJECTS_PAGE = 100
# The create and update pages' 400 codes for the documented limits: a refusal no other shape of body can fix.
LIMIT_CODES = frozenset(
    {
        "lifecyclePoliciesPerSubjectLimitExceeded",
        "lifecyclePolicyRulesLimitExceeded",
        "lifecyclePolicyExcludedGroupsLimitExceeded",
    }
)
# The statuses with which Graph refuses a method it does not serve on a resource.
_NOT_SERVED = frozenset({400, 405})


class GraphGuestLifecyclePolicies:
    """GuestLifecyclePolicies over the product's Graph client (same auth, budget and error mapping)."""

    def __init__(self, client: GraphServiceClient) -> None:
        self._raw = RawGraph(client)
        self._v1 = self._raw.v1
        self._origin = GraphOrigin.of(self._v1)

    def _policy_url(self, policy_id: str) -> str:
        return f"{self._v1}{POLICIES}/{url_quote(policy_id, safe='')}"

    async def list_guest_policies(self) -> list[dict[str, Any]]:
        try:
            policies = await self._raw.collection(f"{self._v1}{POLICIES}?$expand=scope")
        except BadRequestError:  # a service that shows the excluded groups inline and refuses to expand them
            policies = await self._raw.collection(f"{self._v1}{POLICIES}")
        guests = [p for p in policies if p.get("@odata.type") == GUEST_POLICY_TYPE]
        for policy in guests:
            if "rules" not in policy:
                policy["rules"] = await self._raw.collection(f"{self._policy_url(policy['id'])}/rules")
        return guests

    async def create_guest_policy(self, body: dict[str, Any]) -> dict[str, Any]:
        sent = _typed(body)
        return await self._either_shape(Method.POST, f"{self._v1}{POLICIES}", sent)

    async def update_guest_policy(self, policy_id: str, body: dict[str, Any]) -> None:
        """The update page's property table leaves ``gracePeriodInDays`` out: should Graph refuse a PATCH naming it,
        the rest (a switch off among it) is sent alone, and the refusal then raised naming the admin center."""
        sent = _typed(body)
        try:
            await self._either_shape(Method.PATCH, self._policy_url(policy_id), sent)
        except BadRequestError as error:
            if "gracePeriodInDays" not in sent or error.code in LIMIT_CODES:
                raise
            rest = {k: v for k, v in sent.items() if k != "gracePeriodInDays"}
            if len(rest) > 1:  # more than the @odata.type
                await self._either_shape(Method.PATCH, self._policy_url(policy_id), rest)
            raise BadRequestError(
                f"Graph refused gracePeriodInDays in the update of lifecycle policy {policy_id} ({error}); the rest "
                "of the update was written: change the grace period in the Microsoft Entra admin center",
                status=error.status,
                code=error.code,
                request_id=error.request_id,
            ) from error

    async def _either_shape(self, method: Method, url: str, body: dict[str, Any]) -> Any:
        """Send with the excluded groups bound; if Graph refuses that body (and not for a documented limit),
        send them inline once. The first refusal is the one raised when both fail."""
        try:
            return await self._raw.send(method, url, _bound(body, self._v1))
        except BadRequestError as error:
            if not _has_excluded_groups(body) or error.code in LIMIT_CODES:
                raise
            try:
                return await self._raw.send(method, url, _inline(body))
            except BadRequestError:
                raise error from None

    async def update_rule(self, policy_id: str, rule_id: str, body: dict[str, Any]) -> None:
        url = f"{self._policy_url(policy_id)}/rules/{url_quote(rule_id, safe='')}"
        try:
            await self._raw.send(Method.PATCH, url, body)
            return
        except GraphError as error:
            if error.status not in _NOT_SERVED or isinstance(error, NotFoundError):
                raise
        rules = await self._raw.collection(f"{self._policy_url(policy_id)}/rules")
        if not any(r.get("id") == rule_id for r in rules):
            raise NotFoundError(f"lifecycle policy {policy_id} has no rule {rule_id}", status=404)
        changed = [{**r, **body} if r.get("id") == rule_id else r for r in rules]
        try:
            await self._raw.send(
                Method.PATCH, self._policy_url(policy_id), {"@odata.type": GUEST_POLICY_TYPE, "rules": changed}
            )
        except BadRequestError as error:
            if error.code in LIMIT_CODES:
                raise
            raise BadRequestError(
                f"Graph v1.0 refused both ways of changing rule {rule_id} of lifecycle policy {policy_id} (one rule, "
                f"and the policy's rules: {error}): change the rule in the Microsoft Entra admin center",
                status=error.status,
                code=error.code,
                request_id=error.request_id,
            ) from error

    async def get_report(self, policy_id: str) -> dict[str, Any] | None:
        try:
            report = await self._raw.send(Method.GET, f"{self._policy_url(policy_id)}/report")
        except NotFoundError:
            return None
        processing = (report or {}).get("scopeProcessing") or {}
        if not report or (processing.get("currentStatus") == "notStarted" and not processing.get("latestAttempt")):
            return None
        return report

    async def report_subjects(self, policy_id: str) -> AsyncIterator[dict[str, Any]]:
        """Page by page; a next link is followed only under the configured Graph origin and version root."""
        url: str | None = f"{self._policy_url(policy_id)}/report/subjects?$top={SUBJECTS_PAGE}"
        while url:
            page = await self._raw.send(Method.GET, url) or {}
            for subject in page.get("value") or []:
                yield subject
            link = page.get("@odata.nextLink")
            url = self._origin.check_link(link, what="@odata.nextLink") if link else None


class GraphLifecyclePolicyPriority:
    """LifecyclePolicyPriority over the product's Graph client: the guest subject type's priority configuration."""

    def __init__(self, client: GraphServiceClient) -> None:
        self._raw = RawGraph(client)
        self._url = f"{self._raw.v1}{PRIORITY}/{PRIORITY_KEY}"

    async def get_priority(self) -> dict[str, Any] | None:
        try:
            return await self._raw.send(Method.GET, self._url)
        except NotFoundError:
            return None

    async def set_priority(self, ordered_policy_ids: list[str], etag: str | None) -> None:
        """A stale etag is Graph's 412 (lifecycle.errors.GraphError): the next run plans on the order as it is."""
        headers = {"If-Match": etag} if etag else None
        await self._raw.send(Method.PATCH, self._url, {"orderedPolicyIds": list(ordered_policy_ids)}, headers=headers)


def _typed(body: dict[str, Any]) -> dict[str, Any]:
    """The body with the derived type named: the create and update pages require ``@odata.type``."""
    return {"@odata.type": GUEST_POLICY_TYPE, **copy.deepcopy(body)}


def _excluded_ids(scope: dict[str, Any]) -> list[str] | None:
    """The excluded group ids a scope names, in whichever form the caller gave them (ids, objects, binds)."""
    if "excludedGroups@odata.bind" in scope:
        return [str(ref).rstrip("/").rsplit("/", 1)[-1] for ref in scope["excludedGroups@odata.bind"]]
    if "excludedGroups" in scope:
        return [g["id"] if isinstance(g, dict) else str(g) for g in scope["excludedGroups"]]
    return None


def _with_scope(body: dict[str, Any], scope: dict[str, Any]) -> dict[str, Any]:
    return {**body, "scope": scope}


def _bound(body: dict[str, Any], v1: str) -> dict[str, Any]:
    scope = body.get("scope")
    ids = _excluded_ids(scope) if isinstance(scope, dict) else None
    if ids is None:
        return body
    refs = [f"{v1}/groups/{url_quote(g, safe='')}" for g in ids]
    return _with_scope(body, {"@odata.type": EXCLUDING_GROUPS, "excludedGroups@odata.bind": refs})


def _inline(body: dict[str, Any]) -> dict[str, Any]:
    scope = body.get("scope")
    ids = _excluded_ids(scope) if isinstance(scope, dict) else None
    if ids is None:
        return body
    return _with_scope(body, {"@odata.type": EXCLUDING_GROUPS, "excludedGroups": [{"id": g} for g in ids]})


def _has_excluded_groups(body: dict[str, Any]) -> bool:
    scope = body.get("scope")
    return isinstance(scope, dict) and _excluded_ids(scope) is not None
