"""Hostile page links, as anyone who can write the runs table could store them: the sweep reads follow a
link only when it is under the configured Graph base; everything else is refused before a request is built."""

from __future__ import annotations

from typing import Any

import httpx
from azure.core.credentials import AccessToken
from hypothesis import given, settings
from hypothesis import strategies as st

from graph.client import build_graph_client
from graph.users import GraphSweepReads
from lifecycle.errors import UntrustedLinkError
from tests.fuzz.profile import FUZZ, examples

BASE = "https://graph.microsoft.com/v1.0"


class _Credential:
    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken("app-token", 4_102_444_800)


def _client() -> tuple[Any, list[httpx.Request]]:
    """The product's Graph client over a transport that records every request and answers an empty page."""
    sent: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json={"value": []})

    client = build_graph_client(credential=_Credential(), base_url=BASE, transport=httpx.MockTransport(answer))
    return client, sent


HOSTILE_PREFIXES = st.sampled_from(
    [
        "https://graph.microsoft.com.example.net/v1.0/",
        "https://graph.microsoft.com@example.net/v1.0/",
        "https://example.net/v1.0/",
        "http://graph.microsoft.com/v1.0/",
        "https://graph.microsoft.com:444/v1.0/",
        "https://graph.microsoft.com/beta/",
        "https://graph.microsoft.com/v1.0/../",
        "https://graph.microsoft.com/v1.0/%2e%2e/",
        "https://graph.microsoft.com/v1.0/.%2E/",
        "https://graph.microsoft.com/v1.0\\",
        "//example.net/v1.0/",
        "https:///v1.0/",
        "",
    ]
)


@settings(FUZZ, max_examples=examples(300))
@given(prefix=HOSTILE_PREFIXES, tail=st.text(max_size=40))
async def test_a_hostile_stored_link_is_refused_and_nothing_is_sent(prefix: str, tail: str) -> None:
    """Whatever follows a hostile prefix, the reads raise UntrustedLinkError and the adapter sees nothing."""
    client, sent = _client()
    reads = GraphSweepReads(client)
    link = prefix + tail
    try:
        async for _ in reads.guest_pages(("id",), 10, start=link or "x"):
            break
    except UntrustedLinkError:
        pass
    else:
        raise AssertionError(f"followed {link!r}")
    assert sent == []


@settings(FUZZ, max_examples=examples(100))
@given(
    tail=st.text(
        alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="\\#./%"), max_size=40
    )
)
async def test_a_link_under_the_graph_base_is_followed_as_stored(tail: str) -> None:
    """A plain link under /v1.0/ (Graph's own next links) is requested, once."""
    client, sent = _client()
    link = f"{BASE}/users?$skiptoken={tail}"
    async for _ in GraphSweepReads(client).guest_pages(("id",), 10, start=link):
        break
    assert [str(r.url.host) for r in sent] == ["graph.microsoft.com"]
    assert sent[0].headers["Authorization"] == "Bearer app-token"
