"""Delivery (L7, D3) against Azurite and a real SMTP server (aiosmtpd): each document reaches
the subscriber once per channel, however often and however concurrently its bus message
is handled; a refused mail falls back to print; customer service resends; the delivery
log says what happened."""

from __future__ import annotations

import io
import json
import threading
from dataclasses import replace
from datetime import date, timedelta
from typing import Any

import pytest
from pypdf import PdfReader

from devhost.builders import install_catalogue
from devhost.mailbox import Mailbox
from functions.notification_worker import handle
from functions.run_worker import handle as work
from shared import bootstrap
from shared.adapters.bus import NOTICES, RUN_WORK, event_message
from shared.adapters.notify import CONTAINER
from shared.domain.catalogue import Channel
from shared.domain.dunning import NoticeChannel
from shared.domain.events import PaymentStopNotice
from shared.ports import BusMessage, DeliveryStatus, MailUnavailable, Unavailable
from shared.service import delivery
from shared.service.context import Context
from shared.service.delivery import DELIVERY_RUN, LEASE, MAIL_ATTEMPTS
from shared.service.dunning import start_dunning_run
from shared.service.orders import place_order
from tests.conftest import oslo_morning
from tests.fixtures import order, received


def notices(ctx: Context) -> list[BusMessage]:
    taken: list[BusMessage] = []
    while batch := received(ctx, NOTICES):
        taken += batch
    return taken


def run(message: BusMessage, delivery_count: int = 1) -> Any:
    return handle(message.encode().encode(), delivery_count)


def pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def attachment(mail: Any) -> tuple[str, bytes]:
    (part,) = list(mail.iter_attachments())
    return part.get_filename(), part.get_content()


def test_an_invoice_is_mailed_once_with_its_pdf_text_and_html(ctx: Context, shop: str, mailbox: Mailbox) -> None:
    placed = place_order(ctx, order(shop, 1))
    (message,) = notices(ctx)
    assert message.body["type"] == "InvoiceIssued"
    (row,) = run(message)
    assert (row.document_id, row.channel, row.status) == ("inv-00000001", "email", DeliveryStatus.SENT)
    run(message)  # the bus delivers it again: the row is there, nothing is sent again
    (mail,) = mailbox.mails(shop)
    assert mail["To"] == "kari1@example.no" and "Faktura 1" in mail["Subject"]
    assert mail["Message-ID"] == row.provider_id
    text = mail.get_body(("plain",)).get_content()
    html = mail.get_body(("html",)).get_content()
    kid = placed.invoices[0].kid
    assert "348,00 kr" in text and "348,00 kr" in html and kid in text
    name, pdf = attachment(mail)
    assert name == "inv-00000001.pdf" and pdf.startswith(b"%PDF")
    assert kid in pdf_text(pdf) and "Kari Nordmann 1" in pdf_text(pdf)
    assert delivery.log(ctx, shop, placed.subscriber_no) == [row]


def test_the_same_message_handled_by_two_threads_at_once_sends_one_mail(ctx: Context, shop: str,
                                                                         mailbox: Mailbox) -> None:
    place_order(ctx, order(shop, 1))
    (message,) = notices(ctx)
    start = threading.Barrier(2)
    outcomes: list[Any] = []

    def worker() -> None:
        start.wait()
        try:
            outcomes.append(run(message))
        except Exception as exc:  # the bus would deliver it again
            outcomes.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(mailbox.mails(shop)) == 1
    assert all(isinstance(o, list) and o[0].status is DeliveryStatus.SENT for o in outcomes), outcomes


def test_many_copies_of_many_messages_concurrently_send_each_document_once(ctx: Context, shop: str,
                                                                          mailbox: Mailbox) -> None:
    for n in range(1, 6):
        place_order(ctx, order(shop, n))
    messages = notices(ctx) * 4  # every message four times, all at once
    errors: list[Exception] = []

    def worker(m: BusMessage) -> None:
        try:
            run(m)
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(m,)) for m in messages]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(m["To"] for m in mailbox.mails(shop)) == [f"kari{n}@example.no" for n in range(1, 6)]


