"""The safety gate on the local stack: queue messages in, Graph on tenantsim, state on Azurite.

A guest put into a group nested inside the protected group after a run was planned, an offboard ticket
for such a guest, and a forged guest-actions message: each goes through the product's real entry point and
tenantsim's state shows that nothing was written.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest

from app.bootstrap import bootstrap
from config.settings import load_settings
from graph.credentials import TenantSimCredential
from graph.permissions import GRANTED
from lifecycle.ledger.worker import drain
from lifecycle.onboarding.handler import handle_ticket
from lifecycle.onboarding.submission import ticket_message
from lifecycle.sweep import entry
from lifecycle.sweep.model import Action, PlannedAction, Rule
from lifecycle.sweep.runner import action_message
from tenantsim.client import TenantSimAdmin
from tenantsim.seed import PROTECTED_GROUP_ID, build_seed

pytestmark = pytest.mark.stack
NESTED = "6d1e8f3b-0a52-4c9f-b7d4-3e2f1a0c9b88"
SPONSOR = "megan.bowen@contoso.com"


@pytest.fixture
def tenant(local_stack):
    """A fresh tenant with an empty group nested inside the protected group."""
    document = build_seed(300, 0, "fresh", datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0))
    template = next(g for g in document["groups"] if g["id"] == PROTECTED_GROUP_ID)
    document["groups"].append({**template, "id": NESTED, "displayName": "Retained vendors", "members": []})
    template["members"] = [*template["members"], NESTED]
    with TenantSimAdmin(local_stack.tenantsim_url) as admin:
        admin.seed(document)
        yield admin
        admin.seed(builtin="fresh", guests=300, random_seed=0)


@pytest.fixture
async def services(local_stack, tenant):
    suffix = uuid.uuid4().hex[:8]
    settings = load_settings(
        {**local_stack.env, "LIFECYCLE_TABLE_PREFIX": f"gate{suffix}", "LIFECYCLE_QUEUE_PREFIX": f"gate{suffix}-"}
    )
    built = await bootstrap(settings, credential=TenantSimCredential(local_stack.tenantsim_url, roles=GRANTED))
    yield built
    await built.close()


def _user(tenant: TenantSimAdmin, object_id: str) -> dict:
    return next(u for u in tenant.snapshot()["users"] if u["id"] == object_id)


async def _approved_run(services, run_id: str) -> list[dict]:
    await entry.run_sweep(services, "enforce", run_id=run_id)
    await entry.approve(services, run_id, "oncall@contoso.com")
    return [a for a in (await entry.show(services, run_id, limit=10_000))["plan"] if a["action"] == "disable"]


async def test_a_guest_nested_into_the_protected_group_after_dispatch_is_not_disabled(services, tenant):
    planned = await _approved_run(services, "gate-midrun")
    target = planned[0]["objectId"]
    # The run's workers have started: its first message read the protected group, as in production.
    await entry._gate(entry.sweep_ports(services)).policy(services, "gate-midrun")
    tenant.add_group_member(NESTED, target)
    report = await drain(services, "guest-actions", entry.handle_guest_action, idle_rounds=2)
    assert report.crashed == 0
    assert _user(tenant, target)["accountEnabled"] is not False
    assert "dropped:guest-protected" in {o.code for o in report.outcomes}
    others = [a["objectId"] for a in planned[1:]]
    assert all(_user(tenant, i)["accountEnabled"] is False for i in others)


async def test_a_forged_action_naming_a_released_run_leaves_a_bystander_alone(services, tenant):
    planned = await _approved_run(services, "gate-forged")
    planned_ids = {a["objectId"] for a in planned}
    bystander = next(
        u["id"] for u in tenant.snapshot()["users"] if u["userType"] == "Guest" and u["id"] not in planned_ids
    )
    forged = PlannedAction("gate-forged", bystander, Action.DISABLE, Rule.INACTIVE, evidence={"inactiveDays": 999})
    await services.transport.send(services.settings.queue_name("guest-actions"), [action_message(forged)])
    report = await drain(services, "guest-actions", entry.handle_guest_action, idle_rounds=2)
    assert "not-in-plan" in {o.code for o in report.outcomes}
    assert _user(tenant, bystander)["accountEnabled"] is not False


async def test_an_offboard_ticket_for_a_guest_in_a_nested_protected_group_is_refused(services, tenant):
    email = f"gate.{uuid.uuid4().hex[:8]}@fabrikam.com"
    onboard = {
        "schemaVersion": 1,
        "kind": "onboard",
        "ticketId": f"GATE-{uuid.uuid4().hex[:8]}",
        "email": email,
        "displayName": "Gate Test",
        "partner": "fabrikam",
        "sponsor": SPONSOR,
        "endDate": "2027-03-31",
    }
    offboard = {"schemaVersion": 1, "kind": "offboard", "ticketId": f"GATE-{uuid.uuid4().hex[:8]}", "email": email}
    queue = services.settings.queue_name("onboarding")
    await services.transport.send(queue, [ticket_message(onboard)])
    await drain(services, "onboarding", handle_ticket, idle_rounds=1, wait_for_delayed_seconds=30)
    guest = next(u for u in tenant.snapshot()["users"] if (u.get("mail") or "").lower() == email)
    tenant.add_group_member(NESTED, guest["id"])
    await services.transport.send(queue, [ticket_message(offboard)])
    report = await drain(services, "onboarding", handle_ticket, idle_rounds=1)
    assert [o.code for o in report.outcomes] == ["guest-protected"]
    assert _user(tenant, guest["id"])["accountEnabled"] is not False
    rows = [r async for r in services.rejections.all() if r.key == f"ticket:{offboard['ticketId']}"]
    assert rows and rows[0].code == "guest-protected"
    assert json.loads(rows[0].raw)["kind"] == "offboard"
