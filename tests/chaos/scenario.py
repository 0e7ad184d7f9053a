"""What the soak runs: the seeded tenant (with its traps), the desired state, the ledger, the tickets.

Everything comes from one seed, so a failing run can be repeated exactly (apart from process timing).
"""

from __future__ import annotations

import dataclasses
import json
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from tenantsim.seed import PROTECTED_GROUP_ID, build_seed

SAMPLE_DESIRED = Path(__file__).resolve().parents[2] / "config" / "desired-state.sample.yaml"
SPONSOR = "megan.bowen@contoso.com"
REDIRECT = "https://partners.contoso.com/welcome"
# partner key -> (invitation domain, the most days an engagement may last with margin to spare)
PARTNERS = {
    "fabrikam": ("fabrikam.com", 150),
    "northwind": ("northwindtraders.com", 150),
    "woodgrove": ("woodgrovebank.com", 80),
    "adatum": ("adatum.com", 100),
}
OPTED_OUT_DOMAINS = ("woodgrovebank.com",)
RESET_DOMAIN = "adatum.com"
RESET_TENANT = "7b1c2d3e-4f5a-4b6c-9d7e-8f9a0b1c2d3e"  # the Entra tenant the reset's partner moves to
GRACE_DAYS = 30


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Tenant:
    """The seed document and the groups of guests the invariants look at."""

    document: dict[str, Any]
    anchor: datetime
    due: list[str] = field(default_factory=list)  # inactive: the sweep disables them
    delete_eligible: list[str] = field(default_factory=list)  # disabled by us 40 days ago, still inactive
    in_grace: list[str] = field(default_factory=list)  # disabled by us 5 days ago: must stay
    disabled_elsewhere: list[str] = field(default_factory=list)  # disabled, no ledger row: must stay
    back_in_use: list[str] = field(default_factory=list)  # disabled by us long ago, but signed in since
    excluded: list[str] = field(default_factory=list)  # listed in exclusions.objectIds, stale
    protected: list[str] = field(default_factory=list)  # members of the protected group, stale
    reusable: list[str] = field(default_factory=list)  # active guests' addresses, for onboard-reuse tickets
    ledger: list[dict[str, Any]] = field(default_factory=list)  # rows the product wrote before the run

    @property
    def untouchable(self) -> set[str]:
        return set(self.excluded) | set(self.protected)


