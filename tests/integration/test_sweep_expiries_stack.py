"""Access package assignment end dates over tenantsim, and the sweep acting on them end to end."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest
from kiota_abstractions.method import Method

from app.bootstrap import bootstrap
from config.settings import load_settings
from graph.assignment_expiries import GraphAssignmentExpiries
from graph.client import build_graph_client
from graph.credentials import TenantSimCredential
from graph.entitlement import GraphAccessPackages
from graph.permissions import GRANTED
from graph.raw import RawGraph
from lifecycle.clock import FixedClock
from lifecycle.ledger.worker import drain
from lifecycle.models import AccessPackageTarget, GuestRecord, GuestState
from lifecycle.services import Services
from lifecycle.sweep import entry
from tenantsim.client import TenantSimAdmin
from tenantsim.seed import PROTECTED_GROUP_ID

pytestmark = pytest.mark.stack
ROLES = GRANTED | {"GroupMember.Read.All"}
EM = "/identityGovernance/entitlementManagement"


@pytest.fixture
def tenant(local_stack):
    with TenantSimAdmin(local_stack.tenantsim_url) as admin:
        admin.seed(builtin="fresh", guests=120, random_seed=3)
        yield admin
        admin.configure(clockOffsetSeconds=0)
        admin.seed(builtin="fresh", guests=300, random_seed=0)


@pytest.fixture
async def graph(local_stack):
    credential = TenantSimCredential(local_stack.tenantsim_url, roles=ROLES)
    client = build_graph_client(credential=credential, base_url=local_stack.env["LIFECYCLE_GRAPH_BASE_URL"])
    yield client
    await credential.close()


def _fabrikam_guests(tenant: TenantSimAdmin, count: int) -> list[str]:
    snapshot = tenant.snapshot()
    protected = set(next(g for g in snapshot["groups"] if g["id"] == PROTECTED_GROUP_ID)["members"])
    recent = (datetime.now(UTC) - timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")  # not inactive for 60 days
    found = [
        u["id"]
        for u in snapshot["users"]
        if u["userType"] == "Guest"
        and u.get("accountEnabled") is not False
        and (u.get("mail") or "").endswith("@fabrikam.com")
        and u["id"] not in protected
        and (u.get("signInActivity") or {}).get("lastSuccessfulSignInDateTime", "") >= recent
    ]
    assert len(found) >= count
    return found[:count]


class Assignments:
    """Assign and remove the Fabrikam package the way an administrator does, waiting for delivery."""

    def __init__(self, client) -> None:
        self.packages = GraphAccessPackages(client)
        self.raw = RawGraph(client)
        self.target: AccessPackageTarget | None = None

    async def _target(self) -> AccessPackageTarget:
        if self.target is None:
            self.target = await self.packages.resolve("Partner collaboration", "Fabrikam engineering")
            assert self.target is not None
        return self.target

    async def _settle(self, request_id: str) -> None:
        for _ in range(50):
            request = await self.packages.get_request(request_id)
            if request is not None and request.settled:
                assert request.state == "delivered", request
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"assignment request {request_id} never settled")

    async def add(self, user_id: str, end: datetime | None) -> str:
        target = await self._target()
        if end is None:
            body = {
                "requestType": "adminAdd",
                "assignment": {
                    "targetId": user_id,
                    "assignmentPolicyId": target.policy_id,
                    "accessPackageId": target.package_id,
                },
                "schedule": {"expiration": {"type": "noExpiration"}},
            }
            request = await self.raw.send(
                Method.POST, f"{self.raw.v1}/identityGovernance/entitlementManagement/assignmentRequests", body
            )
            request_id = request["id"]
        else:
            request_id = (await self.packages.request_assignment(user_id, target, end, "test")).id
        await self._settle(request_id)
        found = await self.packages.find_assignment(user_id, target.package_id)
        assert found is not None
        return found.id

    async def remove(self, assignment_id: str) -> None:
        await self._settle((await self.packages.request_removal(assignment_id, "test")).id)


async def test_end_dates_take_the_latest_end_and_a_never_ending_assignment_wins(local_stack, tenant, graph):
    """Per guest: the schedule's end of a delivered assignment, the expiry of a removed one, the later of the
    two when it has both, nothing while a live assignment never ends; the bulk read (paged one assignment at
    a time) and the single read agree."""
    ends_at, open_ended, removed, renewed, untouched = _fabrikam_guests(tenant, 5)
    assignments = Assignments(graph)
    end = datetime.now(UTC).replace(microsecond=0) + timedelta(days=40)
    before_removal = datetime.now(UTC) - timedelta(seconds=5)
    await assignments.add(ends_at, end)
    for guest in (open_ended, removed, renewed):
        await assignments.remove(await assignments.add(guest, end))
    await assignments.add(open_ended, None)
    await assignments.add(renewed, end)

    expiries = GraphAssignmentExpiries(graph, page_size=1)
    tenant.reset_counters()
    bulk = await expiries.end_dates()
    pages = [r for r in tenant.requests() if r["path"].endswith("/entitlementManagement/assignments")]
    assert len(pages) >= 6  # three delivered and three expired assignments, one per page: the links were followed
    assert bulk[ends_at] == end and bulk[renewed] == end
    assert open_ended not in bulk and untouched not in bulk
    assert before_removal <= bulk[removed] < end
    for guest in (ends_at, open_ended, removed, renewed, untouched):
        assert await expiries.end_date_of(guest) == bulk.get(guest)


async def test_the_sweep_disables_a_guest_whose_assignment_ended_and_keeps_one_whose_assignment_runs_on(
    local_stack, tenant, graph
):
    """Three weeks on: a guest whose assignment ended is past its end date (source: the assignment) and is
    disabled after the worker's re-check; a guest whose ledger end passed but whose assignment runs on is not."""
    ended, extended = _fabrikam_guests(tenant, 2)
    now = datetime.now(UTC)
    assignments = Assignments(graph)
    await assignments.add(ended, now + timedelta(days=10))
    await assignments.add(extended, now + timedelta(days=60))

    services = await _services_at(local_stack, now + timedelta(days=21))
    try:
        ledger_end = now + timedelta(days=5)
        await services.guests.save(
            GuestRecord(extended, "x@fabrikam.com", "fabrikam", GuestState.ACTIVE, end_date=ledger_end)
        )
        planned, by_guest = await _plan(services, "sweep-expiries")
        assert by_guest[ended]["action"] == "disable" and by_guest[ended]["rule"] == "past-end-date"
        assert by_guest[ended]["evidence"]["source"] == "accessPackageAssignment"
        assert extended not in by_guest
        await _enforce_and_drain(services, "sweep-expiries", planned, ended)
    finally:
        await services.close()
    users = {u["id"]: u for u in tenant.snapshot()["users"]}
    assert users[ended]["accountEnabled"] is False
    assert users[extended]["accountEnabled"] is not False


