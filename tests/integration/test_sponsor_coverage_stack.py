"""Sponsor coverage over tenantsim: found in the sweep's own guest pages, never one call per guest."""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime

import pytest

from app.bootstrap import bootstrap
from config.settings import load_settings
from graph.credentials import TenantSimCredential
from graph.permissions import GRANTED
from lifecycle.models import GuestRecord, GuestState
from lifecycle.sweep import entry
from tenantsim.client import TenantSimAdmin
from tenantsim.seed import build_seed

pytestmark = pytest.mark.stack
GONE = "7d3e1f90-2b6c-4a8e-9f15-3c4d5e6f7a8b"  # a sponsor deleted since the guest was onboarded


def _tenant() -> tuple[dict, dict[str, str]]:
    """A seed where five guests stand for each finding and every other guest has an enabled member sponsor."""
    document = build_seed(60, 21, "fresh", datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0))
    members = [u for u in document["users"] if u["userType"] == "Member"]
    guests = [u for u in document["users"] if u["userType"] == "Guest"]
    disabled = members[-1]
    disabled["accountEnabled"] = False
    picked = {
        "no-sponsor": guests[0]["id"],
        "sponsor-disabled": guests[1]["id"],
        "sponsor-not-member": guests[2]["id"],
        "sponsor-gone": guests[3]["id"],
        "covered-by-group": guests[4]["id"],
    }
    document["sponsors"][picked["no-sponsor"]] = []
    document["sponsors"][picked["sponsor-disabled"]] = [disabled["id"]]
    document["sponsors"][picked["sponsor-not-member"]] = [guests[10]["id"]]
    document["sponsors"][picked["sponsor-gone"]] = [GONE]
    document["sponsors"][picked["covered-by-group"]] = [document["groups"][0]["id"]]
    return document, picked


@pytest.mark.parametrize("nested_select", ["honour", "ignore"])
async def test_sponsor_coverage_comes_from_the_sweeps_own_pages_whichever_reading_of_nested_select(
    local_stack, nested_select
):
    """Each finding is counted with its guest named; no guest's sponsors are read one by one. Where the expansion
    carries no sponsor state (known-issues reading), one `id in (...)` lookup per 15 distinct sponsors settles it."""
    document, picked = _tenant()
    suffix = uuid.uuid4().hex[:8]
    settings = load_settings(
        {**local_stack.env, "LIFECYCLE_TABLE_PREFIX": f"sc{suffix}", "LIFECYCLE_QUEUE_PREFIX": f"sc{suffix}-"}
    )
    with TenantSimAdmin(local_stack.tenantsim_url) as admin:
        admin.seed(document)
        admin.configure(expandNestedSelect=nested_select)
        services = await bootstrap(settings, credential=TenantSimCredential(local_stack.tenantsim_url, roles=GRANTED))
        try:
            guest = picked["sponsor-gone"]
            await services.guests.save(
                GuestRecord(guest, "gone@fabrikam.com", "fabrikam", GuestState.ACTIVE, sponsor=GONE)
            )
            admin.reset_counters()
            before = len(admin.requests())
            summary = await entry.run_sweep(services, "plan", run_id=f"sweep-coverage-{nested_select}")
            requests = admin.requests()[before:]
        finally:
            await services.close()
            admin.configure(expandNestedSelect="honour")
            admin.seed(builtin="fresh", guests=300, random_seed=0)
    coverage = summary["sponsorCoverage"]
    findings = ("no-sponsor", "sponsor-disabled", "sponsor-not-member", "sponsor-gone")
    assert {k: v for k, v in coverage["counts"].items() if k != "covered"} == dict.fromkeys(findings, 1)
    assert coverage["counts"]["covered"] == summary["totalGuests"] - 4
    assert all(coverage["examples"][f] == [picked[f]] for f in findings)
    assert not [r for r in requests if "/sponsors" in r["path"]]
    listed = [r for r in requests if r["method"] == "GET" and r["path"].rstrip("/").endswith("/users")]
    distinct = len({s for ids in document["sponsors"].values() for s in ids})
    if nested_select == "honour":
        assert len(listed) == 1  # the one page of 60 guests, sponsors and their state expanded in it
    else:
        assert 2 <= len(listed) <= 1 + math.ceil(distinct / 15)


async def test_where_graph_refuses_to_expand_beside_sign_in_activity_the_sweep_plans_without_coverage(local_stack):
    """The sweep's rules must not depend on the expansion: refused, the pages are read again without it, every
    guest is planned as before, and the run says coverage was not counted."""
    document, _ = _tenant()
    suffix = uuid.uuid4().hex[:8]
    settings = load_settings(
        {**local_stack.env, "LIFECYCLE_TABLE_PREFIX": f"sr{suffix}", "LIFECYCLE_QUEUE_PREFIX": f"sr{suffix}-"}
    )
    with TenantSimAdmin(local_stack.tenantsim_url) as admin:
        admin.seed(document)
        services = await bootstrap(settings, credential=TenantSimCredential(local_stack.tenantsim_url, roles=GRANTED))
        try:
            expanded = await entry.run_sweep(services, "plan", run_id="sweep-coverage-both")
            admin.configure(expandWithSignInActivity=False)
            refused = await entry.run_sweep(services, "plan", run_id="sweep-coverage-refused")
        finally:
            await services.close()
            admin.configure(expandWithSignInActivity=True)
            admin.seed(builtin="fresh", guests=300, random_seed=0)
    assert "sponsorCoverage" not in refused and refused["status"] == "planned"
    assert [w["code"] for w in refused["warnings"]] == ["sponsor-coverage-unavailable"]
    assert (refused["totalGuests"], refused["actions"], refused["skipped"]) == (
        expanded["totalGuests"],
        expanded["actions"],
        expanded["skipped"],
    )
