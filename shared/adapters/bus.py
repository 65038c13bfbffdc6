"""Messages between functions: Service Bus queues in Azure, Azurite queues locally.

The port is ``shared.ports.Bus``: ``send(queue, messages)``. ``ServiceBusBus`` is deliberately thin: it
turns our ``BusMessage`` into the SDK's own ``ServiceBusMessage`` (``message_id`` set,
so Service Bus duplicate detection drops a re-sent outbox message) and sends them in
size-limited batches. ``StorageQueueBus`` writes the same JSON to an Azurite queue of
the same name, which the local host feeds to the Service Bus-triggered functions.
An event's message (``event_message``) has the event id as its message id and the body
``{"tenant", "type", "version", "payload"}`` (the codec's envelope); ``event_of`` reads it
back as the typed event. Azurite's queue has no batch send, so one ``send`` becomes one queue message carrying
an envelope of up to ``ENVELOPE_BYTES`` of messages; the host hands each message in it
to the function separately, as Service Bus would.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence

from azure.core.exceptions import ResourceExistsError
from azure.servicebus import ServiceBusClient, ServiceBusMessage
from azure.storage.queue import QueueServiceClient

from ..domain.events import Event
from ..ports import Bus as Bus  # re-exported: the port lives in shared/ports.py
from ..ports import BusMessage
from .codec import event_envelope, event_from

RUN_WORK = "run-work"
EVENTS = "abonno-events"
NOTICES = "notices"  # reminders and stop notices for the notification worker (D3)
CHARGES = "charges"  # ``ChargeRequested``: charges to create at Vipps / Swedbank Pay (P6)
PROVIDER_EVENTS = "provider-events"  # Vipps webhooks and Swedbank Pay callbacks, verified, for the provider worker
ACCESS = "access"  # ``AccessChanged``: access rows to recompute (M1, ``functions.access_worker``)
QUEUES = (RUN_WORK, EVENTS, NOTICES, CHARGES, PROVIDER_EVENTS, ACCESS)



def decode(text: str | bytes) -> BusMessage:
    data = json.loads(text)
    return BusMessage(data["id"], data["body"])


def event_message(tenant: str, event: Event) -> BusMessage:
    """The message that carries an outbox event: its id is the event's, for duplicate detection."""
    envelope = event_envelope(event)
    del envelope["id"]
    return BusMessage(event.id, {"tenant": tenant, **envelope})


def event_of(message: BusMessage) -> Event:
    """The typed event a message of ``event_message`` carries (``codec.UnknownEvent`` if none)."""
    return event_from({**message.body, "id": message.id})


ENVELOPE_BYTES = 48_000  # under the 64 KiB limit of a storage queue message


def envelopes(messages: Sequence[BusMessage]) -> list[str]:
    """Pack messages into as few queue messages as fit (the local bus's batch send)."""
    packed: list[str] = []
    current: list[str] = []
    size = 0
    for text in (m.encode() for m in messages):
        if current and size + len(text) > ENVELOPE_BYTES:
            packed.append("[" + ",".join(current) + "]")
            current, size = [], 0
        current.append(text)
        size += len(text) + 1
    if current:
        packed.append("[" + ",".join(current) + "]")
    return packed


def unpack(text: str | bytes) -> list[BusMessage]:
    """The messages of one local queue message (an envelope, or a single message)."""
    data = json.loads(text)
    items = data if isinstance(data, list) else [data]
    return [BusMessage(d["id"], d["body"]) for d in items]



def to_service_bus(message: BusMessage) -> ServiceBusMessage:
    return ServiceBusMessage(message.encode(), message_id=message.id, content_type="application/json")


class ServiceBusBus:
    def __init__(self, client: ServiceBusClient) -> None:
        self.client = client
        self._lock = threading.Lock()

    def send(self, queue: str, messages: Sequence[BusMessage]) -> None:
        if not messages:
            return
        with self._lock, self.client.get_queue_sender(queue) as sender:
            batch = sender.create_message_batch()
            for message in messages:
                sb = to_service_bus(message)
                try:
                    batch.add_message(sb)
                except ValueError:  # batch full: send it and start the next
                    sender.send_messages(batch)
                    batch = sender.create_message_batch()
                    batch.add_message(sb)
            sender.send_messages(batch)


class StorageQueueBus:
    def __init__(self, service: QueueServiceClient) -> None:
        self.service = service

    @classmethod
    def from_connection_string(cls, conn_str: str) -> StorageQueueBus:
        return cls(QueueServiceClient.from_connection_string(conn_str))

    def ensure_queues(self, names: Sequence[str] = QUEUES) -> None:
        for name in names:
            for suffix in ("", "-poison"):
                try:
                    self.service.create_queue(name + suffix)
                except ResourceExistsError:
                    pass

    def send(self, queue: str, messages: Sequence[BusMessage]) -> None:
        client = self.service.get_queue_client(queue)
        for envelope in envelopes(messages):
            client.send_message(envelope)
