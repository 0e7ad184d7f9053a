"""The local stack launcher: settings it exports, cleanup on every exit path, loud start failures."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from azure.data.tables import TableServiceClient

from config.settings import load_settings
from tenantsim import stack as stack_module
from tenantsim.stack import STACK_DIR, LocalStack, StackError, reap_leftovers


def owned_pid_files(owner: int | None = None) -> list[dict[str, object]]:
    """Pid-file records of servers started by ``owner`` (default: this process)."""
    records = [json.loads(path.read_text()) for path in (STACK_DIR / "pids").glob("*.json")]
    return [record for record in records if record["owner"] == (owner or os.getpid())]


def gone(pid: int, within: float = 5.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if stack_module._process_start_time(pid) is None:
            return True
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        if state == "Z":
            return True
        time.sleep(0.05)
    return False


def test_stack_exports_local_settings_that_reach_both_servers() -> None:
    """The env points the product at Azurite and tenantsim, both answer, and ``guests`` seeds tenantsim."""
    with LocalStack(guests=7) as stack:
        env = stack.env
        assert env["LIFECYCLE_ENVIRONMENT"] == "local"
        assert env["LIFECYCLE_TENANT_ID"] == "3f2d6a1e-8c4b-4e7a-9b1d-2c5e7f9a0b13"
        assert env["LIFECYCLE_GRAPH_BASE_URL"] == f"{stack.tenantsim_url}/v1.0"
        assert env["LIFECYCLE_GRAPH_BETA_URL"] == f"{stack.tenantsim_url}/beta"
        assert env["LIFECYCLE_GRAPH_CREDENTIAL"] == "tenantsim"
        assert env["LIFECYCLE_QUEUE_TRANSPORT"] == "storage"
        assert env["TENANTSIM_URL"] == stack.tenantsim_url
        assert env["LIFECYCLE_TABLES_CONNECTION_STRING"] == env["LIFECYCLE_QUEUES_CONNECTION_STRING"]
        assert load_settings(env).graph_base_url == env["LIFECYCLE_GRAPH_BASE_URL"]
        snapshot = httpx.get(f"{env['TENANTSIM_URL']}/_tenantsim/snapshot", timeout=10).json()
        assert sum(user.get("userType") == "Guest" for user in snapshot["users"]) == 7
        service = TableServiceClient.from_connection_string(stack.tables_connection_string)
        service.create_table_if_not_exists("stackprobe")
        assert "stackprobe" in {table.name for table in service.list_tables()}


def test_leaving_the_stack_stops_the_servers_and_removes_their_files() -> None:
    """On exit both servers are dead, and their pid files and data directory are gone."""
    with LocalStack(guests=1) as stack:
        assert stack.azurite is not None and stack.simulator is not None and stack.run_dir is not None
        pids = [stack.azurite.process.process.pid, stack.simulator.process.process.pid]
        pid_files = [stack.azurite.process.pid_file, stack.simulator.process.pid_file]
        run_dir = stack.run_dir
        assert all(path.exists() for path in pid_files) and run_dir.exists()
    assert all(gone(pid) for pid in pids)
    assert not any(path.exists() for path in pid_files) and not run_dir.exists()


def test_a_server_that_cannot_start_fails_loudly_with_its_log_and_leaves_nothing(tmp_path: Path) -> None:
    """A tenantsim that dies on start raises StackError with its output; Azurite is stopped too."""
    broken = tmp_path / "broken.py"
    broken.write_text("import sys\nprint('cannot bind: address in use', flush=True)\nsys.exit(4)\n")
    before = owned_pid_files()  # the session's own Azurite, if a fixture started one
    with (
        pytest.raises(StackError, match="cannot bind: address in use"),
        LocalStack(tenantsim_command=[sys.executable, str(broken)]),
    ):
        pass
    assert owned_pid_files() == before


def test_servers_of_a_killed_launcher_are_reaped_by_the_next_run() -> None:
    """After a launcher is SIGKILLed, its Azurite survives until the next run reaps it and its data."""
    launcher = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from tenantsim.stack import LocalStack; import time\n"
            "with LocalStack(tenantsim=False) as s:\n"
            "    print(s.azurite.process.process.pid, s.run_dir, flush=True); time.sleep(60)",
        ],
        cwd=stack_module.ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert launcher.stdout is not None
    pid_text, run_dir = launcher.stdout.readline().split()
    launcher.kill()
    launcher.wait()
    azurite_pid = int(pid_text)
    assert stack_module._process_start_time(azurite_pid) is not None, "Azurite should outlive a SIGKILL"

    reaped = reap_leftovers()

    assert f"azurite-{azurite_pid}" in reaped
    assert gone(azurite_pid)
    assert not Path(run_dir).exists()


def test_cli_runs_the_command_with_the_settings_and_returns_its_exit_code() -> None:
    """`python -m tenantsim.stack -- CMD` hands CMD the settings and exits with CMD's status."""
    check = "import os, sys; print(os.environ['LIFECYCLE_QUEUE_TRANSPORT']); sys.exit(5)"
    finished = subprocess.run(
        [sys.executable, "-m", "tenantsim.stack", "--no-tenantsim", "--", sys.executable, "-c", check],
        cwd=stack_module.ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert finished.returncode == 5, finished.stderr
    assert finished.stdout.strip() == "storage"


def test_cli_cleans_up_when_terminated() -> None:
    """SIGTERM to the launcher stops CMD and the servers and exits with 143."""
    launcher = subprocess.Popen(
        [sys.executable, "-m", "tenantsim.stack", "--no-tenantsim", "--print-env", "--", "sleep", "60"],
        cwd=stack_module.ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert launcher.stdout is not None
    exported = [launcher.stdout.readline() for _ in range(5)]
    assert any(line.startswith("export LIFECYCLE_TABLES_CONNECTION_STRING=") for line in exported)
    owned = [record["pgid"] for record in owned_pid_files(launcher.pid)]
    assert len(owned) == 1

    launcher.send_signal(signal.SIGTERM)

    assert launcher.wait(30) == 143
    assert gone(int(owned[0]))  # type: ignore[call-overload]
    assert not any(STACK_DIR.glob(f"run-{launcher.pid}-*"))


@pytest.mark.skipif(not os.path.exists("/proc"), reason="pid reuse detection reads /proc")
def test_a_recycled_pid_is_not_mistaken_for_the_recorded_process() -> None:
    """A pid whose start time differs from the recorded one counts as gone, so it is never killed."""
    me = os.getpid()
    assert stack_module._alive(me, stack_module._process_start_time(me))
    assert not stack_module._alive(me, "1")


def test_local_stack_fixture_serves_graph_to_a_token_the_product_mints(local_stack: LocalStack) -> None:
    """With the fixture's settings, a token from tenantsim's token endpoint reads users from its Graph."""
    env = local_stack.env
    minted = httpx.post(f"{env['TENANTSIM_URL']}/_tenantsim/token", json={"roles": ["User.Read.All"]}, timeout=10)
    token = minted.json()["access_token"]
    users = httpx.get(
        f"{env['LIFECYCLE_GRAPH_BASE_URL']}/users", params={"$top": "2"}, headers={"Authorization": f"Bearer {token}"}
    )
    assert users.status_code == 200 and len(users.json()["value"]) == 2


def test_both_servers_keep_an_idle_connection_longer_than_the_clients_reuse_it(local_stack) -> None:
    """httpx reuses an idle connection for 5 s and the Storage SDKs' aiohttp for 15 s; Azurite and uvicorn closed
    theirs at 5 s, so a request could go out on a connection being closed (transport errors, rescheduled work).
    A connection left idle for 6 s still answers on both (http.client raises RemoteDisconnected otherwise)."""
    tenantsim = local_stack.tenantsim_url.removeprefix("http://")
    targets = {
        "tenantsim": (tenantsim, "/_tenantsim/config"),
        "azurite": (f"127.0.0.1:{local_stack.azurite.ports['table']}", "/devstoreaccount1/Tables"),
    }
    connections = {name: http.client.HTTPConnection(host, timeout=5) for name, (host, _) in targets.items()}
    try:
        first = {}
        for name, (_, path) in targets.items():
            connections[name].request("GET", path)
            connections[name].getresponse().read()
            first[name] = connections[name].sock
        time.sleep(6)
        for name, (_, path) in targets.items():
            connections[name].request("GET", path)
            assert connections[name].getresponse().read() is not None and connections[name].sock is first[name], name
    finally:
        for connection in connections.values():
            connection.close()
