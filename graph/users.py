"""The user area of Graph: users, their sponsors and invitations, and the sweep's lean guest reads.

One mapper (``user_from_json``) turns Graph's JSON user object into a DirectoryUser for every read here.
The reads build their URL and parse the JSON answer themselves, through graph.raw.RawGraph (the SDK's
request adapter: auth, budget, middleware, OData error mapping): msgraph's model parsing rebuilds the
field-deserializer map of every entity it reads (6 to 8 ms of CPU per user object, 800 CPU seconds for
100,000 guests), and the URI-template expansion of a request builder costs more than the rest of the
request. On a queue worker and in the sweep that was most of the CPU time. Writes go through the SDK's
typed request builders.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote as url_quote
from urllib.parse import urlencode

from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_abstractions.method import Method
from msgraph import GraphServiceClient
from msgraph.generated.models.user import User
from msgraph.generated.users.users_request_builder import UsersRequestBuilder

from graph.errors import graph_call, map_graph_error
from graph.odata import quote
from graph.origin import GraphOrigin
from graph.raw import RawGraph
from lifecycle.errors import BadRequestError, ConflictError, GraphError, NotFoundError
from lifecycle.kept import KeptAnswers
from lifecycle.models import (
    DirectoryUser,
    InvitationRequest,
    InvitationResult,
    ObjectIdentity,
    SignInActivity,
    SponsorRef,
)
from lifecycle.sweep.ports import SignInActivityUnavailable

USER_FIELDS = (
    "id",
    "displayName",
    "mail",
    "userPrincipalName",
    "userType",
    "accountEnabled",
    "externalUserState",
    "externalUserStateChangeDateTime",
    "createdDateTime",
    "identities",
    "otherMails",
)
# A ticket's sponsor found to be a member is kept this long: the tickets of a bulk request name one sponsor.
# A sponsor deleted or made a guest within that time is still taken for a member by the tickets that follow.
SPONSOR_TTL_SECONDS = 120.0
# A mail that is another object's proxy address is refused (resources/user.md) with 400 Request_BadRequest,
# the code of every malformed request: the message tells them apart.
PROXY_ADDRESS_TAKEN = "same value for property proxyaddresses already exists"
# Graph's answer (403) to signInActivity in a tenant without a Microsoft Entra ID P1/P2 licence, as
# Microsoft's troubleshooting article "Neither tenant is B2C or tenant doesn't have premium license" gives it.
NON_PREMIUM_TENANT = "Authentication_RequestFromNonPremiumTenantOrB2CTenant"


def licence_refusal(error: GraphError) -> SignInActivityUnavailable | None:
    """The sweep's own error for Graph's no-licence refusal of signInActivity; None for any other failure."""
    if error.status == 403 and error.code == NON_PREMIUM_TENANT:
        return SignInActivityUnavailable(f"no Microsoft Entra ID P1/P2 licence: {error}")
    return None


async def read_users(raw: RawGraph, url: str) -> dict[str, Any]:
    """One GET of a user or a page of users as JSON (an empty body reads as ``{}``); Graph's no-licence refusal
    of signInActivity leaves as SignInActivityUnavailable, every other failure as graph.errors maps it."""
    try:
        return await raw.send(Method.GET, url) or {}
    except GraphError as error:
        refusal = licence_refusal(error)
        if refusal is None:
            raise
        raise refusal from error


async def guest_pages(
    client: GraphServiceClient,
    raw: RawGraph,
    select: Sequence[str],
    page_size: int,
    start: str | None = None,
    expand: str | None = None,
) -> AsyncIterator[tuple[list[DirectoryUser], str | None]]:
    """Pages of guests with the @odata.nextLink after each; ``start`` continues from such a link. The one
    guest listing: the sweep, the report, drift's evidence and the CLI all page through here.

    ``start`` comes back from Table Storage, which more principals can write than can call Graph: it is
    followed only when it is a link under the configured Graph base (graph.origin), else UntrustedLinkError
    is raised before any request, so the token never leaves for a planted address. Graph's own next links are
    held to the same rule. The first page's URL is the SDK's request builder's (one expansion per listing);
    ``expand`` asks for a relationship beside the properties (the sweep's sponsors)."""
    origin = GraphOrigin.of(raw.v1)
    if start:
        link = origin.check_link(start, what="stored page link")
        url = origin.check_link(link, what="@odata.nextLink")
    else:
        query = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(
            filter="userType eq 'Guest'", select=list(select), top=page_size, expand=[expand] if expand else None
        )
        request = client.users.to_get_request_information(RequestConfiguration(query_parameters=query))
        request.path_parameters["baseurl"] = client.request_adapter.base_url  # as the adapter sets it
        url = request.url
    while True:
        body = await read_users(raw, url)
        link = body.get("@odata.nextLink")
        yield [user_from_json(u) for u in body.get("value", [])], link
        if not link:
            return
        url = origin.check_link(link, what="@odata.nextLink")


def _is_member(user: DirectoryUser | None) -> bool:
    return user is not None and user.user_type == "Member"


class GraphDirectory:
    def __init__(self, client: GraphServiceClient, clock: Callable[[], float] = time.monotonic) -> None:
        self._client = client
        self._raw = RawGraph(client)
        self._select = ",".join(USER_FIELDS)
        self._sponsors: KeptAnswers[str, DirectoryUser | None] = KeptAnswers(
            SPONSOR_TTL_SECONDS, keep=_is_member, clock=clock
        )

    async def find_user_by_mail(self, email: str) -> DirectoryUser | None:
        query = urlencode(
            {"$filter": f"mail eq {quote(email)}", "$select": self._select, "$top": "2"}, quote_via=url_quote
        )
        page = await self._raw.send(Method.GET, f"{self._raw.v1}/users?{query}") or {}
        users = [user_from_json(u) for u in page.get("value") or []]
        return users[0] if users else None

    async def get_user(self, user_id: str) -> DirectoryUser | None:
        url = f"{self._raw.v1}/users/{url_quote(user_id, safe='@')}?$select={self._select}"
        try:
            user = await self._raw.send(Method.GET, url)
        except NotFoundError:
            return None
        return user_from_json(user) if user else None

    async def find_sponsor(self, user_id: str) -> DirectoryUser | None:
        return await self._sponsors.get(user_id.lower(), lambda: self.get_user(user_id))

    async def invite_guest(self, request: InvitationRequest) -> InvitationResult:
        created = await self._raw.send(Method.POST, f"{self._raw.v1}/invitations", invitation_body(request)) or {}
        user_id = (created.get("invitedUser") or {}).get("id")
        if not user_id:
            raise map_graph_error(ValueError("POST /invitations returned no invitedUser.id"))
        return InvitationResult(
            user_id=user_id,
            status=created.get("status"),
            redeem_url=created.get("inviteRedeemUrl"),
            invitation_id=created.get("id"),
        )

    async def sponsor_ids(self, user_id: str) -> set[str]:
        url = f"{self._raw.v1}/users/{url_quote(user_id, safe='')}/sponsors?$select=id"
        return {s["id"] for s in await self._raw.collection(url) if s.get("id")}

    async def add_sponsor(self, user_id: str, sponsor_id: str) -> bool:
        """POST /users/{id}/sponsors/$ref with the sponsor's read URL (User.ReadWrite.All); False when the
        sponsor was already there.

        user-post-sponsors.md does not say how Graph answers a sponsor that is already there (a 400
        Request_BadRequest is observed, the code of every malformed request too), so a 400 is settled by
        reading the sponsors back rather than by its message."""
        url = f"{self._raw.v1}/users/{url_quote(user_id, safe='')}/sponsors/$ref"
        body = {"@odata.id": f"{self._raw.v1}/users/{url_quote(sponsor_id, safe='')}"}
        try:
            await self._raw.send(Method.POST, url, body)
        except BadRequestError:
            if sponsor_id in await self.sponsor_ids(user_id):
                return False
            raise
        return True

    async def list_guests(
        self, select: Sequence[str] = USER_FIELDS, page_size: int = 999
    ) -> AsyncIterator[list[DirectoryUser]]:
        async for page, _ in guest_pages(self._client, self._raw, select, page_size):
            yield page

    # The sweep's writes as lean JSON: the SDK's User model and its response types cost CPU per call on the
    # guest-actions hot path for a body of one property.
    async def set_account_enabled(self, user_id: str, enabled: bool) -> None:
        await self._raw.send(Method.PATCH, self._user_url(user_id), {"accountEnabled": enabled})

    async def delete_user(self, user_id: str) -> None:
        await self._raw.send(Method.DELETE, self._user_url(user_id))

    async def revoke_sessions(self, user_id: str) -> None:
        await self._raw.send(Method.POST, f"{self._user_url(user_id)}/revokeSignInSessions")

    def _user_url(self, user_id: str) -> str:
        return f"{self._raw.v1}/users/{url_quote(user_id, safe='@')}"

    async def update_user(
        self, user_id: str, *, mail: str | None = None, other_mails: Sequence[str] | None = None
    ) -> None:
        body = User()
        if mail is not None:
            body.mail = mail
        if other_mails is not None:
            body.other_mails = list(other_mails)
        try:
            await graph_call(lambda: self._client.users.by_user_id(user_id).patch(body))
        except BadRequestError as error:
            if mail is not None and PROXY_ADDRESS_TAKEN in str(error).lower():
                raise ConflictError(
                    f"{mail} is already a proxy address of another directory object: {error}",
                    status=error.status,
                    code=error.code,
                    request_id=error.request_id,
                ) from error
            raise


# The sweep's guest pages expand each guest's sponsors with what decides coverage (user-list-sponsors.md).
SPONSORS = "sponsors"
SPONSORS_EXPAND = "sponsors($select=id,accountEnabled,userType)"
IN_LIMIT = 15


class GraphSweepReads:
    """Guest enumeration and re-reads for the sweep (lean: parsed by user_from_json, never by SDK models)."""

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

    def __init__(self, client: GraphServiceClient) -> None:
        self._client = client
        self._raw = RawGraph(client)
        # Cleared when Graph refuses signInActivity for want of a licence: re-reads then go without it.
        self._sign_in_activity = True
        # Cleared when Graph refuses $expand=sponsors beside the rest of the guest select.
        self._expand_sponsors = True

    async def list_guests(self, select: Sequence[str], page_size: int = 999) -> AsyncIterator[list[DirectoryUser]]:
        async for page, _ in self.guest_pages(select, page_size):
            yield page

    async def guest_pages(
        self, select: Sequence[str], page_size: int, start: str | None = None
    ) -> AsyncIterator[tuple[list[DirectoryUser], str | None]]:
        """guest_pages, with each guest's sponsors expanded when ``select`` names them. No page says the users
        list takes $expand beside signInActivity: where Graph refuses the pair on the first page, the guests are
        read without sponsors (the run then reports sponsor coverage as unavailable)."""
        expanding = SPONSORS in select and self._expand_sponsors
        plain = [n for n in select if n != SPONSORS]
        pages = guest_pages(self._client, self._raw, plain, page_size, start, SPONSORS_EXPAND if expanding else None)
        try:
            first = await anext(pages)
        except BadRequestError:
            if start or not expanding:
                raise
            self._expand_sponsors = False
            pages = guest_pages(self._client, self._raw, plain, page_size, start)
            first = await anext(pages)
        yield first
        async for page in pages:
            yield page

    async def sponsor_states(self, ids: Sequence[str]) -> dict[str, SponsorRef]:
        """The state of these sponsors (users), 15 to a request (``id in (...)``, the directory's default limit on
        an ``in`` list): for expansions that came back without it. Ids not found as users are left out."""
        found: dict[str, SponsorRef] = {}
        unique = list(dict.fromkeys(ids))
        for start in range(0, len(unique), IN_LIMIT):
            chunk = unique[start : start + IN_LIMIT]
            query = urlencode(
                {
                    "$filter": f"id in ({', '.join(quote(i) for i in chunk)})",
                    "$select": "id,accountEnabled,userType",
                    "$top": str(IN_LIMIT),
                },
                quote_via=url_quote,
            )
            for user in await self._raw.collection(f"{self._raw.v1}/users?{query}"):
                found[user["id"]] = SponsorRef(user["id"], False, user.get("accountEnabled"), user.get("userType"))
        return found

    async def get_user(self, user_id: str, expand: str | None = None) -> DirectoryUser | None:
        """One guest, re-read right before acting. The URL is built here rather than by the SDK's request
        builder: expanding its URI template costs more CPU than the rest of the request on the worker's path."""
        tail = f"&$expand={expand}" if expand else ""

        def url_for(select: Sequence[str]) -> str:
            return f"{self._raw.v1}/users/{url_quote(user_id, safe='')}?$select={','.join(select)}{tail}"

        without = [name for name in self.USER_SELECT if name != "signInActivity"]
        try:
            try:
                body = await read_users(self._raw, url_for(self.USER_SELECT if self._sign_in_activity else without))
            except SignInActivityUnavailable:
                # The guest is still read; the worker falls back on the plan's view of its last sign-in.
                self._sign_in_activity = False
                body = await read_users(self._raw, url_for(without))
        except NotFoundError:
            return None
        return user_from_json(body)

    async def get_guest_with_sponsors(self, user_id: str) -> DirectoryUser | None:
        """One guest with its live sponsors and their state, for the sponsor-gone rule's re-check: the same read as
        the sweep's pages (``$expand`` of sponsors with a nested ``$select``), and where the expansion leaves a
        sponsor's state out, one ``id in (...)`` lookup settles it."""
        user = await self.get_user(user_id, expand=SPONSORS_EXPAND)
        if user is None:
            return None
        unknown = [s.id for s in user.sponsors or () if not s.is_group and s.account_enabled is None]
        if not unknown:
            return user
        known = await self.sponsor_states(unknown)
        # A sponsor listed but not found since is gone: left out, as Graph leaves out a deleted sponsor.
        sponsors = tuple(
            s if s.is_group or s.account_enabled is not None else known[s.id]
            for s in user.sponsors or ()
            if s.is_group or s.account_enabled is not None or s.id in known
        )
        return replace(user, sponsors=sponsors)

    async def manager_of(self, user_id: str) -> str | None:
        """GET /users/{id}/manager (user-list-manager.md, User.Read.All): the manager's id when it is an enabled
        member of the tenant; None when there is none (404) or it could not answer for a guest."""
        url = f"{self._raw.v1}/users/{url_quote(user_id, safe='')}/manager?$select=id,accountEnabled,userType"
        try:
            body = await self._raw.send(Method.GET, url) or {}
        except NotFoundError:
            return None
        is_user = body.get("@odata.type", "#microsoft.graph.user") == "#microsoft.graph.user"
        answers = is_user and body.get("accountEnabled") is True and body.get("userType") == "Member"
        return str(body["id"]) if answers and body.get("id") else None


def invitation_body(request: InvitationRequest) -> dict[str, Any]:
    """The POST /invitations body (the invitation resource's camelCase properties)."""
    body: dict[str, Any] = {
        "invitedUserEmailAddress": request.email,
        "inviteRedirectUrl": request.redirect_url,
        "sendInvitationMessage": request.send_invitation_message,
        "invitedUserType": "Guest",
    }
    if request.display_name is not None:
        body["invitedUserDisplayName"] = request.display_name
    if request.sponsor_ids:
        body["invitedUserSponsors"] = [{"id": sponsor} for sponsor in request.sponsor_ids]
    if request.message:
        body["invitedUserMessageInfo"] = {"customizedMessageBody": request.message}
    if request.reset_redemption:
        body["resetRedemption"] = True
        body["invitedUser"] = {"id": request.invited_user_id}
    return body


def user_from_json(data: dict[str, Any]) -> DirectoryUser:
    """A DirectoryUser from Graph's JSON user object (the properties it holds; the rest stay empty)."""
    activity = data.get("signInActivity")
    identities = data.get("identities")
    sponsors = data.get("sponsors")
    return DirectoryUser(
        id=data.get("id") or "",
        user_type=data.get("userType"),
        display_name=data.get("displayName"),
        mail=data.get("mail"),
        user_principal_name=data.get("userPrincipalName"),
        account_enabled=data.get("accountEnabled"),
        external_user_state=data.get("externalUserState"),
        external_user_state_changed=graph_instant(data.get("externalUserStateChangeDateTime")),
        created=graph_instant(data.get("createdDateTime")),
        identities=tuple(
            ObjectIdentity(i.get("signInType") or "", i.get("issuer") or "", i.get("issuerAssignedId"))
            for i in identities
        )
        if identities
        else (),
        other_mails=tuple(data.get("otherMails") or ()),
        sign_in_activity=SignInActivity(
            last_sign_in=graph_instant(activity.get("lastSignInDateTime")),
            last_non_interactive_sign_in=graph_instant(activity.get("lastNonInteractiveSignInDateTime")),
            last_successful_sign_in=graph_instant(activity.get("lastSuccessfulSignInDateTime")),
        )
        if isinstance(activity, dict)
        else None,
        sponsors=tuple(sponsor_from_json(s) for s in sponsors if isinstance(s, dict) and s.get("id"))
        if isinstance(sponsors, list)
        else None,
    )


def sponsor_from_json(data: dict[str, Any]) -> SponsorRef:
    """A sponsor of an expanded user: a group by its @odata.type, else a user (state unknown where left out)."""
    is_group = str(data.get("@odata.type") or "").lower() == "#microsoft.graph.group"
    return SponsorRef(
        id=str(data["id"]),
        is_group=is_group,
        account_enabled=None if is_group else data.get("accountEnabled"),
        user_type=None if is_group else data.get("userType"),
    )


def graph_instant(value: Any) -> datetime | None:
    """An aware instant from Graph's ISO 8601 text (``Z`` read as UTC). Graph's empty value is 0001-01-01:
    that means "never", not "infinitely old"."""
    if not value:
        return None
    moment = datetime.fromisoformat(value.replace("Z", "+00:00")) if type(value) is str else value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return None if moment.year <= 1 else moment
