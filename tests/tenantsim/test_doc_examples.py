"""tenantsim accepts the request bodies of Microsoft's documentation examples for the endpoints it serves.

The POST example of the beta b2bManagementPolicies page is left out: its body is not valid JSON (line
breaks inside a string literal), so no JSON service could accept it as printed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tenantsim.seed import FABRIKAM_TENANT_ID
from tests.tenantsim.conftest import guests

EXAMPLES = json.loads((Path(__file__).with_name("doc_examples.json")).read_text())["examples"]


@pytest.mark.parametrize("example", EXAMPLES, ids=[e["source"].split(" ")[0].rsplit("/", 1)[-1] for e in EXAMPLES])
def test_documented_request_bodies_are_accepted(graph, admin, example):
    """The documented body gets the documented success status."""
    admin.seed(builtin="locked-down", guests=5)
    path = example["path"].format(
        tenant=FABRIKAM_TENANT_ID,
        user=guests(admin)[0]["id"],
        policy=admin.snapshot()["policies"]["b2bManagementPolicies"][0]["id"],
    )
    graph.request(
        "PATCH",
        "/v1.0/policies/authorizationPolicy",
        roles=("Policy.ReadWrite.Authorization",),
        json={"allowInvitesFrom": "everyone"},
    )
    admin.set_identity_provider("fabrikam.com", "AzureAD", FABRIKAM_TENANT_ID)
    response = graph.request(example["method"], path, roles=tuple(example["roles"]), json=example["body"])
    assert response.status_code == example["status"], response.text
