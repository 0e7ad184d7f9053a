"""docs/security.md names the tests that prove each guarantee: every file and test it names exists."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "security.md").read_text()


def _test_names() -> set[str]:
    names: set[str] = set()
    for path in (ROOT / "tests").rglob("test_*.py"):
        tree = ast.parse(path.read_text())
        names |= {
            n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        }
    return names


def test_every_test_file_the_threat_model_names_exists():
    files = set(re.findall(r"`(tests/[\w/]+\.py)`", DOC))
    assert files, "the threat model names no test file"
    assert [f for f in sorted(files) if not (ROOT / f).is_file()] == []


def test_every_test_the_threat_model_names_exists():
    named = set(re.findall(r"`(test_\w+|Test\w+)`", DOC)) - {n for n in re.findall(r"`(test_\w+)\.py`", DOC)}
    assert named, "the threat model names no test"
    assert sorted(named - _test_names()) == []


def test_the_readme_links_the_threat_model():
    assert "docs/security.md" in (ROOT / "README.md").read_text()
