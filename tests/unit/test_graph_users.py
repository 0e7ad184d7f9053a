"""graph.users: the one JSON user mapper and the guest reads, as they go out on the wire.

The reads build their own URLs and parse Graph's JSON themselves (graph.raw.RawGraph), so these tests record
the HTTP requests the product's real Graph client sends over a transport that answers like Graph.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from azure.core.credentials import AccessToken

from graph.client import build_graph_client
from graph.users import NON_PREMIUM_TENANT, GraphDirectory, GraphSweepReads, user_from_json
from lifecycle.errors import PermissionDeniedError, ThrottledError
from lifecycle.models import ObjectIdentity
from lifecycle.sweep.ports import SignInActivityUnavailable

# Not Graph's public host: a URL the adapter did not build from the configured base would show here.
BASE = "http://127.0.0.1:8123/v1.0"
GUEST = {"id": "g1", "userType": "Guest", "mail": "ada@partner.example", "createdDateTime": "2026-01-02T03:04:05Z"}


class _Credential:
    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken("app-token", 4_102_444_800)


def _client(answer: Callable[[httpx.Request], httpx.Response]) -> tuple[Any, list[httpx.Request]]:
    sent: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return answer(request)

    return build_graph_client(credential=_Credential(), base_url=BASE, transport=httpx.MockTransport(record)), sent


def _refusal(code: str, status: int = 403) -> httpx.Response:
    return httpx.Response(status, json={"error": {"code": code, "message": "refused"}})


async def test_the_sweep_first_guest_page_goes_to_the_configured_graph_base_with_its_query() -> None:
    """The first page's URL is the request builder's expansion under the configured base, then the next link."""
    pages = {
        f"{BASE}/users?$filter=userType%20eq%20%27Guest%27&$select=id,mail&$top=2": {
            "value": [GUEST],
            "@odata.nextLink": f"{BASE}/users?$skiptoken=page2",
        },
        f"{BASE}/users?$skiptoken=page2": {"value": [{**GUEST, "id": "g2"}]},
    }
    client, sent = _client(lambda request: httpx.Response(200, json=pages[str(request.url)]))
    seen = [page async for page in GraphSweepReads(client).guest_pages(("id", "mail"), 2)]
    assert [str(r.url) for r in sent] == list(pages)
    assert [[u.id for u in users] for users, _ in seen] == [["g1"], ["g2"]]
    assert [link for _, link in seen] == [f"{BASE}/users?$skiptoken=page2", None]
    assert {r.headers["Accept"] for r in sent} == {"application/json"}


async def test_graph_no_licence_refusal_of_sign_in_activity_is_the_sweep_own_error_on_both_user_gateways() -> None:
    """403 Authentication_RequestFromNonPremiumTenantOrB2CTenant becomes SignInActivityUnavailable whether the
    guests are listed for the sweep or for the report and reset."""
    client, _ = _client(lambda request: _refusal(NON_PREMIUM_TENANT))
    with pytest.raises(SignInActivityUnavailable):
        [page async for page in GraphSweepReads(client).list_guests(("id", "signInActivity"))]
    with pytest.raises(SignInActivityUnavailable):
        [page async for page in GraphDirectory(client).list_guests(("id", "signInActivity"))]


async def test_other_refusals_of_a_guest_read_keep_their_mapped_error() -> None:
    """Only the licence refusal is translated: a missing permission stays PermissionDeniedError, a 429 stays
    ThrottledError, as graph.errors maps them."""
    client, _ = _client(lambda request: _refusal("Authorization_RequestDenied"))
    with pytest.raises(PermissionDeniedError):
        [page async for page in GraphSweepReads(client).list_guests(("id",))]
    client, _ = _client(lambda request: _refusal("TooManyRequests", status=429))
    with pytest.raises(ThrottledError):
        await GraphSweepReads(client).get_user("g1")


async def test_a_guest_re_read_without_a_licence_falls_back_to_the_read_without_sign_in_activity() -> None:
    """The first refusal of signInActivity is remembered: that read and every later one go without it."""

    def answer(request: httpx.Request) -> httpx.Response:
        if "signInActivity" in str(request.url):
            return _refusal(NON_PREMIUM_TENANT)
        return httpx.Response(200, json=GUEST)

    client, sent = _client(answer)
    reads = GraphSweepReads(client)
    first, second = await reads.get_user("g1"), await reads.get_user("g1")
    assert first is not None and second is not None and first.id == second.id == "g1"
    assert ["signInActivity" in str(r.url) for r in sent] == [True, False, False]


def test_one_mapper_reads_every_user_property_the_product_selects() -> None:
    """Identities, other mails and times map the same whichever gateway read the user; Graph's empty
    0001-01-01 and an empty value both mean no time at all."""
    user = user_from_json(
        {
            **GUEST,
            "identities": [{"signInType": "federated", "issuer": "ExternalAzureAD", "issuerAssignedId": None}],
            "otherMails": ["ada@home.example"],
            "externalUserStateChangeDateTime": "",
            "signInActivity": {"lastSignInDateTime": "0001-01-01T00:00:00Z", "lastSuccessfulSignInDateTime": None},
        }
    )
    assert user.identities == (ObjectIdentity("federated", "ExternalAzureAD", None),)
    assert user.other_mails == ("ada@home.example",)
    assert user.created == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert user.external_user_state_changed is None
    assert user.sign_in_activity is not None and user.sign_in_activity.last_sign_in is None
    assert user_from_json({"id": "g3"}).identities == ()
