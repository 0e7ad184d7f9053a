"""The README's performance figures, as markdown, from the JSON lines one ``python -m bench`` run printed.

    .venv/bin/python -m bench table RESULTS.jsonl [--readme README.md]

Without ``--readme`` it prints the tables; with it, it replaces what lies between the README's
``<!-- bench:begin -->`` and ``<!-- bench:end -->`` markers, so the section is regenerated, never edited by hand.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"
PEERS = {
    "sequential": "(a) one call at a time",
    "unbounded": "(b) unbounded, SDK retry",
    "product": "(c) the product's handlers",
    "batch": "(d) `$batch` client (not deployed)",
    "headers-only": "(e) `$batch`, headers only",
}
TARGET_PRODUCT, TARGET_ALONE, TARGET_429 = 0.95, 0.9, 0.01


def read_results(path: Path) -> list[dict[str, Any]]:
    """Every JSON object line of ``path`` (other lines, such as a run's progress, are skipped)."""
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line.startswith("{"):
            rows.append(json.loads(line))
    return rows


def render(rows: list[dict[str, Any]], *, command: str, date: str) -> str:
    parts = [f"Figures from `{command}` on {date}; regenerate them with the same command.", ""]
    parts += _others(rows)
    budget = [r for r in rows if r.get("bench") == "graph_budget"]
    if budget:
        parts += ["", *_budget_table(budget), "", *_verdicts(budget)]
    planning = [r for r in rows if r.get("bench") == "sweep_planning"]
    if planning:
        parts += ["", *_planning_table(planning)]
    return "\n".join(parts).rstrip() + "\n"


def _others(rows: list[dict[str, Any]]) -> list[str]:
    lines = ["| benchmark | figure |", "|---|---|"]
    for row in rows:
        if row.get("bench") == "coldstart":
            lines.append(
                f"| cold start: import `function_app` vs the same {row['sdk_modules']} third-party modules, fastest of "
                f"{row['runs']} | {row['import_function_app_s']} s vs {row['import_sdk_baseline_s']} s, "
                f"**ratio {row['ratio']}** (target ≤ {row['target_ratio']}); RSS after import "
                f"{row['rss_after_import_mib']} MiB |"
            )
        elif row.get("bench") == "signup":
            lines.append(
                f"| sign-up connector, {row['requests']:,} requests in waves of {row['wave']} "
                f"| p50 {row['p50_ms']} ms, **p99 {row['p99_ms']} ms** (target < 50 ms); "
                f"handler alone p50 {row['service_p50_ms']} ms / p99 "
                f"{row['service_p99_ms']} ms; {row['requests_per_s']:,} requests/s; {row['key_fetches']} key fetch |"
            )
    return lines if len(lines) > 2 else []


def _budget_table(rows: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| workload | peer | processes | budget used | at most, with its start and end | answers 429 (share) | lost "
        "| unfinished | wall time | CPU per item |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        product = row["strategy"] == "product"
        bold = (lambda text: f"**{text}**") if product else (lambda text: text)
        lost = "?" if row.get("lost") is None else f"{row['lost']:,}"
        cpu = "" if row.get("cpu_ms_per_item") is None else f"{row['cpu_ms_per_item']} ms"
        throttled = f"{row['throttled_429']:,} ({100 * row['throttled_share']:.1f} %)"
        peer = PEERS.get(row["strategy"], row["strategy"])
        if product:
            peer += f", {row['concurrency']} at a time" + (" (host.json)" if row.get("deployed") else "")
        lines.append(
            f"| {_workload(row)} | {peer} | {row['workers']} "
            f"| {bold(row['budget_used'])} | {_ceiling(row)} | {bold(throttled)} "
            f"| {bold(lost)} | {row['unfinished']:,} | {row['wall_s']} s | {cpu} |"
        )
    return lines


def _ceiling(row: dict[str, Any]) -> str:
    """The budget used the row could reach with its measured start and end (bench.graph_budget_bench)."""
    if row.get("ceiling") is None:
        return ""
    return f"{row['ceiling']} ({row['first_binding_s']} s / {row['after_last_binding_s']} s)"


def _workload(row: dict[str, Any]) -> str:
    if row["workload"] == "sweep":
        return f"sweep, {row['items']:,} disables ({row['refill_per_s']:g} writes/s)"
    return f"{row['items']:,} invitations ({row['refill_per_s']:g}/s)"


def _verdicts(rows: list[dict[str, Any]]) -> list[str]:
    """Each target, met or not, with the figure that decides it."""
    product = [r for r in rows if r["strategy"] == "product" and r.get("deployed", True)]
    if not product:
        return []
    lines = [f"Targets, for the product as deployed ({product[0].get('concurrency')} messages at a time per instance):"]
    used = [r["budget_used"] for r in product]
    lines.append(
        f"- Product rows at ≥ {TARGET_PRODUCT} of the budget at every process count: "
        f"{_met(min(used) >= TARGET_PRODUCT)} ({min(used)} to {max(used)})."
    )
    share = max(r["throttled_share"] for r in product)
    lines.append(f"- At most 1 % of requests answered 429: {_met(share <= TARGET_429)} (at most {100 * share:.1f} %).")
    lost = sum(r["lost"] or 0 for r in product)
    lines.append(f"- Nothing lost: {_met(lost == 0 and all(r['lost'] is not None for r in product))} ({lost} lost).")
    for workload, name in (("invitations", "invitation"), ("sweep", "write")):
        # Decided by the one-process row with the most messages at a time: the CPU's limit, not host.json's.
        alone = [r for r in rows if r["strategy"] == "product" and r["workload"] == workload and r["workers"] == 1]
        if alone:
            row = max(alone, key=lambda r: r.get("concurrency", 0))
            lines.append(
                f"- One process alone at ≥ {TARGET_ALONE} of the {name} budget: "
                f"{_met(row['budget_used'] >= TARGET_ALONE)} ({row['budget_used']} with {row.get('concurrency')} "
                f"messages at a time; {row['cpu_ms_per_item']} ms of CPU per item)."
            )
    return lines


def _met(ok: bool) -> str:
    return "**met**" if ok else "**not met**"


def _planning_table(rows: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| sweep planning | page cap (signInActivity) | Graph requests | answers 429 | CPU | wall time | peak RSS |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        planning = row["planning"]
        lines.append(
            f"| {row['guests']:,} guests, {row['planned']['disable']:,} disables planned | {planning['pageCap']} "
            f"| {planning['graphRequests']:,} | {planning['throttled429']} | {planning['cpuSeconds']} s "
            f"| {planning['wallSeconds']} s | **{row['peakRssMb']} MB** (target < 200 MB) |"
        )
    return lines


def replace_block(readme: str, block: str) -> str:
    """``readme`` with the text between the bench markers replaced by ``block``."""
    start, end = readme.find(BEGIN), readme.find(END)
    if start < 0 or end < start:
        raise ValueError(f"the README has no {BEGIN} ... {END} block")
    return readme[: start + len(BEGIN)] + "\n" + block + readme[end:]


def main(paths: Iterable[str], readme: str | None, command: str, date: str) -> int:
    rows = [row for path in paths for row in read_results(Path(path))]
    block = render(rows, command=command, date=date)
    if readme is None:
        print(block, end="")
        return 0
    target = Path(readme)
    target.write_text(replace_block(target.read_text(encoding="utf-8"), block), encoding="utf-8")
    return 0
