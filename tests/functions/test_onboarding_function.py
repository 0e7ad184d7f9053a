"""The onboarding trigger called directly, as the Functions host would call it."""

from __future__ import annotations

import json

import azure.functions.servicebus as sb
import pytest

import function_app
from app.bootstrap import use_services
from lifecycle.errors import PermissionDeniedError, ThrottledError
from lifecycle.ledger.settle import DeadLetterRequested
from tests.builders import memory_services, onboard_ticket
from tests.fakes import FakeDirectory


def service_bus_message(body: dict | bytes, message_id: str = "sb-1", delivery_count: int = 1) -> sb.ServiceBusMessage:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return sb.ServiceBusMessage(
        body=raw,
        message_id=message_id,
        delivery_count=delivery_count,
        application_properties={"key": "ticket:RITM0010001", "kind": "ticket"},
        user_properties={},
    )


@pytest.fixture(name="directory")
def _directory() -> FakeDirectory:
    directory = FakeDirectory()
    directory.add_member("megan.bowen@contoso.com")
    return directory


async def test_a_ticket_message_invites_the_guest_and_completes(directory):
    """Returning normally completes the message; the guest exists and the ledger has its row."""
    services = memory_services(directory)
    with use_services(services):
        await function_app.onboarding_worker(service_bus_message(onboard_ticket()))
    [guest] = directory.guests_with_mail("ana.lopez@fabrikam.com")
    assert (await services.guests.get(guest.id)).ticket_id == "RITM0010001"


async def test_a_malformed_ticket_is_recorded_and_completed_not_retried(directory):
    """A bad ticket returns normally (settled once) after its rejection is recorded."""
    services = memory_services(directory)
    with use_services(services):
        await function_app.onboarding_worker(service_bus_message(b"{oops"))
    assert [r.code async for r in services.rejections.all()] == ["malformed-json"]


async def test_a_throttled_ticket_is_rescheduled_as_a_copy_with_a_new_message_id(directory):
    """A 429 schedules a delayed copy (new message id, same key) and completes the original."""
    directory.fail_next.append(ThrottledError("429", retry_after=3.0, status=429))
    services = memory_services(directory)
    with use_services(services):
        await function_app.onboarding_worker(service_bus_message(onboard_ticket()))
    assert await services.transport.receive("onboarding") == []  # not visible before the delay
    services.clock.advance(__import__("datetime").timedelta(seconds=4))
    [copy] = await services.transport.receive("onboarding")
    assert copy.key == "ticket:RITM0010001" and copy.message_id != "sb-1"


async def test_a_missing_permission_raises_so_the_broker_dead_letters_it(directory):
    """A non-transient failure raises, so Service Bus redelivers and finally dead-letters the message."""
    directory.fail_next.append(PermissionDeniedError("denied", status=403, code="Authorization_RequestDenied"))
    services = memory_services(directory)
    with use_services(services), pytest.raises(DeadLetterRequested):
        await function_app.onboarding_worker(service_bus_message(onboard_ticket()))


async def test_the_hold_release_timer_sends_due_holds_even_when_fired_twice(directory):
    """A double-fired timer (missed schedule, two instances) releases each due hold exactly once."""
    from datetime import timedelta

    from azure.functions.timer import TimerRequest

    services = memory_services(directory)
    with use_services(services):
        await function_app.onboarding_worker(service_bus_message(onboard_ticket(notBefore="2026-11-24T00:00:00Z")))
        services.clock.advance(timedelta(days=1))
        await function_app.hold_release(TimerRequest(past_due=True))
        await function_app.hold_release(TimerRequest(past_due=False))
    assert len(await services.transport.receive("onboarding")) == 1
