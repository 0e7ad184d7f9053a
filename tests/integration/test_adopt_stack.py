"""Adopting guests invited by hand on the local stack: their sponsor from Graph's expanded sponsors."""

from __future__ import annotations

import json
import os
import uuid

import pytest

from app.bootstrap import bootstrap
from config.settings import load_settings
from graph.credentials import TenantSimCredential
from graph.permissions import GRANTED
from lifecycle.adopt.entry import adopt, plan_adoptions
from lifecycle.ledger.outcomes import Verdict
from lifecycle.onboarding.handler import handle_ticket
from tenantsim.client import TenantSimAdmin
from tenantsim.seed import PROTECTED_GROUP_ID
from tests.builders import lifecycle_cli, message
from tests.integration.test_sponsor_coverage_stack import _tenant

pytestmark = pytest.mark.stack
OPERATOR = "oncall@contoso.com"


async def test_guests_invited_by_hand_are_adopted_with_their_graph_sponsor_once(local_stack):
    """Every partner guest with an enabled member sponsor gets a ledger row with that sponsor, audited; a guest
    without one, or of no partner, is left alone with the reason; a protected guest is refused by the gate;
    adopting again finds nobody; tickets then act on an adopted guest (an attestation by its sponsor)."""
    document, picked = _tenant()
    suffix = uuid.uuid4().hex[:8]
    env = {**local_stack.env, "LIFECYCLE_TABLE_PREFIX": f"ad{suffix}", "LIFECYCLE_QUEUE_PREFIX": f"ad{suffix}-"}
    with TenantSimAdmin(local_stack.tenantsim_url) as admin:
        admin.seed(document)
        services = await bootstrap(
            load_settings(env), credential=TenantSimCredential(local_stack.tenantsim_url, roles=GRANTED)
        )
        try:
            plans = {p.user.id: p for p in await plan_adoptions(services)}
            for finding in ("no-sponsor", "sponsor-disabled"):
                plan = plans[picked[finding]]
                domain = (plan.user.mail or "").rsplit("@", 1)[-1]
                partner = services.desired.partner_for_domain(domain)
                assert plan.code == ("no-usable-sponsor" if partner else "no-partner") and plan.sponsor is None
            adoptable = [p for p in plans.values() if p.acts]
            protected = adoptable[0].user.id
            admin.add_group_member(PROTECTED_GROUP_ID, protected)  # protected after the plan was shown
            results = {r["objectId"]: r for r in await adopt(services, list(plans.values()), OPERATOR)}
            assert results[protected]["code"] == "guest-protected"
            assert await services.guests.get(protected) is None
            adopted = [i for i, r in results.items() if r["status"] == "adopted"]
            assert len(adopted) == len(adoptable) - 1 > 0
            sample = await services.guests.get(adopted[0])
            assert sample is not None and sample.sponsor == document["sponsors"][adopted[0]][0]
            assert sample.history[0]["event"] == "adopted" and sample.history[0]["by"] == OPERATOR
            audited = [e async for e in services.audit.entries() if e.action == "guest.adopted"]
            assert {e.target for e in audited} == set(adopted) and {e.actor for e in audited} == {OPERATOR}
            assert not [p for p in await plan_adoptions(services) if p.acts and p.user.id != protected]
            guest = next(u for u in document["users"] if u["id"] == adopted[0])
            attest = {
                "schemaVersion": 1,
                "kind": "attest",
                "ticketId": "RITM0090001",
                "email": guest["mail"],
                "attestedBy": sample.sponsor,
            }
            outcome = await handle_ticket(message(attest), services)
            assert outcome.verdict is Verdict.DONE, outcome
            attested = await services.guests.get(adopted[0])
            assert attested is not None and attested.attested_by == sample.sponsor
        finally:
            await services.close()
        cli = lifecycle_cli({**os.environ, **env}, "adopt", "--dry-run", "--json")
        admin.seed(builtin="fresh", guests=300, random_seed=0)
    assert cli.returncode == 2, cli.stderr  # the guests left alone need a person
    assert {g["status"] for g in json.loads(cli.stdout)["guests"]} <= {"left-alone", "planned"}
