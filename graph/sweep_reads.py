"""The sweep's Graph reads: guest pages and re-reads parsed straight from JSON, and the protected group.

Both go through the SDK's request adapter (auth, base URL, middleware, ODataError mapping), so they behave
like every other Graph call of the product; only the parsing is their own.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from graph.errors import map_graph_error
from graph.origin import GraphOrigin
from lifecycle.errors import GraphError, NotFoundError
from lifecycle.models import DirectoryUser, SignInActivity
from lifecycle.sweep.ports import SignInActivityUnavailable

# Graph's answer (403) to signInActivity in a tenant without a Microsoft Entra ID P1/P2 licence, as
# Microsoft's troubleshooting article "Neither tenant is B2C or tenant doesn't have premium license" gives it.
NON_PREMIUM_TENANT = "Authentication_RequestFromNonPremiumTenantOrB2CTenant"


def licence_refusal(error: GraphError) -> SignInActivityUnavailable | None:
    """The sweep's own error for Graph's no-licence refusal of signInActivity; None for any other failure."""
    if error.status == 403 and error.code == NON_PREMIUM_TENANT:
        return SignInActivityUnavailable(f"no Microsoft Entra ID P1/P2 licence: {error}")
    return None


class GraphGroupMembers:
    """The protected group's users over Graph, nested groups included
    (GET /groups/{id}/transitiveMembers/microsoft.graph.user?$select=id&$count=true, paged). Needs
    GroupMember.ReadBasic.All, the least privileged permission for transitive members.

    Transitive, because an administrator who protects a group of groups means everyone in it: reading direct
    members only would leave a guest in a nested group open to disable and delete. The OData cast on a
    transitive members list is an advanced query (concepts/aad-advanced-queries.md): it needs the
    ``ConsistencyLevel: eventual`` header and ``$count=true``, else Graph answers 400.
    """

    def __init__(self, client: Any) -> None:
        self._client = client

    async def group_member_ids(self, group_id: str) -> set[str]:
        from kiota_abstractions.base_request_configuration import RequestConfiguration
        from kiota_abstractions.headers_collection import HeadersCollection
        from msgraph.generated.groups.item.transitive_members.graph_user.graph_user_request_builder import (
            GraphUserRequestBuilder,
        )

        origin = GraphOrigin.of(self._client.request_adapter.base_url)
        users = self._client.groups.by_group_id(group_id).transitive_members.graph_user
        query = GraphUserRequestBuilder.GraphUserRequestBuilderGetQueryParameters(select=["id"], top=999, count=True)
        headers = HeadersCollection()
        headers.add("ConsistencyLevel", "eventual")  # every page, the nextLink ones too
        found: set[str] = set()
        try:
            page = await users.get(RequestConfiguration(query_parameters=query, headers=headers))
            while page is not None:
                found.update(m.id for m in page.value or [] if m.id)
                if not page.odata_next_link:
                    break
                link = origin.check_link(page.odata_next_link, what="@odata.nextLink")
                page = await users.with_url(link).get(RequestConfiguration(headers=headers))
        except Exception as error:
            raise map_graph_error(error) from error
        return found

    async def groups_containing(self, object_id: str, group_ids: list[str]) -> set[str]:
        """Which of ``group_ids`` hold the object now, directly or nested: the object's own transitive
        memberships (GET /users/{id}/transitiveMemberOf?$select=id, User.Read.All), one cheap read per guest
        instead of a whole group listing, answered at the moment of the write."""
        from graph.raw import RawGraph

        raw = RawGraph(self._client)
        url = f"{raw.v1}/users/{quote(object_id, safe='')}/transitiveMemberOf?$select=id&$top=999"
        wanted = {g.lower() for g in group_ids}
        held = {str(item.get("id", "")).lower() for item in await raw.collection(url)}
        return wanted & held


class GraphSweepReads:
    """Guest enumeration and re-reads for the sweep, parsed straight from Graph's JSON.

    The SDK's model parsing costs about 8 ms of CPU per user object (msgraph's field-deserializer maps
    are rebuilt per object), which is 800 CPU seconds for 100,000 guests. These reads go through the same
    request adapter (auth, base URL, middleware, ODataError mapping) but parse the JSON body directly.
    """

    USER_SELECT = (
        "id",
        "userType",
        "displayName",
        "mail",
        "userPrincipalName",
        "accountEnabled",
        "createdDateTime",
        "externalUserState",
        "externalUserStateChangeDateTime",
        "signInActivity",
    )

    def __init__(self, client: Any) -> None:
        self._client = client
        self._base = client.request_adapter.base_url.rstrip("/")
        self._origin = GraphOrigin.of(self._base)
        self._user_select = ",".join(self.USER_SELECT)
        # Cleared when Graph refuses signInActivity for want of a licence: re-reads then go without it.
        self._sign_in_activity = True

    async def _json(self, request: Any) -> dict[str, Any]:
        from msgraph.generated.models.o_data_errors.o_data_error import ODataError

        try:
            raw = await self._client.request_adapter.send_primitive_async(request, "bytes", {"XXX": ODataError})
        except Exception as error:
            mapped = map_graph_error(error)
            raise (licence_refusal(mapped) or mapped) from error
        return json.loads(raw) if raw else {}

    async def list_guests(self, select: Sequence[str], page_size: int = 999) -> AsyncIterator[list[DirectoryUser]]:
        async for page, _ in self.guest_pages(select, page_size):
            yield page

    async def guest_pages(
        self, select: Sequence[str], page_size: int, start: str | None = None
    ) -> AsyncIterator[tuple[list[DirectoryUser], str | None]]:
        """Pages of guests with the @odata.nextLink after each; ``start`` continues from such a link.

        ``start`` comes back from Table Storage, which more principals can write than can call Graph: it is
        followed only when it is a link under the configured Graph base (graph.origin), else
        UntrustedLinkError is raised before any request, so the token never leaves for a planted address.
        Graph's own next links are held to the same rule."""
        from kiota_abstractions.base_request_configuration import RequestConfiguration
        from msgraph.generated.users.users_request_builder import UsersRequestBuilder

        if start:
            link = self._origin.check_link(start, what="stored page link")
            link = self._origin.check_link(link, what="@odata.nextLink")
            request = self._client.users.with_url(link).to_get_request_information()
        else:
            query = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(
                filter="userType eq 'Guest'", select=list(select), top=page_size
            )
            request = self._client.users.to_get_request_information(RequestConfiguration(query_parameters=query))
        while True:
            body = await self._json(request)
            link = body.get("@odata.nextLink")
            yield [user_from_json(u) for u in body.get("value", [])], link
            if not link:
                return
            link = self._origin.check_link(link, what="@odata.nextLink")
            request = self._client.users.with_url(link).to_get_request_information()

    async def get_user(self, user_id: str) -> DirectoryUser | None:
        """One guest, re-read right before acting. The URL is built here rather than by the SDK's request
        builder: expanding its URI template costs more CPU than the rest of the request on the worker's path."""
        from kiota_abstractions.method import Method
        from kiota_abstractions.request_information import RequestInformation

        def request_for(select: Sequence[str]) -> Any:
            request = RequestInformation(Method.GET)
            request.url = f"{self._base}/users/{quote(user_id, safe='')}?$select={','.join(select)}"
            request.headers.try_add("Accept", "application/json")
            return request

        without = [name for name in self.USER_SELECT if name != "signInActivity"]
        try:
            try:
                body = await self._json(request_for(self.USER_SELECT if self._sign_in_activity else without))
            except SignInActivityUnavailable:
                # The guest is still read; the worker falls back on the plan's view of its last sign-in.
                self._sign_in_activity = False
                body = await self._json(request_for(without))
        except NotFoundError:
            return None
        return user_from_json(body)


def _moment(value: Any) -> datetime | None:
    """Graph's empty sign-in value is 0001-01-01: that means "never", not "infinitely old"."""
    if not value:
        return None
    moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return None if moment.year <= 1 else moment


def user_from_json(data: dict[str, Any]) -> DirectoryUser:
    activity = data.get("signInActivity")
    return DirectoryUser(
        id=data.get("id") or "",
        user_type=data.get("userType"),
        display_name=data.get("displayName"),
        mail=data.get("mail"),
        user_principal_name=data.get("userPrincipalName"),
        account_enabled=data.get("accountEnabled"),
        external_user_state=data.get("externalUserState"),
        external_user_state_changed=_moment(data.get("externalUserStateChangeDateTime")),
        created=_moment(data.get("createdDateTime")),
        other_mails=tuple(data.get("otherMails") or ()),
        sign_in_activity=SignInActivity(
            last_sign_in=_moment(activity.get("lastSignInDateTime")),
            last_non_interactive_sign_in=_moment(activity.get("lastNonInteractiveSignInDateTime")),
            last_successful_sign_in=_moment(activity.get("lastSuccessfulSignInDateTime")),
        )
        if isinstance(activity, dict)
        else None,
    )