def test_a_refused_address_falls_back_to_print_and_customer_service_sees_it(ctx: Context, shop: str,
                                                                            mailbox: Mailbox) -> None:
    mailbox.refuse.add("kari1@example.no")  # the receiving server answers 550
    placed = place_order(ctx, replace(order(shop, 1), address="Storgata 1", postal_code="0150", city="Oslo"))
    (message,) = notices(ctx)
    rows = run(message)
    assert [(r.channel, r.status) for r in rows] == [("email", DeliveryStatus.FAILED), ("print", DeliveryStatus.SENT)]
    assert "550" in rows[0].reason and "kari1" not in rows[0].reason
    assert "0150" in rows[1].recipient
    (item,) = ctx.print_queue.items(shop, date(2026, 1, 5), "avisa")
    assert (item.subscriber_no, item.document_id, item.postal_code) == (placed.subscriber_no, "inv-00000001", "0150")
    attention = ctx.attention.find(shop, DELIVERY_RUN, placed.subscriber_no, "inv-00000001")
    assert attention is not None and "print" in attention.reason
    run(message)  # redelivered: nothing more (no second print item, the attention row not counted up)
    assert len(list(ctx.print_queue.items(shop, date(2026, 1, 5), "avisa"))) == 1
    again = ctx.attention.find(shop, DELIVERY_RUN, placed.subscriber_no, "inv-00000001")
    assert again is not None and again.count == 1
    assert mailbox.mails(shop) == []


def test_a_mail_server_that_is_down_is_retried_by_the_bus_then_print_on_the_last_attempt(
        ctx: Context, shop: str, mailbox: Mailbox) -> None:
    first = place_order(ctx, order(shop, 1))
    second = place_order(ctx, order(shop, 2))
    one, two = notices(ctx)
    mailbox.down()
    with pytest.raises(MailUnavailable):
        run(one)  # connection refused: raised, so the bus delivers the message again
    (queued,) = delivery.log(ctx, shop, first.subscriber_no)
    assert queued.status is DeliveryStatus.QUEUED
    rows = run(two, delivery_count=MAIL_ATTEMPTS)  # its last delivery: print instead of the dead-letter queue
    assert [(r.channel, r.status) for r in rows] == [("email", DeliveryStatus.FAILED), ("print", DeliveryStatus.SENT)]
    mailbox.up()
    (sent,) = run(one, delivery_count=2)  # the server is back: the queued row (its claim released) is sent
    assert sent.status is DeliveryStatus.SENT
    assert [m["To"] for m in mailbox.mails(shop)] == ["kari1@example.no"]
    assert delivery.log(ctx, shop, second.subscriber_no)[0].status is DeliveryStatus.FAILED


def test_a_handler_that_died_after_claiming_is_taken_over_once_its_claim_is_stale(ctx: Context, shop: str,
                                                                                    mailbox: Mailbox) -> None:
    placed = place_order(ctx, order(shop, 1))
    (message,) = notices(ctx)
    now = ctx.clock.now()
    ctx.deliveries.claim(shop, placed.subscriber_no, delivery.Delivery(  # what the dead handler left
        "inv-00000001", Channel.EMAIL, 1, DeliveryStatus.QUEUED, now, "kari1@example.no", claimed_at=now))
    delivery_wait, delivery.WAIT = delivery.WAIT, 0.2
    try:
        with pytest.raises(delivery.DeliveryInProgress):
            run(message)  # fresh: someone may be sending it now; the bus tries again later
    finally:
        delivery.WAIT = delivery_wait
    assert mailbox.mails(shop) == []
    ctx.clock.set(now + LEASE + timedelta(seconds=1))  # type: ignore[attr-defined]
    (row,) = run(message)
    assert row.status is DeliveryStatus.SENT and len(mailbox.mails(shop)) == 1


def test_customer_service_resends_to_another_address_as_a_new_attempt(ctx: Context, shop: str,
                                                                      mailbox: Mailbox) -> None:
    placed = place_order(ctx, order(shop, 1))
    run(notices(ctx)[0])
    again = delivery.resend(ctx, shop, placed.subscriber_no, "inv-00000001", to="ola@example.no")
    assert (again.attempt, again.channel, again.status, again.recipient) == (
        2, "email", DeliveryStatus.SENT, "ola@example.no")
    first, second = mailbox.mails(shop)
    assert (first["To"], second["To"]) == ("kari1@example.no", "ola@example.no")
    assert first["Message-ID"] != second["Message-ID"]
    assert attachment(first)[1] == attachment(second)[1]  # the same document, the same bytes
    assert [d.attempt for d in delivery.log(ctx, shop, placed.subscriber_no, "inv-00000001")] == [1, 2]
    printed = delivery.resend(ctx, shop, placed.subscriber_no, "inv-00000001", channel="print")
    assert (printed.attempt, printed.channel) == (3, "print")


def test_a_resend_that_gets_through_clears_what_customer_service_was_shown(ctx: Context, shop: str,
                                                                             mailbox: Mailbox) -> None:
    mailbox.refuse.add("kari1@example.no")
    placed = place_order(ctx, order(shop, 1))
    run(notices(ctx)[0])
    assert ctx.attention.find(shop, DELIVERY_RUN, placed.subscriber_no, "inv-00000001") is not None
    delivery.resend(ctx, shop, placed.subscriber_no, "inv-00000001", to="kari.ny@example.no")
    assert ctx.attention.find(shop, DELIVERY_RUN, placed.subscriber_no, "inv-00000001") is None


