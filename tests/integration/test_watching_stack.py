"""What an operator's terminal shows, the CLI run as a process on the local stack: no info log lines (they are
in the log file), -v brings them back, --json stays pure JSON, Ctrl-C during a bulk CSV ends in the
done / left / resume message with exit code 130 and no traceback, and a terminal gets the progress bar."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.storage.queue import QueueServiceClient

from config.settings import ROOT
from tenantsim.client import TenantSimAdmin
from tests.builders import lifecycle_cli, onboard_ticket

pytestmark = pytest.mark.stack


def _env(local_stack, log_file: Path) -> dict[str, str]:
    prefix = "watch" + uuid.uuid4().hex[:8]
    return {
        **os.environ,
        **local_stack.env,
        "LIFECYCLE_TABLE_PREFIX": prefix,
        "LIFECYCLE_QUEUE_PREFIX": prefix,
        "LIFECYCLE_LOG_FILE": str(log_file),
        "COLUMNS": "200",
    }


def _log_events(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _submit_two(env: dict[str, str], tmp_path: Path) -> None:
    tickets = tmp_path / "tickets.json"
    tickets.write_text(
        json.dumps(
            [
                onboard_ticket(ticketId="RITM0099001", email="lena.watch@fabrikam.com"),
                onboard_ticket(ticketId="RITM0099002", email="bad address"),
            ]
        )
    )
    sent = lifecycle_cli(env, "submit", "onboarding", str(tickets))
    assert sent.returncode == 0, sent.stderr


def test_the_terminal_shows_no_info_logs_and_the_log_file_has_every_one(local_stack, tmp_path: Path):
    """`run onboarding` settles two tickets: the info events are in the log file as JSON lines, none is on the
    terminal; stdout with --json is one JSON document; -v brings the info lines to stderr."""
    log_file = tmp_path / "logs" / "lifecycle.log"
    env = _env(local_stack, log_file)
    _submit_two(env, tmp_path)

    quiet = lifecycle_cli(env, "run", "onboarding", "--json")
    assert quiet.returncode in (0, 2), quiet.stderr
    summary = json.loads(quiet.stdout)  # nothing but the JSON document on stdout
    assert summary["processed"] == 2
    assert "message.settled" not in quiet.stderr and '"level": "info"' not in quiet.stderr
    assert "[info" not in quiet.stderr
    settled = [e for e in _log_events(log_file) if e["event"] == "message.settled"]
    assert {e["key"] for e in settled} == {"ticket:RITM0099001", "ticket:RITM0099002"}
    assert all(e["level"] == "info" for e in settled)
    assert str(log_file) in quiet.stderr  # the closing line says where the log is

    _submit_two(env, tmp_path)  # the same tickets again: duplicates, settled (and logged) again
    verbose = lifecycle_cli(env, "run", "onboarding", "--json", "-v")
    assert verbose.returncode in (0, 2), verbose.stderr
    json.loads(verbose.stdout)
    assert "message.settled" in verbose.stderr and "info" in verbose.stderr
    assert not any(line.lstrip().startswith("{") for line in verbose.stderr.splitlines())  # human, not JSON


def test_help_says_where_the_logs_go_and_how_to_see_them():
    """--help names the log file, the setting that moves it, and -v."""
    shown = lifecycle_cli({**os.environ, "COLUMNS": "200"}, "--help")
    assert shown.returncode == 0
    text = " ".join(shown.stdout.split())
    assert ".lifecycle/logs/lifecycle-YYYYMMDD.log" in text and "LIFECYCLE_LOG_FILE" in text and "-v/--verbose" in text


def _messages_sent(env: dict[str, str]) -> int:
    """Messages on the run's onboarding queue: the queue the onboarding trigger binds to under the prefix."""
    service = QueueServiceClient.from_connection_string(env["LIFECYCLE_QUEUES_CONNECTION_STRING"])
    try:
        queue = service.get_queue_client(f"{env['LIFECYCLE_QUEUE_PREFIX']}onboarding")
        try:
            return queue.get_queue_properties().approximate_message_count or 0
        except ResourceNotFoundError:  # created with the first send
            return 0
    finally:
        service.close()


