"""Assignment requests beyond the happy path: who moves them on, how they are listed, and a second add while
the first is still open."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from msgraph.generated.models.access_package_assignment_request_collection_response import (
    AccessPackageAssignmentRequestCollectionResponse,
)

from tenantsim.seed import SEEDED_ACCESS_PACKAGES
from tests.tenantsim.conftest import guests
from tests.tenantsim.sdk_models import assert_absorbed

EM = "/v1.0/identityGovernance/entitlementManagement"
WRITE = ("EntitlementManagement.ReadWrite.All",)
READ = ("EntitlementManagement.Read.All",)
FABRIKAM_PACKAGE = SEEDED_ACCESS_PACKAGES["Fabrikam engineering"]
FABRIKAM_POLICY = "a1f0c2d3-4e5b-4a6c-8d7e-9f0a1b2c3da1"


def _add(graph, guest_id: str, justification: str = "Onboarding ticket T-1"):
    body = {
        "requestType": "adminAdd",
        "justification": justification,
        "assignment": {
            "targetId": guest_id,
            "assignmentPolicyId": FABRIKAM_POLICY,
            "accessPackageId": FABRIKAM_PACKAGE,
        },
    }
    return graph.request("POST", f"{EM}/assignmentRequests", roles=WRITE, json=body)


def _assignments_of(graph, guest_id: str) -> list[dict]:
    query = f"$filter=target/objectId eq '{guest_id}' and accessPackage/id eq '{FABRIKAM_PACKAGE}'"
    return graph.get(f"{EM}/assignments?{query}", roles=READ).json()["value"]


def test_a_request_nobody_reads_stays_submitted_when_reads_drive_it(graph, admin):
    """assignmentRequestProcessing=onRead (default): only a read of the request moves it on."""
    guest = guests(admin)[0]
    assert _add(graph, guest["id"]).status_code == 201
    assert _assignments_of(graph, guest["id"]) == []


def test_with_background_processing_a_request_nobody_reads_is_delivered(graph, admin):
    """assignmentRequestProcessing=background: the request is processed before the next call to the tenant,
    whoever makes it, and its assignment appears without anyone reading the request."""
    admin.configure(assignmentRequestProcessing="background")
    guest = guests(admin)[0]
    created = _add(graph, guest["id"]).json()
    assert created["state"] == "submitted"

    [assignment] = _assignments_of(graph, guest["id"])
    assert assignment["state"] == "delivered"
    request = graph.get(f"{EM}/assignmentRequests/{created['id']}", roles=READ).json()
    assert request["state"] == "delivered" and request["completedDateTime"] is not None


def test_requests_are_listed_by_package_and_creation_time_with_the_package_expanded(graph, admin):
    """The list page's filters: accessPackage/id eq (with $expand=accessPackage) and createdDateTime gt, joined
    by and; each request carries its justification."""
    first, second = guests(admin)[:2]
    before = (datetime.now(UTC) - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    later = (datetime.now(UTC) + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    _add(graph, first["id"], "Onboarding ticket T-1")
    _add(graph, second["id"], "Onboarding ticket T-2")

    wanted = f"$expand=accessPackage&$filter=accessPackage/id eq '{FABRIKAM_PACKAGE}' and createdDateTime gt "
    listing = graph.get(f"{EM}/assignmentRequests?{wanted}{before}", roles=READ).json()
    parsed = assert_absorbed(listing, AccessPackageAssignmentRequestCollectionResponse)
    assert sorted(r.justification for r in parsed.value) == ["Onboarding ticket T-1", "Onboarding ticket T-2"]
    assert {r.access_package.id for r in parsed.value} == {FABRIKAM_PACKAGE}
    assert graph.get(f"{EM}/assignmentRequests?{wanted}{later}", roles=READ).json()["value"] == []
    other = f"$filter=accessPackage/id eq '{SEEDED_ACCESS_PACKAGES['Woodgrove audit']}'"
    assert graph.get(f"{EM}/assignmentRequests?{other}", roles=READ).json()["value"] == []


@pytest.mark.parametrize("clause", ["justification eq 'x'", "createdDateTime gt yesterday", "state eq 'nope'"])
def test_a_filter_the_list_page_does_not_name_is_a_400(graph, admin, clause):
    assert graph.get(f"{EM}/assignmentRequests?$filter={clause}", roles=READ).status_code == 400


def test_a_state_or_type_filter_takes_any_member_of_the_metadata_enum_whatever_its_casing(graph, admin):
    """accessPackageRequestType has members no client creates (systemAdd, ...): filtering on them is valid."""
    _add(graph, guests(admin)[0]["id"])
    adds = graph.get(f"{EM}/assignmentRequests?$filter=requestType eq 'ADMINADD'", roles=READ)
    system = graph.get(f"{EM}/assignmentRequests?$filter=requestType eq 'systemAdd'", roles=READ)
    assert [r["requestType"] for r in adds.json()["value"]] == ["adminAdd"]
    assert system.status_code == 200 and system.json()["value"] == []
    # Every member of accessPackageRequestType in the v1.0 metadata, and of accessPackageRequestState.
    types = "notSpecified userAdd userUpdate userRemove adminAdd adminUpdate adminRemove systemAdd systemUpdate"
    types += " systemRemove onBehalfAdd unknownFutureValue approverRemove notDefined"
    states = "submitted pendingApproval delivering delivered deliveryFailed denied scheduled canceled"
    states += " partiallyDelivered unknownFutureValue"
    for prop, members in (("requestType", types), ("state", states)):
        for member in members.split():
            listed = graph.get(f"{EM}/assignmentRequests?$filter={prop} eq '{member}'", roles=READ)
            assert listed.status_code == 200, (prop, member)


@pytest.mark.parametrize(("reading", "status"), [("accept", 201), ("refuse", 400)])
def test_a_second_add_while_the_first_is_open_is_taken_or_refused_as_configured(graph, admin, reading, status):
    """No page says what a second adminAdd for the same target and package gets while the first is open."""
    admin.configure(assignmentRequestWhileOpen=reading)
    guest = guests(admin)[0]
    assert _add(graph, guest["id"]).status_code == 201
    assert _add(graph, guest["id"]).status_code == status
