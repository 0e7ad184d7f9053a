"""Deciding before the tenant changes: approve, purge and replay --all list who and what will change by name,
export the list, and go on only after a typed confirmation (or --yes); show and replay take a ticket id, an
email or an object id."""

from __future__ import annotations

import asyncio
import csv
import json
import re
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from adapters.memory import MemorySweepRuns
from app.cli import decide
from app.cli.common import ExitCode
from app.cli.main import app
from lifecycle.errors import PermissionDeniedError
from lifecycle.ledger.settle import process
from lifecycle.models import DirectoryUser, GuestRecord, GuestState, OutboundMessage, SignInActivity, WorkStatus
from lifecycle.onboarding.handler import handle_ticket
from lifecycle.services import Services
from lifecycle.sweep import entry as sweep
from tests.builders import NOW, memory_services, onboard_ticket
from tests.builders.reset import redeemed, resets_sent, services_with
from tests.fakes import FakeDirectory, FakeGovernanceGraph, FakeLookup

DENIED = PermissionDeniedError("Insufficient privileges", status=403, code="Authorization_RequestDenied")
RUN = "sweep-2026-11-23"
DENIED = PermissionDeniedError("Insufficient privileges", status=403, code="Authorization_RequestDenied")


@pytest.fixture(name="services")
def _services(monkeypatch: pytest.MonkeyPatch) -> Services:
    directory = FakeDirectory()
    directory.add_member("megan.bowen@contoso.com")

    services = memory_services(
        directory, sweep_runs=MemorySweepRuns(page_size=2), governance_graph=FakeGovernanceGraph()
    )

    async def bootstrap(*_: Any, **__: Any) -> Services:
        return services

    monkeypatch.setattr("app.bootstrap.bootstrap", bootstrap)
    return services


@pytest.fixture(name="terminal")
def _terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """A person at a terminal: the prompt is answered from the runner's input."""
    monkeypatch.setattr(decide, "interactive", lambda: True)


def cli(*args: str, answer: str | None = None) -> Result:
    return CliRunner().invoke(app, list(args), input=answer, env={"COLUMNS": "300"})


def run(step: Any) -> Any:
    return asyncio.run(step())


def _inactive_guest(services: Services, name: str, email: str, partner: str = "fabrikam") -> DirectoryUser:
    directory: FakeDirectory = services.directory  # type: ignore[assignment]
    user = directory.add_guest(email)
    activity = SignInActivity(last_successful_sign_in=NOW - timedelta(days=120))
    user = directory.put(
        replace(
            user,
            display_name=name,
            sign_in_activity=activity,
            external_user_state_changed=NOW - timedelta(days=500),
            created=NOW - timedelta(days=501),
        )
    )
    record = GuestRecord(
        user.id, email, partner, GuestState.ACTIVE, sponsor="megan.bowen@contoso.com", ticket_id=f"T-{name[:3]}"
    )
    run(lambda: services.guests.save(record))
    return user


def _braked_sweep(services: Services) -> list[DirectoryUser]:
    guests = [
        _inactive_guest(services, "Lena Fischer", "lena@fabrikam.com"),
        _inactive_guest(services, "Priya Natarajan", "priya@fabrikam.com"),
        _inactive_guest(services, "Omar Haddad", "omar@fabrikam.com"),
    ]
    summary = run(lambda: sweep.run_sweep(services, "enforce"))
    assert summary["status"] == "braked", summary
    return guests


def _disabled(services: Services) -> set[str]:
    return {w[1] for w in services.directory.writes if w[0] == "accountEnabled"}  # type: ignore[attr-defined]


# --- approve ------------------------------------------------------------------------------------------------


def test_approve_lists_every_guest_by_name_mail_partner_sponsor_and_rule_before_it_acts(
    services: Services, terminal: None
):
    """The operator sees who will be disabled, by name, before typing the run id; nothing changes before."""
    _braked_sweep(services)
    result = cli("approve", RUN, answer="sweep-2026-11-2\n")
    assert result.exit_code == ExitCode.FAILED and "not confirmed" in result.stderr
    for name, mail in (("Lena Fischer", "lena@fabrikam.com"), ("Omar Haddad", "omar@fabrikam.com")):
        assert name in result.stdout and mail in result.stdout
    assert "fabrikam" in result.stdout and "megan.bowen@contoso.com" in result.stdout
    assert "inactive" in result.stdout and "3 change(s)" in result.stdout
    assert _disabled(services) == set()
    run_row = run(lambda: sweep.sweep_ports(services).runs.get(RUN))
    assert run_row.status.value == "braked"


def test_approve_goes_on_once_the_run_id_is_typed(services: Services, terminal: None):
    guests = _braked_sweep(services)
    result = cli("approve", RUN, "--approver", "oncall@contoso.com", answer=f"{RUN}\n")
    assert result.exit_code == ExitCode.OK, result.output
    assert _disabled(services) == {g.id for g in guests}


