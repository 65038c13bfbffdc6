"""The contract of the delivery ports, against each Azure adapter (on Azurite, with a real
SMTP server) and its in-memory fake alike (``[azurite]``, ``[in_memory]``)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest
import requests

from devhost.builders import newspaper
from devhost.mailbox import Mailbox
from shared.domain.account import Changes
from shared.ports import (
    Attachment,
    ConcurrencyConflict,
    Delivery,
    DeliveryStatus,
    Mail,
    MailRefused,
    PrintItem,
)
from shared.service.context import Context
from tests.contract.test_ports import with_invoice
from tests.fakes import FakeDocumentFiles, FakeMailer

pytestmark = pytest.mark.fakes
DAY = date(2026, 1, 5)
AT = datetime(2026, 1, 5, 8, tzinfo=UTC)


def row(document_id: str = "inv-00000001", channel: str = "email", attempt: int = 1) -> Delivery:
    return Delivery(document_id, channel, attempt, DeliveryStatus.QUEUED, AT, "kari@example.no", claimed_at=AT)


def test_a_delivery_row_is_claimed_once_and_changed_only_as_read(ctx: Context, tenant: str) -> None:
    mine, fresh = ctx.deliveries.claim(tenant, 7, row())
    theirs, again = ctx.deliveries.claim(tenant, 7, row())
    assert (fresh, again) == (True, False) and theirs == mine and mine.etag
    sent = ctx.deliveries.update(tenant, 7, replace(mine, status=DeliveryStatus.SENT, provider_id="<m1>"))
    assert sent.etag != mine.etag
    with pytest.raises(ConcurrencyConflict):  # a second handler that read the row before
        ctx.deliveries.update(tenant, 7, replace(mine, status=DeliveryStatus.FAILED))
    stored = ctx.deliveries.get(tenant, 7, "inv-00000001", "email", 1)
    assert stored is not None and (stored.status, stored.provider_id, stored.recipient) == (
        DeliveryStatus.SENT, "<m1>", "kari@example.no")
    assert stored.at == AT and stored.claimed_at == AT


def test_the_log_lists_by_document_channel_and_attempt(ctx: Context, tenant: str) -> None:
    for d in (row("inv-00000002"), row("inv-00000001", "print", 1), row("inv-00000001", "email", 2), row()):
        ctx.deliveries.claim(tenant, 7, d)
    ctx.deliveries.claim(tenant, 8, row())  # another subscriber's
    assert [(d.document_id, d.channel, d.attempt) for d in ctx.deliveries.list(tenant, 7)] == [
        ("inv-00000001", "email", 1), ("inv-00000001", "email", 2), ("inv-00000001", "print", 1),
        ("inv-00000002", "email", 1)]
    assert len(ctx.deliveries.list(tenant, 7, "inv-00000002")) == 1
    assert ctx.deliveries.list(tenant, 9) == []


def test_delivery_rows_leave_the_account_and_its_documents_as_they_were(ctx: Context, tenant: str) -> None:
    changes = with_invoice(newspaper(), 1)
    ctx.accounts.commit(tenant, None, changes)
    number = changes.account.number
    before = ctx.accounts.load(tenant, number), ctx.accounts.documents(tenant, number)
    ctx.deliveries.claim(tenant, number, row())
    loaded = ctx.accounts.load(tenant, number)
    assert (loaded, ctx.accounts.documents(tenant, number)) == before
    assert loaded is not None
    ctx.accounts.commit(tenant, loaded, Changes(loaded.account))  # a unit of work's commit: the row stays
    assert len(ctx.deliveries.list(tenant, number)) == 1


def test_the_print_queue_keeps_each_item_once_in_postal_code_order(ctx: Context, tenant: str) -> None:
    items = [PrintItem("avisa", 3, "inv-00000001", "5003", "C"), PrintItem("avisa", 1, "inv-00000001", "0150", "A"),
             PrintItem("avisa", 2, "inv-00000002", "", "B"), PrintItem("avisa", 1, "crn-0000000004", "0150", "A"),
             PrintItem("other", 9, "inv-00000001", "0001", "Z")]
    for item in items + items[:2]:  # added twice: kept once
        ctx.print_queue.add(tenant, DAY, item)
    assert [(i.subscriber_no, i.document_id, i.postal_code) for i in ctx.print_queue.items(tenant, DAY, "avisa")] == [
        (2, "inv-00000002", ""), (1, "crn-0000000004", "0150"), (1, "inv-00000001", "0150"),
        (3, "inv-00000001", "5003")]
    assert ctx.print_queue.organizations(tenant, DAY) == ["avisa", "other"]
    assert ctx.print_queue.organizations(tenant, DAY + timedelta(days=1)) == []


def test_the_access_point_sends_a_document_once(ctx: Context, tenant: str) -> None:
    assert ctx.access_point.can_receive(tenant, "0192", "923609016")
    first = ctx.access_point.send(tenant, DAY, "0000000001-inv-00000001.xml", b"<Invoice/>")
    assert ctx.access_point.send(tenant, DAY, "0000000001-inv-00000001.xml", b"<Invoice>changed</Invoice>") == first


def test_document_files_read_back_and_a_link_reads_the_file(ctx: Context, tenant: str) -> None:
    files = ctx.document_files
    files.put(tenant, 7, "inv-00000001", "pdf", b"%PDF-1", "application/pdf")
    files.put(tenant, 7, "inv-00000001", "pdf", b"%PDF-2", "application/pdf")  # rendered again: replaced
    assert files.get(tenant, 7, "inv-00000001", "pdf") == b"%PDF-2"
    assert files.get(tenant, 7, "inv-00000002", "pdf") is None
    assert files.logo(tenant, "logo.png") is None
    link = files.link(tenant, 7, "inv-00000001", "pdf", timedelta(minutes=5))
    read = files.open(link) if isinstance(files, FakeDocumentFiles) else requests.get(link, timeout=10).content
    assert read == b"%PDF-2"


def test_a_mailer_refuses_an_unknown_mailbox_for_good(ctx: Context, backend: str,
                                                      request: pytest.FixtureRequest) -> None:
    mail = Mail("<c.1.1.t@abonno>", "no-reply@abonno.local", "nobody@example.no", "S", "T", "<p>T</p>",
                (Attachment("a.pdf", "application/pdf", b"%PDF"),))
    if isinstance(ctx.mailer, FakeMailer):
        ctx.mailer.refuse.add("nobody@example.no")
    else:
        box: Mailbox = request.getfixturevalue("mailbox")
        box.refuse.add("nobody@example.no")
    with pytest.raises(MailRefused):
        ctx.mailer.send(mail)
    assert ctx.mailer.send(replace(mail, to="kari@example.no")) == "<c.1.1.t@abonno>"
