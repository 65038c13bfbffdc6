"""Delivery by the other channels against Azurite: EHF through the local access point
(``ehf-outbox/{tenant}/{date}/``, once), the SMS link (a SAS that Azurite honours until it
expires, by the real clock), print (the day's print queue in postal-code order), and
e-mail through Azure Communication Services (the real SDK against a loopback simulator
of its REST API: ``tests/acs_simulator.py``)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import date, timedelta

import pytest
import requests
from lxml import etree

from devhost.mailbox import Mailbox
from shared import bootstrap
from shared.adapters.access_point import CONTAINER as EHF_OUTBOX
from shared.adapters.mail import AcsMailer, as_message
from shared.domain.catalogue import Channel
from shared.ports import Attachment, DeliveryStatus, Mail, MailRefused, MailUnavailable
from shared.service import delivery
from shared.service.catalogue import put_item
from shared.service.context import Context
from shared.service.orders import place_order
from tests.acs_simulator import AcsSimulator
from tests.fixtures import order
from tests.service.test_delivery import attachment, notices, run

ORGNR = "923609016"  # a valid Norwegian organisation number (MOD11)


def ehf_enabled(ctx: Context, tenant: str) -> None:
    org = ctx.catalogue.get(tenant).organizations["avisa"]
    put_item(ctx, tenant, "organization", replace(org, ehf_enabled=True))


def test_an_organisations_invoice_goes_to_the_ehf_outbox_once(ctx: Context, shop: str, mailbox: Mailbox) -> None:
    ehf_enabled(ctx, shop)
    placed = place_order(ctx, replace(order(shop, 1), organization_number=ORGNR))
    (message,) = notices(ctx)
    (row,) = run(message)
    assert (row.channel, row.status, row.recipient) == ("ehf", DeliveryStatus.SENT, f"0192:{ORGNR}")
    run(message)  # redelivered: never exported twice (manual 7.12)
    delivery.resend(ctx, shop, placed.subscriber_no, "inv-00000001", channel=Channel.EHF)  # the same file
    outbox = bootstrap.blob_service().get_container_client(EHF_OUTBOX)
    (name,) = [b.name for b in outbox.list_blobs(name_starts_with=f"{shop}/")]
    assert name == f"{shop}/2026-01-05/{placed.subscriber_no:010d}-inv-00000001.xml" == row.provider_id
    xml = etree.fromstring(outbox.download_blob(name).readall())
    assert etree.QName(xml).localname == "Invoice"
    assert ORGNR in etree.tostring(xml).decode()
    assert xml.find(".//{*}AdditionalDocumentReference//{*}EmbeddedDocumentBinaryObject") is not None
    stored = ctx.document_files.get(shop, placed.subscriber_no, "inv-00000001", "pdf")
    assert stored is not None and stored.startswith(b"%PDF")  # EHF stores the PDF too
    assert mailbox.mails(shop) == []


def test_a_person_without_an_organisation_number_gets_email_though_the_seller_sends_ehf(
        ctx: Context, shop: str, mailbox: Mailbox) -> None:
    ehf_enabled(ctx, shop)
    place_order(ctx, order(shop, 1))
    (row,) = run(notices(ctx)[0])
    assert row.channel == "email" and len(mailbox.mails(shop)) == 1


def test_the_sms_link_reads_the_pdf_until_it_expires_and_is_refused_after(ctx: Context, shop: str) -> None:
    placed = place_order(ctx, order(shop, 1))
    files = ctx.document_files
    files.put(shop, placed.subscriber_no, "inv-00000001", "pdf", b"%PDF-1.7 the invoice", "application/pdf")
    link = files.link(shop, placed.subscriber_no, "inv-00000001", "pdf", timedelta(seconds=2))
    assert "sig=" in link and "se=" in link
    answer = requests.get(link, timeout=10)
    assert answer.status_code == 200 and answer.content == b"%PDF-1.7 the invoice"
    unsigned = requests.get(link.split("?", 1)[0], timeout=10)
    assert unsigned.status_code in (401, 403, 404)  # never a public container
    time.sleep(3.5)  # Azurite checks the expiry against the real clock
    assert requests.get(link, timeout=10).status_code == 403


def test_a_subscription_that_asks_for_print_is_queued_in_postal_code_order(ctx: Context, shop: str) -> None:
    org = ctx.catalogue.get(shop).organizations["avisa"]
    put_item(ctx, shop, "organization", replace(org, document_channel=Channel.PRINT))
    for n, code in ((1, "5003"), (2, "0150"), (3, None), (4, "10001")):
        place_order(ctx, replace(order(shop, n), address=f"Gate {n}", postal_code=code, city="By"))
    for m in notices(ctx):
        (row,) = run(m)
        assert (row.channel, row.status) == ("print", DeliveryStatus.SENT)
    items = list(ctx.print_queue.items(shop, date(2026, 1, 5), "avisa"))
    assert [i.postal_code for i in items] == ["", "0150", "5003", "10001"]  # none first, for a person to look at
    assert ctx.print_queue.organizations(shop, date(2026, 1, 5)) == ["avisa"]


# ---- Azure Communication Services Email ------------------------------------------------------------


@pytest.fixture
def acs() -> Iterator[AcsSimulator]:
    sim = AcsSimulator().start()
    yield sim
    sim.stop()


def mail(to: str = "kari@example.no", message_id: str = "<inv-00000001.1.1000.shop@abonno>") -> Mail:
    return Mail(message_id, "no-reply@abonno.local", to, "Faktura 1 – Avisa", "Hei", "<p>Hei</p>",
                (Attachment("inv-00000001.pdf", "application/pdf", b"%PDF-1.7"),), "Avisa Nordvest AS")


def test_acs_sends_through_the_sdk_and_a_repeat_is_the_same_operation(acs: AcsSimulator) -> None:
    mailer = AcsMailer.from_connection_string(acs.connection_string, polling_interval=0.01)
    first = mailer.send(mail())
    assert mailer.send(mail()) == first  # the same Message-ID: the same operation, kept once
    (sent,) = acs.sent.values()
    assert sent["recipients"]["to"] == [{"address": "kari@example.no"}]
    assert sent["content"]["subject"] == "Faktura 1 – Avisa" and sent["content"]["html"] == "<p>Hei</p>"
    assert sent["attachments"][0]["name"] == "inv-00000001.pdf"


def test_acs_failures_are_sorted_into_refused_and_passing(acs: AcsSimulator) -> None:
    mailer = AcsMailer.from_connection_string(acs.connection_string, polling_interval=0.01)
    acs.fail.add("gone@example.no")
    with pytest.raises(MailRefused):
        mailer.send(mail("gone@example.no", "<x.1.1.shop@abonno>"))
    acs.unavailable = True
    with pytest.raises(MailUnavailable):
        mailer.send(mail("kari@example.no", "<y.1.1.shop@abonno>"))
    acs.unavailable = False
    wrong_key = AcsMailer.from_connection_string(acs.connection_string.replace(acs.key, "AAAA" + acs.key[4:]),
                                                 polling_interval=0.01)
    with pytest.raises(MailRefused):  # 401: not something a retry changes
        wrong_key.send(mail())


def test_a_document_delivered_by_acs_is_logged_with_the_operation_id(ctx: Context, shop: str,
                                                                      acs: AcsSimulator) -> None:
    ctx = replace(ctx, mailer=AcsMailer.from_connection_string(acs.connection_string, polling_interval=0.01))
    bootstrap.set_context(ctx)
    placed = place_order(ctx, order(shop, 1))
    (message,) = notices(ctx)
    (row,) = run(message)
    run(message)
    (op,) = acs.sent
    assert (row.status, row.provider_id) == (DeliveryStatus.SENT, op)
    assert delivery.log(ctx, shop, placed.subscriber_no)[0].provider_id == op


def test_the_smtp_message_has_text_html_and_the_pdf() -> None:
    message = as_message(mail())
    assert message.get_body(("plain",)).get_content().strip() == "Hei"
    assert message.get_body(("html",)).get_content().strip() == "<p>Hei</p>"
    assert attachment(message) == ("inv-00000001.pdf", b"%PDF-1.7")
    assert message["From"] == "Avisa Nordvest AS <no-reply@abonno.local>"
