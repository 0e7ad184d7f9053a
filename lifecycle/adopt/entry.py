"""Adopt guests this product did not invite: a ledger row with the partner of their domain and the sponsor Graph
lists for them, so tickets (extend, offboard, attest) and the attestation rule can act on them.

Planned from the sweep's own guest pages with sponsors expanded (no call per guest), shown by name before
anything is written, each guest asked of the safety gate right before its row is written. A row is only ever
inserted: a guest the ledger already holds is never overwritten, so adopting twice changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import structlog

from lifecycle.errors import LifecycleError, StateConflictError
from lifecycle.models import AuditEntry, DirectoryUser, GuestRecord, GuestState, SponsorRef
from lifecycle.safety import Write, gate_of
from lifecycle.services import Services
from lifecycle.sweep.planner import SPONSORS
from lifecycle.sweep.ports import ResumableGuestReads, SponsorStates, SweepPorts

log = structlog.get_logger(__name__)
SELECT = ("id", "userType", "displayName", "mail", "accountEnabled", SPONSORS)
PAGE_SIZE = 500


class AdoptError(LifecycleError):
    """The deployment cannot list guests with their sponsors."""


@dataclass(frozen=True, slots=True)
class Adoption:
    """One guest without a ledger row: the row it would get, or why it is left alone."""

    user: DirectoryUser
    partner: str | None
    sponsor: str | None
    code: str = ""  # why not: no-partner, no-usable-sponsor, or the safety gate's code
    reason: str = ""

    @property
    def acts(self) -> bool:
        return not self.code

    def to_json(self) -> dict[str, Any]:
        return {
            "objectId": self.user.id,
            "displayName": self.user.display_name,
            "mail": self.user.mail,
            "partner": self.partner,
            "sponsor": self.sponsor,
            "status": "planned" if self.acts else "left-alone",
            "code": self.code or None,
            "reason": self.reason or None,
        }


def _usable(sponsor: SponsorRef) -> bool:
    return not sponsor.is_group and sponsor.account_enabled is True and sponsor.user_type == "Member"


async def plan_adoptions(services: Services) -> list[Adoption]:
    """Every guest without a ledger row, with the partner of its domain and the first enabled member Graph lists
    as its sponsor (sponsors whose state the expansion left out are looked up, 15 to a request)."""
    ports = services.jobs.find(SweepPorts)
    reads = ports.guest_reads if ports is not None else None
    if not isinstance(reads, ResumableGuestReads) or not isinstance(reads, SponsorStates):
        raise AdoptError("this deployment's guest reads cannot expand sponsors; nothing can be adopted")
    managed = {record.object_id async for record in services.guests.all()}
    unmanaged: list[DirectoryUser] = []
    async for page, _ in reads.guest_pages(SELECT, PAGE_SIZE):
        unmanaged.extend(u for u in page if u.is_guest and u.id not in managed)
    unknown = {s.id for u in unmanaged for s in u.sponsors or () if not s.is_group and s.account_enabled is None}
    states = await reads.sponsor_states(sorted(unknown)) if unknown else {}
    plans = []
    for user in unmanaged:
        domain = (user.mail or "").rsplit("@", 1)[-1] if user.mail and "@" in user.mail else ""
        found = services.desired.partner_for_domain(domain) if domain else None
        sponsors = [states.get(s.id, s) for s in user.sponsors or ()]
        sponsor = next((s.id for s in sponsors if _usable(s)), None)
        if user.sponsors is None:
            plans.append(Adoption(user, None, None, "sponsors-unread", "Graph did not expand this guest's sponsors"))
        elif found is None:
            plans.append(Adoption(user, None, sponsor, "no-partner", "its mail domain is no partner's"))
        elif sponsor is None:
            plans.append(Adoption(user, found[0], None, "no-usable-sponsor", "Graph lists no enabled member sponsor"))
        else:
            plans.append(Adoption(user, found[0], sponsor))
    return sorted(plans, key=lambda a: ((a.user.display_name or "").lower(), a.user.id))


async def adopt(services: Services, plans: list[Adoption], operator: str) -> list[dict[str, Any]]:
    """Insert the planned ledger rows, each guest asked of the safety gate first; audited with ``operator``."""
    results = []
    gate = gate_of(services)
    for plan in plans:
        if not plan.acts:
            results.append(plan.to_json())
            continue
        user = await services.directory.get_user(plan.user.id)
        refusal = await gate.refusal(user, None, Write.ADOPT, managed_only=False)
        if refusal is not None:
            results.append({**plan.to_json(), "status": "refused", "code": refusal.code, "reason": refusal.message})
            continue
        assert user is not None and plan.partner is not None
        now = services.clock.now()
        record = GuestRecord(
            user.id,
            user.mail or "",
            plan.partner,
            GuestState.ACTIVE if user.account_enabled is not False else GuestState.DISABLED,
            sponsor=plan.sponsor,
            updated=now,
            history=[{"at": now.isoformat(), "event": "adopted", "by": operator, "sponsor": plan.sponsor}],
        )
        try:
            await services.guests.save(record)
        except StateConflictError:
            results.append({**plan.to_json(), "status": "already-managed", "code": "already-managed"})
            continue
        await services.audit.record(
            AuditEntry(
                now,
                "guest.adopted",
                user.id,
                f"adopted with sponsor {plan.sponsor} from Graph (partner {plan.partner})",
                actor=operator,
                details=plan.to_json(),
            )
        )
        results.append({**plan.to_json(), "status": "adopted"})
    return results
