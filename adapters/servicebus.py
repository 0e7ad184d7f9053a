"""QueueTransport on Azure Service Bus (azure.servicebus.aio), the production transport.

The business key and kind travel as application properties next to the caller's own; the broker's
``message_id`` is ours. Receives are PEEK_LOCK; the lock length is the queue's LockDuration (set in
infra), so ``lock_seconds`` is not used here. Delays become scheduled messages. The SDK reports the
first delivery as ``delivery_count`` 0; the port counts deliveries from 1, as Storage queues and
MaxDeliveryCount do. One client per process; senders and receivers are cached per queue. The clients
are not coroutine-safe, so calls on one transport are serialised per queue.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from azure.servicebus import (
    ServiceBusMessage,
    ServiceBusMessageBatch,
    ServiceBusReceivedMessage,
    ServiceBusReceiveMode,
    ServiceBusSubQueue,
)
from azure.servicebus.aio import ServiceBusClient, ServiceBusReceiver, ServiceBusSender
from azure.servicebus.aio.management import ServiceBusAdministrationClient
from azure.servicebus.amqp import AmqpMessageBodyType
from azure.servicebus.exceptions import MessageAlreadySettled, MessageLockLostError, MessageSizeExceededError

from adapters.sdk_options import sdk_client_options
from config.settings import Settings
from lifecycle.clock import SystemClock
from lifecycle.errors import StateConflictError
from lifecycle.models import OutboundMessage, ReceivedMessage
from lifecycle.ports import Clock

KEY_PROPERTY = "key"
KIND_PROPERTY = "kind"
# Set by the broker on dead letters; they are not the sender's properties.
_BROKER_PROPERTIES = {"DeadLetterReason", "DeadLetterErrorDescription"}


def to_servicebus_message(message: OutboundMessage) -> ServiceBusMessage:
    reserved = {KEY_PROPERTY, KIND_PROPERTY} & message.properties.keys()
    if reserved:
        raise ValueError(f"application properties {sorted(reserved)} are reserved for the key and kind")
    return ServiceBusMessage(
        body=message.body,
        message_id=message.message_id,
        application_properties={
            **message.properties,
            KEY_PROPERTY: message.key,
            KIND_PROPERTY: message.kind,
        },
    )


def _text(value: Any) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)


def _body(message: ServiceBusReceivedMessage) -> bytes:
    if message.body_type == AmqpMessageBodyType.DATA:
        return b"".join(message.body)
    value = message.body
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    return json.dumps(value, default=_text).encode("utf-8")


def from_servicebus_message(message: ServiceBusReceivedMessage, receipt: Any = None) -> ReceivedMessage:
    """The port's view of a received (or peeked) Service Bus message. Received keys arrive as bytes."""
    properties = {_text(name): _text(value) for name, value in (message.application_properties or {}).items()}
    key = properties.pop(KEY_PROPERTY, None)
    kind = properties.pop(KIND_PROPERTY, None)
    for name in _BROKER_PROPERTIES:
        properties.pop(name, None)
    return ReceivedMessage(
        body=_body(message),
        message_id=str(message.message_id),
        key=key,
        kind=kind,
        delivery_count=(message.delivery_count or 0) + 1,
        enqueued=message.enqueued_time_utc,
        properties=properties,
        dead_letter_reason=message.dead_letter_reason,
        dead_letter_description=message.dead_letter_error_description,
        receipt=receipt,
    )


@dataclass(frozen=True)
class _Receipt:
    receiver: ServiceBusReceiver
    message: ServiceBusReceivedMessage


def _receipt(message: ReceivedMessage) -> _Receipt:
    if not isinstance(message.receipt, _Receipt):
        raise ValueError("message was not received through ServiceBusTransport")
    return message.receipt


