"""The real msgraph-sdk against tenantsim: typed models, paging with PageIterator, errors as ODataError.

kiota sends tokens over plain http only to loopback hosts, which 127.0.0.1 is."""

from __future__ import annotations

import pytest
from azure.core.credentials import AccessToken
from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph import GraphServiceClient
from msgraph.generated.models.invitation import Invitation
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.users.users_request_builder import UsersRequestBuilder
from msgraph_core import PageIterator

from tests.tenantsim.conftest import guests


class StaticCredential:
    def __init__(self, token: str) -> None:
        self.token = token

    async def get_token(self, *scopes: str, **kwargs) -> AccessToken:
        return AccessToken(self.token, 4102444800)

    async def close(self) -> None:
        return None


def client_for(server, admin, roles) -> GraphServiceClient:
    client = GraphServiceClient(
        StaticCredential(admin.token(list(roles))), scopes=["https://graph.microsoft.com/.default"]
    )
    client.request_adapter.base_url = f"{server.url}/v1.0"
    return client


async def test_the_sdk_pages_through_guests_with_page_iterator(server, admin):
    """PageIterator follows tenantsim's nextLinks through every guest."""
    client = client_for(server, admin, ("User.Read.All",))
    query = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(
        filter="userType eq 'Guest'", select=["id", "mail", "externalUserState"], top=7
    )
    first = await client.users.get(RequestConfiguration(query_parameters=query))
    seen: list[str] = []
    iterator = PageIterator(first, client.request_adapter)

    def collect(user) -> bool:
        seen.append(user.id)
        return True

    await iterator.iterate(collect)
    assert sorted(seen) == sorted(g["id"] for g in guests(admin))


async def test_the_sdk_invites_and_surfaces_graph_errors(server, admin):
    """Invitation round-trips through the SDK; a 403 becomes ODataError with Graph's code."""
    client = client_for(server, admin, ("User.Invite.All",))
    created = await client.invitations.post(
        Invitation(
            invited_user_email_address="sdk.user@fabrikam.com", invite_redirect_url="https://myapps.microsoft.com"
        )
    )
    assert created.invited_user.id and created.status == "PendingAcceptance"
    with pytest.raises(ODataError) as caught:
        await client.users.get()
    assert caught.value.response_status_code == 403
    assert caught.value.error.code == "Authorization_RequestDenied"
