"""The local stack: Azurite (Table, Queue, Blob) and tenantsim on loopback, for make run, make test and tests.

    python -m tenantsim.stack [--print-env] [--guests N] [--no-tenantsim] -- CMD ARGS...

starts both servers on free ports, exports the product's local settings into CMD's environment, runs CMD
and always stops the servers again (on exit, on error, on SIGINT/SIGTERM). Without CMD it keeps the
stack up until interrupted. Each server runs in its own process group and is recorded in a pid file
under .stack/, so a run that was SIGKILLed is reaped by the next one. Several runs can share .stack/:
only servers whose launching process is gone are reaped.

From Python: ``with LocalStack(guests=25) as stack: stack.env[...]``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from tenantsim.config import SimConfig

ROOT = Path(__file__).resolve().parent.parent
STACK_DIR = ROOT / ".stack"
AZURITE_BIN = ROOT / "node_modules" / ".bin" / "azurite"
TENANT_ID = "3f2d6a1e-8c4b-4e7a-9b1d-2c5e7f9a0b13"
ACCOUNT_NAME = "devstoreaccount1"
# Azurite's published development account key: not a secret.
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
START_TIMEOUT_SECONDS = 30.0
_KEEP_ALIVE = str(round(SimConfig().idle_connection_seconds))  # Azurite takes whole seconds
_LISTENING = re.compile(r"Azurite (Blob|Queue|Table) service is successfully listening at http://[^:]+:(\d+)")


class StackError(RuntimeError):
    """A server of the local stack could not be started. The message carries its log tail."""


def _process_start_time(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (tells a live process from a recycled pid), or None if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return "unknown"
        return "unknown"
    return stat.rsplit(")", 1)[1].split()[19]


def _alive(pid: int, started: str | None) -> bool:
    now = _process_start_time(pid)
    return now is not None and (started in (None, "unknown") or now in (started, "unknown"))


def _log_tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@dataclass
class ManagedProcess:
    """A server in its own process group, recorded in a pid file so a later run can reap it."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    pid_file: Path

    @classmethod
    def spawn(
        cls, name: str, argv: Sequence[str], run_dir: Path, env: Mapping[str, str] | None = None
    ) -> ManagedProcess:
        log_path = run_dir / f"{name}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
                env=dict(env) if env is not None else None,
                start_new_session=True,  # its own process group: killpg reaches its children too
            )
        pid_file = STACK_DIR / "pids" / f"{name}-{process.pid}.json"
        pid_file.parent.mkdir(parents=True, exist_ok=True)
        owner = os.getpid()
        pid_file.write_text(
            json.dumps(
                {
                    "pgid": process.pid,
                    "started": _process_start_time(process.pid),
                    "owner": owner,
                    "ownerStarted": _process_start_time(owner),
                    "runDir": str(run_dir),
                }
            )
        )
        return cls(name, process, log_path, pid_file)

    def failure(self, what: str) -> StackError:
        return StackError(f"{self.name} {what}; last lines of {self.log_path}:\n{_log_tail(self.log_path)}")

    def stop(self, grace_seconds: float = 5.0) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(grace_seconds)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(grace_seconds)
        else:
            # The leader is gone, but a child it started may still hold the group.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)
        self.pid_file.unlink(missing_ok=True)


def reap_leftovers() -> list[str]:
    """Kill servers (and remove run directories) left by launchers that no longer exist."""
    reaped: list[str] = []
    for pid_file in sorted((STACK_DIR / "pids").glob("*.json")):
        try:
            record = json.loads(pid_file.read_text())
        except (OSError, ValueError):
            pid_file.unlink(missing_ok=True)
            continue
        if _alive(record["owner"], record.get("ownerStarted")):
            continue
        if _alive(record["pgid"], record.get("started")):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(record["pgid"], signal.SIGKILL)
            reaped.append(pid_file.stem)
        pid_file.unlink(missing_ok=True)
    for run_dir in STACK_DIR.glob("run-*"):
        owner = run_dir.name.split("-")[1]
        marker = run_dir / "owner"
        started = marker.read_text().strip() if marker.exists() else None
        if owner.isdigit() and not _alive(int(owner), started):
            shutil.rmtree(run_dir, ignore_errors=True)
    return reaped


def azurite_connection_string(table_port: int, queue_port: int, blob_port: int) -> str:
    base = "http://127.0.0.1:{port}/" + ACCOUNT_NAME
    return (
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT_NAME};AccountKey={ACCOUNT_KEY};"
        f"TableEndpoint={base.format(port=table_port)};QueueEndpoint={base.format(port=queue_port)};"
        f"BlobEndpoint={base.format(port=blob_port)}"
    )


def _wait_for_tcp(port: int, deadline: float) -> bool:
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
        time.sleep(0.05)
    return False


