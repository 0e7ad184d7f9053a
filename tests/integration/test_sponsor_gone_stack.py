"""The sponsor-gone rule on the local stack: the sweep reads a guest's sponsors from its own pages on tenantsim,
plans the sponsor-reassign event (the departed sponsor's manager read from Graph), keeps the mark on the Azurite
ledger, and plans the disable once sponsorGoneDays have passed, carried out after a live re-check."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import jsonschema
import pytest

from app.bootstrap import bootstrap
from app.schemas import SCHEMAS
from config.settings import load_settings
from graph.credentials import TenantSimCredential
from graph.permissions import GRANTED
from lifecycle.clock import FixedClock
from lifecycle.ledger.worker import drain
from lifecycle.models import GuestRecord, GuestState
from lifecycle.sweep import entry
from lifecycle.sweep.runner import GUEST_ACTIONS_QUEUE
from tenantsim.client import TenantSimAdmin
from tenantsim.seed import PROTECTED_GROUP_ID, build_seed
from tests.builders.sweep import one_rule_for

pytestmark = pytest.mark.stack
DAYS = 30
NOTICES = "sponsor-notices"


def _desired():
    return one_rule_for("fabrikam", sponsor_gone_days=DAYS)


def _tenant() -> tuple[dict, str, str, str]:
    """A seed where one guest's only sponsor is a disabled member whose manager is an enabled member."""
    document = build_seed(40, 23, "fresh", datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0))
    members = [u for u in document["users"] if u["userType"] == "Member" and u.get("accountEnabled") is not False]
    # A fabrikam guest outside the protected group (the sweep leaves its members alone).
    grouped = {m for g in document["groups"] if g["id"] == PROTECTED_GROUP_ID for m in g["members"]}
    guest = next(
        u
        for u in document["users"]
        if u["userType"] == "Guest"
        and u["accountEnabled"]
        and u["mail"].endswith("@fabrikam.com")
        and u["id"] not in grouped
    )
    sponsor, manager = members[0], members[1]
    sponsor["accountEnabled"] = False
    document["sponsors"][guest["id"]] = [sponsor["id"]]
    document["managers"] = {sponsor["id"]: manager["id"]}
    return document, guest["id"], sponsor["id"], manager["id"]


async def _events(services) -> list[dict]:
    queue = services.settings.queue_name(NOTICES)
    found: list[dict] = []
    while batch := await services.transport.receive(queue, max_messages=32, lock_seconds=300):
        found.extend(json.loads(m.body) for m in batch)
    return found


async def _work(services):
    return await drain(services, GUEST_ACTIONS_QUEUE, entry.handle_guest_action, idle_rounds=2)


@pytest.mark.parametrize("nested_select", ["honour", "ignore"])
async def test_the_sweep_plans_the_reassign_event_then_the_disable_once_the_period_is_over(local_stack, nested_select):
    """Whichever reading of a nested $select Graph gives: where the expansion carries no sponsor state, the planner
    and the worker's re-read settle it by the sponsors' ids."""
    document, guest_id, sponsor_id, manager_id = _tenant()
    suffix = uuid.uuid4().hex[:8]
    settings = load_settings(
        {**local_stack.env, "LIFECYCLE_TABLE_PREFIX": f"sg{suffix}", "LIFECYCLE_QUEUE_PREFIX": f"sg{suffix}-"}
    )
    clock = FixedClock(datetime.now(UTC).replace(microsecond=0))
    first_seen = clock.now()
    with TenantSimAdmin(local_stack.tenantsim_url) as admin:
        admin.seed(document)
        admin.configure(expandNestedSelect=nested_select)
        services = await bootstrap(
            settings,
            credential=TenantSimCredential(local_stack.tenantsim_url, roles=GRANTED),
            desired=_desired(),
            clock=clock,
        )
        try:
            await services.guests.save(
                GuestRecord(guest_id, "guest@fabrikam.com", "fabrikam", GuestState.ACTIVE, sponsor=sponsor_id)
            )
            first = await entry.run_sweep(services, "enforce", run_id="sweep-gone-1")
            assert first["actions"] == {"sponsor-reassign/sponsor-gone": 1} and first["disable"] == 0
            assert (await _work(services)).by_verdict == {"done": 1}
            [event] = await _events(services)
            jsonschema.validate(event, SCHEMAS["sponsor-reassign"]())
            assert (event["guestId"], event["coverage"], event["departedSponsorIds"]) == (
                guest_id,
                "sponsor-disabled",
                [sponsor_id],
            )
            assert (event["proposedSponsorId"], event["proposedBy"]) == (manager_id, "manager")
            marked = await services.guests.get(guest_id)
            assert marked is not None and marked.sponsor_gone_since == first_seen

            clock.advance(timedelta(days=DAYS - 1))
            early = await entry.run_sweep(services, "enforce", run_id="sweep-gone-2")
            assert early["actions"] == {}

            clock.advance(timedelta(days=1))
            due = await entry.run_sweep(services, "enforce", run_id="sweep-gone-3")
            assert due["actions"] == {"disable/sponsor-gone": 1}
            shown = await entry.show(services, "sweep-gone-3")
            assert shown is not None
            [planned] = shown["plan"]
            assert planned["objectId"] == guest_id
            assert planned["evidence"]["sponsorGoneSince"] == first_seen.isoformat()
            assert (await _work(services)).by_verdict == {"done": 1}
            assert await _events(services) == []
        finally:
            await services.close()
            admin.configure(expandNestedSelect="honour")
        users = {u["id"]: u for u in admin.snapshot()["users"]}
        admin.seed(builtin="fresh", guests=300, random_seed=0)
    assert users[guest_id]["accountEnabled"] is False
