"""The Graph origin: which URLs get the token and which links the product follows."""

from __future__ import annotations

import pytest

from graph.origin import GraphOrigin
from lifecycle.errors import UntrustedLinkError

GRAPH = GraphOrigin.of("https://graph.microsoft.com/v1.0")
LOCAL = GraphOrigin.of("http://127.0.0.1:8765/v1.0")


@pytest.mark.parametrize(
    "link",
    [
        "https://graph.microsoft.com/v1.0/users?$skiptoken=X",
        "https://graph.microsoft.com:443/v1.0/users?$skiptoken=X",
        "https://GRAPH.microsoft.com/v1.0/groups/1/transitiveMembers/microsoft.graph.user?$skiptoken=Y",
    ],
)
def test_a_link_under_the_configured_graph_base_is_followed(link):
    """Graph's own next links (any case of the host, the default port spelled out) pass unchanged."""
    assert GRAPH.check_link(link) == link


@pytest.mark.parametrize(
    ("link", "reason"),
    [
        ("https://graph.microsoft.com.evil.example/v1.0/users", "another scheme, host or port"),
        ("http://graph.microsoft.com/v1.0/users", "another scheme, host or port"),
        ("https://graph.microsoft.com:8443/v1.0/users", "another scheme, host or port"),
        ("https://token@graph.microsoft.com/v1.0/users", "another scheme, host or port"),
        ("https://graph.microsoft.com/beta/users", "not under /v1.0/"),
        ("https://graph.microsoft.com/v1.0x/users", "not under /v1.0/"),
        ("https://graph.microsoft.com/v1.0/../beta/users", "dot segments"),
        ("https://graph.microsoft.com/v1.0/%2E%2E/beta/users", "dot segments"),
        ("https://graph.microsoft.com/v1.0\\..\\beta/users", "backslashes"),
        ("https://graph.microsoft.com/v1.0/users\n", "control characters"),
        ("https://graph.microsoft.com/v1.0/users#x", "fragment"),
        ("/v1.0/users", "another scheme, host or port"),
        ("", "empty"),
    ],
)
def test_a_link_off_the_graph_base_is_refused_with_the_reason(link, reason):
    """Another host, scheme, port, user information, version root, dot segments (raw or encoded),
    backslashes, control characters or a fragment: refused, the reason says which."""
    with pytest.raises(UntrustedLinkError, match="refused to follow") as caught:
        GRAPH.check_link(link)
    assert reason in str(caught.value) and caught.value.code == "untrusted-link"


def test_a_local_origin_is_bound_to_its_port():
    """On a local stack another loopback port is another origin."""
    assert LOCAL.owns("http://127.0.0.1:8765/v1.0/users")
    assert not LOCAL.owns("http://127.0.0.1:8766/v1.0/users")
    assert not LOCAL.owns("http://localhost:8765/v1.0/users")


def test_the_refusal_does_not_repeat_the_skip_token():
    """The message names the link without its query: a skip token is not written to logs and audit."""
    with pytest.raises(UntrustedLinkError) as caught:
        GRAPH.check_link("https://evil.example/v1.0/users?$skiptoken=secret")
    assert "secret" not in str(caught.value)
