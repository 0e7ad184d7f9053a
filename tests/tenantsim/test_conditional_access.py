"""Conditional Access policies as tenantsim serves them: list, get, create, delete and the pace limit."""

from __future__ import annotations

import pytest

from tests.tenantsim.test_policy_extras import CA, CA_WRITE, GUEST_MFA

READ = ("Policy.Read.All",)


def test_a_created_policy_is_read_back_by_id_and_deleted(graph):
    created = graph.request("POST", CA, roles=CA_WRITE, json=GUEST_MFA).json()
    got = graph.get(f"{CA}/{created['id']}", roles=READ)
    assert got.status_code == 200 and got.json()["displayName"] == GUEST_MFA["displayName"]
    assert got.json()["@odata.context"].endswith("$metadata#identity/conditionalAccess/policies/$entity")
    assert graph.request("DELETE", f"{CA}/{created['id']}", roles=CA_WRITE).status_code == 204
    assert graph.get(f"{CA}/{created['id']}", roles=READ).status_code == 404


def test_policy_read_write_conditional_access_also_reads(graph):
    """Policy.ReadWrite.ConditionalAccess is a higher privileged permission for reading the policies."""
    assert graph.get(CA, roles=("Policy.ReadWrite.ConditionalAccess",)).status_code == 200


@pytest.mark.parametrize("option", ["$filter=state eq 'enabled'", "$top=1", "$select=id", "$count=true"])
def test_query_options_tenantsim_does_not_serve_are_refused_not_ignored(graph, option):
    answer = graph.get(f"{CA}?{option}", roles=READ)
    assert answer.status_code == 400 and answer.json()["error"]["code"] == "Request_UnsupportedQuery"
