"""The Service Bus adapter, checked with the SDK's own message types."""

from __future__ import annotations

from azure.functions.servicebus import ServiceBusMessage as TriggerMessage
from azure.servicebus import ServiceBusMessage

from shared.adapters.bus import BusMessage, decode, to_service_bus


def test_an_outbox_message_becomes_a_service_bus_message_with_its_id_for_duplicate_detection() -> None:
    message = BusMessage("invoice-issued.avisa.17", {"tenant": "t", "type": "InvoiceIssued"})
    sb = to_service_bus(message)
    assert isinstance(sb, ServiceBusMessage)
    assert sb.message_id == "invoice-issued.avisa.17"
    assert sb.content_type == "application/json"
    assert decode(b"".join(sb.body)) == message


def test_what_the_trigger_receives_decodes_to_the_message_that_was_sent() -> None:
    message = BusMessage("invoice-run.t.2026-01-22.1.9", {"kind": "invoice", "subscribers": [1, 9]})
    received = TriggerMessage(body=message.encode().encode(), message_id=message.id,
                              application_properties={}, user_properties={})
    assert decode(received.get_body()) == message
