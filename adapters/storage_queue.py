"""QueueTransport on Azure Storage queues: the local (Azurite) stand-in for Service Bus.

Storage queues have no application properties, so every message is a JSON envelope::

    {"messageId": ..., "key": ..., "kind": ..., "properties": {...},
     "body": "<text or base64>", "bodyEncoding": "text" | "base64"}

Peek-lock maps onto visibility: receive hides a message for ``lock_seconds`` and its pop receipt is the
lock. ``delivery_count`` is the dequeue count. The dead-letter queue is ``<queue>-poison``, the name the
Functions host uses for Storage queues; a dead letter carries its reason and description in the envelope.
Storage limits that differ from Service Bus: a message is at most 64 KiB, a delay at most 7 days, and at
most 32 messages come back per receive or peek.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.storage.queue import QueueMessage
from azure.storage.queue.aio import QueueClient, QueueServiceClient

from adapters.sdk_options import sdk_client_options
from config.settings import Settings
from lifecycle.errors import StateConflictError
from lifecycle.models import OutboundMessage, ReceivedMessage

log = structlog.get_logger(__name__)

MAX_VISIBILITY_SECONDS = 7 * 24 * 3600  # Storage refuses a visibility timeout beyond 7 days
MAX_MESSAGE_BYTES = 64 * 1024  # Storage's limit for one message
MAX_MESSAGES_PER_CALL = 32  # Storage's limit for one receive or peek
NEVER_EXPIRE = -1  # Service Bus keeps messages until settled; so do we (the Storage default is 7 days)
POISON_SUFFIX = "-poison"
_SEND_CONCURRENCY = 16


def encode_envelope(message: OutboundMessage, **extra: Any) -> str:
    try:
        body, encoding = message.body.decode("utf-8"), "text"
    except UnicodeDecodeError:
        body, encoding = base64.b64encode(message.body).decode("ascii"), "base64"
    envelope = {
        "messageId": message.message_id,
        "key": message.key,
        "kind": message.kind,
        "properties": dict(message.properties),
        "body": body,
        "bodyEncoding": encoding,
        **extra,
    }
    text = json.dumps(envelope, separators=(",", ":"), ensure_ascii=False)
    if len(text.encode("utf-8")) > MAX_MESSAGE_BYTES:
        raise ValueError(
            f"message {message.message_id} is {len(text.encode('utf-8'))} bytes as a Storage queue envelope; "
            f"the limit is {MAX_MESSAGE_BYTES}"
        )
    return text


def _decode_body(envelope: dict[str, Any]) -> bytes:
    if envelope.get("bodyEncoding") == "base64":
        return base64.b64decode(envelope["body"])
    return str(envelope["body"]).encode("utf-8")


def decode_envelope(message: QueueMessage, *, locked: bool) -> ReceivedMessage:
    """The ReceivedMessage for a Storage message; a message that is not an envelope is taken as its body."""
    content = message.content if isinstance(message.content, str) else str(message.content)
    try:
        envelope = json.loads(content)
        body = _decode_body(envelope)
        message_id = str(envelope["messageId"])
    except (ValueError, KeyError, TypeError, binascii.Error):
        envelope, body, message_id = {}, content.encode("utf-8"), str(message.id)
    return ReceivedMessage(
        body=body,
        message_id=message_id,
        key=envelope.get("key"),
        kind=envelope.get("kind"),
        delivery_count=int(envelope.get("deliveryCount") or message.dequeue_count or 0),
        enqueued=message.inserted_on,
        properties={str(k): str(v) for k, v in (envelope.get("properties") or {}).items()},
        dead_letter_reason=envelope.get("deadLetterReason"),
        dead_letter_description=envelope.get("deadLetterDescription"),
        receipt=_Receipt(str(message.id), str(message.pop_receipt)) if locked else None,
    )


@dataclass(frozen=True)
class _Receipt:
    storage_id: str
    pop_receipt: str


def _receipt(message: ReceivedMessage) -> _Receipt:
    if not isinstance(message.receipt, _Receipt):
        raise ValueError("message was not received through StorageQueueTransport")
    return message.receipt


def _visibility_for(delay_seconds: float, message_id: str) -> int | None:
    if delay_seconds <= 0:
        return None
    seconds = math.ceil(delay_seconds)
    if seconds > MAX_VISIBILITY_SECONDS:
        log.warning("queue.delay_capped", message_id=message_id, asked=seconds, capped=MAX_VISIBILITY_SECONDS)
        return MAX_VISIBILITY_SECONDS
    return seconds


class StorageQueueTransport:
    def __init__(self, service: QueueServiceClient) -> None:
        self._service = service
        self._clients: dict[str, QueueClient] = {}
        self._created: set[str] = set()

    @classmethod
    def from_settings(cls, settings: Settings, credential: Any = None) -> StorageQueueTransport:
        if settings.queues_connection_string is None:
            raise ValueError("LIFECYCLE_QUEUES_CONNECTION_STRING is required for the storage transport")
        connection = settings.queues_connection_string.get_secret_value()
        service = QueueServiceClient.from_connection_string(connection, **sdk_client_options())
        return cls(service)

    def _cached_client(self, name: str) -> QueueClient:
        if name not in self._clients:
            self._clients[name] = self._service.get_queue_client(name)
        return self._clients[name]

    async def _client(self, name: str) -> QueueClient:
        """The client for queue ``name`` (already prefixed), creating the queue on first use."""
        client = self._cached_client(name)
        if name not in self._created:
            with contextlib.suppress(ResourceExistsError):
                await client.create_queue()
            self._created.add(name)
        return client

    def _name(self, queue: str, dead: bool = False) -> str:
        return f"{queue}{POISON_SUFFIX if dead else ''}"

    async def send(self, queue: str, messages: Sequence[OutboundMessage]) -> None:
        client = await self._client(self._name(queue))
        limit = asyncio.Semaphore(_SEND_CONCURRENCY)

        async def send_one(message: OutboundMessage) -> None:
            async with limit:
                await client.send_message(
                    encode_envelope(message),
                    visibility_timeout=_visibility_for(message.delay_seconds, message.message_id),
                    time_to_live=NEVER_EXPIRE,
                )

        await asyncio.gather(*(send_one(message) for message in messages))

    async def _take(self, name: str, max_messages: int, lock_seconds: int) -> list[ReceivedMessage]:
        client = await self._client(name)
        wanted = max(1, max_messages)
        pages = client.receive_messages(
            messages_per_page=min(wanted, MAX_MESSAGES_PER_CALL),
            visibility_timeout=max(1, lock_seconds),
            max_messages=wanted,
        )
        return [decode_envelope(message, locked=True) async for message in pages]

    async def _delete(self, name: str, message: ReceivedMessage) -> None:
        receipt = _receipt(message)
        client = await self._client(name)
        try:
            await client.delete_message(receipt.storage_id, receipt.pop_receipt)
        except HttpResponseError as error:
            # 404 MessageNotFound / 400 PopReceiptMismatch: the visibility (lock) ran out and another
            # consumer received the message, or it was settled already.
            if error.status_code in (400, 404):
                raise StateConflictError(
                    f"the lock on message {message.message_id} was lost or already settled"
                ) from error
            raise

    async def receive(self, queue: str, max_messages: int = 16, lock_seconds: int = 60) -> list[ReceivedMessage]:
        return await self._take(self._name(queue), max_messages, lock_seconds)

    async def complete(self, queue: str, message: ReceivedMessage) -> None:
        await self._delete(self._name(queue), message)

    async def abandon(self, queue: str, message: ReceivedMessage) -> None:
        await self._make_visible(self._name(queue), message)

    async def release_dead_letter(self, queue: str, message: ReceivedMessage) -> None:
        await self._make_visible(self._name(queue, dead=True), message)

    async def _make_visible(self, name: str, message: ReceivedMessage) -> None:
        receipt = _receipt(message)
        client = await self._client(name)
        try:
            await client.update_message(receipt.storage_id, receipt.pop_receipt, visibility_timeout=0)
        except HttpResponseError as error:
            if error.status_code in (400, 404):
                raise StateConflictError(f"the lock on message {message.message_id} was lost") from error
            raise

    async def dead_letter(self, queue: str, message: ReceivedMessage, reason: str, description: str) -> None:
        poison = await self._client(self._name(queue, dead=True))
        outbound = OutboundMessage(
            body=message.body,
            message_id=message.message_id,
            key=message.key or "",
            kind=message.kind or "",
            properties=message.properties,
        )
        extra = {
            "deadLetterReason": reason,
            "deadLetterDescription": description,
            "deliveryCount": message.delivery_count,
        }
        copy = await poison.send_message(encode_envelope(outbound, **extra), time_to_live=NEVER_EXPIRE)
        try:
            await self._delete(self._name(queue), message)
        except StateConflictError:
            # Someone else holds the original now; take back the copy so it is not dead-lettered twice.
            await poison.delete_message(copy.id, copy.pop_receipt)
            raise

    async def peek_dead_letters(self, queue: str, max_messages: int = 100) -> list[ReceivedMessage]:
        poison = await self._client(self._name(queue, dead=True))
        peeked = await poison.peek_messages(max_messages=min(max(1, max_messages), MAX_MESSAGES_PER_CALL))
        return [decode_envelope(message, locked=False) for message in peeked]

    async def receive_dead_letters(
        self, queue: str, max_messages: int = 16, lock_seconds: int = 60
    ) -> list[ReceivedMessage]:
        return await self._take(self._name(queue, dead=True), max_messages, lock_seconds)

    async def complete_dead_letter(self, queue: str, message: ReceivedMessage) -> None:
        await self._delete(self._name(queue, dead=True), message)

    async def depth(self, queue: str) -> tuple[int, int]:
        counts = []
        for name in (self._name(queue), self._name(queue, dead=True)):
            try:
                properties = await self._cached_client(name).get_queue_properties()
            except ResourceNotFoundError:
                counts.append(0)
            else:
                counts.append(int(properties.approximate_message_count or 0))
        return counts[0], counts[1]

    async def close(self) -> None:
        for client in self._clients.values():
            await client.close()
        await self._service.close()
