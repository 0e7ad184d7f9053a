"""Parse a tenantsim body into the msgraph-sdk model and find anything the model did not absorb.

kiota's JsonParseNode puts every JSON key the model has no field for into `additional_data`. The SDK has
fields for @odata.type, @odata.nextLink and @odata.count, but keeps @odata.context in additional_data of
the root object; that one key, at the root only, is the allowed leftover.
"""

from __future__ import annotations

import json
from typing import Any

from kiota_abstractions.serialization import Parsable
from kiota_serialization_json.json_parse_node_factory import JsonParseNodeFactory

ROOT_CONTROL_ANNOTATIONS = frozenset({"@odata.context"})


def parse(body: dict[str, Any] | bytes, model: type[Parsable]) -> Any:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    node = JsonParseNodeFactory().get_root_parse_node("application/json", raw)
    return node.get_object_value(model)


def leftovers(obj: Any, path: str = "$", root: bool = True) -> list[str]:
    """Every key in additional_data anywhere in the parsed object tree (except root @odata.context)."""
    found: list[str] = []
    if isinstance(obj, list):
        for index, item in enumerate(obj):
            found += leftovers(item, f"{path}[{index}]", root=False)
        return found
    additional = getattr(obj, "additional_data", None)
    if additional is None:
        return found
    allowed = ROOT_CONTROL_ANNOTATIONS if root else frozenset()
    found += [f"{path}.{key}" for key in additional if key not in allowed]
    for name, value in vars(obj).items():
        if name != "additional_data" and value is not None and not isinstance(value, str | int | float | bool):
            found += leftovers(value, f"{path}.{name}", root=False)
    return found


def assert_absorbed(body: dict[str, Any], model: type[Parsable]) -> Any:
    parsed = parse(body, model)
    assert leftovers(parsed) == [], f"keys the {model.__name__} model does not know: {leftovers(parsed)}"
    return parsed
