"""House rule: the core never imports Azure or Graph SDKs; it talks to ports."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from config.settings import ROOT

FORBIDDEN = ("azure", "msgraph", "kiota_", "msgraph_core", "graph")


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_the_core_imports_no_sdk_and_no_graph_adapter():
    """No module in lifecycle/ imports azure, msgraph, kiota or graph (the import contracts in pyproject.toml
    say the same and more; this test keeps the rule visible where the suite runs)."""
    offenders = []
    for path in (ROOT / "lifecycle").rglob("*.py"):
        relative = path.relative_to(ROOT / "lifecycle")
        for name in _imports(path):
            if name.split(".")[0] in FORBIDDEN or name.startswith("kiota_"):
                offenders.append(f"{relative}: {name}")
    assert offenders == []


def test_the_import_contracts_hold():
    """pyproject.toml's [tool.importlinter] contracts: the core, config, the two edges, the outer ring and
    tenantsim import only what their layer allows (the same check `make lint` runs)."""
    result = subprocess.run(
        [str(Path(sys.executable).with_name("lint-imports")), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout[-4000:]