def test_approve_without_a_terminal_and_without_yes_is_refused_with_a_hint(services: Services):
    """A script that forgot --yes used to release the brake at once; now it exits 64 and changes nothing."""
    _braked_sweep(services)
    result = cli("approve", RUN)
    assert result.exit_code == ExitCode.USAGE
    assert "--yes" in result.stderr and "hint:" in result.stderr
    assert _disabled(services) == set()
    assert cli("approve", RUN, "--yes").exit_code == ExitCode.OK
    assert len(_disabled(services)) == 3


def test_approve_exports_the_list_as_csv_and_json(services: Services, tmp_path: Path):
    guests = _braked_sweep(services)
    as_csv, as_json = tmp_path / "approve.csv", tmp_path / "approve.json"
    assert cli("approve", RUN, "--export", str(as_csv)).exit_code == ExitCode.USAGE  # no terminal: refused
    rows = list(csv.DictReader(as_csv.open()))
    assert {r["objectId"] for r in rows} == {g.id for g in guests}
    lena = next(r for r in rows if r["mail"] == "lena@fabrikam.com")
    assert (lena["displayName"], lena["partner"], lena["sponsor"], lena["rule"], lena["action"]) == (
        "Lena Fischer",
        "fabrikam",
        "megan.bowen@contoso.com",
        "inactive",
        "disable",
    )
    assert cli("approve", RUN, "--yes", "--export", str(as_json)).exit_code == ExitCode.OK
    assert {r["displayName"] for r in json.loads(as_json.read_text())} == {
        "Lena Fischer",
        "Priya Natarajan",
        "Omar Haddad",
    }


def test_an_export_that_is_neither_csv_nor_json_is_a_usage_error(services: Services):
    _braked_sweep(services)
    result = cli("approve", RUN, "--yes", "--export", "list.xlsx")
    assert result.exit_code == ExitCode.USAGE and ".csv or a .json" in result.stderr
    assert _disabled(services) == set()


def test_names_come_from_bulk_reads_not_one_directory_read_per_guest(
    services: Services, monkeypatch: pytest.MonkeyPatch
):
    _braked_sweep(services)

    async def one_by_one(user_id: str) -> DirectoryUser | None:
        raise AssertionError("a per-guest read while listing the changes")

    monkeypatch.setattr(services.directory, "get_user", one_by_one)
    result = cli("approve", RUN)
    assert "Lena Fischer" in result.stdout and result.exit_code == ExitCode.USAGE


# --- purge and replay --all ---------------------------------------------------------------------------------


async def _dead_letter(services: Services, ticket_id: str, email: str, name: str) -> None:
    """A 403 on the invitation: the ticket's message is dead-lettered before any guest exists."""
    services.directory.fail_next.append(DENIED)  # type: ignore[attr-defined]
    key = f"ticket:{ticket_id}"
    body = json.dumps(onboard_ticket(ticketId=ticket_id, email=email, displayName=name)).encode()
    await services.transport.send("onboarding", [OutboundMessage(body, f"{key}|m", key, "ticket")])
    while batch := await services.transport.receive("onboarding"):
        for message in batch:
            await process("onboarding", message, handle_ticket, services)


def _two_dead_letters(services: Services) -> None:
    run(lambda: _dead_letter(services, "RITM0020001", "lena@fabrikam.com", "Lena Fischer"))
    run(lambda: _dead_letter(services, "RITM0020002", "omar@fabrikam.com", "Omar Haddad"))
    assert run(lambda: services.transport.depth("onboarding")) == (0, 2)


def test_purge_lists_the_guests_it_deletes_and_needs_purge_n_typed(services: Services, terminal: None):
    """Purge used to ask for the queue name without saying what it would delete; now it names each ticket's
    guest, partner, sponsor and last day, and takes "purge N"."""
    _two_dead_letters(services)
    refused = cli("purge", "--all", answer="onboarding\n")
    assert refused.exit_code == ExitCode.FAILED and "not confirmed" in refused.stderr
    for text in ("Lena Fischer", "omar@fabrikam.com", "fabrikam", "megan.bowen@contoso.com", "2027-03-31"):
        assert text in refused.stdout
    assert run(lambda: services.transport.depth("onboarding")) == (0, 2)
    purged = cli("purge", "--all", answer="purge 2\n")
    assert purged.exit_code == ExitCode.OK, purged.output
    assert run(lambda: services.transport.depth("onboarding")) == (0, 0)


