"""What `make run` does, end to end on the local stack: real Azurite, real tenantsim, the real CLI."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
from rich.console import Console

from config.settings import ROOT
from tenantsim.client import TenantSimAdmin
from tests.builders import lifecycle_cli

pytestmark = pytest.mark.stack
DEMO_ENV = dict(
    item.split("=", 1)
    for line in (ROOT / "Makefile").read_text().splitlines()
    if line.startswith("DEMO_ENV :=")
    for item in line.split(":=", 1)[1].split()
)


def _cli(stack, *args: str, prefix: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **stack.env, "LIFECYCLE_TABLE_PREFIX": prefix, "LIFECYCLE_QUEUE_PREFIX": prefix.lower()}
    env |= DEMO_ENV  # as `make run` sets it
    return lifecycle_cli(env, *args, timeout=300)


@pytest.fixture(scope="module", name="demo")
def _demo(local_stack, tmp_path_factory) -> dict:
    """One demo run on a freshly seeded tenant (the demo changes it: policies, disabled guests, a provider)."""
    out = tmp_path_factory.mktemp("report")
    prefix = "e2e" + uuid.uuid4().hex[:8]
    with TenantSimAdmin(local_stack.tenantsim_url) as admin:
        admin.seed(builtin="fresh", guests=300)
        run = _cli(local_stack, "demo", "--json", "--out", str(out), prefix=prefix)
        assert run.returncode == 0, run.stderr[-3000:]
        users = httpx.get(f"{local_stack.tenantsim_url}/_tenantsim/snapshot", timeout=10).json()["users"]
        again = _cli(local_stack, "demo", "--json", "--out", str(out), prefix=prefix)
        admin.seed(builtin="fresh", guests=300)
    return {
        "first": json.loads(run.stdout),
        "again": json.loads(again.stdout),
        "users": users,
        "out": out,
        "stderr": run.stderr,
    }


def test_the_demo_onboards_the_good_tickets_once_and_rejects_the_rest_with_reasons(demo):
    """The example batch ends with five guests, one duplicate and every bad ticket rejected with its code."""
    summary = demo["first"]["onboarding"]
    assert (summary["done"], summary["duplicates"], summary["failed"], summary["crashed"]) == (5, 1, 0, 0)
    codes = sorted(o["code"] for o in summary["outcomes"] if o["verdict"] == "rejected")
    assert codes == sorted(
        [
            "policy-violations",
            "redirect-not-allowed",
            "end-date-too-far",
            "sponsor-not-found",
            "unsupported-schema-version",
            "invalid-ticket",
            "invalid-ticket",
        ]
    )
    for email in ("lena.fischer@fabrikam.com", "priya.nair@northwindtraders.com", "kofi.mensah@adatum.com"):
        assert len([u for u in demo["users"] if (u.get("mail") or "").lower() == email]) == 1


def test_running_the_demo_again_creates_no_second_guest(demo):
    """A second run over the same tickets (same state tables) only finds duplicates, rejects included."""
    again = demo["again"]["onboarding"]
    assert again["done"] == again["rejected"] == 0 and again["duplicates"] == again["processed"] == 13


def test_a_partner_that_moved_provider_has_its_guests_reset_once_its_tenant_is_allowed(demo):
    """The first run refuses (the new tenant is kept out by the desired state); once the desired state
    admits it, the run is braked (more guests than allowed), approved, fanned out on guest-actions, and the
    local worker carries out every planned reset."""
    steps = demo["first"]["redemptionReset"]
    refused, planned_run, last = steps[0], steps[1], steps[-1]
    assert refused["actions"] == {} and refused["skipped"]["provider-tenant-not-allowed-inbound"] > 0
    assert "partners.adatum.tenantId" in refused["reason"]
    planned = sum(planned_run["actions"].values())
    assert planned > 0 and last["status"] == "dispatched" and last["dispatched"] == planned
    assert last["worker"] == {"done": planned} and last["progress"]["reset"] == planned


def test_drift_and_governance_end_without_fixable_drift(demo):
    """After apply, policy drift shows only the report-only Conditional Access checks; governance is clean."""
    drift, governance = demo["first"]["policyDrift"], demo["first"]["governance"]
    assert drift["before"]["drift"] > 2 and drift["after"]["drift"] == 2
    assert "report" in drift["after"]["text"] and "update" not in drift["after"]["text"]
    assert governance["before"]["drift"] > 0 and governance["after"]["drift"] == 0


def test_the_sweep_is_braked_approved_and_carried_out(demo):
    """Tonight's sweep plans, trips the deletion brake, and after approval every action is done."""
    sweep = demo["first"]["sweep"]
    assert [s["status"] for s in sweep] == ["planned", "braked", "dispatched"]
    assert sweep[-1]["worker"] == {"done": sweep[-1]["dispatched"]}


