"""tenantsim for the soak: the usual server, with a request log that keeps every request of the run.

The soak checks writes per object from the request log after tens of thousands of Graph calls, more
than the default log keeps. Same arguments as ``python -m tenantsim serve`` (the subset the soak uses).
"""

from __future__ import annotations

import argparse
import json
from collections import deque
from pathlib import Path

import uvicorn

from tenantsim.__main__ import _write_atomically
from tenantsim.app import create_app
from tenantsim.config import SimConfig
from tenantsim.runtime import Simulator
from tenantsim.server import bind_socket


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos.simserver")
    parser.add_argument("--seed", type=Path, required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--port-file", type=Path, required=True)
    parser.add_argument("--time-compression", type=float, default=1.0)
    args = parser.parse_args(argv)

    simulator = Simulator(json.loads(args.seed.read_text()), SimConfig(time_compression=args.time_compression))
    simulator.request_log = deque()  # unbounded: the soak reads all of it once, at the end
    sock = bind_socket("127.0.0.1", args.port)
    _write_atomically(args.port_file, f"{sock.getsockname()[1]}\n")
    server = uvicorn.Server(
        uvicorn.Config(create_app(simulator), log_level="warning", access_log=False, lifespan="off")
    )
    server.run(sockets=[sock])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
