"""Run tenantsim in-process: uvicorn on a free loopback port in a background thread."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from types import TracebackType
from typing import Any

import uvicorn

from tenantsim.app import create_app
from tenantsim.config import SimConfig
from tenantsim.runtime import Simulator
from tenantsim.seed import build_seed


def bind_socket(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


class ServerConfig(uvicorn.Config):
    """uvicorn's settings for a simulator. uvicorn reads ``timeout_keep_alive`` at each new connection; here it
    is the simulator's knob ``idleConnectionSeconds``, so a test sets it as it sets any other."""

    def __init__(self, simulator: Simulator) -> None:
        self.simulator = simulator
        super().__init__(
            create_app(simulator),
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_keep_alive=simulator.config.idle_connection_seconds,
        )

    @property  # type: ignore[override]
    def timeout_keep_alive(self) -> float:
        return self.simulator.config.idle_connection_seconds

    @timeout_keep_alive.setter
    def timeout_keep_alive(self, seconds: float) -> None:
        self.simulator.config.idle_connection_seconds = seconds


class TenantSimServer:
    """`with TenantSimServer(guests=50) as sim: httpx.get(f"{sim.url}/v1.0/users", ...)`."""

    def __init__(
        self,
        document: dict[str, Any] | None = None,
        *,
        guests: int = 40,
        random_seed: int = 0,
        posture: str = "fresh",
        config: SimConfig | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        if config is None:
            config = SimConfig(throttling_enabled=False)
        # The simulator owns and mutates its document, so a caller's document is copied first.
        owned = json.loads(json.dumps(document)) if document is not None else None
        self.simulator = Simulator(owned or build_seed(guests, random_seed, posture), config)
        self._socket = bind_socket(host, port)
        self.host = host
        self.port: int = self._socket.getsockname()[1]
        self.url = f"http://{host}:{self.port}"
        self._server = uvicorn.Server(ServerConfig(self.simulator))
        self._thread: threading.Thread | None = None

    def start(self) -> TenantSimServer:
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            task = loop.create_task(self._server.serve(sockets=[self._socket]))
            loop.call_soon(ready.set)
            loop.run_until_complete(task)
            loop.close()

        self._thread = threading.Thread(target=run, name=f"tenantsim-{self.port}", daemon=True)
        self._thread.start()
        ready.wait(5)
        while not self._server.started and self._thread.is_alive():
            threading.Event().wait(0.005)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(10)
        self._socket.close()

    def __enter__(self) -> TenantSimServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
