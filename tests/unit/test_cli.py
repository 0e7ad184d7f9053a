"""The operator's command line through its entry point (typer's CliRunner), on in-memory services: exit codes,
one-line errors with a hint, queue names, purge and replay semantics, the posture report."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

import app.cli.config
import app.cli.jobs
import app.cli.ops
from adapters.memory import MemorySweepRuns
from app.cli.common import ExitCode
from app.cli.main import app
from lifecycle.errors import PermissionDeniedError
from lifecycle.ledger.settle import process
from lifecycle.models import AuditEntry, OutboundMessage, WorkStatus
from lifecycle.onboarding.handler import handle_ticket
from lifecycle.services import Services
from tests.builders import NOW, memory_services, onboard_ticket
from tests.fakes import FakeDirectory

DENIED = PermissionDeniedError("Insufficient privileges", status=403, code="Authorization_RequestDenied")


@pytest.fixture(name="services")
def _services(monkeypatch: pytest.MonkeyPatch) -> Services:
    """The CLI's bootstrap hands out these in-memory services instead of building the real clients."""
    directory = FakeDirectory()
    directory.add_member("megan.bowen@contoso.com")
    services = memory_services(directory, sweep_runs=MemorySweepRuns())

    async def bootstrap(*_: Any, **__: Any) -> Services:
        return services

    monkeypatch.setattr("app.bootstrap.bootstrap", bootstrap)
    return services


def cli(*args: str) -> Result:
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "240"})


def run(step: Callable[[], Any]) -> Any:
    return asyncio.run(step())


async def _dead_letter(services: Services, ticket_id: str = "RITM0010001") -> None:
    """A 403 on the invitation is an operator problem: the ticket's message is dead-lettered."""
    services.directory.fail_next.append(DENIED)  # type: ignore[attr-defined]
    key = f"ticket:{ticket_id}"
    body = json.dumps(onboard_ticket(ticketId=ticket_id, email=f"{ticket_id.lower()}@fabrikam.com")).encode()
    await services.transport.send("onboarding", [OutboundMessage(body, f"{key}|m", key, "ticket")])
    while batch := await services.transport.receive("onboarding"):
        for message in batch:
            await process("onboarding", message, handle_ticket, services)


# --- exit codes and one-line errors ---------------------------------------------------------------------


def test_usage_errors_have_their_own_exit_code_not_the_needs_attention_one(services: Services):
    """An unknown command, a missing selector and a bad option value exit 64; 2 stays "needs attention"."""
    for args in (["frobnicate"], ["replay"], ["failed", "--since", "yesterday"], ["run", "nightly"]):
        result = cli(*args)
        assert result.exit_code == ExitCode.USAGE == 64, (args, result.output)
        assert "Traceback" not in result.output and "hint:" in result.stderr
    run(lambda: _dead_letter(services))
    assert cli("failed").exit_code == ExitCode.ATTENTION == 2


def test_a_bad_since_is_one_line_naming_the_accepted_forms(services: Services):
    """--since yesterday used to end in a ValueError traceback; now one line says what --since takes."""
    result = cli("failed", "--since", "yesterday")
    [line] = result.stderr.strip().splitlines()
    assert "--since" in line and "24h" in line and "ISO" in line and "hint:" in line


def test_malformed_json_is_one_line_with_the_place_and_a_distinct_exit_code(services: Services, tmp_path: Path):
    """A ticket file that is not JSON names the file, line and column, exits 65, and sends nothing."""
    bad = tmp_path / "tickets.json"
    bad.write_text('{"schemaVersion": 1,\n "kind": }\n')
    result = cli("submit", "onboarding", str(bad))
    assert result.exit_code == ExitCode.BAD_INPUT == 65
    [line] = result.stderr.strip().splitlines()
    assert "tickets.json" in line and "line 2" in line and "hint:" in line
    assert run(lambda: services.transport.depth("onboarding")) == (0, 0)


def test_storage_unreachable_is_one_line_with_a_hint_and_its_own_exit_code(services: Services):
    """A connection refused by storage, wherever it surfaces, is exit 69 and one line naming what was
    unreachable; --debug shows the traceback instead."""

    async def refused(*_: Any, **__: Any):
        raise ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 10002)")
        yield  # pragma: no cover

    services.work_items.query = refused  # type: ignore[method-assign]
    result = cli("status")
    assert result.exit_code == ExitCode.UNREACHABLE == 69
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: cannot reach") and "hint:" in line
    debug = cli("status", "--debug")
    assert isinstance(debug.exception, ConnectionRefusedError)


