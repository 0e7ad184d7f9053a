"""The on-call commands against the local stack: Storage queues with a poison queue on Azurite, tenantsim."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from app.bootstrap import bootstrap
from config.settings import load_settings
from graph.credentials import TenantSimCredential
from graph.permissions import GRANTED
from lifecycle.ledger import operations
from lifecycle.ledger.operations import Selector
from lifecycle.ledger.worker import drain
from lifecycle.onboarding.handler import handle_ticket
from lifecycle.onboarding.holds import release_due
from lifecycle.onboarding.submission import submit_documents
from tests.builders import lifecycle_cli

pytestmark = pytest.mark.stack


def _ticket(ticket_id: str, **fields) -> dict:
    end = (datetime.now(UTC) + timedelta(days=60)).date().isoformat()
    return {
        "schemaVersion": 1,
        "kind": "onboard",
        "ticketId": ticket_id,
        "email": f"{ticket_id.lower()}@fabrikam.com",
        "displayName": ticket_id,
        "partner": "fabrikam",
        "sponsor": "megan.bowen@contoso.com",
        "endDate": end,
        **fields,
    }


@pytest.fixture(name="env")
def _env(local_stack) -> dict[str, str]:
    prefix = "ops" + uuid.uuid4().hex[:8]
    return {**local_stack.env, "LIFECYCLE_TABLE_PREFIX": prefix, "LIFECYCLE_QUEUE_PREFIX": prefix}


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return lifecycle_cli({**os.environ, **env}, *args)


async def _services(env: dict[str, str], roles: frozenset[str] = GRANTED):
    credential = TenantSimCredential(env["TENANTSIM_URL"], roles=roles)
    return await bootstrap(load_settings(env), credential=credential)


async def _dead_letter_one(env: dict[str, str], ticket_id: str) -> None:
    """Without User.Invite.All the invitation is refused (403): an operator problem, so it is dead-lettered."""
    services = await _services(env, GRANTED - {"User.Invite.All"})
    try:
        await submit_documents(services, "onboarding", [_ticket(ticket_id)])
        report = await drain(services, "onboarding", handle_ticket)
        assert [o.code for o in report.outcomes] == ["authorization_requestdenied"]
    finally:
        await services.close()


async def test_failed_show_replay_and_purge_through_the_command_line(env):
    """An operator finds the failure, reads why, previews and performs a replay, then purges the rest."""
    await _dead_letter_one(env, "OPS1")
    await _dead_letter_one(env, "OPS2")

    failed = _cli(env, "failed", "--json")
    assert failed.returncode == 2
    assert {row["key"] for row in json.loads(failed.stdout)} == {"ticket:OPS1", "ticket:OPS2"}
    assert {row["error"] for row in json.loads(failed.stdout)} == {"Authorization_RequestDenied"}
    assert all(row["requestId"] for row in json.loads(failed.stdout))

    story = json.loads(_cli(env, "show", "ticket:OPS1", "--json").stdout)
    assert story["status"] == "dead-lettered" and story["lastError"]["code"] == "Authorization_RequestDenied"

    preview = json.loads(_cli(env, "replay", "--key", "ticket:OPS1", "--dry-run", "--json").stdout)
    assert [p["key"] for p in preview] == ["ticket:OPS1"]
    replayed = json.loads(_cli(env, "replay", "--key", "ticket:OPS1", "--json").stdout)
    assert [r["action"] for r in replayed] == ["replayed"]

    refused = _cli(env, "purge", "--all", "--yes-i-am-sure", "wrong-queue")
    assert refused.returncode == 1
    assert _cli(env, "purge", "--all", "--yes-i-am-sure", "onboarding").returncode == 0
    status = json.loads(_cli(env, "status", "--json").stdout)
    assert status["queues"]["onboarding"]["deadLetters"] == 0
    assert status["queues"]["onboarding"]["active"] == 1  # the replayed copy, waiting for the worker
    after = _cli(env, "failed", "--json")  # the purged item is purged, no longer a failure
    assert after.returncode == 0 and json.loads(after.stdout) == []
    assert json.loads(_cli(env, "show", "ticket:OPS2", "--json").stdout)["status"] == "purged"
    nothing = _cli(env, "replay", "--key", "ticket:OPS2")
    assert nothing.returncode == 3 and "nothing matched" in nothing.stderr


async def test_a_replay_that_crashed_between_send_and_removal_never_runs_the_work_twice(env):
    """On real Storage queues: after the permission is granted, a replay that died between its send and the
    removal of the dead letter is run again; the ticket is processed once and one guest exists."""
    await _dead_letter_one(env, "OPS3")
    services = await _services(env)
    try:
        real = services.transport.complete_dead_letter
        calls = {"n": 0}

        async def crash_first(queue, message):
            calls["n"] += 1
            if calls["n"] == 1:
                raise RuntimeError("the operator's session died")
            await real(queue, message)

        services.transport.complete_dead_letter = crash_first
        selector = Selector(keys=("ticket:OPS3",))
        with pytest.raises(RuntimeError):
            await operations.replay(services, "onboarding", selector, dry_run=False, operator="t", lock_seconds=1)
        await asyncio.sleep(1.5)  # the dead letter's lock lapses
        [again] = await operations.replay(services, "onboarding", selector, dry_run=False, operator="t")
        assert again["messageId"].endswith("|replay|1")  # the same id as the first, crashed, send
        report = await drain(services, "onboarding", handle_ticket, wait_for_delayed_seconds=30)
        assert sorted(o.verdict.value for o in report.outcomes if o.code != "in-progress") == ["done", "duplicate"]
        assert await services.transport.peek_dead_letters(services.settings.queue_name("onboarding")) == []
        assert (await services.directory.find_user_by_mail("ops3@fabrikam.com")) is not None
    finally:
        await services.close()


async def test_the_hold_release_timer_fired_twice_releases_each_hold_once(env):
    """Two instances of the timer (or a missed schedule caught up) send one copy of a due hold."""
    services = await _services(env)
    try:
        not_before = (datetime.now(UTC) + timedelta(seconds=2)).isoformat()
        await submit_documents(services, "onboarding", [_ticket("OPS4", notBefore=not_before)])
        report = await drain(services, "onboarding", handle_ticket)
        assert [o.verdict.value for o in report.outcomes] == ["held"]
        await asyncio.sleep(max(0.0, (datetime.fromisoformat(not_before) - datetime.now(UTC)).total_seconds()))
        first, second = await release_due(services), await release_due(services)
        assert (first, second) == (["ticket:OPS4"], [])
        queue = services.settings.queue_name("onboarding")
        assert [m.key for m in await services.transport.receive(queue)] == ["ticket:OPS4"]
    finally:
        await services.close()
