"""The Graph request bodies the README shows are accepted by tenantsim, with exactly the product's grant
(redemption reset switched on, so its User.ReadWrite.All included, and every opt-in feature's grant)."""

from __future__ import annotations

import json
import re

import pytest

from config.settings import ROOT
from graph.permissions import FEATURE_PERMISSIONS, granted

EXAMPLE = re.compile(r"<!-- graph: (?P<method>[A-Z]+) (?P<path>\S+) -->\n```json\n(?P<body>.*?)\n```", re.S)


def _examples() -> list[tuple[str, str, str]]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return [(m["method"], m["path"], m["body"]) for m in EXAMPLE.finditer(text)]


def test_the_readme_carries_graph_examples():
    """The README's examples are found (a renamed marker would otherwise silently test nothing)."""
    assert len(_examples()) >= 6


@pytest.mark.parametrize(("method", "path", "body"), _examples(), ids=lambda v: v if isinstance(v, str) else "")
def test_each_readme_example_is_accepted(graph, admin, method, path, body):
    """Each example, with a seeded guest and sponsor filled in, gets a 2xx from tenantsim."""
    users = admin.snapshot()["users"]
    guest = next(u for u in users if u["userType"] == "Guest" and u.get("externalUserState") == "Accepted")
    sponsor = next(u for u in users if u["userType"] == "Member")
    values = {"{guestId}": guest["id"], "{guestMail}": guest["mail"], "{sponsorId}": sponsor["id"]}
    for placeholder, value in values.items():
        body, path = body.replace(placeholder, value), path.replace(placeholder, value)
    roles = tuple(sorted(granted(redemption_reset=True, features=FEATURE_PERMISSIONS)))
    response = graph.request(method, path, roles=roles, json=json.loads(body))
    assert 200 <= response.status_code < 300, response.text
