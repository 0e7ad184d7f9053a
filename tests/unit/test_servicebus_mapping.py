"""The Service Bus adapter's mapping, checked with the SDK's own message types and AMQP codec."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.servicebus import ServiceBusMessage, ServiceBusMessageBatch, ServiceBusReceivedMessage
from azure.servicebus._pyamqp._decode import decode_payload
from azure.servicebus._pyamqp._encode import encode_payload
from azure.servicebus._pyamqp.message import Header, Message
from azure.servicebus._transport._pyamqp_transport import PyamqpTransport
from azure.servicebus.exceptions import MessageLockLostError

from adapters.servicebus import (
    ServiceBusTransport,
    _Receipt,
    from_servicebus_message,
    to_servicebus_message,
)
from lifecycle.clock import FixedClock
from lifecycle.errors import StateConflictError
from lifecycle.models import OutboundMessage

ENQUEUED = datetime(2026, 3, 1, 8, 30, tzinfo=UTC)


def outbound(**changes: Any) -> OutboundMessage:
    fields: dict[str, Any] = {
        "body": b'{"ticket": 1, "bytes": "\xc3\xa9"}\x00\xff',
        "message_id": "msg-1",
        "key": "onboarding:T-1",
        "kind": "onboarding",
        "properties": {"partner": "contoso"},
    }
    return OutboundMessage(**(fields | changes))


def as_delivered(
    message: ServiceBusMessage, delivery_count: int = 0, broker_properties: dict[bytes, bytes] | None = None
) -> ServiceBusReceivedMessage:
    """The message as a receiver gets it: AMQP-encoded, decoded, stamped by the broker."""
    wire = bytearray()
    encode_payload(wire, PyamqpTransport.to_outgoing_amqp_message(message.raw_amqp_message))
    decoded: Message = decode_payload(memoryview(wire))
    stamped = decoded._replace(
        header=Header(delivery_count=delivery_count),
        message_annotations={
            b"x-opt-enqueued-time": int(ENQUEUED.timestamp() * 1000),
            b"x-opt-sequence-number": 42,
        },
        application_properties={**(decoded.application_properties or {}), **(broker_properties or {})},
    )
    return ServiceBusReceivedMessage(stamped, receiver=None)


def test_outbound_message_carries_id_key_kind_and_properties() -> None:
    """The broker message id is ours, and key, kind and custom properties become application properties."""
    message = to_servicebus_message(outbound())
    assert message.message_id == "msg-1"
    assert message.application_properties == {"partner": "contoso", "key": "onboarding:T-1", "kind": "onboarding"}
    assert b"".join(message.body) == outbound().body


def test_message_survives_the_wire_and_counts_the_first_delivery_as_one() -> None:
    """Sent and received through the AMQP codec, every field comes back and the first delivery is 1."""
    received = from_servicebus_message(as_delivered(to_servicebus_message(outbound())))
    sent = outbound()
    assert (received.body, received.message_id, received.key, received.kind) == (
        sent.body,
        sent.message_id,
        sent.key,
        sent.kind,
    )
    assert received.properties == {"partner": "contoso"}
    assert received.delivery_count == 1
    assert received.enqueued == ENQUEUED


def test_redelivery_count_follows_the_broker() -> None:
    """A message the broker has delivered twice before arrives as delivery 3."""
    assert from_servicebus_message(as_delivered(to_servicebus_message(outbound()), 2)).delivery_count == 3


def test_dead_letter_reason_and_description_are_read_and_kept_out_of_properties() -> None:
    """On a dead letter the broker's reason and description map to their fields, not to properties."""
    dead = as_delivered(
        to_servicebus_message(outbound()),
        broker_properties={b"DeadLetterReason": b"PolicyViolation", b"DeadLetterErrorDescription": b"blocked"},
    )
    received = from_servicebus_message(dead)
    assert (received.dead_letter_reason, received.dead_letter_description) == ("PolicyViolation", "blocked")
    assert received.properties == {"partner": "contoso"}


def test_a_foreign_message_without_key_or_kind_maps_to_none() -> None:
    """A ticketing system's plain text message arrives with its body and no key or kind."""
    received = from_servicebus_message(as_delivered(ServiceBusMessage('{"ticket": 7}', message_id="ext-7")))
    assert (received.body, received.key, received.kind, received.properties) == (b'{"ticket": 7}', None, None, {})


def test_reserved_property_names_are_refused() -> None:
    """A custom property may not shadow the key or kind."""
    with pytest.raises(ValueError, match="reserved"):
        to_servicebus_message(outbound(properties={"key": "other"}))


class LockLostReceiver:
    async def complete_message(self, message: ServiceBusReceivedMessage) -> None:
        raise MessageLockLostError(message="lock lost")


async def test_lost_lock_on_settlement_is_a_state_conflict() -> None:
    """Completing a message whose lock was lost raises StateConflictError, as the other transports do."""
    delivered = as_delivered(to_servicebus_message(outbound()))
    received = from_servicebus_message(delivered, _Receipt(LockLostReceiver(), delivered))  # type: ignore[arg-type]
    transport = ServiceBusTransport(client=None, admin=None)  # type: ignore[arg-type]
    with pytest.raises(StateConflictError):
        await transport.complete("onboarding", received)


class RecordingSender:
    def __init__(self) -> None:
        self.sent: list[ServiceBusMessage] = []
        self.scheduled: list[tuple[ServiceBusMessage, datetime]] = []

    async def create_message_batch(self) -> ServiceBusMessageBatch:
        return ServiceBusMessageBatch(max_size_in_bytes=1024 * 1024)

    async def send_messages(self, batch: ServiceBusMessageBatch) -> None:
        self.sent.extend(batch._messages)

    async def schedule_messages(self, message: ServiceBusMessage, at: datetime) -> list[int]:
        self.scheduled.append((message, at))
        return [1]


class RecordingClient:
    def __init__(self) -> None:
        self.senders: dict[str, RecordingSender] = {}

    def get_queue_sender(self, name: str) -> RecordingSender:
        return self.senders.setdefault(name, RecordingSender())


async def test_delayed_messages_are_scheduled_from_the_clock_and_others_sent_at_once() -> None:
    """A delay becomes a scheduled enqueue time of clock.now() + delay; undelayed messages go in a batch."""
    client, clock = RecordingClient(), FixedClock(ENQUEUED)
    transport = ServiceBusTransport(client, admin=None, clock=clock)  # type: ignore[arg-type]
    await transport.send("dev-work", [outbound(), outbound(message_id="msg-2", delay_seconds=90)])
    assert list(client.senders) == ["dev-work"]  # the name as given: the prefix is already in it
    sender = client.senders["dev-work"]
    assert [m.message_id for m in sender.sent] == ["msg-1"]
    assert [(m.message_id, at) for m, at in sender.scheduled] == [("msg-2", ENQUEUED + timedelta(seconds=90))]