def test_ctrl_c_during_a_bulk_csv_says_what_is_done_what_is_left_and_how_to_resume(local_stack, tmp_path: Path):
    """SIGINT while a 2000-row CSV is being sent: exit 130, no traceback, the rows sent and left, the exact
    command that resumes (which then completes), and why resuming is safe."""
    rows = ["ticketId,email,displayName,partner,sponsor,endDate"]
    rows += [
        f"W-{n:05d},guest{n}@fabrikam.com,Guest {n},fabrikam,megan.bowen@contoso.com,2027-01-31" for n in range(2000)
    ]
    csv_file = tmp_path / "many.csv"
    csv_file.write_text("\n".join(rows) + "\n")
    env = _env(local_stack, tmp_path / "lifecycle.log")

    # stdout to a file: the table of 2000 rows would fill a pipe nobody reads until the end.
    with (tmp_path / "stdout.txt").open("w+") as stdout:
        running = subprocess.Popen(
            [sys.executable, "-m", "lifecycle", "onboard", "--csv", str(csv_file)],
            cwd=ROOT,
            env=env,
            stdout=stdout,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 60
        while _messages_sent(env) < 100 and running.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert running.poll() is None, "the CSV was sent before it could be interrupted"
        running.send_signal(signal.SIGINT)
        _, err = running.communicate(timeout=60)
        stdout.seek(0)
        out = stdout.read()

    assert running.returncode == 130, err
    assert "Traceback" not in err + out
    assert "interrupted after" in err
    stopped = next((line for line in err.splitlines() if line.startswith("stopped in sending tickets")), err)
    assert stopped.startswith("stopped in"), err  # interrupted while sending, not after
    done, left = (int(part.split()[0]) for part in stopped.split(": ", 1)[1].split(", "))
    assert done + left == 2000 and left > 0
    resume = next(line for line in err.splitlines() if line.startswith("resume with: "))
    command = shlex.split(resume.removeprefix("resume with: "))
    assert command == ["python", "-m", "lifecycle", "onboard", "--csv", str(csv_file)]
    assert "resuming is safe:" in err and "idempotency key" in err

    # The resume, with stderr treated as a terminal (rich honours TTY_COMPATIBLE): the bar is drawn to the end.
    resumed = subprocess.run(
        [sys.executable, *command[1:]],
        cwd=ROOT,
        env={**env, "TTY_COMPATIBLE": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    drawn = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", resumed.stderr)  # without colours and cursor moves
    assert re.search(r"sending tickets to onboarding \(tickets\).*2000/2000 eta \d+:\d\d:\d\d", drawn), drawn
    assert "done in" in resumed.stderr and "2000 ticket(s)" in resumed.stderr


def test_ctrl_c_while_a_sweep_plans_names_the_run_to_resume_and_the_resume_finishes_it(local_stack, tmp_path: Path):
    """The guest listing answers slowly; SIGINT while the sweep waits for it: exit 130, the run is marked
    interrupted at once (status names it), and the printed resume command, which carries --run-id, plans it."""
    env = _env(local_stack, tmp_path / "lifecycle.log")
    faults = f"{local_stack.tenantsim_url}/_tenantsim/faults"
    with TenantSimAdmin(local_stack.tenantsim_url) as admin:
        admin.set_faults(latencyMs=15000, pathPattern=r"/v1\.0/users$")  # the guest listing only
        try:
            running = subprocess.Popen(
                [sys.executable, "-m", "lifecycle", "run", "guest-sweep", "--mode", "plan"],
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            deadline = time.monotonic() + 60
            while not httpx.get(faults, timeout=5).json()["slowed"] and time.monotonic() < deadline:
                assert running.poll() is None, running.communicate()
                time.sleep(0.1)
            running.send_signal(signal.SIGINT)
            out, err = running.communicate(timeout=60)
        finally:
            admin.clear_faults()

    assert running.returncode == 130, err
    assert "Traceback" not in out + err and "stopped in planning sweep-" in err, err
    resume = next(line for line in err.splitlines() if line.startswith("resume with: "))
    command = shlex.split(resume.removeprefix("resume with: "))
    assert command[:6] == ["python", "-m", "lifecycle", "run", "guest-sweep", "--mode"]
    run_id = command[command.index("--run-id") + 1]
    assert run_id.startswith("sweep-")

    status = lifecycle_cli(env, "status", "--json")
    flagged = [flag for flag in json.loads(status.stdout)["attention"] if flag.get("runId") == run_id]
    assert flagged, status.stdout  # the interrupted run is named by status, not left 'planning'

    resumed = lifecycle_cli(env, *command[3:])
    assert resumed.returncode in (0, 2), resumed.stderr
    assert f"sweep {run_id} (plan): planned" in resumed.stdout
