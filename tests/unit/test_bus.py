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


def test_the_local_bus_packs_a_batch_into_envelopes_that_unpack_to_the_same_messages() -> None:
    from shared.adapters.bus import ENVELOPE_BYTES, envelopes, unpack

    messages = [BusMessage(f"m{i}", {"payload": "x" * 500}) for i in range(300)]
    packed = envelopes(messages)
    assert len(packed) > 1 and all(len(e) <= ENVELOPE_BYTES + 600 for e in packed)
    assert [m for e in packed for m in unpack(e)] == messages