def test_purge_without_a_terminal_needs_yes(services: Services, tmp_path: Path):
    _two_dead_letters(services)
    listed = tmp_path / "purge.json"
    refused = cli("purge", "--all", "--export", str(listed))
    assert refused.exit_code == ExitCode.USAGE and "--yes" in refused.stderr
    assert run(lambda: services.transport.depth("onboarding")) == (0, 2)
    assert {r["mail"] for r in json.loads(listed.read_text())} == {"lena@fabrikam.com", "omar@fabrikam.com"}
    assert cli("purge", "--all", "--yes").exit_code == ExitCode.OK
    assert run(lambda: services.transport.depth("onboarding")) == (0, 0)


def test_replay_all_lists_and_needs_replay_n_typed_or_yes(services: Services, terminal: None):
    _two_dead_letters(services)
    refused = cli("replay", "--all", answer="yes\n")
    assert refused.exit_code == ExitCode.FAILED and "Lena Fischer" in refused.stdout
    assert run(lambda: services.transport.depth("onboarding")) == (0, 2)
    assert cli("replay", "--all", answer="replay 2\n").exit_code == ExitCode.OK
    assert run(lambda: services.transport.depth("onboarding")) == (2, 0)


def test_replay_all_without_a_terminal_needs_yes_and_a_dry_run_does_not(services: Services):
    _two_dead_letters(services)
    assert cli("replay", "--all").exit_code == ExitCode.USAGE
    assert cli("replay", "--all", "--dry-run").exit_code == ExitCode.OK
    assert run(lambda: services.transport.depth("onboarding")) == (0, 2)
    assert cli("replay", "--all", "--yes").exit_code == ExitCode.OK
    assert run(lambda: services.transport.depth("onboarding")) == (2, 0)


# --- show and replay by ticket id, email or object id ---------------------------------------------------------


def test_replay_takes_the_email_of_a_ticket_that_failed_before_it_made_a_guest(services: Services):
    _two_dead_letters(services)
    result = cli("replay", "--key", "Lena@Fabrikam.com")
    assert result.exit_code == ExitCode.OK, result.output
    assert "ticket:RITM0020001: replayed" in result.stdout and "RITM0020002" not in result.stdout
    assert run(lambda: services.transport.depth("onboarding")) == (1, 1)
    assert cli("replay", "--key", "RITM0020002").exit_code == ExitCode.OK
    assert run(lambda: services.transport.depth("onboarding")) == (2, 0)


def test_show_takes_a_ticket_id_an_email_or_an_object_id(services: Services, tmp_path: Path):
    """The on-call engineer is handed an address or a guest's object id, not the ledger's key."""
    ticket = tmp_path / "t.json"
    ticket.write_text(json.dumps(onboard_ticket(ticketId="RITM0030001", email="ana.lopez@fabrikam.com")))
    assert cli("submit", "onboarding", str(ticket)).exit_code == ExitCode.OK
    assert cli("run", "onboarding").exit_code == ExitCode.OK
    item = run(lambda: services.work_items.get("ticket:RITM0030001"))
    assert item.status is WorkStatus.DONE
    object_id = item.result["objectId"]
    for wanted in ("ticket:RITM0030001", "RITM0030001", "Ana.Lopez@fabrikam.com", object_id):
        story = json.loads(cli("show", wanted, "--json").stdout)
        assert story["key"] == "ticket:RITM0030001", wanted
    assert "ticket:RITM0030001" in cli("show", object_id).stdout
    missing = cli("show", "nobody@fabrikam.com")
    assert missing.exit_code == ExitCode.NOTHING_MATCHED and "an email" in missing.stdout


def test_show_of_an_email_that_failed_before_it_made_a_guest_finds_its_ticket(services: Services):
    _two_dead_letters(services)
    story = json.loads(cli("show", "omar@fabrikam.com", "--json").stdout)
    assert story["key"] == "ticket:RITM0020002" and story["status"] == "dead-lettered"


# --- apply governance ---------------------------------------------------------------------------------------


def test_apply_governance_lists_each_write_by_partner_name_and_needs_apply_n(
    services: Services, terminal: None, tmp_path: Path
):
    """Apply used to write at once; now the operator sees each object by partner name and tenant id first."""
    from lifecycle.governance.entry import governance_ports

    graph = governance_ports(services).graph
    listed = tmp_path / "governance.csv"
    refused = cli("apply", "governance", "--export", str(listed), answer="yes\n")
    assert refused.exit_code == ExitCode.FAILED and "not confirmed" in refused.stderr
    assert graph.writes == []
    rows = list(csv.DictReader(listed.open()))
    fabrikam = next(r for r in rows if r["key"] == "organization/fabrikam")
    assert (fabrikam["partner"], fabrikam["partnerName"], fabrikam["tenantId"], fabrikam["change"]) == (
        "fabrikam",
        "Fabrikam, Inc.",
        "9a3d526c-1b7e-4c2f-8d6a-5e0f3b7c9d21",
        "create",
    )
    assert "Fabrikam, Inc." in refused.stdout
    applied = cli("apply", "governance", answer=f"apply {len(rows)}\n")
    assert applied.exit_code == ExitCode.OK, applied.output
    assert graph.writes


