"""`make bench`: every benchmark the README's performance section shows, one after the other.

    .venv/bin/python -m bench [run] [--quick] [--only NAME,...] [--out FILE]
    .venv/bin/python -m bench table FILE [--readme README.md]
    .venv/bin/python -m bench list

``run`` (the default) prints one JSON line per result and writes them to ``--out`` as well; ``table`` turns
that file into the README's markdown (``--readme`` rewrites the README's generated block in place).
``--quick`` runs small sizes: a smoke run for development, not the README's figures.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

DEFAULT_OUT = Path("reports/bench-results.jsonl")  # reports/ is ignored by git


@dataclass(frozen=True, slots=True)
class Benchmark:
    name: str
    module: str
    args: tuple[str, ...]
    quick_args: tuple[str, ...]
    about: str


BENCHMARKS: tuple[Benchmark, ...] = (
    Benchmark("coldstart", "bench.coldstart_bench", (), ("--runs", "3"), "import time of function_app"),
    Benchmark("signup", "bench.signup_bench", (), ("--requests", "200"), "sign-up connector latency"),
    Benchmark(
        "graph-budget",
        "bench.graph_budget_bench",
        (),
        ("--disables", "100", "--invitations", "200", "--workers", "1,4"),
        "the product's handlers beside two naive peers at Graph's limit",
    ),
    Benchmark(
        "sweep-planning-500",
        "bench.sweep_bench",
        ("--plan-only", "--compression", "1", "--page-cap", "500"),
        ("--plan-only", "--compression", "1", "--page-cap", "500", "--guests", "5000", "--disable", "500"),
        "planning a 100,000-guest sweep, signInActivity pages of 500",
    ),
    Benchmark(
        "sweep-planning-120",
        "bench.sweep_bench",
        ("--plan-only", "--compression", "1", "--page-cap", "120"),
        ("--plan-only", "--compression", "1", "--page-cap", "120", "--guests", "5000", "--disable", "500"),
        "the same with pages of 120 (older documentation)",
    ),
)
BY_NAME = {b.name: b for b in BENCHMARKS}


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="python -m bench",
        description="Run the benchmarks behind the README's performance section, or render their figures.",
        epilog="Without a command: run. The full run took about 1,100 s on the 2-core build machine; --quick 200 s.",
    )
    commands = root.add_subparsers(dest="command")
    run = commands.add_parser("run", help="run the benchmarks (the default)")
    _run_options(run)
    _run_options(root)
    table = commands.add_parser("table", help="print the README's markdown from a run's JSON lines")
    table.add_argument("results", nargs="+", help="JSON-lines file(s) a run wrote")
    table.add_argument("--readme", help="rewrite this README's generated block instead of printing")
    table.add_argument(
        "--named", default="make bench", help="the command named beside the figures (default: make bench)"
    )
    table.add_argument("--date", help="the date named beside the figures (default: the results file's date)")
    commands.add_parser("list", help="list the benchmarks")
    return root


def _run_options(command: argparse.ArgumentParser) -> None:
    command.add_argument("--quick", action="store_true", help="small sizes: a smoke run, not the README's figures")
    command.add_argument("--only", help=f"comma-separated subset of: {', '.join(BY_NAME)}")
    command.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help=f"JSON lines written here (default {DEFAULT_OUT})"
    )


def run(quick: bool, only: str | None, out: Path) -> int:
    chosen = [BY_NAME[name] for name in only.split(",")] if only else list(BENCHMARKS)
    out.parent.mkdir(parents=True, exist_ok=True)
    failed = []
    started = time.monotonic()
    with out.open("w", encoding="utf-8") as sink:
        for benchmark in chosen:
            began = time.monotonic()
            args = benchmark.quick_args if quick else benchmark.args
            print(f"# {benchmark.name}: {benchmark.about}", file=sys.stderr, flush=True)
            child = subprocess.Popen(
                [sys.executable, "-m", benchmark.module, *args], stdout=subprocess.PIPE, text=True, bufsize=1
            )
            assert child.stdout is not None
            for line in child.stdout:
                print(line, end="", flush=True)
                if line.startswith("{"):
                    sink.write(line)
                    sink.flush()
            if child.wait():
                failed.append(benchmark.name)
            print(f"# {benchmark.name}: {time.monotonic() - began:.0f} s", file=sys.stderr, flush=True)
    print(f"# all: {time.monotonic() - started:.0f} s; results in {out}", file=sys.stderr)
    if failed:
        print(f"benchmarks failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    if args.command == "list":
        for benchmark in BENCHMARKS:
            print(f"{benchmark.name:20} {benchmark.about}")
        return 0
    if args.command == "table":
        from bench import readme_table

        date = args.date or datetime.fromtimestamp(Path(args.results[0]).stat().st_mtime, UTC).date().isoformat()
        return readme_table.main(args.results, args.readme, args.named, date)
    return run(args.quick, args.only, args.out)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
