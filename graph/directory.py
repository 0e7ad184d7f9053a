"""The Directory port on msgraph-sdk: users and invitations."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime

from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_abstractions.headers_collection import HeadersCollection
from msgraph import GraphServiceClient
from msgraph.generated.models.directory_object import DirectoryObject
from msgraph.generated.models.invitation import Invitation
from msgraph.generated.models.invited_user_message_info import InvitedUserMessageInfo
from msgraph.generated.models.user import User
from msgraph.generated.users.item.user_item_request_builder import UserItemRequestBuilder
from msgraph.generated.users.users_request_builder import UsersRequestBuilder

from graph.errors import graph_call, map_graph_error
from graph.odata import quote
from lifecycle.errors import NotFoundError
from lifecycle.models import (
    DirectoryUser,
    InvitationRequest,
    InvitationResult,
    ObjectIdentity,
    SignInActivity,
)

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
NEVER = datetime(1, 1, 1, tzinfo=UTC)


class GraphDirectory:
    def __init__(self, client: GraphServiceClient) -> None:
        self._client = client

    async def find_user_by_mail(self, email: str) -> DirectoryUser | None:
        query = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(
            filter=f"mail eq {quote(email)}", select=list(USER_FIELDS), top=2
        )
        page = await graph_call(lambda: self._client.users.get(RequestConfiguration(query_parameters=query)))
        users = [to_directory_user(u) for u in (page.value if page and page.value else [])]
        return users[0] if users else None

    async def get_user(self, user_id: str) -> DirectoryUser | None:
        query = UserItemRequestBuilder.UserItemRequestBuilderGetQueryParameters(select=list(USER_FIELDS))
        try:
            user = await graph_call(
                lambda: self._client.users.by_user_id(user_id).get(RequestConfiguration(query_parameters=query))
            )
        except NotFoundError:
            return None
        return to_directory_user(user) if user else None

    async def invite_guest(self, request: InvitationRequest) -> InvitationResult:
        body = Invitation(
            invited_user_email_address=request.email,
            invite_redirect_url=request.redirect_url,
            invited_user_display_name=request.display_name,
            send_invitation_message=request.send_invitation_message,
            invited_user_type="Guest",
        )
        if request.sponsor_ids:
            body.invited_user_sponsors = [DirectoryObject(id=sponsor) for sponsor in request.sponsor_ids]
        if request.message:
            body.invited_user_message_info = InvitedUserMessageInfo(customized_message_body=request.message)
        if request.reset_redemption:
            body.reset_redemption = True
            body.invited_user = User(id=request.invited_user_id)
        created = await graph_call(lambda: self._client.invitations.post(body))
        if created is None or created.invited_user is None or not created.invited_user.id:
            raise map_graph_error(ValueError("POST /invitations returned no invitedUser.id"))
        return InvitationResult(
            user_id=created.invited_user.id,
            status=created.status,
            redeem_url=created.invite_redeem_url,
            invitation_id=created.id,
        )

    async def list_guests(
        self, select: Sequence[str] = USER_FIELDS, page_size: int = 999
    ) -> AsyncIterator[list[DirectoryUser]]:
        query = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(
            filter="userType eq 'Guest'", select=list(select), top=page_size
        )
        page = await graph_call(lambda: self._client.users.get(RequestConfiguration(query_parameters=query)))
        while page is not None:
            yield [to_directory_user(u) for u in page.value or []]
            if not page.odata_next_link:
                return
            next_link = page.odata_next_link
            page = await graph_call(lambda link=next_link: self._client.users.with_url(link).get())

    async def set_account_enabled(self, user_id: str, enabled: bool) -> None:
        await graph_call(lambda: self._client.users.by_user_id(user_id).patch(User(account_enabled=enabled)))

    async def delete_user(self, user_id: str) -> None:
        await graph_call(lambda: self._client.users.by_user_id(user_id).delete())

    async def revoke_sessions(self, user_id: str) -> None:
        await graph_call(lambda: self._client.users.by_user_id(user_id).revoke_sign_in_sessions.post())

    async def update_user(
        self, user_id: str, *, mail: str | None = None, other_mails: Sequence[str] | None = None
    ) -> None:
        body = User()
        if mail is not None:
            body.mail = mail
        if other_mails is not None:
            body.other_mails = list(other_mails)
        await graph_call(lambda: self._client.users.by_user_id(user_id).patch(body))

    async def count_guests(self) -> int:
        query = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(
            filter="userType eq 'Guest'", count=True, top=1, select=["id"]
        )
        headers = HeadersCollection()
        headers.add("ConsistencyLevel", "eventual")
        config = RequestConfiguration(query_parameters=query, headers=headers)
        page = await graph_call(lambda: self._client.users.get(config))
        return int(page.odata_count or 0) if page else 0


def to_directory_user(user: User) -> DirectoryUser:
    activity = user.sign_in_activity
    return DirectoryUser(
        id=user.id or "",
        user_type=user.user_type,
        display_name=user.display_name,
        mail=user.mail,
        user_principal_name=user.user_principal_name,
        account_enabled=user.account_enabled,
        external_user_state=user.external_user_state,
        external_user_state_changed=_aware(user.external_user_state_change_date_time),
        created=_aware(user.created_date_time),
        identities=tuple(
            ObjectIdentity(i.sign_in_type or "", i.issuer or "", i.issuer_assigned_id) for i in user.identities or []
        ),
        other_mails=tuple(user.other_mails or ()),
        sign_in_activity=SignInActivity(
            last_sign_in=_aware(activity.last_sign_in_date_time),
            last_non_interactive_sign_in=_aware(activity.last_non_interactive_sign_in_date_time),
            last_successful_sign_in=_aware(activity.last_successful_sign_in_date_time),
        )
        if activity
        else None,
    )


def _aware(value: datetime | str | None) -> datetime | None:
    """Graph's empty sign-in value is 0001-01-01: that means "never", not "infinitely old"."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    value = value if value.tzinfo else value.replace(tzinfo=UTC)
    return None if value <= NEVER else value