def test_an_unexpected_error_is_one_line_pointing_at_debug(services: Services):
    """Anything else ends in one line with the error's type and the hint to run with --debug, exit 1."""

    async def broken(*_: Any, **__: Any):
        raise KeyError("partitionKey")
        yield  # pragma: no cover

    services.work_items.query = broken  # type: ignore[method-assign]
    result = cli("failed")
    assert result.exit_code == ExitCode.FAILED == 1
    [line] = result.stderr.strip().splitlines()
    assert "KeyError" in line and "--debug" in line


# --- queues -----------------------------------------------------------------------------------------------


def test_submit_to_a_misspelt_queue_is_refused_with_the_known_queues_and_a_guess(services: Services, tmp_path: Path):
    """`submit onbaording FILE` used to answer "sent 1 message(s)" to a queue nothing reads."""
    ticket = tmp_path / "t.json"
    ticket.write_text(json.dumps(onboard_ticket()))
    result = cli("submit", "onbaording", str(ticket))
    assert result.exit_code == ExitCode.USAGE
    assert "did you mean onboarding?" in result.stderr
    assert "onboarding, guest-actions" in result.stderr
    assert run(lambda: services.transport.depth("onbaording")) == (0, 0)
    assert "sent" not in result.stdout


def test_submit_to_a_product_queue_that_reads_no_tickets_is_refused(services: Services, tmp_path: Path):
    """guest-actions is the sweep's work queue: a ticket there would fail, so submit names onboarding."""
    ticket = tmp_path / "t.json"
    ticket.write_text(json.dumps(onboard_ticket()))
    result = cli("submit", "guest-actions", str(ticket))
    assert result.exit_code == ExitCode.USAGE and "use onboarding" in result.stderr
    assert cli("submit", "onboarding", str(ticket)).exit_code == ExitCode.OK
    assert run(lambda: services.transport.depth("onboarding")) == (1, 0)


def test_replay_and_purge_refuse_an_unknown_queue(services: Services):
    for args in (["replay"], ["purge", "--yes-i-am-sure", "guest-action"]):
        result = cli(*args, "--queue", "guest-action", "--all")
        assert result.exit_code == ExitCode.USAGE and "did you mean guest-actions?" in result.stderr


# --- purge and replay -----------------------------------------------------------------------------------


def test_after_purge_the_item_is_purged_and_failed_no_longer_needs_attention(services: Services):
    """The purged item used to stay dead-lettered, so `failed` and `status` kept exiting 2 for ever."""
    run(lambda: _dead_letter(services))
    assert cli("failed").exit_code == ExitCode.ATTENTION
    assert cli("purge", "--key", "ticket:RITM0010001", "--yes-i-am-sure", "onboarding").exit_code == ExitCode.OK
    item = run(lambda: services.work_items.get("ticket:RITM0010001"))
    assert item.status is WorkStatus.PURGED
    assert cli("failed", "--json").exit_code == ExitCode.OK
    assert json.loads(cli("failed", "--json").stdout) == []
    assert cli("status").exit_code == ExitCode.OK
    assert json.loads(cli("show", "ticket:RITM0010001", "--json").stdout)["status"] == "purged"


def test_replay_or_purge_of_a_key_that_matches_nothing_says_so_and_exits_3(services: Services):
    """A typo in --key used to report "0 dead letter(s) handled" and exit 0."""
    run(lambda: _dead_letter(services))
    replayed = cli("replay", "--key", "ticket:RITM0010002")
    assert replayed.exit_code == ExitCode.NOTHING_MATCHED == 3
    assert "nothing matched" in replayed.stderr
    preview = cli("replay", "--key", "ticket:RITM0010002", "--dry-run")
    assert preview.exit_code == ExitCode.NOTHING_MATCHED
    purged = cli("purge", "--key", "ticket:RITM0010002", "--yes-i-am-sure", "onboarding")
    assert purged.exit_code == ExitCode.NOTHING_MATCHED and "nothing purged" in purged.stderr
    assert cli("replay", "--key", "ticket:RITM0010001").exit_code == ExitCode.OK


def test_show_of_an_unknown_key_exits_3_like_every_nothing_matched(services: Services):
    result = cli("show", "ticket:NOPE")
    assert result.exit_code == ExitCode.NOTHING_MATCHED and "no work item ticket:NOPE" in result.stdout


