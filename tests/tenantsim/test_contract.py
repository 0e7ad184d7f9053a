"""tenantsim's contract table: every row cites its source and names tests that exist.

The table lives in tenantsim/contract/*.md (one file per Graph area). A row whose behaviour rests on
nothing, or whose test was renamed away, fails here rather than going stale silently.
"""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

import pytest

from tenantsim import contract_index
from tenantsim.contract_index import Row

ROOT = Path(__file__).resolve().parents[2]
CONTRACT = ROOT / "tenantsim" / "contract"
SOURCE = re.compile(
    r"(api-reference/(v1\.0|beta)/(api|resources)/[\w.-]+\.md"
    r"|concepts/[\w./-]+\.md"
    r"|entra-docs:[\w./-]+\.md"
    r"|https://learn\.microsoft\.com/\S+"
    r"|^undocumented: \S)"
)
TEST_REF = re.compile(r"(tests/[\w/]+\.py)::(\w+)")


@cache
def _functions(test_file: str) -> frozenset[str]:
    tree = ast.parse((ROOT / test_file).read_text())
    return frozenset(node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef))


ROWS = contract_index.rows()


def test_the_contract_has_rows_in_every_area_file():
    areas = {path.stem for path in CONTRACT.glob("*.md")} - {"README"}
    assert areas, "no area tables under tenantsim/contract"
    assert areas == {row.area for row in ROWS}, "an area file without a row of the four columns"


@pytest.mark.parametrize("row", ROWS, ids=[f"{row.area}:{row.line}" for row in ROWS])
def test_each_row_cites_a_source_and_names_existing_tests(row: Row):
    assert row.cells["behaviour"] and row.cells["tenantsim"], "behaviour and what tenantsim does are required"
    assert SOURCE.search(row.cells["source"]), f"no Microsoft page and no 'undocumented:' reason: {row.cells}"
    references = TEST_REF.findall(row.cells["test"])
    assert references, f"no test named: {row.cells['test']!r}"
    for test_file, name in references:
        assert (ROOT / test_file).is_file(), f"{test_file} does not exist"
        assert name in _functions(test_file), f"{test_file} has no test {name}"


def test_the_undocumented_list_is_generated_from_the_rows():
    """tenantsim/contract/README.md lists exactly the rows whose source is undocumented (regenerate with
    python -m tenantsim.contract_index --write)."""
    readme = (CONTRACT / "README.md").read_text()
    block = readme[readme.index(contract_index.START) + len(contract_index.START) : readme.index(contract_index.END)]
    assert block.strip() == contract_index.undocumented_table()