@dataclass
class Azurite:
    process: ManagedProcess
    ports: dict[str, int]

    @classmethod
    def start(cls, run_dir: Path, ports: Mapping[str, int] | None = None) -> Azurite:
        """Start Azurite on free ports, or on ``ports`` (a restart keeps its clients' endpoints valid)."""
        if not AZURITE_BIN.exists():
            raise StackError(f"Azurite is not installed at {AZURITE_BIN}; run `npm ci` first")
        data_dir = run_dir / "azurite"
        data_dir.mkdir(parents=True, exist_ok=True)
        port = {name: str((ports or {}).get(name, 0)) for name in ("blob", "queue", "table")}
        argv = [
            str(AZURITE_BIN),
            *("--blobHost", "127.0.0.1", "--blobPort", port["blob"]),
            *("--queueHost", "127.0.0.1", "--queuePort", port["queue"]),
            *("--tableHost", "127.0.0.1", "--tablePort", port["table"]),
            *("--location", str(data_dir)),
            # Azurite closes idle connections after 5 s by default while the Storage SDKs' aiohttp reuses them
            # for 15 s, so a Table insert could go out on a closed connection (a transport error the SDK does
            # not retry for a POST): the emulator's setting, not Azure's. Kept as long as tenantsim keeps its own.
            *("--blobKeepAliveTimeout", _KEEP_ALIVE),
            *("--queueKeepAliveTimeout", _KEEP_ALIVE),
            *("--tableKeepAliveTimeout", _KEEP_ALIVE),
            # The Storage SDKs speak a newer REST API version than Azurite knows; without this
            # Azurite answers every request with 400 InvalidHeaderValue.
            "--skipApiVersionCheck",
            "--disableTelemetry",
            "--silent",
        ]
        process = ManagedProcess.spawn("azurite", argv, run_dir)
        try:
            ports = cls._wait_for_ports(process)
        except BaseException:
            process.stop()
            raise
        return cls(process, ports)

    @staticmethod
    def _wait_for_ports(process: ManagedProcess) -> dict[str, int]:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            found = {
                service.lower(): int(port)
                for service, port in _LISTENING.findall(process.log_path.read_text(errors="replace"))
            }
            if len(found) == 3:
                if not all(_wait_for_tcp(port, deadline) for port in found.values()):
                    break
                return found
            if process.process.poll() is not None:
                raise process.failure(f"exited with status {process.process.returncode} while starting")
            time.sleep(0.05)
        raise process.failure(f"did not listen on all three ports within {START_TIMEOUT_SECONDS:.0f}s")

    @property
    def connection_string(self) -> str:
        return azurite_connection_string(self.ports["table"], self.ports["queue"], self.ports["blob"])


@dataclass
class TenantSim:
    process: ManagedProcess
    url: str

    @classmethod
    def start(cls, run_dir: Path, guests: int | None, command: Sequence[str] | None = None) -> TenantSim:
        port_file = run_dir / "tenantsim.port"
        argv = list(command or [sys.executable, "-m", "tenantsim", "serve"])
        argv += ["--port", "0", "--port-file", str(port_file)]
        if guests is not None:
            argv += ["--guests", str(guests)]
        process = ManagedProcess.spawn("tenantsim", argv, run_dir)
        try:
            url = cls._wait_until_answering(process, port_file)
        except BaseException:
            process.stop()
            raise
        return cls(process, url)

    @staticmethod
    def _wait_until_answering(process: ManagedProcess, port_file: Path) -> str:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if process.process.poll() is not None:
                raise process.failure(f"exited with status {process.process.returncode} while starting")
            text = port_file.read_text().strip() if port_file.exists() else ""
            if text.isdigit() and _answers(f"http://127.0.0.1:{text}/"):
                return f"http://127.0.0.1:{text}"
            time.sleep(0.05)
        raise process.failure(f"did not answer HTTP within {START_TIMEOUT_SECONDS:.0f}s")


def _answers(url: str) -> bool:
    """Any HTTP answer (even 404) means the server is up."""
    try:
        with urllib.request.urlopen(url, timeout=1):
            return True
    except urllib.error.HTTPError:
        return True
    except (OSError, ValueError):
        return False