# --- the posture report ---------------------------------------------------------------------------------


def _snapshot(services: Services, at_minutes: int, active: int) -> None:
    at = NOW + timedelta(minutes=at_minutes)
    entry = AuditEntry(at, "posture.snapshot", "tenant", "daily guest posture", details={"active": active})
    run(lambda: services.audit.record(entry))


def test_report_with_two_differing_snapshots_on_one_day_keeps_the_latest(services: Services, tmp_path: Path):
    """Two snapshots of one day that differ used to fail every report with "'<' not supported between
    instances of 'dict' and 'dict'" for as long as the day stayed in the window."""
    services.clock.advance(timedelta(days=1))  # type: ignore[attr-defined]
    _snapshot(services, 0, active=3)
    _snapshot(services, 60, active=5)
    _snapshot(services, -30, active=4)
    result = cli("report", "--out", str(tmp_path))
    assert result.exit_code == ExitCode.OK, result.output
    markdown = (tmp_path / "guest-posture.md").read_text()
    assert f"| {NOW.date().isoformat()} | 0 | 5 | 0 |" in markdown  # the day's latest snapshot
    assert not list(tmp_path.glob(".*.tmp"))


def test_a_failed_report_leaves_no_old_report_looking_current(services: Services, tmp_path: Path):
    """The previous report moves to guest-posture.last-good.*; guest-posture.* say this one failed and why;
    the command says so and exits with the error's code."""
    assert cli("report", "--out", str(tmp_path)).exit_code == ExitCode.OK
    previous = (tmp_path / "guest-posture.html").read_text()

    async def unreachable(*_: Any, **__: Any):
        raise ConnectionRefusedError(111, "Connect call failed")
        yield  # pragma: no cover

    services.audit.entries = unreachable  # type: ignore[method-assign]
    result = cli("report", "--out", str(tmp_path))
    assert result.exit_code == ExitCode.UNREACHABLE
    assert "no report written" in result.stderr and "last-good" in result.stderr
    assert (tmp_path / "guest-posture.last-good.html").read_text() == previous
    for name in ("guest-posture.html", "guest-posture.md"):
        text = (tmp_path / name).read_text()
        assert "report failed" in text and "cannot reach" in text and "Upcoming expiries" not in text
    again = cli("report", "--out", str(tmp_path))  # a second failure keeps the last good report
    assert again.exit_code == ExitCode.UNREACHABLE
    assert (tmp_path / "guest-posture.last-good.html").read_text() == previous


def test_sweep_show_of_an_unknown_run_exits_3(services: Services):
    result = cli("sweep", "show", "sweep-2000-01-01")
    assert result.exit_code == ExitCode.NOTHING_MATCHED and "no sweep run sweep-2000-01-01" in result.stderr


# --- end dates are shown as the inclusive last day the ticket gave -------------------------------------


def _submit_file(tmp_path: Path, *tickets: dict[str, Any]) -> Path:
    path = tmp_path / "tickets.jsonl"
    path.write_text("\n".join(json.dumps(t) for t in tickets) + "\n")
    return path


def test_every_display_of_an_end_date_shows_the_last_day_the_ticket_gave(services: Services, tmp_path: Path):
    """The ticket's endDate is inclusive and stored as the instant access ends (the next midnight); run,
    show (its head and its audit history) and the report used to print that next day."""
    tickets = _submit_file(tmp_path, onboard_ticket(ticketId="END1", email="end1@fabrikam.com", endDate="2026-12-10"))
    assert cli("submit", "onboarding", str(tickets)).exit_code == ExitCode.OK
    ran = cli("run", "onboarding")
    assert ran.exit_code == ExitCode.OK, ran.output
    assert "last day 2026-12-10" in ran.stdout and "2026-12-11" not in ran.stdout
    as_json = json.loads(cli("run", "onboarding", "--json").stdout)  # a second run: nothing left to do
    assert as_json["outcomes"] == []

    shown = cli("show", "ticket:END1")
    assert "last day: 2026-12-10" in shown.stdout and "until 2026-12-10" in shown.stdout
    assert "2026-12-11" not in shown.stdout
    story = json.loads(cli("show", "ticket:END1", "--json").stdout)
    assert story["lastDay"] == "2026-12-10" and story["result"]["endDate"].startswith("2026-12-11T00:00")

    assert cli("report", "--out", str(tmp_path)).exit_code == ExitCode.OK
    markdown = (tmp_path / "guest-posture.md").read_text()
    assert "- 2026-12-10 end1@fabrikam.com (fabrikam)" in markdown
    assert "2026-12-11" not in (tmp_path / "guest-posture.html").read_text()