def test_a_reminder_by_email_carries_its_pdf_and_one_by_sms_a_link(ctx: Context, shop: str,
                                                                   mailbox: Mailbox) -> None:
    by_sms = place_order(ctx, replace(order(shop, 1), phone="+47 41234567"))  # the process sends SMS
    by_mail = place_order(ctx, order(shop, 2))  # no phone: the reminder goes by e-mail (manual 6.19)
    for m in notices(ctx):
        run(m)
    ctx.clock.set(oslo_morning(date(2026, 1, 26)))  # type: ignore[attr-defined]
    start_dunning_run(ctx, shop)
    while batch := received(ctx, RUN_WORK):
        for m in batch:
            work(m.encode().encode())
    messages = notices(ctx)  # the reminders, and the invoices' events again (the outbox sends at least once)
    assert sorted(m.body["type"] for m in messages if m.body["type"] != "InvoiceIssued") == ["ReminderIssued"] * 2
    for m in messages:
        run(m)
    assert len([m for m in mailbox.mails(shop) if "Faktura" in m["Subject"]]) == 2  # each invoice mailed once
    reminder_mail = next(m for m in mailbox.mails(shop) if m["To"] == "kari2@example.no" and "Purring" in m["Subject"])
    name, pdf = attachment(reminder_mail)
    assert name.startswith("rem-") and "Purring" in pdf_text(pdf)
    (sms_row,) = [d for d in delivery.log(ctx, shop, by_sms.subscriber_no) if d.document_id.startswith("rem-")]
    assert (sms_row.channel, sms_row.recipient, sms_row.status) == ("sms", "+47 41234567", DeliveryStatus.SENT)
    sms = sms_text(ctx, shop, sms_row.provider_id)
    assert "https://" in sms or "http://" in sms
    assert "/documents/" in sms and "sig=" in sms
    assert by_mail.subscriber_no != by_sms.subscriber_no


def sms_text(ctx: Context, tenant: str, notice_id: str) -> str:
    container = bootstrap.blob_service().get_container_client(CONTAINER)
    (name,) = [b.name for b in container.list_blobs(name_starts_with=f"{tenant}/") if notice_id in b.name]
    return str(json.loads(container.download_blob(name).readall())["text"])


def test_a_message_about_a_subscriber_that_does_not_exist_is_set_aside_not_retried(ctx: Context, shop: str) -> None:
    message = BusMessage("invoice-issued.avisa.9", {"tenant": shop, "type": "InvoiceIssued", "version": 1, "payload": {
        "subscriber_no": 4242, "invoice_number": 9, "kid": "", "organization_id": "avisa", "subscription_id": "s",
        "total_minor": 100, "credit_applied_minor": 0, "amount_due_minor": 100, "currency": "NOK",
        "due_date": "2026-01-19", "demand_no": 1}})
    assert run(message) is None
    row = ctx.attention.find(shop, DELIVERY_RUN, 4242, message.id)
    assert row is not None and "4242" in row.reason


# ---- a handler that dies at any step -------------------------------------------------------------

STEPS = [("claim", "deliveries"), ("send", "mailer"), ("update", "deliveries")]


@pytest.mark.parametrize(("method", "port"), STEPS, ids=[f"{p}.{m}" for m, p in STEPS])
def test_a_handler_that_dies_at_any_step_is_finished_by_the_redelivery_with_one_mail(
        fake_ctx: Any, method: str, port: str) -> None:
    """Fault injection at each step of a delivery (before the claim, before the mail goes,
    after it went and before the row says so); the bus then delivers the message again
    after the claim went stale. One mail every time, but in the window between sending and
    recording, where the repeat is the same message (the same Message-ID)."""
    ctx = fake_ctx
    install_catalogue(ctx, "shop")
    placed = place_order(ctx, order("shop", 1))
    (message,) = ctx.bus.take(NOTICES)
    getattr(ctx, port).inject(method, Unavailable("the process died here"))
    with pytest.raises(Unavailable):
        delivery.deliver(ctx, message.id, message.body)
    ctx.clock.set(ctx.clock.now() + LEASE + timedelta(seconds=1))
    (row,) = delivery.deliver(ctx, message.id, message.body, delivery_count=2)
    assert row.status is DeliveryStatus.SENT
    delivery.deliver(ctx, message.id, message.body, delivery_count=3)  # and once more: nothing
    ids = [m.message_id for m in ctx.mailer.sent]
    assert ids == [row.provider_id] * (2 if method == "update" else 1)
    assert [d.status for d in delivery.log(ctx, "shop", placed.subscriber_no)] == [DeliveryStatus.SENT]


