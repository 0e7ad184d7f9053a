"""The AccessPackages port on msgraph-sdk: entitlement management (v1.0 model)."""

from __future__ import annotations

from datetime import UTC, datetime

from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph import GraphServiceClient
from msgraph.generated.identity_governance.entitlement_management.assignments.assignments_request_builder import (
    AssignmentsRequestBuilder,
)
from msgraph.generated.identity_governance.entitlement_management.catalogs.catalogs_request_builder import (
    CatalogsRequestBuilder,
)
from msgraph.generated.models.access_package_assignment import AccessPackageAssignment
from msgraph.generated.models.access_package_assignment_request import AccessPackageAssignmentRequest
from msgraph.generated.models.access_package_request_type import AccessPackageRequestType
from msgraph.generated.models.entitlement_management_schedule import EntitlementManagementSchedule
from msgraph.generated.models.expiration_pattern import ExpirationPattern
from msgraph.generated.models.expiration_pattern_type import ExpirationPatternType

from graph.errors import graph_call
from graph.odata import quote
from lifecycle.errors import NotFoundError
from lifecycle.models import AccessPackageTarget, AssignmentInfo, AssignmentRequestInfo

LIVE_ASSIGNMENT_STATES = {"delivering", "delivered", "partiallyDelivered"}
# An admin assigning an existing guest needs a policy that admits directory users; admin-only direct
# assignment policies (notSpecified) are meant for exactly this.
POLICY_PREFERENCE = ("notSpecified", "specificDirectoryUsers", "allDirectoryUsers")


class GraphAccessPackages:
    def __init__(self, client: GraphServiceClient) -> None:
        self._em = client.identity_governance.entitlement_management

    async def resolve(self, catalog: str, package: str, policy: str | None = None) -> AccessPackageTarget | None:
        query = CatalogsRequestBuilder.CatalogsRequestBuilderGetQueryParameters(
            filter=f"displayName eq {quote(catalog)}", select=["id", "displayName"]
        )
        catalogs = await graph_call(lambda: self._em.catalogs.get(RequestConfiguration(query_parameters=query)))
        if not catalogs or not catalogs.value:
            return None
        catalog_id = catalogs.value[0].id or ""
        packages = await graph_call(
            lambda: self._em.catalogs.by_access_package_catalog_id(catalog_id).access_packages.get()
        )
        found = next((p for p in (packages.value if packages else None) or [] if p.display_name == package), None)
        if found is None or not found.id:
            return None
        package_id = found.id
        policies = await graph_call(
            lambda: self._em.access_packages.by_access_package_id(package_id).assignment_policies.get()
        )
        candidates = (policies.value if policies else None) or []
        chosen = None
        if policy:
            chosen = next((p for p in candidates if p.display_name == policy), None)
        else:
            ranked = sorted(
                candidates, key=lambda p: _rank(str(p.allowed_target_scope.value if p.allowed_target_scope else ""))
            )
            chosen = ranked[0] if ranked else None
        if chosen is None or not chosen.id:
            return None
        return AccessPackageTarget(package_id, chosen.id, found.display_name or package)

    async def find_assignment(self, user_id: str, package_id: str) -> AssignmentInfo | None:
        query = AssignmentsRequestBuilder.AssignmentsRequestBuilderGetQueryParameters(
            filter=f"target/objectId eq {quote(user_id)} and accessPackage/id eq {quote(package_id)}",
            expand=["target", "accessPackage"],
        )
        page = await graph_call(lambda: self._em.assignments.get(RequestConfiguration(query_parameters=query)))
        for assignment in (page.value if page else None) or []:
            state = _enum(assignment.state)
            if state in LIVE_ASSIGNMENT_STATES:
                expires = (
                    assignment.schedule.expiration.end_date_time
                    if assignment.schedule and assignment.schedule.expiration
                    else None
                )
                return AssignmentInfo(assignment.id or "", state, package_id, _aware(expires))
        return None

    async def request_assignment(
        self, user_id: str, target: AccessPackageTarget, end: datetime, justification: str
    ) -> AssignmentRequestInfo:
        body = AccessPackageAssignmentRequest(
            request_type=AccessPackageRequestType.AdminAdd,
            justification=justification,
            # v1.0 takes these ids on the assignment; the SDK model has no typed fields for them.
            assignment=AccessPackageAssignment(
                additional_data={
                    "targetId": user_id,
                    "assignmentPolicyId": target.policy_id,
                    "accessPackageId": target.package_id,
                }
            ),
            schedule=EntitlementManagementSchedule(
                expiration=ExpirationPattern(type=ExpirationPatternType.AfterDateTime, end_date_time=end)
            ),
        )
        created = await graph_call(lambda: self._em.assignment_requests.post(body))
        return _request_info(created)

    async def get_request(self, request_id: str) -> AssignmentRequestInfo | None:
        try:
            found = await graph_call(
                lambda: self._em.assignment_requests.by_access_package_assignment_request_id(request_id).get()
            )
        except NotFoundError:
            return None
        return _request_info(found) if found else None

    async def request_removal(self, assignment_id: str, justification: str) -> AssignmentRequestInfo:
        body = AccessPackageAssignmentRequest(
            request_type=AccessPackageRequestType.AdminRemove,
            justification=justification,
            assignment=AccessPackageAssignment(id=assignment_id),
        )
        return _request_info(await graph_call(lambda: self._em.assignment_requests.post(body)))


def _request_info(request: AccessPackageAssignmentRequest | None) -> AssignmentRequestInfo:
    if request is None or not request.id:
        raise NotFoundError("the assignment request came back without an id")
    return AssignmentRequestInfo(request.id, _enum(request.state), request.status)


def _enum(value: object) -> str:
    return str(getattr(value, "value", value) or "")


def _rank(scope: str) -> int:
    return POLICY_PREFERENCE.index(scope) if scope in POLICY_PREFERENCE else len(POLICY_PREFERENCE)


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)