def test_a_refused_end_date_is_quoted_as_given_with_the_latest_day_allowed(services: Services, tmp_path: Path):
    """Fabrikam allows 365 days from now (2026-11-23 09:30): the last day allowed is 2027-11-22, which is
    accepted, and the refusal of 2027-11-23 quotes 2027-11-23 and names 2027-11-22 as the latest."""
    tickets = _submit_file(
        tmp_path,
        onboard_ticket(ticketId="END2", email="end2@fabrikam.com", endDate="2027-11-22"),
        onboard_ticket(ticketId="END3", email="end3@fabrikam.com", endDate="2027-11-23"),
        onboard_ticket(ticketId="END4", email="end4@fabrikam.com", endDate="2026-11-22"),
    )
    assert cli("submit", "onboarding", str(tickets)).exit_code == ExitCode.OK
    cli("run", "onboarding")
    assert json.loads(cli("show", "ticket:END2", "--json").stdout)["status"] == "done"
    refused = cli("show", "ticket:END3").stdout.replace("\n", " ")
    assert "endDate 2027-11-23 is beyond" in refused and "(latest 2027-11-22)" in refused
    past = cli("show", "ticket:END4").stdout.replace("\n", " ")
    assert "endDate 2026-11-22 is over" in past


# --- bulk onboarding from a CSV -------------------------------------------------------------------------

# The Entra admin center's "Bulk invite users" template: a version row, then "Label [propertyName] Required".
ENTRA_TEMPLATE = (
    "version:v1.0\n"
    "Email address to invite [inviteeEmail] Required,Redirection url [inviteRedirectURL] Required,"
    "Send invitation message (true or false) [sendEmail],Customized invitation message [customizedMessageBody]\n"
    "lena@fabrikam.com,https://myapps.microsoft.com,true,Welcome\n"
    "priya@northwindtraders.com,https://myapps.microsoft.com,false,\n"
    "Lena@Fabrikam.com,https://myapps.microsoft.com,true,Welcome again\n"
    "mallory@gmail.com,https://myapps.microsoft.com,false,\n"
)


def _template(tmp_path: Path, text: str = ENTRA_TEMPLATE) -> Path:
    path = tmp_path / "UserInviteTemplate.csv"
    path.write_text(text)
    return path


def test_the_entra_template_without_sponsor_and_end_date_is_refused_up_front_saying_what_to_pass(
    services: Services, tmp_path: Path
):
    """The template has no sponsor or end date column: instead of failing every row, the command says
    which options to pass, exits 64 and sends nothing."""
    result = cli("onboard", "--csv", str(_template(tmp_path)), "--dry-run")
    assert result.exit_code == ExitCode.USAGE
    [line] = result.stderr.strip().splitlines()
    assert "--sponsor UPN" in line and "--days N" in line and "template" in line
    only_days = cli("onboard", "--csv", str(_template(tmp_path)), "--sponsor", "megan.bowen@contoso.com")
    assert only_days.exit_code == ExitCode.USAGE and "--days N" in only_days.stderr
    assert "--sponsor" not in only_days.stderr.split("pass", 1)[1]
    assert run(lambda: services.transport.depth("onboarding")) == (0, 0)


def test_a_dry_run_of_the_entra_template_shows_what_each_row_becomes(services: Services, tmp_path: Path):
    """Each row shows the partner derived from its domain, the sponsor and the last day it would get; a
    domain no partner has says so; the second Lena is a duplicate of row 1."""
    args = ["onboard", "--csv", str(_template(tmp_path)), "--sponsor", "megan.bowen@contoso.com", "--days", "30"]
    result = cli(*args, "--dry-run", "--json")
    assert result.exit_code == ExitCode.ATTENTION, result.output
    rows = {r["row"]: r for r in json.loads(result.stdout)["rows"]}
    assert (rows[1]["partner"], rows[1]["sponsor"], rows[1]["lastDay"]) == (
        "fabrikam",
        "megan.bowen@contoso.com",
        "2026-12-23",
    )
    assert rows[1]["accepted"] and rows[2]["accepted"] and rows[2]["partner"] == "northwind"
    assert rows[3]["code"] == "duplicate-address" and "row 1" in rows[3]["reason"]
    assert rows[4]["code"] == "unknown-partner" and "gmail.com" in rows[4]["reason"]
    assert json.loads(result.stdout)["duplicates"] == [3]
    table = cli(*args, "--dry-run").stdout
    assert "fabrikam" in table and "megan.bowen@contoso.com" in table and "2026-12-23" in table
    assert "1 duplicate address(es) left out: rows 3" in table
    assert run(lambda: services.transport.depth("onboarding")) == (0, 0)


