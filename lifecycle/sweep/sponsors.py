"""Sponsor coverage: which guests have nobody to answer for them, found in the sweep's own guest pages.

The pages expand each guest's sponsors with their state (``$expand=sponsors($select=id,accountEnabled,userType)``,
user-list-sponsors), so coverage costs no call per guest. A guest is covered when one sponsor is a group or an
enabled member; otherwise it has no sponsor, lost the one the ledger recorded (deleted since: Graph lists live
sponsors only), or its sponsors are disabled or no longer members. Where the expansion left a sponsor's state out
(Graph's known issues say directory objects take no nested ``$select``), the guests wait in a small table keyed
by their sponsors until one lookup per 15 distinct sponsors settles them at the end of planning.
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from lifecycle.models import DirectoryUser, GuestRecord, SponsorRef

EXAMPLES = 20  # guest ids kept per finding, for a person to start from


class Coverage(enum.StrEnum):
    COVERED = "covered"
    NO_SPONSOR = "no-sponsor"
    SPONSOR_GONE = "sponsor-gone"  # the ledger recorded one; Graph lists none (deleted or removed since)
    SPONSOR_DISABLED = "sponsor-disabled"
    SPONSOR_NOT_MEMBER = "sponsor-not-member"


# The findings the sponsor-gone rule acts on: a sponsor the guest had is no longer there to answer for it.
GONE = frozenset({Coverage.SPONSOR_GONE, Coverage.SPONSOR_DISABLED, Coverage.SPONSOR_NOT_MEMBER})


def coverage_of(user: DirectoryUser, record: GuestRecord | None) -> Coverage | None:
    """The guest's coverage from a read that expanded its sponsors; None when it did not or a state is unknown."""
    if user.sponsors is None:
        return None
    return classify(user.sponsors, record is not None and bool(record.sponsor))


def departed(user: DirectoryUser, record: GuestRecord | None) -> tuple[str, ...]:
    """The sponsors who no longer answer for the guest: those listed, or the one the ledger recorded."""
    listed = tuple(s.id for s in user.sponsors or ())
    if listed:
        return listed
    return (record.sponsor,) if record is not None and record.sponsor else ()


async def with_sponsor_states(
    page: Iterable[DirectoryUser],
    records: Mapping[str, GuestRecord],
    states: Callable[[list[str]], Awaitable[Mapping[str, SponsorRef]]],
) -> list[DirectoryUser]:
    """The page with the state of every sponsor the sponsor-gone rule needs filled in: for the guests this product
    manages whose coverage the expansion left undecided, one lookup per page (15 sponsors a request). A sponsor
    listed but not found since is left out, as Graph leaves out a deleted one."""
    users = list(page)
    waiting = [u for u in users if u.sponsors and u.id in records and coverage_of(u, records[u.id]) is None]
    if not waiting:
        return users
    known = await states(sorted({s.id for u in waiting for s in u.sponsors or () if not _known(s)}))
    settled = {
        u.id: replace(
            u, sponsors=tuple(s if _known(s) else known[s.id] for s in u.sponsors or () if _known(s) or s.id in known)
        )
        for u in waiting
    }
    return [settled.get(u.id, u) for u in users]


def _known(sponsor: SponsorRef) -> bool:
    return sponsor.is_group or (sponsor.account_enabled is not None and sponsor.user_type is not None)


def _answers(sponsor: SponsorRef) -> bool:
    return sponsor.is_group or (sponsor.account_enabled is True and sponsor.user_type == "Member")


def classify(sponsors: Iterable[SponsorRef], recorded: bool) -> Coverage | None:
    """The guest's coverage; None while a sponsor's state is unknown and no known sponsor answers for it."""
    listed = tuple(sponsors)
    if not listed:
        return Coverage.SPONSOR_GONE if recorded else Coverage.NO_SPONSOR
    if any(_answers(s) for s in listed):
        return Coverage.COVERED
    if not all(_known(s) for s in listed):
        return None
    if any(s.account_enabled is False for s in listed):
        return Coverage.SPONSOR_DISABLED
    return Coverage.SPONSOR_NOT_MEMBER


@dataclass
class SponsorTally:
    """Counts per finding, a few guests per finding, and the guests whose sponsors' state is still unknown."""

    counts: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)
    # sponsor ids (sorted, joined by ",") and whether the ledger recorded a sponsor -> [guest count, example ids]
    pending: dict[str, list[Any]] = field(default_factory=dict)

    def add(self, user: DirectoryUser, record: GuestRecord | None) -> None:
        if user.sponsors is None or not user.is_guest:
            return
        recorded = record is not None and bool(record.sponsor)
        found = classify(user.sponsors, recorded)
        if found is not None:
            self._count(found, 1, [user.id])
            return
        key = f"{int(recorded)}:" + ",".join(sorted(s.id for s in user.sponsors))
        entry = self.pending.setdefault(key, [0, []])
        entry[0] += 1
        if len(entry[1]) < EXAMPLES:
            entry[1].append(user.id)

    def _count(self, found: Coverage, count: int, guests: list[str]) -> None:
        self.counts[found.value] += count
        if found is not Coverage.COVERED:
            kept = self.examples.setdefault(found.value, [])
            kept.extend(guests[: EXAMPLES - len(kept)])

    def unknown_ids(self) -> list[str]:
        return sorted({i for key in self.pending for i in key.split(":", 1)[1].split(",") if i})

    async def settle(self, states: Callable[[list[str]], Awaitable[Mapping[str, SponsorRef]]]) -> None:
        """Look the unknown sponsors up (``states``) and count the guests that waited for them; a sponsor not
        found as a user is gone."""
        if not self.pending:
            return
        known = await states(self.unknown_ids())
        for key, (count, guests) in self.pending.items():
            recorded, ids = key.split(":", 1)
            sponsors = [known[i] for i in ids.split(",") if i in known]
            # Listed in the page but not found since: gone, whatever the ledger recorded.
            found = (classify(sponsors, recorded == "1") or Coverage.SPONSOR_NOT_MEMBER) if sponsors else None
            found = found or Coverage.SPONSOR_GONE
            self._count(found, count, guests)
        self.pending = {}

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"counts": dict(sorted(self.counts.items())), "examples": self.examples}
        if self.pending:
            data["pending"] = self.pending
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> SponsorTally:
        data = data or {}
        return cls(
            Counter(data.get("counts") or {}),
            {k: list(v) for k, v in (data.get("examples") or {}).items()},
            {k: [int(v[0]), list(v[1])] for k, v in (data.get("pending") or {}).items()},
        )
