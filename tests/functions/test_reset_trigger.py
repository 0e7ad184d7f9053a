"""A redemption-reset run's messages through the guest-actions trigger, called as the Functions host calls it."""

from __future__ import annotations

import azure.functions.servicebus as sb
import pytest

import function_app
from app.bootstrap import use_services
from lifecycle.errors import PermissionDeniedError
from lifecycle.ledger.settle import DeadLetterRequested
from lifecycle.models import ReceivedMessage, WorkStatus
from lifecycle.reset.entry import reset_ports, run_reset_detection
from lifecycle.reset.items import KIND
from tests.builders.reset import redeemed, resets_sent, services_with
from tests.fakes import FakeDirectory, FakeLookup

QUEUE = "guest-actions"


def as_service_bus(message: ReceivedMessage) -> sb.ServiceBusMessage:
    """What the Functions host hands the trigger for a message the run sent (key and kind as properties)."""
    return sb.ServiceBusMessage(
        body=message.body,
        message_id=message.message_id,
        delivery_count=1,
        application_properties={**message.properties, "key": message.key or "", "kind": message.kind or ""},
        user_properties={},
    )


async def _next(services) -> ReceivedMessage:
    [message] = await services.transport.receive(services.settings.queue_name(QUEUE), max_messages=1)
    return message


async def test_the_trigger_resets_the_probes_guest_and_sends_the_rest_of_the_run():
    directory = FakeDirectory()
    guests = [redeemed(directory, f"p{n}@fabrikam.com", "otp") for n in range(2)]
    services = services_with(directory, FakeLookup())
    await run_reset_detection(services, "enforce", "reset-trigger")
    probe = await _next(services)
    assert probe.kind == KIND and probe.properties["probe"] == "true"
    with use_services(services):
        await function_app.guest_actions_worker(as_service_bus(probe))
        await function_app.guest_actions_worker(as_service_bus(await _next(services)))
    assert sorted(resets_sent(directory)) == sorted(g.id for g in guests)
    assert {i.status async for i in services.work_items.query(kind=KIND)} == {WorkStatus.DONE}


async def test_a_refused_probe_asks_the_host_to_dead_letter_it_and_sends_nothing_else():
    """The 403 is a failure for a person (the host is asked to dead-letter it), the run is stopped and nothing
    more is sent; the host's redelivery of the same message completes without asking Graph again."""
    directory = FakeDirectory()
    for n in range(3):
        redeemed(directory, f"p{n}@fabrikam.com", "otp")
    services = services_with(directory, FakeLookup())

    refused: list[str] = []

    async def denied(request):
        refused.append(request.invited_user_id or "")
        raise PermissionDeniedError("Insufficient privileges.", status=403, code="Authorization_RequestDenied")

    directory.invite_guest = denied  # type: ignore[method-assign]
    await run_reset_detection(services, "enforce", "reset-denied")
    probe = await _next(services)
    with use_services(services), pytest.raises(DeadLetterRequested, match="permission-missing"):
        await function_app.guest_actions_worker(as_service_bus(probe))
    assert await services.transport.receive(services.settings.queue_name(QUEUE)) == []
    with use_services(services):
        await function_app.guest_actions_worker(as_service_bus(probe))  # redelivered by the host: completes
    assert len(refused) == 1
    run = await reset_ports(services).runs.get("reset-denied")
    assert run is not None and run.reason.startswith("stopped:") and "User.ReadWrite.All" in run.reason
