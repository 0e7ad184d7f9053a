"""The shadow evaluation estimates what Microsoft's engine will do, never less: the product's own
attestation tickets (its ledger) do not reset the engine's clock, so they never shrink the estimate the deletion
brake judges (a ticketing system attesting every guest must not switch a policy on past the brake), and a sign-in
the engine may not count does not either."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta

from adapters.memory import MemoryGuestLedger
from config.desired_state import load_desired_state
from config.lifecycle_policies import NativePolicy
from config.settings import SAMPLE_DESIRED_STATE
from lifecycle.drift.native_scope import PolicyScope
from lifecycle.drift.native_shadow import evaluate
from lifecycle.models import GuestRecord, GuestState
from lifecycle.safety import SafetyGate
from tests.builders import NOW
from tests.fakes import FakeDirectory

DESIRED = load_desired_state(SAMPLE_DESIRED_STATE)


def test_a_guest_attested_only_through_the_products_ticket_is_still_due_for_microsofts_attestation():
    directory = FakeDirectory()
    guest = directory.add_guest("old@woodgrovebank.com")
    directory.users[guest.id] = replace(guest, created=NOW - timedelta(days=400))
    ledger = MemoryGuestLedger()
    record = GuestRecord(guest.id, "old@woodgrovebank.com", "woodgrove", GuestState.ACTIVE)
    record.attested, record.attested_by = NOW - timedelta(days=3), "sponsor-id"  # an attest ticket, 3 days ago
    asyncio.run(ledger.save(record))
    policy = NativePolicy.model_validate(
        {
            "displayName": "Guests: attested yearly",
            "enabled": True,
            "owner": "native",
            "rules": [{"type": "periodicAttestation", "days": 180}],
            "action": {"kind": "disableOnly"},
        }
    )
    gate = SafetyGate(DESIRED, directory)
    shadow = asyncio.run(
        evaluate(DESIRED, {"yearly": policy}, {"yearly": PolicyScope()}, ("yearly",), directory, ledger, gate, NOW)
    )
    assert shadow.policies["yearly"].would_act == {guest.id}


def test_a_guest_active_only_through_non_interactive_sign_ins_counts_as_inactive_for_the_native_estimate():
    """The inactivity rule's page does not say which sign-ins count: the estimate takes the harsher reading
    (interactive and successful sign-ins only), so the brake never judges fewer guests than the engine may act on."""
    from lifecycle.models import SignInActivity

    directory = FakeDirectory()
    guest = directory.add_guest("quiet@woodgrovebank.com")
    seen = SignInActivity(
        last_sign_in=NOW - timedelta(days=300),
        last_non_interactive_sign_in=NOW - timedelta(days=1),  # a token refresh yesterday
        last_successful_sign_in=NOW - timedelta(days=300),
    )
    directory.users[guest.id] = replace(guest, created=NOW - timedelta(days=400), sign_in_activity=seen)
    policy = NativePolicy.model_validate(
        {
            "displayName": "Guests: idle",
            "enabled": True,
            "owner": "native",
            "rules": [{"type": "inactivity", "days": 180}],
            "action": {"kind": "disableOnly"},
        }
    )
    gate = SafetyGate(DESIRED, directory)
    shadow = asyncio.run(
        evaluate(
            DESIRED, {"idle": policy}, {"idle": PolicyScope()}, ("idle",), directory, MemoryGuestLedger(), gate, NOW
        )
    )
    assert shadow.policies["idle"].would_act == {guest.id}