async def test_an_assignment_expired_by_the_tenant_clock_is_the_sweep_evidence_for_the_disable(
    local_stack, tenant, graph
):
    """Nothing seeded as expired: the package is assigned with an end ten days out (the request onboarding
    makes), tenantsim's clock moves three weeks on and entitlement management expires the assignment; the
    sweep finds it among the expired assignments, no longer among the delivered, and plans the disable from
    the assignment's end; the worker's re-check reads it the same way and disables the guest."""
    (guest,) = _fabrikam_guests(tenant, 1)
    now = datetime.now(UTC).replace(microsecond=0)
    end = now + timedelta(days=10)
    assignments = Assignments(graph)
    assignment_id = await assignments.add(guest, end)
    # Left to entitlement management, the guest's last assignment ending would block its sign-in before the
    # sweep could: the sweep would rightly see a guest disabled by someone else.
    await assignments.raw.send(
        Method.PATCH, f"{assignments.raw.v1}{EM}/settings", {"externalUserLifecycleAction": "none"}
    )

    tenant.configure(clockOffsetSeconds=timedelta(days=21).total_seconds())
    expired = await assignments.raw.send(Method.GET, f"{assignments.raw.v1}{EM}/assignments/{assignment_id}")
    assert expired["state"] == "expired" and expired["expiredDateTime"] == end.strftime("%Y-%m-%dT%H:%M:%SZ")
    delivered_only = quote("state eq 'delivered'", safe="")
    delivered = await assignments.raw.collection(f"{assignments.raw.v1}{EM}/assignments?$filter={delivered_only}")
    assert assignment_id not in {a["id"] for a in delivered}

    services = await _services_at(local_stack, now + timedelta(days=21))
    try:
        planned, by_guest = await _plan(services, "sweep-clock")
        assert (by_guest[guest]["action"], by_guest[guest]["rule"]) == ("disable", "past-end-date")
        assert by_guest[guest]["evidence"] == {"endDate": end.isoformat(), "source": "accessPackageAssignment"}
        await _enforce_and_drain(services, "sweep-clock", planned, guest)
    finally:
        await services.close()
    users = {u["id"]: u for u in tenant.snapshot()["users"]}
    assert users[guest]["accountEnabled"] is False


async def _services_at(local_stack, moment: datetime) -> Services:
    """The product's services on the stack, with their own tables and queues, on a clock stopped at ``moment``."""
    suffix = uuid.uuid4().hex[:8]
    settings = load_settings(
        {**local_stack.env, "LIFECYCLE_TABLE_PREFIX": f"ex{suffix}", "LIFECYCLE_QUEUE_PREFIX": f"ex{suffix}-"}
    )
    credential = TenantSimCredential(local_stack.tenantsim_url, roles=ROLES)
    return await bootstrap(settings, credential=credential, clock=FixedClock(moment))


async def _plan(services: Services, run_id: str) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """A plan-mode run and its planned actions by guest."""
    planned = await entry.run_sweep(services, "plan", run_id=run_id)
    shown = await entry.show(services, run_id, limit=10_000)
    assert shown is not None
    return planned, {a["objectId"]: a for a in shown["plan"]}


async def _enforce_and_drain(services: Services, run_id: str, planned: dict[str, Any], guest: str) -> None:
    """Enforce the planned run (approving it past the brake), drain the workers; ``guest``'s action applied."""
    braked = await entry.run_sweep(services, "enforce", run_id=run_id)
    if braked["status"] == "braked":
        await entry.approve(services, run_id, "oncall@contoso.com")
    report = await drain(services, "guest-actions", entry.handle_guest_action, idle_rounds=2)
    assert report.crashed == 0 and report.by_verdict["done"] == planned["disable"] + planned["delete"]
    outcome = next(o for o in report.outcomes if guest in o.key)
    assert outcome.code == "" and outcome.detail["applied"] is True
