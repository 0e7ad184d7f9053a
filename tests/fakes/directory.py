"""A hand-written fake of the Directory port, with Graph's invitation semantics."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime

from lifecycle.errors import BadRequestError, GraphError, NotFoundError
from lifecycle.models import (
    AccessPackageTarget,
    AssignmentInfo,
    AssignmentRequestInfo,
    DirectoryUser,
    InvitationRequest,
    InvitationResult,
)


class FakeDirectory:
    def __init__(self, home_domain: str = "contoso.onmicrosoft.com") -> None:
        self.users: dict[str, DirectoryUser] = {}
        self.invitations: list[InvitationRequest] = []
        self.fail_next: list[GraphError] = []
        self.deleted: dict[str, DirectoryUser] = {}
        self.page_starts: list[int] = []
        self.page_size: int | None = None  # overrides the caller's page size, to make small tenants page
        self.fail_on_page: int | None = None
        self.writes: list[tuple[str, str, object]] = []
        self.home_domain = home_domain
        self.groups: dict[str, set[str]] = {}
        self.now: datetime | None = None  # the externalUserStateChangeDateTime a reset stamps
        self.sponsors: dict[str, list[str]] = {}
        self.membership_error: GraphError | None = None  # raised by the safety gate's membership check
        self.crash_after_disable = False  # the process dies right after Graph applied a disable

    def add_member(self, upn: str, display_name: str = "Employee") -> DirectoryUser:
        user = DirectoryUser(
            id=str(uuid.uuid4()),
            user_type="Member",
            display_name=display_name,
            mail=upn,
            user_principal_name=upn,
            account_enabled=True,
        )
        self.users[user.id] = user
        return user

    def add_guest(self, email: str, state: str = "Accepted") -> DirectoryUser:
        user = DirectoryUser(
            id=str(uuid.uuid4()),
            user_type="Guest",
            mail=email,
            user_principal_name=f"{email.replace('@', '_')}#EXT#@{self.home_domain}",
            account_enabled=True,
            external_user_state=state,
            created=datetime(2026, 1, 1, tzinfo=UTC),
        )
        self.users[user.id] = user
        return user

    def _maybe_fail(self) -> None:
        if self.fail_next:
            raise self.fail_next.pop(0)

    async def find_user_by_mail(self, email: str) -> DirectoryUser | None:
        self._maybe_fail()
        wanted = email.lower()
        return next((u for u in self.users.values() if (u.mail or "").lower() == wanted), None)

    async def get_user(self, user_id: str) -> DirectoryUser | None:
        self._maybe_fail()
        if user_id in self.users:
            return self.users[user_id]
        return next((u for u in self.users.values() if u.user_principal_name == user_id), None)

    async def find_sponsor(self, user_id: str) -> DirectoryUser | None:
        return await self.get_user(user_id)  # never kept: a test that changes a sponsor sees it at once

    async def invite_guest(self, request: InvitationRequest) -> InvitationResult:
        self._maybe_fail()
        self.invitations.append(request)
        if request.reset_redemption:
            return self._reset_redemption(request)
        existing = await self.find_user_by_mail(request.email)
        if existing is None:
            existing = self.add_guest(request.email, state="PendingAcceptance")
            self.sponsors[existing.id] = list(request.sponsor_ids)  # as Graph: only a guest it creates
        return InvitationResult(existing.id, "PendingAcceptance", f"https://login.example/redeem?u={existing.id}")

    async def sponsor_ids(self, user_id: str) -> set[str]:
        self._maybe_fail()
        return set(self.sponsors.get(self._existing(user_id).id, ()))

    async def add_sponsor(self, user_id: str, sponsor_id: str) -> bool:
        self._maybe_fail()
        sponsors = self.sponsors.setdefault(self._existing(user_id).id, [])
        if self._existing(sponsor_id).id in sponsors:
            return False
        sponsors.append(sponsor_id)
        self.writes.append(("sponsor", user_id, sponsor_id))
        return True

    async def list_guests(self, select: Sequence[str] = (), page_size: int = 999) -> AsyncIterator[list[DirectoryUser]]:
        guests = [u for u in self.users.values() if u.is_guest]
        for start in range(0, len(guests), page_size):
            yield guests[start : start + page_size]

    async def guest_pages(
        self, select: Sequence[str], page_size: int, start: str | None = None
    ) -> AsyncIterator[tuple[list[DirectoryUser], str | None]]:
        """Like Graph's paging: each page comes with an opaque link to the next ("fake-page:<offset>")."""
        guests = [u for u in self.users.values() if u.is_guest]
        page_size = self.page_size or page_size
        offset = int(start.split(":")[1]) if start else 0
        self.page_starts.append(offset)
        while offset < len(guests):
            if self.fail_on_page is not None and offset // page_size == self.fail_on_page:
                self.fail_on_page = None
                raise RuntimeError("the planner's instance died")
            following = offset + page_size
            yield guests[offset:following], f"fake-page:{following}" if following < len(guests) else None
            offset = following

    async def set_account_enabled(self, user_id: str, enabled: bool) -> None:
        self._maybe_fail()
        self.users[user_id] = replace(self._existing(user_id), account_enabled=enabled)
        self.writes.append(("accountEnabled", user_id, enabled))
        if self.crash_after_disable and not enabled:
            self.crash_after_disable = False
            raise RuntimeError("the worker died after Graph applied the disable")

    async def delete_user(self, user_id: str) -> None:
        self._maybe_fail()
        self.deleted[user_id] = self.users.pop(self._existing(user_id).id)
        self.writes.append(("delete", user_id, None))

    async def revoke_sessions(self, user_id: str) -> None:
        self._maybe_fail()
        self._existing(user_id)
        self.writes.append(("revokeSignInSessions", user_id, None))

    async def update_user(
        self, user_id: str, *, mail: str | None = None, other_mails: Sequence[str] | None = None
    ) -> None:
        self._maybe_fail()
        user = self._existing(user_id)
        changes: dict[str, object] = {}
        if mail is not None:
            changes["mail"] = mail
        if other_mails is not None:
            changes["other_mails"] = tuple(other_mails)
        self.users[user_id] = replace(user, **changes)  # type: ignore[arg-type]
        self.writes.append(("update", user_id, changes))

    def _reset_redemption(self, request: InvitationRequest) -> InvitationResult:
        """Graph's reset: same object, back to PendingAcceptance, federated identities dropped.

        The invitation's address must already be the user's mail or one of its otherMails.
        """
        user = self._existing(request.invited_user_id or "")
        known = {a.lower() for a in (user.mail, *user.other_mails) if a}
        if request.email.lower() not in known:
            raise BadRequestError(
                f"{request.email} is neither the mail nor an otherMails address of {user.id}",
                status=400,
                code="BadRequest",
            )
        self.users[user.id] = replace(
            user,
            mail=request.email,
            external_user_state="PendingAcceptance",
            external_user_state_changed=self.now,
            identities=tuple(i for i in user.identities if i.sign_in_type != "federated"),
        )
        return InvitationResult(user.id, "PendingAcceptance", f"https://login.example/redeem?u={user.id}", "inv")

    def _existing(self, user_id: str) -> DirectoryUser:
        if user_id not in self.users:
            raise NotFoundError(f"Resource '{user_id}' does not exist", status=404, code="Request_ResourceNotFound")
        return self.users[user_id]

    def guests_with_mail(self, email: str) -> list[DirectoryUser]:
        return [u for u in self.users.values() if u.is_guest and (u.mail or "").lower() == email.lower()]

    def put(self, user: DirectoryUser) -> DirectoryUser:
        """Add or replace a user exactly as given (tests shape sign-in activity, dates and state)."""
        self.users[user.id] = user
        return user

    def add_to_group(self, group_id: str, *user_ids: str) -> None:
        self.groups.setdefault(group_id, set()).update(user_ids)

    async def group_member_ids(self, group_id: str) -> set[str]:
        self._maybe_fail()
        return set(self.groups.get(group_id, set()))

    async def groups_containing(self, object_id: str, group_ids: list[str]) -> set[str]:
        self._maybe_fail()
        if self.membership_error is not None:
            raise self.membership_error
        return {g for g in group_ids if object_id in self.groups.get(g, set())}


