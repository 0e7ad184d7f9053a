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


PRODUCTION = ("lifecycle", "adapters", "graph", "config", "app")
# Core modules over the line on purpose; the README's architecture section says why for each.
LONG_ON_PURPOSE = {"sweep/rules.py", "governance/planner.py", "export/governance.py"}
CORE_MODULE_LINES = 320


def _module_graph() -> dict[str, set[str]]:
    """Production module -> the production modules it imports by absolute name (``from a.b import c`` counts
    a.b, and a.b.c when c is a module)."""
    modules: dict[str, Path] = {}
    for package in PRODUCTION:
        for path in (ROOT / package).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            modules[name] = path
    edges: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
            elif isinstance(node, ast.Import):
                found = [alias.name for alias in node.names]
            else:
                continue
            edges[name].update(f for f in found if f in modules and f != name)
    return edges


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_production_code_has_no_import_cycle():
    """No two production modules import each other, directly or around a loop (a function-level import
    to dodge one counts too: it is still a cycle a reader has to untangle)."""
    assert _cycles(_module_graph()) == []


def test_the_cycle_finder_finds_a_loop():
    """The check above can fail: a loop of three is reported, a chain is not."""
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def test_core_modules_stay_small_unless_the_readme_says_why():
    """Every module in lifecycle/ is under ~300 lines, but for the few the README names with a reason."""
    long = {
        str(path.relative_to(ROOT / "lifecycle")): lines
        for path in (ROOT / "lifecycle").rglob("*.py")
        if (lines := len(path.read_text().splitlines())) > CORE_MODULE_LINES
    }
    assert set(long) <= LONG_ON_PURPOSE, long
    readme = (ROOT / "README.md").read_text()
    assert all(f"`lifecycle/{name}`" in readme for name in LONG_ON_PURPOSE)
