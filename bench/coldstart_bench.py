"""Cold start: what importing function_app costs against importing the third-party modules it pulls in.

    .venv/bin/python -m bench.coldstart_bench [--runs 15]

Each measurement is a fresh interpreter. The baseline imports exactly the non-project modules that
importing function_app leaves in sys.modules (the SDKs it needs), so the ratio is the project's own
overhead. Runs alternate, and the ratio is of the fastest run of each: on a shared machine a slow run is
noise from elsewhere (medians of a few runs wander by a quarter), never the import getting cheaper. Prints
one JSON line: the fastest and median import seconds of both, the ratio (target <= 1.3), and the RSS
(MiB) after importing function_app.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROJECT_PACKAGES = ("function_app", "lifecycle", "graph", "config", "tenantsim", "bench")

LIST_MODULES = f"""
import sys
before = set(sys.modules)
import function_app
project = {PROJECT_PACKAGES!r}
print("\\n".join(sorted(m for m in set(sys.modules) - before if m.split(".")[0] not in project)))
"""

TIMED_IMPORT = """
import importlib, resource, sys, time
names = sys.stdin.read().split()
started = time.perf_counter()
for name in names:
    try:
        importlib.import_module(name)
    except Exception:
        pass
elapsed = time.perf_counter() - started
print(elapsed, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def _run(script: str, stdin: str) -> tuple[float, int]:
    out = subprocess.run(
        [sys.executable, "-c", script], input=stdin, capture_output=True, text=True, cwd=ROOT, check=True
    ).stdout.split()
    return float(out[0]), int(out[1])


def measure(runs: int) -> dict[str, object]:
    listed = subprocess.run(
        [sys.executable, "-c", LIST_MODULES], capture_output=True, text=True, cwd=ROOT, check=True
    ).stdout.split()
    # Parents before children, so the baseline imports modules in the order the app does.
    sdk_modules = sorted(listed, key=lambda name: name.count("."))
    app, baseline, rss = [], [], []
    for _ in range(runs):
        seconds, app_rss = _run(TIMED_IMPORT, "function_app")
        app.append(seconds)
        rss.append(app_rss)
        baseline.append(_run(TIMED_IMPORT, "\n".join(sdk_modules))[0])
    return {
        "bench": "coldstart",
        "runs": runs,
        "sdk_modules": len(sdk_modules),
        "import_function_app_s": round(min(app), 3),
        "import_sdk_baseline_s": round(min(baseline), 3),
        "ratio": round(min(app) / min(baseline), 2),
        "median_function_app_s": round(statistics.median(app), 3),
        "median_sdk_baseline_s": round(statistics.median(baseline), 3),
        "target_ratio": 1.3,
        "rss_after_import_mib": round(statistics.median(rss) / 1024, 1),
        "imports_msgraph": any(name.split(".")[0] == "msgraph" for name in sdk_modules),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args(argv)
    print(json.dumps(measure(args.runs)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
