"""The throttling model's headers and 429s, and the fault injection switches."""

from __future__ import annotations

import http.client
import time

import httpx
import pytest


def test_read_costs_are_reported_in_resource_units(graph, admin):
    """GET users costs 2 RU; $select takes one off; small $top another, never below 1."""
    admin.configure(throttlingEnabled=True)
    assert graph.get("/v1.0/users").headers["x-ms-resource-unit"] == "2"
    assert graph.get("/v1.0/users?$select=id").headers["x-ms-resource-unit"] == "1"
    assert graph.get("/v1.0/users?$select=id&$top=5").headers["x-ms-resource-unit"] == "1"


def test_exhausting_the_resource_unit_bucket_answers_429_with_graphs_headers(graph, admin):
    """Past the quota: 429 TooManyRequests, fractional Retry-After, throttle scope and information."""
    admin.configure(throttlingEnabled=True, quotaScale=0.004)  # 20 RU per 10 s
    seen_percentage = False
    for _ in range(30):
        response = graph.get("/v1.0/users")
        seen_percentage |= "x-ms-throttle-limit-percentage" in response.headers
        if response.status_code == 429:
            break
    assert response.status_code == 429 and seen_percentage
    assert response.json()["error"]["code"] == "TooManyRequests"
    assert 0 < float(response.headers["Retry-After"]) <= 10
    assert response.headers["x-ms-throttle-scope"].startswith("Tenant_Application/ReadWrite/")
    assert response.headers["x-ms-throttle-information"] == "ResourceUnitLimitExceeded"
    assert admin.counters()["throttledByScope"] == {"Tenant_Application": 1}


def test_time_compression_shrinks_the_wait(graph, admin):
    """At 100x the window is 0.1 s: Retry-After is tiny and waiting it out works."""
    admin.configure(throttlingEnabled=True, quotaScale=0.0004, timeCompression=100)  # 2 RU per 0.1 s
    response = None
    for _ in range(30):
        response = graph.get("/v1.0/users")
        if response.status_code == 429:
            break
    assert response is not None and response.status_code == 429
    wait = float(response.headers["Retry-After"])
    assert wait <= 0.1
    time.sleep(wait + 0.01)
    assert graph.get("/v1.0/users").status_code == 200


def test_invitations_have_their_own_tenant_limit(graph, admin):
    """The invitation bucket (150 per 5 s per tenant) throttles before the RU bucket does."""
    admin.configure(throttlingEnabled=True, quotaScale=0.02)  # 3 invitations per 5 s
    statuses = []
    for i in range(5):
        body = {"invitedUserEmailAddress": f"burst{i}@fabrikam.com", "inviteRedirectUrl": "https://a.example"}
        statuses.append(graph.request("POST", "/v1.0/invitations", roles=("User.Invite.All",), json=body))
    assert [r.status_code for r in statuses] == [201, 201, 201, 429, 429]
    assert statuses[-1].headers["x-ms-throttle-information"] == "RequestLimitExceeded"


def test_throttling_off_never_answers_429(graph, admin):
    """Functional tests switch the model off."""
    admin.configure(throttlingEnabled=False, quotaScale=0.0001)
    assert all(graph.get("/v1.0/users?$select=id").status_code == 200 for _ in range(10))


def test_injected_status_faults_follow_the_seeded_rates(graph, admin):
    """A 100% 503 rate answers 503 with Retry-After and counts the fault."""
    admin.set_faults(rates={"503": 1.0}, seed=3)
    response = graph.get("/v1.0/users")
    assert response.status_code == 503 and "retry-after" in response.headers
    assert response.json()["error"]["code"] == "ServiceUnavailable"
    assert admin.counters()["faultsByKind"] == {"503": 1}


def test_fault_sequences_repeat_for_the_same_seed(graph, admin):
    """The same seed gives the same sequence of faults."""

    def run() -> list[int]:
        admin.set_faults(rates={"429": 0.3, "504": 0.3}, seed=11)
        return [graph.get("/v1.0/users?$select=id").status_code for _ in range(12)]

    first, second = run(), run()
    assert first == second and {429, 504} & set(first) and 200 in first


def test_faults_can_target_a_path_pattern(graph, admin):
    """Only matching paths are affected."""
    admin.set_faults(rates={"504": 1.0}, pathPattern="/invitations$")
    assert graph.get("/v1.0/users").status_code == 200
    body = {"invitedUserEmailAddress": "p@fabrikam.com", "inviteRedirectUrl": "https://a.example"}
    assert graph.request("POST", "/v1.0/invitations", roles=("User.Invite.All",), json=body).status_code == 504


def test_a_connection_reset_closes_the_socket_without_an_answer(graph, admin, server):
    """The reset fault drops the connection: the client sees a transport error, not a response."""
    admin.set_faults(rates={"reset": 1.0})
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{server.url}/v1.0/users", headers=graph.as_("User.Read.All"), timeout=5)
    assert admin.counters()["faultsByKind"] == {"reset": 1}


