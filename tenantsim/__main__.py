"""python -m tenantsim serve | token | seed."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from datetime import datetime
from pathlib import Path

import httpx
import uvicorn

from tenantsim.config import SimConfig
from tenantsim.runtime import Simulator
from tenantsim.seed import DEFAULT_GUESTS, POSTURES, build_seed
from tenantsim.server import ServerConfig, bind_socket


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tenantsim", description="Simulated Entra tenant (Graph API).")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="serve the Graph API on loopback")
    serve.add_argument("--port", type=int, required=True, help="0 binds a free port")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--seed", type=Path, help="seed document (JSON); default: the built-in tenant")
    serve.add_argument("--posture", choices=POSTURES, default="fresh")
    serve.add_argument("--port-file", type=Path, help="write the bound port here (atomically)")
    serve.add_argument("--guests", type=int, default=DEFAULT_GUESTS)
    serve.add_argument("--random-seed", type=int, default=0)
    serve.add_argument("--no-throttling", action="store_true", help="switch the throttling model off")
    serve.add_argument("--time-compression", type=float, default=1.0)
    serve.add_argument("--replication-delay", type=float, default=0.0, help="seconds")

    token = commands.add_parser("token", help="print a bearer token from a running simulator")
    token.add_argument("--roles", default="", help="comma-separated application permissions")
    token.add_argument("--url", default=os.environ.get("TENANTSIM_URL", "http://127.0.0.1:8765"))
    token.add_argument("--app-id")

    seed = commands.add_parser("seed", help="write a seed document")
    seed.add_argument("--out", type=Path, required=True)
    seed.add_argument("--guests", type=int, default=DEFAULT_GUESTS)
    seed.add_argument("--random-seed", type=int, default=0)
    seed.add_argument("--posture", choices=POSTURES, default="fresh")
    seed.add_argument("--anchor", help="ISO date the generated dates are relative to (default: today)")

    args = parser.parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    if args.command == "token":
        return _token(args)
    return _seed(args)


def _serve(args: argparse.Namespace) -> int:
    document = (
        json.loads(args.seed.read_text()) if args.seed else build_seed(args.guests, args.random_seed, args.posture)
    )
    config = SimConfig(
        throttling_enabled=not args.no_throttling,
        time_compression=args.time_compression,
        replication_delay_seconds=args.replication_delay,
    )
    sock = bind_socket(args.host, args.port)
    port = sock.getsockname()[1]
    if args.port_file:
        _write_atomically(args.port_file, f"{port}\n")
    print(f"tenantsim listening on http://{args.host}:{port}", flush=True)
    server = uvicorn.Server(ServerConfig(Simulator(document, config)))
    server.run(sockets=[sock])
    return 0


def _token(args: argparse.Namespace) -> int:
    roles = [r.strip() for r in args.roles.split(",") if r.strip()]
    body: dict[str, object] = {"roles": roles}
    if args.app_id:
        body["appId"] = args.app_id
    response = httpx.post(f"{args.url.rstrip('/')}/_tenantsim/token", json=body, timeout=10)
    response.raise_for_status()
    print(response.json()["access_token"])
    return 0


def _seed(args: argparse.Namespace) -> int:
    anchor = datetime.fromisoformat(args.anchor.replace("Z", "+00:00")) if args.anchor else None
    if anchor is not None and anchor.tzinfo is None:
        from datetime import UTC

        anchor = anchor.replace(tzinfo=UTC)
    document = build_seed(args.guests, args.random_seed, args.posture, anchor)
    _write_atomically(args.out, json.dumps(document, indent=1))
    print(f"wrote {len(document['users'])} users to {args.out}", file=sys.stderr)
    return 0


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, prefix=f".{path.name}.") as handle:
        handle.write(text)
        temporary = Path(handle.name)
    os.replace(temporary, path)


if __name__ == "__main__":
    raise SystemExit(main())
