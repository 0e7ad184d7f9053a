"""The report as local files (the command line's ``report``): written whole or not at all, and a failed run
never leaves the previous report looking current."""

from __future__ import annotations

import html
import os
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

from lifecycle.markdown import md
from lifecycle.report import Posture, to_html, to_markdown

REPORT_NAMES = {"html": "guest-posture.html", "markdown": "guest-posture.md"}
LAST_GOOD_NAMES = {"html": "guest-posture.last-good.html", "markdown": "guest-posture.last-good.md"}


def write_report(posture: Posture, out: Path) -> dict[str, Any]:
    """Write guest-posture.html and guest-posture.md into ``out``; returns their paths and the totals.

    Both are rendered before either is written, and each is written to a temporary file that then replaces
    the old one: a reader sees the old report or the new one, never half of one, and never a new HTML beside
    an old markdown because the second rendering failed."""
    out.mkdir(parents=True, exist_ok=True)
    texts = {"html": to_html(posture), "markdown": to_markdown(posture)}
    paths = {kind: out / name for kind, name in REPORT_NAMES.items()}
    for kind, text in texts.items():
        _replace(paths[kind], text)
    return {"html": str(paths["html"]), "markdown": str(paths["markdown"]), "totals": dict(posture.totals)}


def write_failure(out: Path, when: datetime, error: str) -> dict[str, str]:
    """A report that failed must not leave the previous one looking current: the previous report moves to
    guest-posture.last-good.* and guest-posture.* say when and why this one failed. Returns the paths."""
    out.mkdir(parents=True, exist_ok=True)
    kept: dict[str, str] = {}
    for kind, name in REPORT_NAMES.items():
        current, last_good = out / name, out / LAST_GOOD_NAMES[kind]
        if current.exists() and not _is_failure_notice(current):
            current.replace(last_good)
        if last_good.exists():
            kept[kind] = str(last_good)
    stamp = f"{when:%Y-%m-%d %H:%M} UTC"
    where = f"the last good report is {LAST_GOOD_NAMES['html']}" if "html" in kept else "there is no earlier report"
    text = f"The guest-posture report of {stamp} failed: {error}. Nothing below is current; {where}."
    _replace(
        out / REPORT_NAMES["html"],
        f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>Guest posture report failed</title>'
        f"</head><body>\n<h1>{FAILURE_TITLE}</h1>\n<p>{html.escape(text)}</p>\n</body></html>\n",
    )
    _replace(out / REPORT_NAMES["markdown"], f"# {FAILURE_TITLE}\n\n{md(text)}\n")
    return {
        "html": str(out / REPORT_NAMES["html"]),
        "markdown": str(out / REPORT_NAMES["markdown"]),
        **{f"lastGood{kind.title()}": path for kind, path in kept.items()},
    }


FAILURE_TITLE = "Guest posture report failed"


def _is_failure_notice(path: Path) -> bool:
    return FAILURE_TITLE in path.read_text(encoding="utf-8", errors="replace")[:400]


def _replace(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically: a temporary file beside it, flushed, then renamed over it."""
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
