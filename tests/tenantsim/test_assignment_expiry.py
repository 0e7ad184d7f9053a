"""tenantsim expires access package assignments when their schedule's end passes on the tenant's clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from msgraph.generated.models.access_package_assignment import AccessPackageAssignment
from msgraph.generated.models.access_package_assignment_collection_response import (
    AccessPackageAssignmentCollectionResponse,
)

from tenantsim.seed import NORTHWIND_SUPPLY_CHAIN_GROUP_ID, PARTNER_CATALOG_ID, SEEDED_ACCESS_PACKAGES
from tests.tenantsim.conftest import guests
from tests.tenantsim.sdk_models import assert_absorbed

EM = "/v1.0/identityGovernance/entitlementManagement"
WRITE = ("EntitlementManagement.ReadWrite.All",)
READ = ("EntitlementManagement.Read.All",)
FABRIKAM = SEEDED_ACCESS_PACKAGES["Fabrikam engineering"]
NORTHWIND = SEEDED_ACCESS_PACKAGES["Northwind supply chain"]
DAY = 86_400


def _policy_of(package_id: str) -> str:
    """The seeded direct-assignment policy of a seeded package."""
    return package_id[:-2] + "a" + package_id[-1]


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _assign(graph, user_id: str, package_id: str, end: datetime | None) -> dict:
    expiration = {"type": "afterDateTime", "endDateTime": _iso(end)} if end else {"type": "noExpiration"}
    body = {
        "requestType": "adminAdd",
        "assignment": {
            "targetId": user_id,
            "assignmentPolicyId": _policy_of(package_id),
            "accessPackageId": package_id,
        },
        "schedule": {"expiration": expiration},
    }
    created = graph.request("POST", f"{EM}/assignmentRequests", roles=WRITE, json=body)
    assert created.status_code == 201, created.text
    assert graph.get(f"{EM}/assignmentRequests/{created.json()['id']}", roles=READ).json()["state"] == "delivered"
    return _assignment_of(graph, user_id)


def _assignment_of(graph, user_id: str) -> dict:
    listing = graph.get(f"{EM}/assignments?$filter=target/objectId eq '{user_id}'", roles=READ).json()
    return listing["value"][-1]


def _ids(graph, odata_filter: str) -> list[str]:
    response = graph.get(f"{EM}/assignments?$filter={odata_filter}", roles=READ)
    assert response.status_code == 200, response.text
    return [a.id for a in assert_absorbed(response.json(), AccessPackageAssignmentCollectionResponse).value]


def test_a_delivered_assignment_reads_expired_in_list_get_and_filter_once_the_clock_passes_its_end(graph, admin):
    """Eleven days on, a ten-day assignment is expired everywhere it is read, with its end as expiredDateTime;
    a never-ending one stays delivered, and the external user left without access is blocked as the settings say."""
    ending, open_ended = guests(admin)[:2]
    end = datetime.now(UTC).replace(microsecond=0) + timedelta(days=10)
    expiring = _assign(graph, ending["id"], FABRIKAM, end)
    lasting = _assign(graph, open_ended["id"], FABRIKAM, None)
    assert expiring["id"] in _ids(graph, "state eq 'delivered'")

    admin.configure(clockOffsetSeconds=11 * DAY)
    got = graph.get(f"{EM}/assignments/{expiring['id']}?$expand=target", roles=READ).json()
    parsed = assert_absorbed(got, AccessPackageAssignment)
    assert (parsed.state.value, parsed.status) == ("expired", "ExpiredNotificationTriggered")
    assert parsed.expired_date_time == end and parsed.schedule.expiration.end_date_time == end
    assert parsed.target.object_id == ending["id"]
    assert _assignment_of(graph, ending["id"])["state"] == "expired"
    assert _ids(graph, "state eq 'delivered'") == [lasting["id"]]
    assert _ids(graph, "state eq 'expired'") == [expiring["id"]]
    user = next(u for u in admin.snapshot()["users"] if u["id"] == ending["id"])
    assert user["accountEnabled"] is False  # the seeded settings: blockSignInAndDelete

    admin.configure(clockOffsetSeconds=0)  # turning the clock back does not revive it
    assert graph.get(f"{EM}/assignments/{expiring['id']}", roles=READ).json()["state"] == "expired"


def test_an_assignment_is_delivered_until_the_instant_before_its_end_and_expired_from_its_end(
    graph, admin, server, monkeypatch
):
    """The end instant itself is past: delivered one microsecond before it, expired at it."""
    start = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    end = start + timedelta(days=30)
    instant = [start]
    monkeypatch.setattr(server.simulator, "wall_clock", lambda: instant[0])
    assignment = _assign(graph, guests(admin)[0]["id"], FABRIKAM, end)
    assert assignment["schedule"]["startDateTime"] == _iso(start)
    instant[0] = end - timedelta(microseconds=1)
    assert graph.get(f"{EM}/assignments/{assignment['id']}", roles=READ).json()["state"] == "delivered"
    instant[0] = end
    expired = graph.get(f"{EM}/assignments/{assignment['id']}", roles=READ).json()
    assert (expired["state"], expired["expiredDateTime"]) == ("expired", _iso(end))


def test_expiry_takes_back_the_group_membership_the_assignment_granted(graph, admin):
    """The package grants the Northwind group's Member role: at expiry the guest leaves the group, while a
    guest whose assignment runs on stays."""
    query = f"$filter=originId eq '{NORTHWIND_SUPPLY_CHAIN_GROUP_ID}'&$expand=roles,scopes"
    resource = graph.get(f"{EM}/catalogs/{PARTNER_CATALOG_ID}/resources?{query}", roles=READ).json()["value"][0]
    member = next(r for r in resource["roles"] if r["displayName"] == "Member")
    role_scope = {
        "role": {"originId": member["originId"], "originSystem": "AadGroup", "resource": {"id": resource["id"]}},
        "scope": {"originId": resource["originId"], "originSystem": "AadGroup"},
    }
    created = graph.request("POST", f"{EM}/accessPackages/{NORTHWIND}/resourceRoleScopes", roles=WRITE, json=role_scope)
    assert created.status_code == 201, created.text
    leaving, staying = guests(admin)[2:4]
    now = datetime.now(UTC).replace(microsecond=0)
    _assign(graph, leaving["id"], NORTHWIND, now + timedelta(days=7))
    _assign(graph, staying["id"], NORTHWIND, now + timedelta(days=90))
    members = f"/v1.0/groups/{NORTHWIND_SUPPLY_CHAIN_GROUP_ID}/members"
    listed = graph.get(members, roles=("GroupMember.Read.All",)).json()["value"]
    assert {m["id"] for m in listed} == {leaving["id"], staying["id"]}

    admin.configure(clockOffsetSeconds=8 * DAY)
    listed = graph.get(members, roles=("GroupMember.Read.All",)).json()["value"]
    assert [m["id"] for m in listed] == [staying["id"]]
    group = next(g for g in admin.snapshot()["groups"] if g["id"] == NORTHWIND_SUPPLY_CHAIN_GROUP_ID)
    assert group["members"] == [staying["id"]]


@pytest.mark.parametrize("literal", ["delivered", "Delivered", "DELIVERED"])
def test_a_state_filter_matches_the_enum_member_whatever_the_literal_casing(graph, admin, literal):
    """The list-assignments page filters `state eq 'Delivered'`; the enum member is `delivered`."""
    assignment = _assign(graph, guests(admin)[4]["id"], FABRIKAM, None)
    assert _ids(graph, f"state eq '{literal}'") == [assignment["id"]]


def test_a_state_filter_naming_no_member_and_an_end_that_is_no_instant_are_refused(graph, admin):
    response = graph.get(f"{EM}/assignments?$filter=state eq 'ended'", roles=READ)
    assert response.status_code == 400 and response.json()["error"]["code"] == "BadRequest"
    body = {
        "requestType": "adminAdd",
        "assignment": {
            "targetId": guests(admin)[5]["id"],
            "assignmentPolicyId": _policy_of(FABRIKAM),
            "accessPackageId": FABRIKAM,
        },
        "schedule": {"expiration": {"type": "afterDateTime", "endDateTime": "next spring"}},
    }
    assert graph.request("POST", f"{EM}/assignmentRequests", roles=WRITE, json=body).status_code == 400


def test_an_assignment_removed_before_its_end_keeps_the_removal_as_its_expiry(graph, admin):
    """adminRemove ends it at once; its schedule's end passing later changes nothing."""
    end = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)
    assignment = _assign(graph, guests(admin)[6]["id"], FABRIKAM, end)
    remove = {"requestType": "adminRemove", "assignment": {"id": assignment["id"]}}
    removal = graph.request("POST", f"{EM}/assignmentRequests", roles=WRITE, json=remove).json()
    graph.get(f"{EM}/assignmentRequests/{removal['id']}", roles=READ)
    removed = graph.get(f"{EM}/assignments/{assignment['id']}", roles=READ).json()
    admin.configure(clockOffsetSeconds=4 * DAY)
    later = graph.get(f"{EM}/assignments/{assignment['id']}", roles=READ).json()
    assert later["state"] == "expired" and later["expiredDateTime"] == removed["expiredDateTime"] != _iso(end)