class ServiceBusTransport:
    def __init__(
        self,
        client: ServiceBusClient,
        admin: ServiceBusAdministrationClient,
        *,
        clock: Clock | None = None,
        max_wait_seconds: float = 2.0,
        owned: Sequence[Any] = (),
    ) -> None:
        self._client = client
        self._admin = admin
        self._clock = clock or SystemClock()
        self._max_wait = max_wait_seconds
        self._senders: dict[str, ServiceBusSender] = {}
        self._receivers: dict[tuple[str, bool], ServiceBusReceiver] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._owned = list(owned)

    @classmethod
    def from_settings(
        cls, settings: Settings, credential: Any = None, clock: Clock | None = None
    ) -> ServiceBusTransport:
        if settings.servicebus_connection_string is not None:
            connection = settings.servicebus_connection_string.get_secret_value()
            client = ServiceBusClient.from_connection_string(connection)
            admin = ServiceBusAdministrationClient.from_connection_string(connection, **sdk_client_options())
            return cls(client, admin, clock=clock)
        if not settings.servicebus_namespace:
            raise ValueError("set ServiceBusConnection__fullyQualifiedNamespace or ServiceBusConnection")
        owned = []
        if credential is None:
            from azure.identity.aio import DefaultAzureCredential

            credential = DefaultAzureCredential(managed_identity_client_id=settings.managed_identity_client_id)
            owned.append(credential)
        client = ServiceBusClient(settings.servicebus_namespace, credential)
        admin = ServiceBusAdministrationClient(settings.servicebus_namespace, credential, **sdk_client_options())
        return cls(client, admin, clock=clock, owned=owned)

    def _lock(self, name: str) -> asyncio.Lock:
        return self._locks.setdefault(name, asyncio.Lock())

    def _sender(self, name: str) -> ServiceBusSender:
        if name not in self._senders:
            self._senders[name] = self._client.get_queue_sender(name)
        return self._senders[name]

    def _receiver(self, name: str, dead: bool) -> ServiceBusReceiver:
        if (name, dead) not in self._receivers:
            self._receivers[(name, dead)] = self._client.get_queue_receiver(
                name,
                receive_mode=ServiceBusReceiveMode.PEEK_LOCK,
                sub_queue=ServiceBusSubQueue.DEAD_LETTER if dead else None,
                prefetch_count=0,
            )
        return self._receivers[(name, dead)]

    async def send(self, queue: str, messages: Sequence[OutboundMessage]) -> None:
        sender = self._sender(queue)
        now_messages = [m for m in messages if m.delay_seconds <= 0]
        async with self._lock(f"send:{queue}"):
            await self._send_batched(sender, [to_servicebus_message(m) for m in now_messages])
            for message in messages:
                if message.delay_seconds > 0:
                    at = self._clock.now() + timedelta(seconds=message.delay_seconds)
                    await sender.schedule_messages(to_servicebus_message(message), at)

    @staticmethod
    async def _send_batched(sender: ServiceBusSender, messages: list[ServiceBusMessage]) -> None:
        batch: ServiceBusMessageBatch | None = None
        for message in messages:
            if batch is None:
                batch = await sender.create_message_batch()
            try:
                batch.add_message(message)
            except MessageSizeExceededError:
                if len(batch) == 0:
                    raise
                await sender.send_messages(batch)
                batch = await sender.create_message_batch()
                batch.add_message(message)
        if batch is not None and len(batch) > 0:
            await sender.send_messages(batch)

    async def _take(self, queue: str, dead: bool, max_messages: int) -> list[ReceivedMessage]:
        receiver = self._receiver(queue, dead)
        async with self._lock(f"receive:{queue}:{dead}"):
            received = await receiver.receive_messages(
                max_message_count=max(1, max_messages), max_wait_time=self._max_wait
            )
        return [from_servicebus_message(m, _Receipt(receiver, m)) for m in received]

    @staticmethod
    async def _settle(message: ReceivedMessage, action: str, **kwargs: Any) -> None:
        receipt = _receipt(message)
        try:
            await getattr(receipt.receiver, action)(receipt.message, **kwargs)
        except (MessageLockLostError, MessageAlreadySettled) as error:
            raise StateConflictError(f"the lock on message {message.message_id} was lost or already settled") from error

    async def receive(self, queue: str, max_messages: int = 16, lock_seconds: int = 60) -> list[ReceivedMessage]:
        return await self._take(queue, False, max_messages)

    async def complete(self, queue: str, message: ReceivedMessage) -> None:
        await self._settle(message, "complete_message")

    async def abandon(self, queue: str, message: ReceivedMessage) -> None:
        await self._settle(message, "abandon_message")

    async def dead_letter(self, queue: str, message: ReceivedMessage, reason: str, description: str) -> None:
        await self._settle(message, "dead_letter_message", reason=reason, error_description=description)

    async def peek_dead_letters(self, queue: str, max_messages: int = 100) -> list[ReceivedMessage]:
        receiver = self._receiver(queue, dead=True)
        async with self._lock(f"receive:{queue}:True"):
            # sequence_number=1 starts from the oldest; otherwise a receiver peeks on from its last peek.
            peeked = await receiver.peek_messages(max_message_count=max(1, max_messages), sequence_number=1)
        return [from_servicebus_message(m) for m in peeked]

    async def receive_dead_letters(
        self, queue: str, max_messages: int = 16, lock_seconds: int = 60
    ) -> list[ReceivedMessage]:
        return await self._take(queue, True, max_messages)

    async def release_dead_letter(self, queue: str, message: ReceivedMessage) -> None:
        await self._settle(message, "abandon_message")

    async def complete_dead_letter(self, queue: str, message: ReceivedMessage) -> None:
        await self._settle(message, "complete_message")

    async def depth(self, queue: str) -> tuple[int, int]:
        properties = await self._admin.get_queue_runtime_properties(queue)
        return int(properties.active_message_count or 0), int(properties.dead_letter_message_count or 0)

    async def close(self) -> None:
        for handler in [*self._senders.values(), *self._receivers.values()]:
            await handler.close()
        await self._client.close()
        await self._admin.close()
        for owned in self._owned:
            await owned.close()
