"""GraphDirectory.add_sponsor settles Graph's answer to a sponsor already there by state, never by wording.

user-post-sponsors.md does not document that answer; a 400 Request_BadRequest is what is observed, and it is
also Graph's answer to every malformed request. These tests give the gateway a Graph that refuses with some
wording and check the decision rests on the sponsors read back.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from kiota_abstractions.method import Method

from graph.users import GraphDirectory
from lifecycle.errors import BadRequestError

GUEST, SPONSOR = "guest-1", "sponsor-1"


class RefusingGraph:
    """A raw Graph whose sponsors/$ref POST is refused with 400 and whose sponsors list is ``sponsors``."""

    v1 = "https://graph.microsoft.com/v1.0"

    def __init__(self, sponsors: set[str], wording: str) -> None:
        self.sponsors = sponsors
        self.wording = wording

    async def send(self, method: Method, url: str, body: Any = None) -> Any:
        assert method is Method.POST and url.endswith(f"/users/{GUEST}/sponsors/$ref")
        raise BadRequestError(f"Graph answered 400 Request_BadRequest: {self.wording}", status=400)

    async def collection(self, url: str) -> list[dict[str, Any]]:
        assert url.endswith(f"/users/{GUEST}/sponsors?$select=id")
        return [{"id": s} for s in self.sponsors]


def _directory(raw: RefusingGraph) -> GraphDirectory:
    client = SimpleNamespace(request_adapter=SimpleNamespace(base_url=raw.v1))
    directory = GraphDirectory(client)  # type: ignore[arg-type]
    directory._raw = raw  # type: ignore[assignment]
    return directory


@pytest.mark.parametrize(
    "wording",
    [
        "One or more added object references already exist for the following modified properties: 'sponsors'.",
        "The sponsor is already assigned.",
    ],
)
async def test_a_400_for_a_sponsor_already_there_is_false_whatever_its_wording(wording: str) -> None:
    assert await _directory(RefusingGraph({SPONSOR}, wording)).add_sponsor(GUEST, SPONSOR) is False


async def test_a_400_naming_the_existing_reference_still_raises_when_the_sponsor_is_not_there() -> None:
    """The "already exists" wording alone proves nothing: without the sponsor listed, the refusal stands."""
    graph = RefusingGraph(set(), "One or more added object references already exist for the following ...")
    with pytest.raises(BadRequestError):
        await _directory(graph).add_sponsor(GUEST, SPONSOR)
