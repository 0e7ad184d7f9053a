"""The $filter parser and evaluator, without a server."""

from __future__ import annotations

import pytest

from tenantsim.api.users import FILTERABLE
from tenantsim.errors import GraphError
from tenantsim.odata_filter import compile_filter, parse_filter

ALICE = {
    "id": "1",
    "userType": "Guest",
    "mail": "alice@fabrikam.com",
    "accountEnabled": True,
    "otherMails": ["Alice@Fabrikam.com"],
    "createdDateTime": "2024-05-01T00:00:00Z",
    "identities": [{"issuer": "google.com", "signInType": "federated"}],
    "userPrincipalName": "a#EXT#@c.com",
}
BOB = {
    "id": "2",
    "userType": "Member",
    "mail": "o'brien@contoso.com",
    "accountEnabled": False,
    "otherMails": [],
    "createdDateTime": "2020-01-01T00:00:00Z",
    "identities": [],
    "userPrincipalName": "b@c.com",
}


def matching(expression: str) -> list[str]:
    node, _ = parse_filter(expression)
    predicate = compile_filter(node, FILTERABLE)
    return [u["id"] for u in (ALICE, BOB) if predicate(u)]


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("userType eq 'Guest'", ["1"]),
        ("usertype EQ 'guest'", ["1"]),
        ("mail eq 'o''brien@contoso.com'", ["2"]),
        ("id in ('2', '3')", ["2"]),
        ("userType eq 'Guest' and accountEnabled eq true", ["1"]),
        ("userType eq 'Member' or mail eq 'alice@fabrikam.com'", ["1", "2"]),
        ("otherMails/any(x:x eq 'alice@fabrikam.com')", ["1"]),
        ("identities/any(i:i/issuer eq 'google.com')", ["1"]),
        ("createdDateTime ge 2023-01-01T00:00:00Z", ["1"]),
        ("startsWith(mail, 'ALICE')", ["1"]),
        ("not (userType eq 'Guest')", ["2"]),
        ("endsWith(userPrincipalName, '#EXT#@c.com')", ["1"]),
    ],
)
def test_supported_expressions_select_the_right_users(expression: str, expected: list[str]) -> None:
    """Each supported construct filters as Graph does (case-insensitive names and string values)."""
    assert matching(expression) == expected


@pytest.mark.parametrize(
    "hostile",
    [
        "mail eq 'x'' or userType eq ''Guest'",
        "mail eq 'x'') or (userType eq ''Guest'",
        "mail eq ''' or 1 eq 1 or mail eq '''",
    ],
)
def test_a_quote_inside_a_literal_never_widens_the_filter(hostile: str) -> None:
    """Doubled quotes stay inside the literal: the filter is one equality that matches nobody."""
    _node, info = parse_filter(hostile)
    assert info.properties == {"mail"}
    assert matching(hostile) == []


@pytest.mark.parametrize(
    "broken",
    [
        "mail eq 'unterminated",
        "mail eq",
        "(userType eq 'Guest'",
        "userType eq 'Guest' and",
        "mail like 'x'",
        "mail eq 'a' 'b'",
        "userType eq 'Guest'; drop",
    ],
)
def test_malformed_filters_are_refused_with_400(broken: str) -> None:
    """Anything outside the grammar is a 400, never a partial match."""
    with pytest.raises(GraphError) as caught:
        matching(broken)
    assert caught.value.status == 400


def test_an_unknown_property_is_an_unsupported_query() -> None:
    """Filtering on a property Graph cannot filter answers Request_UnsupportedQuery."""
    with pytest.raises(GraphError) as caught:
        matching("favouriteColour eq 'blue'")
    assert caught.value.code == "Request_UnsupportedQuery"


def test_ne_not_and_endswith_are_flagged_as_advanced_queries() -> None:
    """The parser reports the operators that need ConsistencyLevel: eventual and $count=true."""
    for expression in ("mail ne 'x'", "not (mail eq 'x')", "endsWith(mail, 'x')"):
        assert parse_filter(expression)[1].needs_advanced
    assert not parse_filter("mail eq 'x'")[1].needs_advanced
