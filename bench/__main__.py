"""`make bench`: every benchmark, one after the other, each printing one JSON line per result.

    .venv/bin/python -m bench [--quick]

``--quick`` runs small sizes (a smoke run, not the figures for the README).
"""

from __future__ import annotations

import subprocess
import sys

BENCHMARKS: list[tuple[str, list[str], list[str]]] = [
    ("bench.coldstart_bench", [], ["--runs", "3"]),
    ("bench.signup_bench", [], ["--requests", "200"]),
    ("bench.graph_budget_bench", [], ["--disables", "1000", "--invitations", "200", "--workers", "1,4"]),
    ("bench.sweep_bench", ["--json"], ["--json", "--guests", "5000", "--disable", "1000"]),
    ("bench.onboarding_bench", ["--json"], ["--json", "--tickets", "300"]),
]


def main(argv: list[str]) -> int:
    quick = "--quick" in argv
    failed = []
    for module, args, quick_args in BENCHMARKS:
        code = subprocess.run([sys.executable, "-m", module, *(quick_args if quick else args)]).returncode
        if code:
            failed.append(module)
    if failed:
        print(f"benchmarks failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