def test_latency_is_added(graph, admin):
    """latencyMs delays every Graph answer."""
    admin.set_faults(latencyMs=150)
    started = time.perf_counter()
    graph.get("/v1.0/users?$top=1")
    assert time.perf_counter() - started >= 0.15


def test_an_outage_answers_503_everywhere_but_the_inspection_api(graph, admin):
    """outage: every Graph request is 503 while /_tenantsim keeps answering."""
    admin.set_faults(outage=True)
    assert graph.get("/v1.0/users").status_code == 503
    assert graph.get("/beta/policies/b2bManagementPolicies").status_code == 503
    assert admin.counters()["faultsByKind"]["outage"] == 2


def test_writes_have_their_own_bucket(graph, admin):
    """Writes draw on the 3,000-per-150-s write bucket: it runs out before the RU bucket does."""
    admin.configure(throttlingEnabled=True, quotaScale=0.001)  # 3 writes per 150 s, 5 RU per 10 s
    guest_id = next(u["id"] for u in admin.snapshot()["users"] if u["userType"] == "Guest")
    statuses = [
        graph.request("PATCH", f"/v1.0/users/{guest_id}", roles=("User.ReadWrite.All",), json={"jobTitle": str(i)})
        for i in range(4)
    ]
    assert [r.status_code for r in statuses] == [204, 204, 204, 429]
    assert statuses[-1].headers["x-ms-throttle-information"] == "WriteLimitExceeded"


def test_the_client_request_id_is_echoed_and_a_request_id_is_sent(graph):
    """client-request-id comes back as sent, in the header and in innerError; request-id is always present."""
    response = graph.get("/v1.0/users/nobody", headers={"client-request-id": "abc-123"})
    assert response.headers["client-request-id"] == "abc-123"
    inner = response.json()["error"]["innerError"]
    assert inner["client-request-id"] == "abc-123" and inner["request-id"] == response.headers["request-id"]


def test_invitations_do_not_draw_on_the_identity_write_bucket(graph, admin):
    """With the identity write bucket empty, an invitation still goes through: it has its own tenant limit."""
    admin.configure(throttlingEnabled=True, quotaScale=0.001)  # 3 identity writes per 150 s, 1 invitation per 5 s
    guest_id = next(u["id"] for u in admin.snapshot()["users"] if u["userType"] == "Guest")
    writes = [
        graph.request("PATCH", f"/v1.0/users/{guest_id}", roles=("User.ReadWrite.All",), json={"jobTitle": str(i)})
        for i in range(4)
    ]
    assert [r.status_code for r in writes] == [204, 204, 204, 429]
    body = {"invitedUserEmailAddress": "w@fabrikam.com", "inviteRedirectUrl": "https://a.example"}
    assert graph.request("POST", "/v1.0/invitations", roles=("User.Invite.All",), json=body).status_code == 201


def test_only_the_paths_of_the_cost_table_cost_more_than_one_resource_unit(graph, admin):
    """GET users is 2, a group's members 3, its transitive members 5; one user or its sponsors is 1."""
    admin.configure(throttlingEnabled=True)
    guest = next(u for u in admin.snapshot()["users"] if u["userType"] == "Guest")["id"]
    group = admin.snapshot()["groups"][0]["id"]
    roles = ("User.Read.All", "GroupMember.Read.All")
    eventual = {"ConsistencyLevel": "eventual"}
    costs = {
        f"/v1.0/users/{guest}": 1,
        f"/v1.0/users/{guest}/sponsors": 1,
        f"/v1.0/groups/{group}/members": 3,
        f"/v1.0/groups/{group}/transitiveMembers/microsoft.graph.user?$count=true": 5,
        f"/v1.0/groups/{group}/transitiveMembers/microsoft.graph.user?$count=true&$select=id": 4,
    }
    for path, cost in costs.items():
        answer = graph.get(path, roles=roles, headers=eventual)
        assert answer.status_code == 200, path
        assert answer.headers["x-ms-resource-unit"] == str(cost), path


@pytest.mark.parametrize(("seconds", "kept"), [(30, True), (1, False)])
def test_an_idle_connection_stays_open_for_the_idle_connection_knob(admin, server, seconds, kept):
    """Graph documents no idle timeout: 30 s (default) outlasts the clients' own reuse; 1 s closes a connection
    the client still holds, and reusing it finds it gone."""
    admin.configure(idleConnectionSeconds=seconds)
    connection = http.client.HTTPConnection(server.url.removeprefix("http://"), timeout=5)
    try:
        connection.request("GET", "/_tenantsim/config")
        connection.getresponse().read()
        time.sleep(1.5)
        connection.request("GET", "/_tenantsim/config")
        if kept:
            assert connection.getresponse().status == 200
        else:
            with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
                connection.getresponse()
    finally:
        connection.close()
