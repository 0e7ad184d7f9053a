"""Deciding before the tenant changes: the list of who and what a command will change, by name, its CSV or
JSON export, and the typed confirmation (``--yes`` for scripts; no terminal and no ``--yes`` is refused)."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from app.cli.common import ExitCode, cell, console, fail

YesOption = Annotated[
    bool, typer.Option("--yes", help="Confirm without the typed prompt (scripts): the list is still printed.")
]
ExportOption = Annotated[
    Path | None,
    typer.Option("--export", dir_okay=False, help="Also write the list of changes to FILE.csv or FILE.json."),
]
EXPORTS = (".csv", ".json")


def check_export(path: Path | None) -> None:
    """Refuse an export name the command cannot write before anything is read or changed."""
    if path is not None and path.suffix.lower() not in EXPORTS:
        raise typer.BadParameter(f"{path.name}: the export is a .csv or a .json file", param_hint="--export")


def interactive() -> bool:
    """Whether a person can answer the prompt (stdin is a terminal)."""
    return sys.stdin.isatty()


def export(rows: Sequence[dict[str, Any]], columns: Sequence[str], path: Path) -> None:
    if path.suffix.lower() == ".json":
        path.write_text(json.dumps([{c: r.get(c) for c in columns} for r in rows], indent=2, default=str) + "\n")
        return
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        writer.writerows({c: "" if r.get(c) is None else r.get(c) for c in columns} for r in rows)


def decide(
    title: str,
    rows: Sequence[dict[str, Any]],
    columns: Sequence[str],
    phrase: str,
    *,
    yes: bool,
    export_to: Path | None,
    command: str,
    as_json: bool = False,
) -> None:
    """Show ``rows`` (and export them), then go on only when the operator typed ``phrase`` or passed --yes.

    Without a terminal and without --yes the command is refused (exit 64): a script that forgot --yes must
    not hang on a prompt, nor act on nobody's decision. With ``as_json`` the list goes to stderr, so stdout
    stays the command's JSON.
    """
    shown = Console(stderr=True, soft_wrap=True) if as_json else console
    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(cell("-" if row.get(c) in (None, "") else row.get(c)) for c in columns))
    shown.print(table)
    if export_to is not None:
        export(rows, columns, export_to)
        shown.print(f"the list is in {export_to}", markup=False, highlight=False)
    if yes:
        return
    if not interactive():
        raise fail(
            ExitCode.USAGE,
            f"{command} changes the tenant and asks for a typed confirmation, but there is no terminal",
            "read the list (--export FILE.csv keeps it) and pass --yes to confirm from a script",
        )
    answer = typer.prompt(f'type "{phrase}" to go on', default="", show_default=False)
    if answer.strip() != phrase:
        raise fail(ExitCode.FAILED, "not confirmed; nothing was changed", f'type exactly "{phrase}" or pass --yes')
