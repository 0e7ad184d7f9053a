"""Conventions every Graph endpoint shares in tenantsim: the error envelope, method and path errors, 503/504,
and paging with @odata.nextLink."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from graph.origin import GraphOrigin
from tenantsim.seed import PROTECTED_GROUP_ID
from tests.tenantsim.conftest import guests
from tests.tenantsim.test_assignment_requests import _add


def test_an_error_is_one_error_object_with_code_message_and_inner_error(graph):
    """concepts/errors.md: a single 'error' object with code, message and innerError (date, request-id)."""
    body = graph.get("/v1.0/users/00000000-0000-4000-8000-000000000000").json()
    assert list(body) == ["error"]
    error = body["error"]
    assert error["code"] == "Request_ResourceNotFound" and error["message"]
    assert {"date", "request-id", "client-request-id"} <= set(error["innerError"])
    assert "Z" not in error["innerError"]["date"] and "T" in error["innerError"]["date"]


def test_a_method_the_resource_does_not_allow_is_405_request_bad_request(graph):
    """As in json-batching.md's example: 405 Request_BadRequest 'Specified HTTP method is not allowed ...'."""
    answer = graph.request("PUT", "/v1.0/users", json={})
    assert answer.status_code == 405
    assert answer.json()["error"]["code"] == "Request_BadRequest"
    assert answer.json()["error"]["message"] == "Specified HTTP method is not allowed for the request target."


def test_an_unknown_segment_or_version_is_400(graph):
    assert graph.get("/v1.0/nothingHere").status_code == 400
    assert graph.get("/v2.0/users").status_code == 400


def test_a_body_that_is_not_json_is_400(graph):
    answer = graph.request(
        "PATCH", "/v1.0/users/x", roles=("User.ReadWrite.All",), content=b"{not json", headers={"Content-Type": "a/j"}
    )
    assert answer.status_code == 400 and answer.json()["error"]["code"] == "BadRequest"


def test_an_injected_504_carries_no_retry_after_and_a_503_does(graph, admin):
    """concepts/errors.md: a 503 may say when to retry in Retry-After; a 504 says nothing of the kind."""
    admin.set_faults(rates={"504": 1.0})
    timeout = graph.get("/v1.0/users")
    assert timeout.status_code == 504 and timeout.json()["error"]["code"] == "GatewayTimeout"
    assert "retry-after" not in timeout.headers
    admin.set_faults(rates={"503": 1.0}, retryAfterSeconds=3)
    assert graph.get("/v1.0/users").headers["retry-after"] == "3"


def test_a_next_link_is_absolute_keeps_the_other_query_options_and_holds_an_opaque_skiptoken(graph, server):
    """concepts/paging.md: the nextLink carries the original query options plus $skiptoken; follow it whole."""
    first = graph.get("/v1.0/users?$select=id&$top=5&$filter=userType eq 'Guest'").json()
    link = first["@odata.nextLink"]
    assert link.startswith(f"{server.url}/v1.0/users?")
    query = parse_qs(urlsplit(link).query)
    assert query["$select"] == ["id"] and query["$top"] == ["5"] and query["$filter"] == ["userType eq 'Guest'"]
    assert query["$skiptoken"][0]
    second = graph.get(link.removeprefix(server.url)).json()
    assert {u["id"] for u in second["value"]}.isdisjoint({u["id"] for u in first["value"]})


def test_a_tampered_skiptoken_is_400(graph):
    assert graph.get("/v1.0/users?$skiptoken=not-a-token!").status_code == 400


def test_the_count_comes_on_the_first_page_only(graph, admin):
    """undocumented: @odata.count with the first page, not repeated on the pages after it."""
    eventual = {"ConsistencyLevel": "eventual"}
    first = graph.get("/v1.0/users?$count=true&$top=5&$filter=userType eq 'Guest'", headers=eventual).json()
    assert first["@odata.count"] == len([u for u in admin.snapshot()["users"] if u["userType"] == "Guest"])
    link = urlsplit(first["@odata.nextLink"])
    second = graph.get(f"{link.path}?{link.query}", headers=eventual).json()
    assert "@odata.count" not in second
    path = f"/v1.0/groups/{PROTECTED_GROUP_ID}/transitiveMembers/microsoft.graph.user?$count=true&$top=1"
    members = graph.get(path, roles=("GroupMember.Read.All",), headers=eventual).json()
    assert members["@odata.count"] >= len(members["value"])


EM_REQUESTS = "/v1.0/identityGovernance/entitlementManagement/assignmentRequests"


def _two_requests(graph, admin) -> None:
    for guest in guests(admin)[:2]:
        assert _add(graph, guest["id"]).status_code == 201


@pytest.mark.parametrize(
    ("path", "roles"),
    [
        # $skip paging (entitlement management, access reviews): the product's lookup of a ticket's requests
        (f"{EM_REQUESTS}?$filter=requestType eq 'adminAdd'&$top=1", ("EntitlementManagement.Read.All",)),
        ("/v1.0/users?$filter=userType eq 'Guest'&$top=1", ("User.Read.All",)),
    ],
)
def test_a_next_link_is_a_url_its_query_percent_encoded(graph, admin, server, path, roles):
    """concepts/paging.md: the nextLink is a URL to send back whole; a filter's spaces and quotes went into it raw
    on the $skip-paged resources, and the product rightly refuses to follow such a link."""
    _two_requests(graph, admin)
    listing = graph.get(path, roles=roles).json()
    link = listing["@odata.nextLink"]
    assert not {" ", "'"} & set(link)
    assert GraphOrigin.of(f"{server.url}/v1.0").check_link(link) == link
    query = parse_qs(urlsplit(link).query)
    assert query["$filter"] == [parse_qs(urlsplit(path).query)["$filter"][0]]
    second = graph.get(link.removeprefix(server.url), roles=roles)
    assert second.status_code == 200
    assert {i["id"] for i in second.json()["value"]}.isdisjoint({i["id"] for i in listing["value"]})
