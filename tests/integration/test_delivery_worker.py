"""Delivery through the functions, as the Functions host calls them, against Azurite and a
real SMTP server: an order posted to the sales poster function, its invoice event handed
to the ``notification_worker`` function as a Service Bus message (with the delivery count
the host passes), and the mail read back from the SMTP server."""

from __future__ import annotations

from datetime import UTC, datetime

import azure.functions as func
import pytest

from devhost.mailbox import Mailbox
from shared.adapters.bus import NOTICES
from shared.ports import BusMessage, MailUnavailable
from shared.service import delivery
from shared.service.context import Context
from shared.service.delivery import MAIL_ATTEMPTS
from tests.fixtures import function, received
from tests.integration.test_salesposter import ORDER, post

WORKER = "notification_worker"


def service_bus(message: BusMessage, delivery_count: int = 1) -> func.ServiceBusMessage:
    """The message as the Functions host hands it over (the local host builds the same)."""
    from azure.functions.servicebus import ServiceBusMessage

    return ServiceBusMessage(body=message.encode().encode(), message_id=message.id, delivery_count=delivery_count,
                             enqueued_time_utc=datetime.now(UTC), content_type="application/json",
                             application_properties={}, user_properties={})


def test_an_order_through_the_sales_poster_is_mailed_by_the_worker_function_once(
        ctx: Context, shop: str, mailbox: Mailbox) -> None:
    assert post(shop, ORDER).status_code == 201
    (message,) = received(ctx, NOTICES)
    function(WORKER)(service_bus(message))
    function(WORKER)(service_bus(message, delivery_count=2))  # Service Bus delivers it again
    (mail,) = mailbox.mails(shop)
    assert mail["To"] == "ola@example.no"
    assert [p.get_filename() for p in mail.iter_attachments()] == ["inv-00000001.pdf"]


def test_the_worker_function_raises_while_the_mail_server_is_down_and_prints_on_the_last_delivery(
        ctx: Context, shop: str, mailbox: Mailbox) -> None:
    assert post(shop, ORDER).status_code == 201
    (message,) = received(ctx, NOTICES)
    mailbox.down()
    for count in range(1, MAIL_ATTEMPTS):
        with pytest.raises(MailUnavailable):  # the host abandons the message: delivered again, at once
            function(WORKER)(service_bus(message, count))
    function(WORKER)(service_bus(message, MAIL_ATTEMPTS))  # completes: the document went to print
    rows = delivery.log(ctx, shop, 1000)
    assert [(r.channel, r.status.value) for r in rows] == [("email", "failed"), ("print", "sent")]
    assert "6003" in rows[1].recipient
    (listed,) = ctx.attention.all(shop)
    assert listed.ref == "inv-00000001" and "print" in listed.reason
