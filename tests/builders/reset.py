"""Builders for redemption-reset tests: redeemed guests, services with the reset switched on, tickets."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import timedelta

from adapters.memory import MemorySweepRuns
from config.desired_state import Safety
from lifecycle.clock import FixedClock
from lifecycle.ledger import work
from lifecycle.models import DirectoryUser, ObjectIdentity
from lifecycle.reset.entry import handle_reset_ticket
from lifecycle.tickets import ResetRedemptionTicket
from tests.builders import NOW, memory_services
from tests.fakes import FakeDirectory, FakeLookup

ISSUERS = {
    "entra": "ExternalAzureAD",
    "google": "google.com",
    "otp": "mail",
    "msa": "MicrosoftAccount",
    "saml": "https://sts.adatum.com/adfs",
}


def order(*primary: str, fallback: str = "defaultConfiguredIdp") -> dict:
    return {"primaryIdentityProviderPrecedenceOrder": list(primary), "fallbackIdentityProvider": fallback}


DEFAULT_PRIMARY = ("azureActiveDirectory", "externalFederation", "socialIdentityProviders")
ADATUM_TENANT = "5c8e1f2a-6d3b-4a9e-b7c0-1d2e3f4a5b6c"


def redeemed(directory: FakeDirectory, email: str, provider: str, **fields) -> DirectoryUser:
    upn = f"{email.replace('@', '_')}#EXT#@contoso.onmicrosoft.com"
    user = DirectoryUser(
        id=str(uuid.uuid4()),
        user_type="Guest",
        display_name=email.split("@")[0],
        mail=email,
        user_principal_name=upn,
        account_enabled=True,
        external_user_state="Accepted",
        external_user_state_changed=NOW - timedelta(days=200),
        identities=(
            ObjectIdentity("userPrincipalName", "contoso.onmicrosoft.com", upn),
            ObjectIdentity("federated", ISSUERS[provider], None),
        ),
        other_mails=(email,),
    )
    return directory.put(replace(user, **fields))


def services_with(
    directory: FakeDirectory,
    lookup: FakeLookup,
    clock: FixedClock | None = None,
    *,
    enabled: bool = True,
    mode: str = "enforce",
    unmanaged_tickets: bool = True,
    readable_group: bool = True,
    **reset,
):
    """Services with redemption reset switched on (the opt-in a deployment makes with User.ReadWrite.All) and in
    enforce mode. The guests these tests make were not onboarded by the product, so tickets may name them
    (``safety.ticketsMayActOnUnmanagedGuests``) unless a test says otherwise: the gate's own rules are tested
    with ``unmanaged_tickets=False`` below and in test_safety_gate.py. ``readable_group=False``: a deployment
    that cannot read the protected group."""
    services = memory_services(
        directory,
        clock or FixedClock(NOW),
        sweep_runs=MemorySweepRuns(),
        provider_lookup=lookup,
        group_membership=directory if readable_group else None,
    )
    services.settings = services.settings.model_copy(update={"reset_enabled": enabled, "reset_mode": mode})
    services.desired = services.desired.model_copy(
        update={"safety": Safety(tickets_may_act_on_unmanaged_guests=unmanaged_tickets)}
    )
    if reset:
        settings = services.desired.redemption_reset.model_copy(update=reset)
        services.desired = services.desired.model_copy(update={"redemption_reset": settings})
    directory.now = services.clock.now()
    return services


def resets_sent(directory: FakeDirectory) -> list[str]:
    return [i.invited_user_id or "" for i in directory.invitations if i.reset_redemption]


async def ticket_outcome(services, **fields):
    ticket = ResetRedemptionTicket.model_validate({"schemaVersion": 1, "kind": "reset-redemption", **fields})
    item = await work.begin(services, f"ticket:{ticket.ticket_id}", kind=ticket.kind)
    assert item is not None
    return await handle_reset_ticket(ticket, item, services, b"{}", "fp")
