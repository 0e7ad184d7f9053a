"""POST /$batch: limits, ids, relative urls, dependsOn, per-item status and per-item throttling."""

from __future__ import annotations

import pytest

from tenantsim.seed import PROTECTED_GROUP_ID
from tests.tenantsim.conftest import guests

ROLES = ("User.Read.All", "User.ReadWrite.All")


def batch(graph, requests, roles=ROLES, headers=None):
    return graph.request("POST", "/v1.0/$batch", roles=roles, json={"requests": requests}, headers=headers or {})


def test_items_get_their_own_status_headers_and_body(graph, admin):
    """Outer 200; each item answers with its own status; 404s and 204s sit next to 200s."""
    guest = guests(admin)[0]
    response = batch(
        graph,
        [
            {"id": "1", "method": "GET", "url": f"/users/{guest['id']}?$select=id,mail"},
            {"id": "2", "method": "GET", "url": "/users/00000000-0000-4000-8000-000000000000"},
            {
                "id": "3",
                "method": "PATCH",
                "url": f"/users/{guest['id']}",
                "body": {"accountEnabled": False},
                "headers": {"Content-Type": "application/json"},
            },
        ],
    )
    assert response.status_code == 200
    items = {item["id"]: item for item in response.json()["responses"]}
    assert items["1"]["status"] == 200 and items["1"]["body"]["mail"] == guest["mail"]
    assert items["2"]["status"] == 404 and items["2"]["body"]["error"]["code"] == "Request_ResourceNotFound"
    assert items["3"]["status"] == 204 and "body" not in items["3"]
    assert next(u for u in guests(admin) if u["id"] == guest["id"])["accountEnabled"] is False


def test_more_than_twenty_requests_is_a_400(graph):
    """The batch limit is 20."""
    requests = [{"id": str(i), "method": "GET", "url": "/users?$top=1"} for i in range(21)]
    assert batch(graph, requests).status_code == 400


def test_duplicate_ids_are_a_400_case_insensitively(graph):
    """Ids are unique, compared case-insensitively."""
    requests = [{"id": "a", "method": "GET", "url": "/users"}, {"id": "A", "method": "GET", "url": "/users"}]
    assert batch(graph, requests).status_code == 400


def test_absolute_urls_are_a_400(graph, server):
    """Item urls are relative to the batch's version."""
    assert batch(graph, [{"id": "1", "method": "GET", "url": f"{server.url}/v1.0/users"}]).status_code == 400


def test_a_body_without_content_type_is_a_400(graph):
    """An item with a body must say its Content-Type."""
    requests = [{"id": "1", "method": "PATCH", "url": "/users/x", "body": {"accountEnabled": False}}]
    assert batch(graph, requests).status_code == 400


def test_a_failed_dependency_gives_424_to_its_dependants(graph, admin):
    """dependsOn a failed item answers 424 without running the dependant."""
    guest = guests(admin)[0]
    response = batch(
        graph,
        [
            {"id": "1", "method": "GET", "url": "/users/00000000-0000-4000-8000-000000000000"},
            {
                "id": "2",
                "method": "PATCH",
                "url": f"/users/{guest['id']}",
                "dependsOn": ["1"],
                "body": {"accountEnabled": False},
                "headers": {"Content-Type": "application/json"},
            },
        ],
    )
    items = {item["id"]: item for item in response.json()["responses"]}
    assert items["2"]["status"] == 424
    assert next(u for u in guests(admin) if u["id"] == guest["id"])["accountEnabled"] is True


def test_throttled_items_carry_their_own_retry_after(graph, admin):
    """Once the bucket is empty, items come back 429 with Retry-After in the item's headers; outer 200."""
    admin.configure(throttlingEnabled=True, quotaScale=0.002)  # 5,000 RU * 0.002 = 10 RU
    requests = [{"id": str(i), "method": "GET", "url": "/users?$top=50"} for i in range(8)]
    response = batch(graph, requests)
    assert response.status_code == 200
    statuses = [item["status"] for item in response.json()["responses"]]
    assert 200 in statuses and 429 in statuses
    throttled = next(item for item in response.json()["responses"] if item["status"] == 429)
    assert float(throttled["headers"]["Retry-After"]) > 0
    assert throttled["body"]["error"]["code"] == "TooManyRequests"


