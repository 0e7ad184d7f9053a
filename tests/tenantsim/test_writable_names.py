"""The properties tenantsim accepts in a create or update body are properties of the type Graph names.

Every ``writable_body(body, FIELDS, "type")`` call in tenantsim is found in the source; FIELDS must be JSON
names of that type in msgraph-sdk's models, which are generated from Graph's v1.0 metadata.
"""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

TENANTSIM = Path(__file__).resolve().parents[2] / "tenantsim"


def _writable_calls() -> list[tuple[str, str, tuple[str, ...]]]:
    found = []
    for path in sorted(TENANTSIM.rglob("*.py")):
        tree = ast.parse(path.read_text())
        module = ".".join(path.relative_to(TENANTSIM.parent).with_suffix("").parts)
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and getattr(node.func, "id", None) == "writable_body"):
                continue
            fields_node, type_node = node.args[1], node.args[2]
            assert isinstance(type_node, ast.Constant), f"{path}:{node.lineno} names its type as a literal"
            if isinstance(fields_node, ast.Name):
                fields = tuple(getattr(importlib.import_module(module), fields_node.id))
            else:
                fields = tuple(ast.literal_eval(fields_node))
            found.append((f"{path.name}:{node.lineno}", type_node.value, fields))
    return found


def _json_names(type_name: str) -> set[str]:
    snake = re.sub(r"(?<!^)(?=[A-Z])", "_", type_name).lower()
    module = importlib.import_module(f"msgraph.generated.models.{snake}")
    model = getattr(module, type_name[0].upper() + type_name[1:])
    return set(model().get_field_deserializers())


CALLS = _writable_calls()
# Names Microsoft's own request examples send that the v1.0 metadata lacks: each has its contract row.
OUTSIDE_METADATA = {("accessReviewScheduleDefinition", "backupReviewers"): "access-reviews.md"}


def test_every_create_and_update_handler_is_checked():
    assert len(CALLS) >= 12


@pytest.mark.parametrize(("where", "type_name", "fields"), CALLS, ids=[c[0] for c in CALLS])
def test_accepted_properties_are_the_types_own(where: str, type_name: str, fields: tuple[str, ...]):
    foreign = set(fields) - _json_names(type_name)
    for name in sorted(foreign):
        row = OUTSIDE_METADATA.get((type_name, name))
        assert row, f"{where} accepts {name}, which {type_name} does not have"
        assert f"`{name}`" in (TENANTSIM / "contract" / row).read_text(), f"{row} has no row for {name}"
