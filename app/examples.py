"""The example batch of onboarding tickets that ``make run`` submits: good ones, a duplicate and rejects.

Dates are relative to the clock so the batch stays meaningful whenever it runs.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

SPONSOR = "megan.bowen@contoso.com"


def example_tickets(now: datetime) -> list[dict[str, Any]]:
    def end(days: int) -> str:
        return (now + timedelta(days=days)).date().isoformat()

    def onboard(ticket_id: str, email: str, name: str, partner: str, days: int, **extra: Any) -> dict[str, Any]:
        return {
            "schemaVersion": 1,
            "kind": "onboard",
            "ticketId": ticket_id,
            "source": "servicenow",
            "email": email,
            "displayName": name,
            "partner": partner,
            "sponsor": SPONSOR,
            "endDate": end(days),
            "redirectUrl": "https://partners.contoso.com/welcome",
            "sendInvitation": True,
            **extra,
        }

    good = [
        onboard("RITM0042001", "lena.fischer@fabrikam.com", "Lena Fischer", "fabrikam", 180),
        onboard("RITM0042002", "tom.oconnor@fabrikam.co.uk", "Tom O'Connor", "fabrikam", 90),
        onboard("RITM0042003", "priya.nair@northwindtraders.com", "Priya Nair", "northwind", 120),
        onboard("RITM0042004", "sam.obrien@woodgrovebank.com", "Sam O'Brien", "woodgrove", 60),
        onboard("RITM0042005", "kofi.mensah@adatum.com", "Kofi Mensah", "adatum", 30),
    ]
    rejects = [
        onboard("RITM0042101", "mallory@gmail.com", "Mallory", "fabrikam", 90),
        onboard("RITM0042102", "eve@fabrikam.com", "Eve", "fabrikam", 90, redirectUrl="https://evil.example/login"),
        onboard("RITM0042103", "long.stay@northwindtraders.com", "Long Stay", "northwind", 400),
        onboard("RITM0042104", "who@fabrikam.com", "Who", "fabrikam", 90, sponsor="nobody@contoso.com"),
        {**onboard("RITM0042105", "v2@fabrikam.com", "V2", "fabrikam", 90), "schemaVersion": 2},
        {"schemaVersion": 1, "kind": "onboard", "ticketId": "RITM0042106", "email": "x@fabrikam.com"},
        onboard("RITM0042107", "x@fabrikam.com' or startswith(mail,'a')", "Injection", "fabrikam", 30),
    ]
    duplicate = [good[0]]
    return good + rejects + duplicate