def stop_notice(tenant: str, subscriber_no: int, channel: str = "email", to: str = "kari1@example.no") -> BusMessage:
    event = PaymentStopNotice(
        "stop-notice.avisa.1", subscriber_no=subscriber_no, name="Kari Nordmann 1", day=date(2026, 2, 4),
        channel=NoticeChannel(channel), to=to, organization_id="avisa", organization_name="Avisa Nordvest AS",
        invoice_number=1, kid="000100000000016", currency="NOK", bank_account="86011117947",
        stop_date=date(2026, 2, 9), owed_minor=38300)
    return event_message(tenant, event)


def test_a_stop_notice_is_mailed_as_its_document_and_resent_as_it_was(ctx: Context, shop: str,
                                                                      mailbox: Mailbox) -> None:
    placed = place_order(ctx, order(shop, 1))
    notices(ctx)
    (row,) = run(stop_notice(shop, placed.subscriber_no))
    assert (row.document_id, row.status) == ("stp-0000000001", DeliveryStatus.SENT)
    again = delivery.resend(ctx, shop, placed.subscriber_no, "stp-0000000001", to="ola@example.no")
    first, second = mailbox.mails(shop)
    assert "383,00 kr" in first.get_body(("plain",)).get_content()
    assert attachment(first)[1] == attachment(second)[1]  # the notice as it was sent, not as today would make it
    assert "09.02.2026" in pdf_text(attachment(second)[1])
    assert again.attempt == 2


def test_a_bounce_reported_later_sends_the_document_to_print_once(ctx: Context, shop: str, mailbox: Mailbox) -> None:
    placed = place_order(ctx, replace(order(shop, 1), postal_code="0150"))
    (row,) = run(notices(ctx)[0])
    rows = delivery.bounced(ctx, shop, placed.subscriber_no, row.document_id, row.attempt, "550 5.1.1 user unknown")
    assert [(r.channel, r.status) for r in rows] == [("email", DeliveryStatus.BOUNCED), ("print", DeliveryStatus.SENT)]
    delivery.bounced(ctx, shop, placed.subscriber_no, row.document_id, row.attempt, "550 5.1.1 user unknown")
    assert len(list(ctx.print_queue.items(shop, date(2026, 1, 5), "avisa"))) == 1
    seen = ctx.attention.find(shop, DELIVERY_RUN, placed.subscriber_no, row.document_id)
    assert seen is not None and seen.count == 1 and "bounced" in seen.reason


def test_a_resend_by_sms_to_a_subscriber_without_a_phone_is_refused_before_anything_is_claimed(
        ctx: Context, shop: str, mailbox: Mailbox) -> None:
    placed = place_order(ctx, order(shop, 1))
    run(notices(ctx)[0])
    with pytest.raises(delivery.NoRecipient):
        delivery.resend(ctx, shop, placed.subscriber_no, "inv-00000001", channel="sms")
    assert [d.attempt for d in delivery.log(ctx, shop, placed.subscriber_no)] == [1]
    sent = delivery.resend(ctx, shop, placed.subscriber_no, "inv-00000001", channel="sms", to="+47 41234567")
    assert (sent.channel, sent.attempt, sent.status) == ("sms", 2, DeliveryStatus.SENT)


@pytest.mark.parametrize("print_fails", [False, True], ids=["print works", "print fails too"])
def test_a_document_that_cannot_be_made_for_its_channel_ends_failed_never_queued(fake_ctx: Any,
                                                                                  print_fails: bool) -> None:
    """Anything but a passing failure while sending (a mail that cannot be made, a render
    that raises) ends the row ``failed`` with its reason and falls back to print; when print
    fails too, that row is ``failed`` as well and customer service is told. The message
    completes either way: no row is left ``queued`` for the lease to find."""
    ctx = fake_ctx
    install_catalogue(ctx, "shop")
    placed = place_order(ctx, order("shop", 1))
    (message,) = ctx.bus.take(NOTICES)
    ctx.mailer.inject("send", ValueError("a mail that cannot be made"))
    if print_fails:
        ctx.print_queue.inject("add", ValueError("a letter that cannot be queued"))
    rows = delivery.deliver(ctx, message.id, message.body)
    assert rows is not None
    printed = DeliveryStatus.FAILED if print_fails else DeliveryStatus.SENT
    expected = [("email", DeliveryStatus.FAILED), ("print", printed)]
    assert [(r.channel, r.status) for r in rows] == expected
    assert "a mail that cannot be made" in rows[0].reason
    logged = delivery.log(ctx, "shop", placed.subscriber_no)
    assert all(d.status is not DeliveryStatus.QUEUED for d in logged) and len(logged) == 2
    attention = ctx.attention.find("shop", DELIVERY_RUN, placed.subscriber_no, "inv-00000001")
    assert attention is not None and ("failed" in attention.reason or "print" in attention.reason)
    assert delivery.deliver(ctx, message.id, message.body) == rows  # redelivered: nothing more
    assert ctx.mailer.sent == []