def test_items_are_checked_against_the_callers_permissions(graph):
    """A batch does not widen privileges: each item needs its own permission."""
    response = batch(graph, [{"id": "1", "method": "GET", "url": "/policies/authorizationPolicy"}])
    assert response.json()["responses"][0]["status"] == 403


def test_depends_on_may_name_a_request_listed_later_and_runs_it_first(graph, admin):
    """As in json-batching.md's example (3 depends on 4, listed after it): the dependency runs first."""
    guest = guests(admin)[0]
    disable = {
        "id": "4",
        "method": "PATCH",
        "url": f"/users/{guest['id']}",
        "body": {"accountEnabled": False},
        "headers": {"Content-Type": "application/json"},
    }
    read = {"id": "3", "method": "GET", "url": f"/users/{guest['id']}?$select=accountEnabled", "dependsOn": ["4"]}
    response = batch(graph, [read, disable], roles=("User.ReadWrite.All",))
    assert response.status_code == 200
    items = {item["id"]: item for item in response.json()["responses"]}
    assert items["4"]["status"] == 204
    assert items["3"]["status"] == 200 and items["3"]["body"]["accountEnabled"] is False


@pytest.mark.parametrize(
    "depends_on",
    [{"1": ["2"], "2": ["1"]}, {"1": ["1"]}, {"1": ["9"]}],
    ids=["cycle", "itself", "unknown id"],
)
def test_a_dependency_cycle_or_an_unknown_dependency_is_a_400(graph, depends_on):
    requests = [
        {"id": key, "method": "GET", "url": "/users?$top=1", "dependsOn": value} for key, value in depends_on.items()
    ]
    if "2" not in depends_on:
        requests.append({"id": "2", "method": "GET", "url": "/users?$top=1"})
    answer = batch(graph, requests)
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "BadRequest"


@pytest.mark.parametrize("in_request_order", [False, True])
def test_responses_come_in_reverse_order_unless_the_knob_keeps_the_request_order(graph, admin, in_request_order):
    """json-batching.md: responses may come in another order; by default tenantsim reverses them."""
    admin.configure(batchResponsesInRequestOrder=in_request_order)
    requests = [{"id": str(i), "method": "GET", "url": "/users?$top=1"} for i in range(3)]
    ids = [item["id"] for item in batch(graph, requests).json()["responses"]]
    assert ids == (["0", "1", "2"] if in_request_order else ["2", "1", "0"])


def test_an_item_url_may_leave_out_the_leading_slash(graph):
    """json-batching.md's example item 5 uses 'users?$select=...' without a leading slash."""
    answer = batch(graph, [{"id": "5", "method": "GET", "url": "users?$select=id&$top=1"}])
    assert answer.json()["responses"][0]["status"] == 200


def test_an_advanced_query_in_a_batch_takes_consistency_level_from_the_items_headers(graph):
    """aad-advanced-queries.md: inside a batch, ConsistencyLevel goes in the item's headers."""
    url = f"/groups/{PROTECTED_GROUP_ID}/transitiveMembers/microsoft.graph.user?$count=true&$select=id"
    items = [
        {"id": "with", "method": "GET", "url": url, "headers": {"ConsistencyLevel": "eventual"}},
        {"id": "without", "method": "GET", "url": url},
    ]
    answer = batch(graph, items, roles=("GroupMember.Read.All",), headers={"ConsistencyLevel": "eventual"})
    statuses = {item["id"]: item["status"] for item in answer.json()["responses"]}
    assert statuses == {"with": 200, "without": 400}


def test_an_empty_batch_or_an_item_with_an_unknown_method_is_a_400(graph):
    assert batch(graph, []).status_code == 400
    assert batch(graph, [{"id": "1", "method": "FETCH", "url": "/users"}]).status_code == 400
