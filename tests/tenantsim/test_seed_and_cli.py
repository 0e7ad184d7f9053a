"""The seeded tenant and the command line: determinism, agreement with the sample desired state, serve/token/seed."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import yaml

from tenantsim.seed import (
    FABRIKAM_COLLABORATORS_GROUP_ID,
    HOME_TENANT_ID,
    PARTNER_PORTAL_APP_ID,
    PROTECTED_GROUP_ID,
    build_seed,
    domain_list_definition,
)

ROOT = Path(__file__).resolve().parents[2]
ANCHOR = datetime(2025, 6, 1, tzinfo=UTC)


def test_the_same_inputs_give_the_same_tenant():
    """Seeds are deterministic for (guests, random seed, anchor, posture); another seed differs."""
    assert build_seed(30, 5, anchor=ANCHOR) == build_seed(30, 5, anchor=ANCHOR)
    assert build_seed(30, 5, anchor=ANCHOR)["users"] != build_seed(30, 6, anchor=ANCHOR)["users"]


def test_the_tenant_has_every_lifecycle_state_and_origin():
    """Pending (some for months), accepted, disabled, inactive and never-signed-in guests; all origins."""
    seed = build_seed(300, 0, anchor=ANCHOR)
    guests = [u for u in seed["users"] if u["userType"] == "Guest"]
    assert len(guests) == 300
    pending = [g for g in guests if g["externalUserState"] == "PendingAcceptance"]
    assert any((ANCHOR - _when(g["createdDateTime"])).days > 90 for g in pending)
    assert any(not g["accountEnabled"] for g in guests)
    assert any(g["signInActivity"] is None for g in guests)
    assert any((g["signInActivity"] or {}).get("lastSignInDateTime") == "0001-01-01T00:00:00Z" for g in guests)
    signed_in = [
        g for g in guests if g["signInActivity"] and not g["signInActivity"]["lastSignInDateTime"].startswith("0001")
    ]
    assert any((ANCHOR - _when(g["signInActivity"]["lastSignInDateTime"])).days > 180 for g in signed_in)
    issuers = {i["issuer"] for g in guests for i in g["identities"] if i["signInType"] == "federated"}
    assert issuers == {"ExternalAzureAD", "google.com", "mail", "MicrosoftAccount"}
    domains = {g["mail"].split("@")[1] for g in guests}
    assert {
        "fabrikam.com",
        "fabrikam.co.uk",
        "northwindtraders.com",
        "woodgrovebank.com",
        "adatum.com",
        "gmail.com",
        "outlook.com",
        "proseware.com",
    } <= domains
    for guest in guests:
        local, domain = guest["mail"].split("@")
        assert guest["userPrincipalName"] == f"{local}_{domain}#EXT#@contoso.onmicrosoft.com"
        assert guest["creationType"] == "Invitation"


def test_identities_match_how_each_guest_redeemed():
    """Pending guests have only the home-tenant UPN identity; Entra partners redeem via ExternalAzureAD."""
    guests = [u for u in build_seed(200, 1, anchor=ANCHOR)["users"] if u["userType"] == "Guest"]
    for guest in guests:
        federated = [i for i in guest["identities"] if i["signInType"] == "federated"]
        if guest["externalUserState"] == "PendingAcceptance":
            assert federated == [] and guest["identities"][0]["issuer"] == "contoso.onmicrosoft.com"
        elif guest["mail"].endswith(("@fabrikam.com", "@northwindtraders.com", "@woodgrovebank.com")):
            assert federated[0]["issuer"] == "ExternalAzureAD"
        elif guest["mail"].endswith("@gmail.com"):
            assert federated[0]["issuer"] == "google.com"


def test_groups_members_and_app_are_seeded():
    """The named groups (protected with a few guests), sponsors among members (Megan Bowen first), the app."""
    seed = build_seed(100, 0, anchor=ANCHOR)
    groups = {g["id"]: g for g in seed["groups"]}
    assert groups[FABRIKAM_COLLABORATORS_GROUP_ID]["displayName"] == "Fabrikam collaborators"
    assert groups[PROTECTED_GROUP_ID]["displayName"] == "Guest lifecycle exclusions"
    assert 1 <= len(groups[PROTECTED_GROUP_ID]["members"]) <= 5
    members = {u["id"] for u in seed["users"] if u["userType"] == "Member"}
    assert all(u["mail"].endswith("@contoso.com") for u in seed["users"] if u["id"] in members)
    assert all(set(s) <= members for s in seed["sponsors"].values())
    assert seed["servicePrincipals"][0]["appId"] == PARTNER_PORTAL_APP_ID
    megan = next(u for u in seed["users"] if u["mail"] == "megan.bowen@contoso.com")
    assert any(megan["id"] in s for s in seed["sponsors"].values())
    assert seed["tenant"]["id"] == HOME_TENANT_ID


def test_the_locked_down_posture_matches_the_sample_desired_state():
    """Partners, inbound settings, trust, invitation setting, guest role and domain allow list agree."""
    desired = yaml.safe_load((ROOT / "config" / "desired-state.sample.yaml").read_text())
    policies = build_seed(5, 0, "locked-down", ANCHOR)["policies"]
    default = policies["crossTenantAccessDefault"]
    for block, wanted in desired["crossTenantAccessDefault"].items():
        assert default[block] == wanted, block
    partners = {p["tenantId"]: p for p in policies["crossTenantAccessPartners"]}
    for partner in desired["partners"].values():
        if "tenantId" not in partner:
            continue
        actual = partners.pop(partner["tenantId"])
        for block, wanted in partner.get("crossTenantAccess", {}).items():
            assert actual[block] == wanted, (partner["displayName"], block)
    assert partners == {}
    assert policies["authorizationPolicy"]["allowInvitesFrom"] == desired["invitations"]["allowInvitesFrom"]
    assert policies["authorizationPolicy"]["guestUserRoleId"] == "2af84b1e-32c8-42b7-82bc-daa82404023b"
    allowed = desired["invitations"]["domains"]["domains"]
    assert policies["b2bManagementPolicies"][0]["definition"] == [domain_list_definition(allowed, [])]


def test_a_large_tenant_builds_quickly():
    """20,000 guests build in a few seconds (100,000 scale linearly for benchmarks)."""
    started = time.perf_counter()
    seed = build_seed(20_000, 3, anchor=ANCHOR)
    assert time.perf_counter() - started < 10
    assert sum(1 for u in seed["users"] if u["userType"] == "Guest") == 20_000
    assert len({u["id"] for u in seed["users"]}) == len(seed["users"])


def test_the_cli_serves_writes_its_port_and_mints_tokens(tmp_path):
    """serve --port 0 writes the port file and prints the URL; token prints a bearer that works."""
    port_file = tmp_path / "port"
    server = subprocess.Popen(
        [sys.executable, "-m", "tenantsim", "serve", "--port", "0", "--port-file", str(port_file), "--guests", "12"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = server.stdout.readline().strip()
        port = int(port_file.read_text())
        assert line == f"tenantsim listening on http://127.0.0.1:{port}"
        url = f"http://127.0.0.1:{port}"
        token = subprocess.run(
            [sys.executable, "-m", "tenantsim", "token", "--roles", "User.Read.All", "--url", url],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        users = httpx.get(
            f"{url}/v1.0/users?$filter=userType eq 'Guest'&$count=true",
            headers={"Authorization": f"Bearer {token}", "ConsistencyLevel": "eventual"},
        ).json()
        assert users["@odata.count"] == 12
    finally:
        server.terminate()
        server.wait(10)


def test_the_cli_writes_a_seed_file_that_serve_accepts(tmp_path):
    """seed --out writes a JSON document with the requested size."""
    out = tmp_path / "tenant.json"
    subprocess.run(
        [sys.executable, "-m", "tenantsim", "seed", "--out", str(out), "--guests", "9", "--anchor", "2025-06-01"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    document = json.loads(out.read_text())
    assert sum(1 for u in document["users"] if u["userType"] == "Guest") == 9


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
