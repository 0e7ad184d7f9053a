"""House rule: the core never imports Azure or Graph SDKs; it talks to ports."""

from __future__ import annotations

import ast
from pathlib import Path

from config.settings import ROOT

FORBIDDEN = ("azure", "msgraph", "kiota_", "msgraph_core", "graph")
EDGES = {"adapters", "bootstrap.py"}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_the_core_imports_no_sdk_and_no_graph_adapter():
    """Modules in lifecycle/ outside adapters/ and bootstrap.py import no azure, msgraph, kiota or graph."""
    offenders = []
    for path in (ROOT / "lifecycle").rglob("*.py"):
        relative = path.relative_to(ROOT / "lifecycle")
        if relative.parts[0] in EDGES:
            continue
        for name in _imports(path):
            if name.split(".")[0] in FORBIDDEN or name.startswith("kiota_"):
                offenders.append(f"{relative}: {name}")
    assert offenders == []
