"""`python -m bench`: help without running anything, and the README's figures rendered from a run's JSON lines."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench import readme_table
from bench.__main__ import BENCHMARKS, main

ROOT = Path(__file__).resolve().parents[2]


def test_help_prints_the_commands_and_exits_0_without_starting_a_benchmark():
    """--help is answered by argparse alone: exit 0, the commands listed, no JSON line (nothing was measured)."""
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "usage: python -m bench" in done.stdout
    for command in ("run", "table", "list"):
        assert command in done.stdout
    assert not any(line.startswith("{") for line in done.stdout.splitlines())


def test_list_names_every_benchmark(capsys):
    assert main(["list"]) == 0
    listed = capsys.readouterr().out
    assert all(b.name in listed for b in BENCHMARKS)


def test_an_unknown_option_is_refused_with_exit_2():
    with pytest.raises(SystemExit) as refused:
        main(["--no-such-option"])
    assert refused.value.code == 2


def _row(strategy: str, workload: str, workers: int, used: float, **extra: object) -> dict:
    row = {
        "bench": "graph_budget",
        "workload": workload,
        "strategy": strategy,
        "workers": workers,
        "items": 400,
        "ok": 400,
        "lost": 0,
        "unfinished": 0,
        "budget_used": used,
        "throttled_429": 0,
        "throttled_share": 0.0,
        "wall_s": 30.0,
        "refill_per_s": 20.0,
        "cpu_ms_per_item": 25.0 if strategy == "product" else None,
    }
    if strategy == "product":
        row |= {"concurrency": 5, "deployed": True}
    return row | extra


def test_the_table_marks_each_target_met_or_not_from_the_figures(tmp_path):
    """A product row under 0.95 makes that target 'not met' with its figure; a 429 share over 1 % likewise.
    Rows at another concurrency than host.json's decide only the one-process target."""
    rows = [
        _row("sequential", "sweep", 1, 0.2),
        _row("product", "sweep", 1, 0.97),
        _row("product", "sweep", 4, 0.91, throttled_429=30, throttled_share=0.02),
        _row("product", "invitations", 1, 0.96),
        _row("product", "invitations", 1, 0.5, concurrency=32, deployed=False, lost=7),
    ]
    results = tmp_path / "results.jsonl"
    results.write_text("# progress line\n" + "\n".join(json.dumps(r) for r in rows) + "\n")
    text = readme_table.render(readme_table.read_results(results), command="make bench", date="2026-12-06")
    assert "Figures from `make bench` on 2026-12-06" in text
    assert text.count("| sweep, 400 disables (20 writes/s) |") == 3
    assert "| (c) the product's handlers, 32 at a time | 1 | **0.5** |" in text
    assert "| (c) the product's handlers, 5 at a time (host.json) | 1 | **0.96** |" in text
    assert "at every process count: **not met** (0.91 to 0.97)" in text
    assert "429: **not met** (at most 2.0 %)" in text
    assert "Nothing lost: **met**" in text
    assert "of the write budget: **met** (0.97 with 5 messages at a time; 25.0 ms of CPU per item)" in text
    # One process alone is decided by the row with the most messages at a time (what the CPU allows).
    assert "of the invitation budget: **not met** (0.5 with 32 messages at a time" in text


def test_the_readme_block_between_the_markers_is_replaced_and_nothing_else():
    readme = f"# Title\nbefore\n{readme_table.BEGIN}\nold figures\n{readme_table.END}\nafter\n"
    replaced = readme_table.replace_block(readme, "new figures\n")
    assert replaced == f"# Title\nbefore\n{readme_table.BEGIN}\nnew figures\n{readme_table.END}\nafter\n"
    with pytest.raises(ValueError):
        readme_table.replace_block("no markers", "x")


def test_the_ceiling_counts_the_rows_start_and_end_at_the_buckets_pace():
    """600 invitations on a bucket of 75 refilled at 30/s need 17.5 s past the burst: with the first invitation
    1.0 s after the start and 1.5 s of work after the last, 0.95 of the budget is out of reach (0.908)."""
    from bench.graph_budget_bench import Workload, _start_and_tail
    from graph.budget import BudgetClass

    invitations = Workload("invitations", 600, 2.0, 200.0, 67.0, {BudgetClass.INVITATIONS: 1}, quota_scale=0.5)
    figures = _start_and_tail(invitations, 600, 20.0, [1.0, 10.0, 18.5])
    assert figures == {"first_binding_s": 1.0, "after_last_binding_s": 1.5, "ceiling": round(600 / (75 + 30 * 20), 3)}
    assert _start_and_tail(invitations, 0, 20.0, []) == {}
    row = _row("product", "invitations", 4, 0.88, **figures)
    text = readme_table.render([row], command="make bench", date="2026-12-06")
    assert "| **0.88** | 0.889 (1.0 s / 1.5 s) |" in text
