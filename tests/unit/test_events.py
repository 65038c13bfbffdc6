"""Typed events: one registry, a stable type name and a version each; the codec writes them
as the envelope the outbox and the bus have always carried, and reads what was written
before events had versions (issue 9, item 3)."""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from datetime import date
from typing import Any, ClassVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.adapters.bus import BusMessage, decode, event_message, event_of
from shared.adapters.codec import UnknownEvent, dump_event, event_envelope, event_from, load_event
from shared.domain import events as ev
from shared.domain.catalogue import PaymentType
from shared.domain.subscriptions import StopKind


def test_every_event_is_registered_once_under_a_type_name_of_its_own() -> None:
    assert len(ev.REGISTRY) == len(ev.EVENT_TYPES)
    assert all(ev.REGISTRY[cls.TYPE] is cls and cls.VERSION >= 1 for cls in ev.EVENT_TYPES)
    assert all(cls.__dataclass_params__.frozen for cls in ev.EVENT_TYPES)  # type: ignore[attr-defined]


def test_notices_are_said_by_the_class_not_by_a_list_of_names() -> None:
    assert {cls.TYPE for cls in ev.EVENT_TYPES if cls.NOTICE} == {"InvoiceIssued", "CreditNoteIssued", "ReminderIssued",
                                                                 "PaymentStopNotice"}


@settings(deadline=None)  # the first example of each type builds its pydantic adapter
@given(st.sampled_from(ev.EVENT_TYPES).flatmap(st.from_type))
def test_any_event_goes_through_the_outbox_row_and_the_bus_message_unchanged(event: ev.Event) -> None:
    assert load_event(dump_event(event)) == event
    message = decode(event_message("avisa-no", event).encode())
    assert message.id == event.id and set(message.body) == {"tenant", "type", "version", "payload"}
    assert (message.body["type"], message.body["version"]) == (event.TYPE, event.VERSION)
    assert event_of(message) == event
    assert len(message.body["payload"]) == len(fields(event)) - 1  # every field but the id


def test_the_payload_keeps_its_keys_and_values_as_sent_before_events_were_typed() -> None:
    stopped = ev.SubscriptionStopChanged("stop-changed.s1.2026-03-01.None", 7, "s1", date(2026, 3, 1), None, "Stays")
    assert event_envelope(stopped) == {
        "id": "stop-changed.s1.2026-03-01.None", "type": "SubscriptionStopChanged", "version": 1,
        "payload": {"subscriber_no": 7, "subscription_id": "s1", "from": "2026-03-01", "to": None,
                    "reason": "Stays"}}
    created = ev.SubscriptionCreated("subscription-created.s1", 7, "s1", "p1", date(2026, 1, 5), PaymentType.INVOICE)
    assert event_envelope(created)["payload"] == {"subscriber_no": 7, "subscription_id": "s1", "plan_id": "p1",
                                                  "start": "2026-01-05", "payment_type": "invoice"}


def test_an_outbox_row_of_the_untyped_form_loads_as_its_typed_event() -> None:
    # the Body of an outbox row as written before events had classes and versions
    old = json.dumps({"id": "subscription-stopped.s1.2026-04-16", "type": "SubscriptionStopped",
                      "payload": {"subscriber_no": 7, "subscription_id": "s1", "stop_date": "2026-04-16",
                                  "kind": "payment", "code": None, "reason": "Stopped due to lack of payment"}})
    assert load_event(old) == ev.SubscriptionStopped("subscription-stopped.s1.2026-04-16", 7, "s1",
                                                     date(2026, 4, 16), StopKind.PAYMENT, None,
                                                     "Stopped due to lack of payment")


def test_an_unknown_type_or_a_version_from_the_future_is_refused_loudly() -> None:
    with pytest.raises(UnknownEvent):
        event_from({"id": "x", "type": "Probe", "payload": {}})
    with pytest.raises(UnknownEvent):
        event_from({"id": "x", "type": "InvoicePaid", "version": 2, "payload": {}})


@dataclass(frozen=True, slots=True)
class InvoicePaidV2(ev.Event):
    """A second version, as a change of payload would make one: the organisation renamed."""

    TYPE: ClassVar[str] = "InvoicePaid"
    VERSION: ClassVar[int] = 2

    subscriber_no: int
    invoice_number: int
    seller_id: str

    @classmethod
    def upgrade(cls, version: int, payload: dict[str, Any]) -> dict[str, Any]:
        rest = {k: v for k, v in payload.items() if k != "organization_id"}
        return {**rest, "seller_id": payload["organization_id"]}


def test_a_payload_of_an_older_version_is_read_through_the_class_upgrade() -> None:
    v1 = event_envelope(ev.InvoicePaid("invoice-paid.avisa.3", 7, 3, "avisa"))
    registry = {**ev.REGISTRY, "InvoicePaid": InvoicePaidV2}
    assert event_from(v1, registry) == InvoicePaidV2("invoice-paid.avisa.3", 7, 3, "avisa")
    v2 = event_envelope(InvoicePaidV2("invoice-paid.avisa.4", 7, 4, "avisa"))
    assert v2["version"] == 2 and event_from(v2, registry) == InvoicePaidV2("invoice-paid.avisa.4", 7, 4, "avisa")


def test_a_bus_message_of_the_untyped_form_reads_as_version_one() -> None:
    body = {"tenant": "t", "type": "InvoicePaid", "payload": {"subscriber_no": 7, "invoice_number": 3,
                                                              "organization_id": "avisa"}}
    assert event_of(BusMessage("invoice-paid.avisa.3", body)) == ev.InvoicePaid("invoice-paid.avisa.3", 7, 3, "avisa")