def test_apply_governance_without_a_terminal_needs_yes_and_json_stays_json(services: Services):
    from lifecycle.governance.entry import governance_ports

    graph = governance_ports(services).graph
    refused = cli("apply", "governance", "--json")
    assert refused.exit_code == ExitCode.USAGE and "--yes" in refused.stderr
    assert graph.writes == []
    applied = cli("apply", "governance", "--yes", "--json")
    assert applied.exit_code == ExitCode.OK
    assert "write(s) to the tenant" in applied.stderr and "write(s) to the tenant" not in applied.stdout
    # The JSON document starts a line; a log line of the run may come before it, depending on the logging setup.
    start = re.search(r"^\{", applied.stdout, re.MULTILINE)
    assert start, applied.stdout
    document = applied.stdout[start.start() :]
    assert json.loads(document)["mode"] == "enforce" and graph.writes


# --- approve a reset run ------------------------------------------------------------------------------------


def test_approve_of_a_braked_reset_run_lists_each_guest_and_its_provider_change(
    monkeypatch: pytest.MonkeyPatch, terminal: None
):
    """A reset run the brake stopped: each guest to reset, by name and mail, with the provider it moves from."""
    from lifecycle.reset.entry import run_reset_detection

    directory = FakeDirectory()
    guests = [redeemed(directory, f"p{n}@fabrikam.com", "otp") for n in range(3)]
    reset_services = services_with(directory, FakeLookup(), brake_count=2)

    async def bootstrap(*_: Any, **__: Any) -> Services:
        return reset_services

    monkeypatch.setattr("app.bootstrap.bootstrap", bootstrap)
    braked = run(lambda: run_reset_detection(reset_services, "enforce"))
    assert braked["status"] == "braked"
    refused = cli("approve", braked["runId"], answer="no\n")
    assert refused.exit_code == ExitCode.FAILED and resets_sent(directory) == []
    for guest in guests:
        assert guest.mail in refused.stdout and guest.display_name in refused.stdout
    assert "reset-redemption" in refused.stdout and "fabrikam" in refused.stdout
    approved = cli("approve", braked["runId"], answer=f"{braked['runId']}\n")
    assert approved.exit_code == ExitCode.OK, approved.output
    assert sorted(resets_sent(directory)) == sorted(g.id for g in guests)
    # Fanned out, then worked by the command's own local worker: the summary says how the resets went.
    assert "reset: 3" in approved.stdout and "worker: done 3" in approved.stdout
    shown = cli("sweep", "show", braked["runId"], answer="")
    assert shown.exit_code == ExitCode.OK, shown.output
    assert "reset: 3" in shown.stdout and all(g.mail in shown.stdout for g in guests)


# --- halt and resume -------------------------------------------------------------------------------------------


def test_halt_asks_for_the_run_id_then_stops_the_run_and_resume_finishes_it(services: Services, terminal: None):
    """halt names the run and what halting does, goes on only once the run id is typed, and says who halted it
    and how to resume; the queued actions then write nothing; resume works the queue and disables each guest once.
    """
    from lifecycle.sweep.entry import drain_actions

    guests = _braked_sweep(services)
    run(lambda: sweep.approve(services, RUN, "oncall@contoso.com"))  # fanned out, not worked yet
    refused = cli("halt", RUN, "--reason", "wrong rule", answer="sweep\n")
    assert refused.exit_code == ExitCode.FAILED and "not confirmed" in refused.stderr
    assert "under way" in refused.stdout and "its workers write nothing more" in refused.stdout
    result = cli("halt", RUN, "--reason", "wrong rule", answer=f"{RUN}\n")
    assert result.exit_code == ExitCode.OK, result.output
    assert "HALTED by" in result.stdout and f"python -m lifecycle resume {RUN}" in result.stdout
    assert run(lambda: drain_actions(services)) == {"held": 3}
    assert _disabled(services) == set()
    approve = cli("approve", RUN, "--yes")
    assert approve.exit_code == ExitCode.FAILED and f"resume {RUN}" in approve.stderr

    resumed = cli("resume", RUN, "--yes")
    assert resumed.exit_code == ExitCode.OK, resumed.output
    assert sorted(w[1] for w in services.directory.writes if w[0] == "accountEnabled") == sorted(  # type: ignore[attr-defined]
        g.id for g in guests
    )


def test_halt_of_a_run_not_under_way_is_refused_with_the_reason(services: Services):
    _braked_sweep(services)
    result = cli("halt", RUN, "--reason", "wrong rule", "--yes")
    assert result.exit_code == ExitCode.FAILED and "not dispatched" in result.stderr
    assert run(lambda: sweep.sweep_ports(services).runs.get(RUN)).status.value == "braked"