class FakeAccessPackages:
    """Entitlement management with Graph's asynchronous requests: adminAdd is delivered on a later read."""

    def __init__(self) -> None:
        self.packages: dict[tuple[str, str], AccessPackageTarget] = {}
        self.requests: dict[str, dict] = {}
        self.assignments: dict[str, AssignmentInfo] = {}
        self.reads_until_delivered = 1
        self.outcome = "delivered"

    def add_package(self, catalog: str, name: str) -> AccessPackageTarget:
        target = AccessPackageTarget(str(uuid.uuid4()), str(uuid.uuid4()), name)
        self.packages[(catalog, name)] = target
        return target

    async def resolve(self, catalog: str, package: str, policy: str | None = None) -> AccessPackageTarget | None:
        return self.packages.get((catalog, package))

    async def find_assignment(self, user_id: str, package_id: str) -> AssignmentInfo | None:
        return next(
            (a for key, a in self.assignments.items() if key.startswith(user_id) and a.package_id == package_id),
            None,
        )

    async def request_assignment(self, user_id, target, end, justification) -> AssignmentRequestInfo:
        request_id = str(uuid.uuid4())
        self.requests[request_id] = {
            "user": user_id,
            "target": target,
            "end": end,
            "reads": 0,
            "type": "adminAdd",
            "justification": justification,
        }
        return AssignmentRequestInfo(request_id, "submitted")

    async def get_request(self, request_id: str) -> AssignmentRequestInfo | None:
        request = self.requests.get(request_id)
        if request is None:
            return None
        request["reads"] += 1
        if request["reads"] < self.reads_until_delivered:
            request["state"] = "delivering"
            return AssignmentRequestInfo(request_id, "delivering")
        if self.outcome == "delivered" and request["type"] == "adminAdd":
            key = f"{request['user']}|{request['target'].package_id}"
            self.assignments[key] = AssignmentInfo(key, "delivered", request["target"].package_id, request["end"])
        request["state"] = self.outcome
        return AssignmentRequestInfo(request_id, self.outcome)

    async def find_request(self, package_id: str, justification: str, since) -> AssignmentRequestInfo | None:
        """Every request this fake holds was made during the test, so ``since`` excludes none of them."""
        for request_id, request in reversed(self.requests.items()):
            if (
                request["type"] == "adminAdd"
                and request["target"].package_id == package_id
                and request["justification"] == justification
                and not (found := AssignmentRequestInfo(request_id, request.get("state", "submitted"))).failed
            ):
                return found
        return None

    async def request_removal(self, assignment_id: str, justification: str) -> AssignmentRequestInfo:
        self.assignments.pop(assignment_id, None)
        request_id = str(uuid.uuid4())
        self.requests[request_id] = {"type": "adminRemove", "assignment": assignment_id, "reads": 0}
        return AssignmentRequestInfo(request_id, "submitted")

    def adds(self) -> list[dict]:
        return [r for r in self.requests.values() if r["type"] == "adminAdd"]
