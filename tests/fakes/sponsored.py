"""A FakeDirectory that also reads sponsors the way the sweep's Graph reads do: expanded in the guest pages (with
each sponsor's state), looked up by id, re-read for one guest, and a user's manager."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import replace

from lifecycle.models import DirectoryUser, SponsorRef
from tests.fakes.directory import FakeDirectory


class SponsoredDirectory(FakeDirectory):
    def __init__(self, home_domain: str = "contoso.onmicrosoft.com") -> None:
        super().__init__(home_domain)
        self.managers: dict[str, str] = {}  # user id -> its manager's id
        self.stateless_expansion = False  # as Graph's known issues: the expansion leaves each sponsor's state out

    def _ref(self, sponsor_id: str, with_state: bool) -> SponsorRef | None:
        if sponsor_id in self.groups:
            return SponsorRef(sponsor_id, is_group=True)
        user = self.users.get(sponsor_id)
        if user is None:
            return None  # deleted since: Graph lists live sponsors only
        if not with_state:
            return SponsorRef(sponsor_id)
        return SponsorRef(sponsor_id, account_enabled=user.account_enabled, user_type=user.user_type)

    def _expanded(self, user: DirectoryUser, with_state: bool) -> DirectoryUser:
        refs = (self._ref(i, with_state) for i in self.sponsors.get(user.id, ()))
        return replace(user, sponsors=tuple(r for r in refs if r is not None))

    async def guest_pages(
        self, select: Sequence[str], page_size: int, start: str | None = None
    ) -> AsyncIterator[tuple[list[DirectoryUser], str | None]]:
        async for page, link in super().guest_pages(select, page_size, start):
            if "sponsors" in select:
                page = [self._expanded(u, not self.stateless_expansion) for u in page]
            yield page, link

    async def sponsor_states(self, ids: Sequence[str]) -> dict[str, SponsorRef]:
        found = {i: self._ref(i, True) for i in ids}
        return {i: ref for i, ref in found.items() if ref is not None}

    async def get_guest_with_sponsors(self, user_id: str) -> DirectoryUser | None:
        user = await self.get_user(user_id)
        return self._expanded(user, True) if user is not None else None

    async def manager_of(self, user_id: str) -> str | None:
        manager = self.users.get(self.managers.get(user_id, ""))
        answers = manager is not None and manager.account_enabled is True and manager.user_type == "Member"
        return manager.id if answers and manager is not None else None