def test_the_demo_ends_with_status_and_writes_the_report(demo):
    """make run finishes by showing status and writing the self-contained HTML and markdown report."""
    results = demo["first"]
    assert results["status"]["queues"]["onboarding"]["deadLetters"] == 0
    assert results["status"]["lastRuns"]["onboarding"]["done"] == 5
    page = (Path(demo["out"]) / "guest-posture.html").read_text()
    assert "Guests by partner and state" in page and (Path(demo["out"]) / "guest-posture.md").exists()


def test_the_demo_prints_no_log_lines_and_says_where_the_log_is(demo):
    """make run tells a story: no JSON (or rendered) log line reaches the terminal, warnings included (the
    brakes trip on purpose); the closing line names the log file, which holds them all."""
    lines = demo["stderr"].splitlines()
    assert not [line for line in lines if line.lstrip().startswith("{")], demo["stderr"][:2000]
    assert not [line for line in lines if "[info" in line or "[warning" in line], demo["stderr"][:2000]
    [closing] = [line for line in lines if line.startswith("done in ")]
    log_file = Path(closing.split("the log: ", 1)[1])
    events = [json.loads(line)["event"] for line in log_file.read_text().splitlines()]
    assert "sweep.braked" in events and "message.settled" in events


def test_the_story_has_numbered_steps_what_happened_and_what_to_look_at_next(demo):
    """The text the demo prints: seven numbered chapters, each with a sentence of what happened, the commands
    to look at next (a ticket, the sweep run), and the report to open."""
    from app.cli.story import tell

    buffer = io.StringIO()
    tell(Console(file=buffer, width=400), demo["first"], "adatum.com", "/tmp/lifecycle.log")
    text = buffer.getvalue()
    chapters = [int(m) for m in re.findall(r"^─* ?(\d)\. ", text, flags=re.M)]
    assert chapters == [1, 2, 3, 4, 5, 6, 7]
    assert "5 guest(s) invited" in text and "the deletion brake stopped it, an operator approved it" in text
    run_id = demo["first"]["sweep"][-1]["runId"]
    assert f"look next: python -m lifecycle sweep show {run_id}" in text
    reset_run = demo["first"]["redemptionReset"][-1]["runId"]
    assert f"look next: python -m lifecycle sweep show {reset_run}" in text
    assert f"look next: open {demo['first']['report']['html']}" in text
    assert "every log line of this run is in /tmp/lifecycle.log" in text


def test_ctrl_c_during_make_run_says_what_was_done_and_exits_130(tmp_path):
    """Ctrl-C reaches every process of make run (the terminal signals the whole group): the stack lets the
    demo finish its message before stopping the servers; exit 130, no traceback, resume is make run."""
    log_file = tmp_path / "demo.log"
    env = {**os.environ, **DEMO_ENV, "LIFECYCLE_LOG_FILE": str(log_file)}
    command = [sys.executable, "-m", "tenantsim.stack", "--", sys.executable, "-m", "lifecycle", "demo"]
    with (tmp_path / "out.txt").open("w+") as out:
        running = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.PIPE, text=True, start_new_session=True
        )
        deadline = time.monotonic() + 120
        while not (log_file.exists() and log_file.stat().st_size) and time.monotonic() < deadline:
            assert running.poll() is None, running.communicate()[1]
            time.sleep(0.2)
        os.killpg(running.pid, signal.SIGINT)  # what the terminal does on Ctrl-C
        _, err = running.communicate(timeout=120)
    assert running.returncode == 130, err
    assert "Traceback" not in err and "interrupted after" in err, err
    assert "resume with: make run" in err and "fresh local stack" in err