def test_the_same_address_twice_is_invited_once(services: Services, tmp_path: Path):
    """Only the first row of an address is sent; the onboarding run invites one guest for it."""
    args = ["onboard", "--csv", str(_template(tmp_path)), "--sponsor", "megan.bowen@contoso.com", "--days", "30"]
    assert cli(*args).exit_code == ExitCode.ATTENTION
    assert run(lambda: services.transport.depth("onboarding")) == (2, 0)
    cli("run", "onboarding")
    invited = [i.email.lower() for i in services.directory.invitations]  # type: ignore[attr-defined]
    assert invited.count("lena@fabrikam.com") == 1


def test_a_semicolon_separated_csv_is_one_line_with_a_hint(services: Services, tmp_path: Path):
    """Excel in a comma-decimal locale saves with semicolons: one line says so and exits 65."""
    path = tmp_path / "guests.csv"
    path.write_text("email;partner;sponsor;endDate\nlena@fabrikam.com;fabrikam;megan.bowen@contoso.com;2027-01-31\n")
    result = cli("onboard", "--csv", str(path), "--dry-run")
    assert result.exit_code == ExitCode.BAD_INPUT
    [line] = result.stderr.strip().splitlines()
    assert "semicolons" in line and "Comma delimited" in line and "hint:" in line


def test_a_csv_with_an_unknown_column_is_bad_input_naming_it(services: Services, tmp_path: Path):
    path = tmp_path / "guests.csv"
    path.write_text("emial,partner\nx@fabrikam.com,fabrikam\n")
    result = cli("onboard", "--csv", str(path), "--dry-run")
    assert result.exit_code == ExitCode.BAD_INPUT and "emial" in result.stderr


def test_python_m_lifecycle_with_storage_down_prints_one_line_not_a_traceback(tmp_path: Path):
    """The real entry point in a process of its own, storage refusing connections (nothing listens on
    port 1): one line naming Table storage with a hint, exit 69; --debug shows the traceback."""
    import os
    import subprocess

    from tests.builders import LOCAL_ENV, lifecycle_cli

    dead = (
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey="
        "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;"
        "TableEndpoint=http://127.0.0.1:1/devstoreaccount1;QueueEndpoint=http://127.0.0.1:1/devstoreaccount1"
    )
    env = {
        **os.environ,
        **LOCAL_ENV,
        "LIFECYCLE_TABLES_CONNECTION_STRING": dead,
        "LIFECYCLE_QUEUES_CONNECTION_STRING": dead,
        "TENANTSIM_URL": "http://127.0.0.1:1",
    }

    def lifecycle(*args: str) -> subprocess.CompletedProcess[str]:
        return lifecycle_cli(env, *args)

    failed = lifecycle("failed")
    assert failed.returncode == ExitCode.UNREACHABLE, failed.stderr
    [line] = failed.stderr.strip().splitlines()
    assert line.startswith("error: cannot reach Table storage") and "hint:" in line
    assert "Traceback" not in failed.stdout
    debug = lifecycle("failed", "--debug")
    assert debug.returncode != 0 and "ServiceRequestError" in debug.stderr


def test_status_names_a_braked_run_with_its_approve_command_and_exits_2(services: Services):
    """On-call reads `status` first: a run the brake holds is a line with the command to run, and exit 2."""
    from lifecycle.plans import Mode
    from lifecycle.runs.model import DailyRun, RunStatus
    from lifecycle.sweep.ports import SweepPorts

    ports = services.jobs.find(SweepPorts)
    assert ports is not None
    run(lambda: ports.runs.create(DailyRun("sweep-2026-12-01", Mode.ENFORCE, RunStatus.BRAKED, NOW, reason="brake")))
    result = cli("status")
    assert result.exit_code == ExitCode.ATTENTION
    assert "needs attention braked sweep-2026-12-01" in result.stdout
    assert "python -m lifecycle approve sweep-2026-12-01" in result.stdout
    [flag] = json.loads(cli("status", "--json").stdout)["attention"]
    assert flag["runId"] == "sweep-2026-12-01"
