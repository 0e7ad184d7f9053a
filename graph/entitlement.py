"""The AccessPackages port on Graph's entitlement management (v1.0).

Requests go through the SDK's request adapter (auth, budget, middleware, OData error mapping) as raw
JSON: msgraph's model parsing costs milliseconds of CPU per entity, several entities per ticket.

Resolving a package to its assignment policy takes two reads (three where Graph does not expand the
packages' policies) that give the same answer for every ticket of a partner, so a resolution is kept for
``RESOLVE_TTL_SECONDS``. A package recreated inside that time makes assignment requests fail (to the
dead-letter queue, replayable) until the entry ages out.
Tickets that ask while a resolution is under way wait for it instead of starting their own: a worker's first
64 tickets made some 190 reads before any answer was kept (5 % of a 600-ticket row's Graph requests).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote as url_quote
from urllib.parse import urlencode

from kiota_abstractions.method import Method
from msgraph import GraphServiceClient

from graph.odata import quote
from graph.raw import RawGraph
from lifecycle.errors import BadRequestError, NotFoundError
from lifecycle.kept import KeptAnswers
from lifecycle.models import AccessPackageTarget, AssignmentInfo, AssignmentRequestInfo

LIVE_ASSIGNMENT_STATES = {"delivering", "delivered", "partiallyDelivered"}
# An admin assigning an existing guest needs a policy that admits directory users; admin-only direct
# assignment policies (notSpecified) are meant for exactly this.
POLICY_PREFERENCE = ("notSpecified", "specificDirectoryUsers", "allDirectoryUsers")
RESOLVE_TTL_SECONDS = 300.0


class GraphAccessPackages:
    def __init__(self, client: GraphServiceClient, clock: Callable[[], float] = time.monotonic) -> None:
        self._raw = RawGraph(client)
        self._em = f"{self._raw.v1}/identityGovernance/entitlementManagement"
        self._resolved: KeptAnswers[tuple[str, str, str | None], AccessPackageTarget | None] = KeptAnswers(
            RESOLVE_TTL_SECONDS, clock=clock
        )
        # The list-assignmentPolicies page says to list packages with $expand=assignmentPolicies; the
        # list-accessPackages page names only $select and $filter. A 400 for it is remembered here.
        self._expand_refused = False

    async def resolve(self, catalog: str, package: str, policy: str | None = None) -> AccessPackageTarget | None:
        return await self._resolved.get((catalog, package, policy), lambda: self._resolve(catalog, package, policy))

    async def _resolve(self, catalog: str, package: str, policy: str | None) -> AccessPackageTarget | None:
        query = _query({"$filter": f"displayName eq {quote(catalog)}", "$select": "id,displayName"})
        catalogs = await self._raw.collection(f"{self._em}/catalogs?{query}")
        if not catalogs or not catalogs[0].get("id"):
            return None
        packages = await self._packages(catalogs[0]["id"])
        found = next((p for p in packages if p.get("displayName") == package), None)
        if found is None or not found.get("id"):
            return None
        package_id = found["id"]
        candidates = found.get("assignmentPolicies")
        if not isinstance(candidates, list) or "assignmentPolicies@odata.nextLink" in found:
            # Not expanded (or only a first page of them): the package's own list of policies.
            url = f"{self._em}/accessPackages/{_segment(package_id)}/assignmentPolicies"
            candidates = await self._raw.collection(url)
        if policy:
            chosen = next((p for p in candidates if p.get("displayName") == policy), None)
        else:
            ranked = sorted(candidates, key=lambda p: _rank(str(p.get("allowedTargetScope") or "")))
            chosen = ranked[0] if ranked else None
        if chosen is None or not chosen.get("id"):
            return None
        return AccessPackageTarget(package_id, chosen["id"], found.get("displayName") or package)

    async def _packages(self, catalog_id: str) -> list[dict[str, Any]]:
        """The catalog's packages, with their assignment policies when Graph expands them (one read less)."""
        url = f"{self._em}/catalogs/{_segment(catalog_id)}/accessPackages"
        if not self._expand_refused:
            try:
                return await self._raw.collection(f"{url}?{_query({'$expand': 'assignmentPolicies'})}")
            except BadRequestError:
                self._expand_refused = True  # asked once per process: the answer will not change
        return await self._raw.collection(url)

    async def find_assignment(self, user_id: str, package_id: str) -> AssignmentInfo | None:
        query = _query(
            {
                "$filter": f"target/objectId eq {quote(user_id)} and accessPackage/id eq {quote(package_id)}",
                "$expand": "target,accessPackage",
            }
        )
        for assignment in await self._raw.collection(f"{self._em}/assignments?{query}"):
            state = str(assignment.get("state") or "")
            if state in LIVE_ASSIGNMENT_STATES:
                expiration = (assignment.get("schedule") or {}).get("expiration") or {}
                return AssignmentInfo(
                    assignment.get("id") or "", state, package_id, _moment(expiration.get("endDateTime"))
                )
        return None

    async def request_assignment(
        self, user_id: str, target: AccessPackageTarget, end: datetime, justification: str
    ) -> AssignmentRequestInfo:
        body = {
            "requestType": "adminAdd",
            "justification": justification,
            "assignment": {
                "targetId": user_id,
                "assignmentPolicyId": target.policy_id,
                "accessPackageId": target.package_id,
            },
            "schedule": {"expiration": {"type": "afterDateTime", "endDateTime": _iso(end)}},
        }
        return _request_info(await self._raw.send(Method.POST, f"{self._em}/assignmentRequests", body))

    async def get_request(self, request_id: str) -> AssignmentRequestInfo | None:
        try:
            found = await self._raw.send(Method.GET, f"{self._em}/assignmentRequests/{_segment(request_id)}")
        except NotFoundError:
            return None
        return _request_info(found) if found else None

    async def find_request(self, package_id: str, justification: str, since: datetime) -> AssignmentRequestInfo | None:
        # The two filters the list page shows; the package one with its $expand, as callers scoped to a catalog
        # must send it. Justification is not among the filterable properties, so it is matched here.
        query = _query(
            {
                "$expand": "accessPackage",
                "$filter": f"accessPackage/id eq {quote(package_id)} and createdDateTime gt {_iso(since)}",
            }
        )
        found = [
            request
            for request in await self._raw.collection(f"{self._em}/assignmentRequests?{query}")
            if request.get("justification") == justification
            and str(request.get("requestType") or "").lower().endswith("add")
            and not _request_info(request).failed
        ]
        if not found:
            return None
        return _request_info(max(found, key=lambda r: _moment(r.get("createdDateTime")) or since))

    async def request_removal(self, assignment_id: str, justification: str) -> AssignmentRequestInfo:
        body = {"requestType": "adminRemove", "justification": justification, "assignment": {"id": assignment_id}}
        return _request_info(await self._raw.send(Method.POST, f"{self._em}/assignmentRequests", body))


def _request_info(request: dict[str, Any] | None) -> AssignmentRequestInfo:
    if not request or not request.get("id"):
        raise NotFoundError("the assignment request came back without an id")
    return AssignmentRequestInfo(request["id"], str(request.get("state") or ""), request.get("status"))


def _query(parameters: dict[str, str]) -> str:
    return urlencode(parameters, quote_via=url_quote)


def _segment(value: str) -> str:
    return url_quote(value, safe="")


def _rank(scope: str) -> int:
    return POLICY_PREFERENCE.index(scope) if scope in POLICY_PREFERENCE else len(POLICY_PREFERENCE)


def _iso(moment: datetime) -> str:
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _moment(value: Any) -> datetime | None:
    if not value:
        return None
    moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
