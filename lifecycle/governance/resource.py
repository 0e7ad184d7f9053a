"""One desired governance object: its Graph body, what is compared, how an existing object is recognised."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

KEY_MARKER = "[governance-key: {}]"


@dataclass(frozen=True)
class DesiredResource:
    kind: str
    key: str
    body: dict[str, Any]
    # Fields compared with the tenant; a difference in ``fixed`` needs delete and create (Graph cannot update it).
    managed: tuple[str, ...]
    fixed: tuple[str, ...] = ()
    parent: str | None = None  # the key of the catalog (packages, resources) or package (policies, roles)
    match: dict[str, Any] = field(default_factory=dict)  # how an existing object is recognised
    # Child kinds this object's desired state is complete for: children of these kinds that the desired
    # state does not name are drift (a package's role scopes, the catalog's groups).
    owns: tuple[str, ...] = ()


def ref(key: str) -> dict[str, str]:
    return {"$ref": key}