def build_tenant(guests: int, seed: int) -> Tenant:
    """A tenant where a known share of guests is due, with deletion traps around the grace period."""
    rng = random.Random(seed)
    document = build_seed(guests=guests, random_seed=seed)
    now = datetime.fromisoformat(document["anchor"].replace("Z", "+00:00"))
    tenant = Tenant(document, now)
    protected = next(g for g in document["groups"] if g["id"] == PROTECTED_GROUP_ID)["members"]
    recent, stale = iso(now - timedelta(days=3)), iso(now - timedelta(days=200))
    group_size = max(5, guests // 400)
    quotas = [
        ("delete_eligible", group_size),
        ("in_grace", group_size),
        ("disabled_elsewhere", group_size),
        ("back_in_use", group_size),
        ("excluded", 10),
        ("due", max(20, guests // 25)),
    ]
    adatum_redeemed = 0
    for user in document["users"]:
        if user["userType"] != "Guest":
            continue
        created = user["createdDateTime"]
        redeemed = user["externalUserStateChangeDateTime"] or created
        user.update(accountEnabled=True, externalUserState="Accepted", externalUserStateChangeDateTime=redeemed)
        last = recent
        if user["mail"].endswith("@" + RESET_DOMAIN):
            adatum_redeemed += 1
            if adatum_redeemed > max(10, guests // 200):
                # Most of the moving partner's guests have not redeemed yet (invited two days ago), so the
                # reset stays a few dozen guests and the sweep leaves them alone.
                fresh = iso(now - timedelta(days=2))
                user.update(
                    createdDateTime=fresh, externalUserState="PendingAcceptance", externalUserStateChangeDateTime=fresh
                )
                user["signInActivity"] = None
                continue
        if user["id"] in protected:
            tenant.protected.append(user["id"])
            last = stale
        elif not user["mail"].endswith(OPTED_OUT_DOMAINS) and not user["mail"].endswith("@" + RESET_DOMAIN):
            group = next((name for name, quota in quotas if len(getattr(tenant, name)) < quota), None)
            if group is not None:
                getattr(tenant, group).append(user["id"])
                last = recent if group == "back_in_use" else stale
                if group in ("delete_eligible", "in_grace", "disabled_elsewhere", "back_in_use"):
                    user["accountEnabled"] = False
                if group != "disabled_elsewhere" and group in ("delete_eligible", "in_grace", "back_in_use"):
                    disabled = now - timedelta(days=5 if group == "in_grace" else GRACE_DAYS + 10)
                    tenant.ledger.append(_ledger_row(user, disabled))
            elif len(tenant.reusable) < 200 and rng.random() < 0.2:
                tenant.reusable.append(user["mail"])
        user["signInActivity"] = _sign_in(last)
    return tenant


def _sign_in(last: str) -> dict[str, Any]:
    return {
        "lastSignInDateTime": last,
        "lastSignInRequestId": "",
        "lastNonInteractiveSignInDateTime": last,
        "lastNonInteractiveSignInRequestId": "",
        "lastSuccessfulSignInDateTime": last,
        "lastSuccessfulSignInRequestId": "",
    }


def _ledger_row(user: dict[str, Any], disabled: datetime) -> dict[str, Any]:
    domain = user["mail"].rsplit("@", 1)[1]
    partner = next((key for key, (d, _) in PARTNERS.items() if d == domain), "")
    return {"objectId": user["id"], "email": user["mail"], "partner": partner, "disabled": disabled}


def desired_state(tenant: Tenant) -> dict[str, Any]:
    """The sample, with the soak's excluded guests, and the reset's partner let in from its new tenant
    (what an operator does before resetting: name the tenant, apply policy drift, run the reset)."""
    document = yaml.safe_load(SAMPLE_DESIRED.read_text())
    document["exclusions"]["objectIds"] = list(tenant.excluded)
    allowed = {"accessType": "allowed"}
    document["partners"]["adatum"] |= {
        "tenantId": RESET_TENANT,
        "crossTenantAccess": {
            "b2bCollaborationInbound": {
                "usersAndGroups": allowed | {"targets": [{"target": "AllUsers", "targetType": "user"}]},
                "applications": allowed | {"targets": [{"target": "AllApplications", "targetType": "application"}]},
            }
        },
    }
    assert document["lifecycle"]["graceDays"] == GRACE_DAYS, "the deletion traps assume the sample's grace period"
    return document


@dataclass(frozen=True)
class Ticket:
    """One ticket the ticketing system sends, and what must become of it."""

    body: bytes
    expect: str  # invite | reuse | reject | extend | offboard
    ticket_id: str | None = None
    email: str | None = None
    duplicate: bool = False
    delayed: bool = False


def _onboard(ticket_id: str, email: str, partner: str, now: datetime, days: int, **extra: Any) -> dict[str, Any]:
    return {
        "schemaVersion": 1,
        "kind": "onboard",
        "ticketId": ticket_id,
        "source": "soak",
        "email": email,
        "displayName": email.split("@")[0].replace(".", " ").title(),
        "partner": partner,
        "sponsor": SPONSOR,
        "endDate": (now + timedelta(days=days)).date().isoformat(),
        "redirectUrl": REDIRECT,
        "sendInvitation": False,
        **extra,
    }


def _encode(document: dict[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()


def first_wave(count: int, seed: int, tenant: Tenant, now: datetime) -> list[Ticket]:
    """Onboards (new and reused addresses), bad tickets, a few delayed ones; duplicates are added later."""
    rng = random.Random(f"tickets:{seed}")
    tickets: list[Ticket] = []
    reusable = list(tenant.reusable)
    for index in range(count):
        ticket_id = f"SOAK{seed}-{index:05d}"
        partner = rng.choice(list(PARTNERS))
        domain, max_days = PARTNERS[partner]
        draw = rng.random()
        if draw < 0.12:
            tickets.append(_bad_ticket(rng, ticket_id, partner, domain, now, index))
        elif draw < 0.15 and reusable:
            email = reusable.pop()
            partner = next((k for k, (d, _) in PARTNERS.items() if email.endswith("@" + d)), None)
            if partner is None:
                tickets.append(_bad_ticket(rng, ticket_id, "fabrikam", "fabrikam.com", now, index))
                continue
            body = _onboard(ticket_id, email, partner, now, 60)
            tickets.append(Ticket(_encode(body), "reuse", ticket_id, email.lower()))
        else:
            email = f"soak{seed}.{index}.{rng.randrange(10**6):06d}@{domain}"
            extra: dict[str, Any] = {}
            delayed = draw > 0.98
            if delayed:
                extra["notBefore"] = iso(now + timedelta(seconds=rng.randint(20, 40)))
            body = _onboard(ticket_id, email, partner, now, rng.randint(20, max_days), **extra)
            tickets.append(Ticket(_encode(body), "invite", ticket_id, email, delayed=delayed))
    return tickets


def parked_ticket(seed: int, now: datetime) -> Ticket:
    """A valid onboard the harness dead-letters before any attempt, for the replay that gets killed."""
    ticket_id, email = f"PARKED{seed}", f"parked{seed}@fabrikam.com"
    return Ticket(_encode(_onboard(ticket_id, email, "fabrikam", now, 30)), "invite", ticket_id, email)


def _bad_ticket(rng: random.Random, ticket_id: str, partner: str, domain: str, now: datetime, index: int) -> Ticket:
    email = f"bad{index}@{domain}"
    kind = rng.randrange(8)
    if kind == 0:
        return Ticket(b'{"schemaVersion": 1, "kind": "onboard", "ticketId": "' + ticket_id.encode() + b'", ', "reject")
    if kind == 1:
        body = _onboard(ticket_id, f"bad{index}@gmail.com", partner, now, 30)
    elif kind == 2:
        body = _onboard(ticket_id, email, "contoso-rivals", now, 30)
    elif kind == 3:
        body = _onboard(ticket_id, email, partner, now, 900)
    elif kind == 4:
        body = _onboard(ticket_id, email, partner, now, 30, redirectUrl="https://evil.example/login")
    elif kind == 5:
        body = _onboard(ticket_id, email, partner, now, 30, sponsor="nobody@contoso.com")
    elif kind == 6:
        body = {**_onboard(ticket_id, email, partner, now, 30), "schemaVersion": 7}
    else:
        body = _onboard(ticket_id, f"x{index}@{domain}' or startswith(mail,'a')", partner, now, 30)
    return Ticket(_encode(body), "reject", ticket_id, body["email"].lower())


def duplicates(tickets: list[Ticket], seed: int, share: float = 0.08) -> list[Ticket]:
    rng = random.Random(f"duplicates:{seed}")
    picked = [t for t in tickets if rng.random() < share]
    return [dataclasses.replace(t, duplicate=True) for t in picked]


def second_wave(first: list[Ticket], seed: int, now: datetime) -> list[Ticket]:
    """Extends and offboards for addresses onboarded in the first wave (they may not be done yet)."""
    rng = random.Random(f"second:{seed}")
    invited = [t for t in first if t.expect == "invite" and not t.delayed and not t.duplicate]
    rng.shuffle(invited)
    share = max(1, len(invited) // 12)
    tickets = []
    for index, ticket in enumerate(invited[: 2 * share]):
        ticket_id = f"{ticket.ticket_id}-{'X' if index < share else 'O'}"
        if index < share:
            body = {"schemaVersion": 1, "kind": "extend", "ticketId": ticket_id, "email": ticket.email}
            body["endDate"] = (now + timedelta(days=60)).date().isoformat()
            tickets.append(Ticket(_encode(body), "extend", ticket_id, ticket.email))
        else:
            body = {"schemaVersion": 1, "kind": "offboard", "ticketId": ticket_id, "email": ticket.email}
            body["reason"] = "engagement ended"
            tickets.append(Ticket(_encode(body), "offboard", ticket_id, ticket.email))
    return tickets