@dataclass
class LocalStack:
    """Azurite and (unless ``tenantsim=False``) tenantsim, started on enter and stopped on exit."""

    guests: int | None = None
    tenantsim: bool = True
    tenantsim_command: Sequence[str] | None = None
    azurite: Azurite | None = None
    simulator: TenantSim | None = None
    run_dir: Path | None = None
    env: dict[str, str] = field(default_factory=dict)

    def __enter__(self) -> LocalStack:
        STACK_DIR.mkdir(exist_ok=True)
        reap_leftovers()
        self.run_dir = Path(tempfile.mkdtemp(prefix=f"run-{os.getpid()}-", dir=STACK_DIR))
        (self.run_dir / "owner").write_text(str(_process_start_time(os.getpid())))
        try:
            self.azurite = Azurite.start(self.run_dir)
            if self.tenantsim:
                self.simulator = TenantSim.start(self.run_dir, self.guests, self.tenantsim_command)
        except BaseException:
            self.stop()
            raise
        self.env = self._settings_env()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def restart_azurite(self) -> None:
        """Stop Azurite (SIGTERM, so it flushes its data) and start it again on the same ports and data.

        Clients built from ``env`` keep working once it is back; requests in between fail as in a real
        storage outage.
        """
        assert self.azurite is not None and self.run_dir is not None, "the stack is not running"
        ports = dict(self.azurite.ports)
        self.azurite.process.stop(grace_seconds=15.0)
        # The log is read to find the ports; the new process must not see the old one's lines.
        self.azurite.process.log_path.rename(self.run_dir / f"azurite-{time.monotonic_ns()}.log")
        self.azurite = Azurite.start(self.run_dir, ports)

    def stop(self) -> None:
        for server in (self.simulator, self.azurite):
            if server is not None:
                server.process.stop()
        self.simulator = self.azurite = None
        if self.run_dir is not None:
            shutil.rmtree(self.run_dir, ignore_errors=True)
            self.run_dir = None

    @property
    def tables_connection_string(self) -> str:
        assert self.azurite is not None, "the stack is not running"
        return self.azurite.connection_string

    @property
    def queues_connection_string(self) -> str:
        return self.tables_connection_string

    @property
    def tenantsim_url(self) -> str:
        assert self.simulator is not None, "tenantsim is not running in this stack"
        return self.simulator.url

    def _settings_env(self) -> dict[str, str]:
        env = {
            "LIFECYCLE_ENVIRONMENT": "local",
            "LIFECYCLE_TENANT_ID": TENANT_ID,
            "LIFECYCLE_TABLES_CONNECTION_STRING": self.tables_connection_string,
            "LIFECYCLE_QUEUE_TRANSPORT": "storage",
            "LIFECYCLE_QUEUES_CONNECTION_STRING": self.queues_connection_string,
        }
        if self.simulator is not None:
            env |= {
                "LIFECYCLE_GRAPH_BASE_URL": f"{self.simulator.url}/v1.0",
                "LIFECYCLE_GRAPH_BETA_URL": f"{self.simulator.url}/beta",
                "LIFECYCLE_GRAPH_CREDENTIAL": "tenantsim",
                "TENANTSIM_URL": self.simulator.url,
            }
        return env


class _Terminated(Exception):
    """Raised from the SIGTERM handler so that the usual cleanup runs."""


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise _Terminated(signal.Signals(signum).name)


@contextlib.contextmanager
def _cleanup_on_sigterm() -> Iterator[None]:
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run_child(command: Sequence[str], env: Mapping[str, str]) -> int:
    child = subprocess.Popen(list(command), env={**os.environ, **env})
    try:
        return child.wait()
    except KeyboardInterrupt:
        # The terminal's SIGINT reached the child too: let it say what it did and stop on its own first.
        _stop(child, terminate_first=False)
        raise
    except _Terminated:
        # SIGTERM came only to us: pass it on.
        _stop(child, terminate_first=True)
        raise


def _stop(child: subprocess.Popen[bytes], *, terminate_first: bool, grace_seconds: float = 10.0) -> None:
    if terminate_first:
        child.send_signal(signal.SIGTERM)
    try:
        child.wait(grace_seconds)
        return
    except subprocess.TimeoutExpired:
        pass
    if not terminate_first:
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(grace_seconds)
            return
        except subprocess.TimeoutExpired:
            pass
    child.kill()
    child.wait()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tenantsim.stack",
        description="Start Azurite and tenantsim on loopback, run CMD with the local settings, clean up.",
    )
    parser.add_argument("--print-env", action="store_true", help="print the exported settings as shell lines")
    parser.add_argument("--guests", type=int, default=None, help="number of guests tenantsim seeds")
    parser.add_argument("--no-tenantsim", action="store_true", help="start Azurite only")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- CMD ARGS... (default: wait for Ctrl-C)")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command

    with _cleanup_on_sigterm():
        try:
            with LocalStack(guests=args.guests, tenantsim=not args.no_tenantsim) as stack:
                if args.print_env:
                    for name, value in stack.env.items():
                        print(f"export {name}={shlex.quote(value)}", flush=True)
                if command:
                    return _run_child(command, stack.env)
                print("local stack is up; Ctrl-C stops it", file=sys.stderr, flush=True)
                signal.pause()
                return 0
        except StackError as error:
            print(f"local stack failed to start: {error}", file=sys.stderr)
            return 3
        except KeyboardInterrupt:
            return 130
        except _Terminated:
            return 143


if __name__ == "__main__":
    sys.exit(main())
