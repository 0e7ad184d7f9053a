"""The contract table's index: its rows read from tenantsim/contract/*.md, and the list of what remains
undocumented, generated into tenantsim/contract/README.md so it never drifts from the rows.

    python -m tenantsim.contract_index            # print the undocumented list
    python -m tenantsim.contract_index --write    # rewrite it in tenantsim/contract/README.md
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, fields
from pathlib import Path

from tenantsim.config import SimConfig

CONTRACT = Path(__file__).resolve().parent / "contract"
COLUMNS = ("behaviour", "tenantsim", "source", "test")
START, END = "<!-- undocumented:start -->", "<!-- undocumented:end -->"


@dataclass(frozen=True)
class Row:
    area: str
    line: int
    cells: dict[str, str]

    @property
    def undocumented(self) -> bool:
        return "undocumented:" in self.cells["source"]


def rows() -> list[Row]:
    found: list[Row] = []
    for path in sorted(CONTRACT.glob("*.md")):
        if path.name == "README.md":
            continue
        header: list[str] | None = None
        for number, text in enumerate(path.read_text().splitlines(), start=1):
            if not text.startswith("|"):
                header = None
                continue
            cells = [cell.strip() for cell in text.strip().strip("|").split("|")]
            if header is None:
                header = [cell.lower() for cell in cells]
                continue
            if set("".join(cells)) <= set("-: "):
                continue
            if tuple(header) == COLUMNS and len(cells) == len(COLUMNS):
                found.append(Row(path.stem, number, dict(zip(COLUMNS, cells, strict=True))))
    return found


def _knobs(text: str) -> list[str]:
    names = {_camel(f.name) for f in fields(SimConfig)}
    return sorted({word for word in re.findall(r"`?([a-z][A-Za-z]+)`?", text) if word in names})


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def undocumented_table() -> str:
    lines = ["| area | behaviour | tenantsim's choice and why | knob |", "|---|---|---|---|"]
    for row in rows():
        if not row.undocumented:
            continue
        source = row.cells["source"]
        choice = source[source.index("undocumented:") + len("undocumented:") :].strip()
        knobs = ", ".join(f"`{k}`" for k in _knobs(f"{row.cells['tenantsim']} {source}")) or "none"
        lines.append(f"| {row.area} | {row.cells['behaviour']} | {choice} | {knobs} |")
    return "\n".join(lines)


def write() -> None:
    readme = CONTRACT / "README.md"
    text = readme.read_text()
    block = f"{START}\n{undocumented_table()}\n{END}"
    if START in text:
        text = re.sub(re.escape(START) + r".*?" + re.escape(END), lambda _m: block, text, flags=re.S)
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    readme.write_text(text)


if __name__ == "__main__":
    if "--write" in sys.argv[1:]:
        write()
    else:
        print(undocumented_table())
