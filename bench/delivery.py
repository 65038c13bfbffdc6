"""Deliveries end to end: invoices mailed through the notification worker to a local SMTP
server (aiosmtpd), against a ceiling of the same work done directly.

Orders ``--documents`` subscribers (their first invoices issued), then hands every
``InvoiceIssued`` message of the ``notices`` queue to ``notification_worker.handle`` in
``--threads`` threads: read the account and the invoice, claim the delivery log row,
render the PDF, send the mail, record it. The ceiling does the same documents' necessary
work directly in the same run with the same threads: render the PDF (``render_pdf``),
send the same mail with ``smtplib`` and write one table entity. Prints JSON:
``deliveries_per_s``, ``ceiling_per_s``, ``ratio``, and storage round trips per delivery.

    python -m bench.delivery --documents 300
"""

from __future__ import annotations

import argparse
import os
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date

from bench.common import emit
from devhost.azurite import Azurite
from devhost.builders import install_catalogue, order, oslo_morning
from devhost.mailbox import Mailbox
from shared import bootstrap
from shared.adapters.bus import NOTICES, unpack
from shared.adapters.mail import SmtpMailer
from shared.clock import SettableClock
from shared.ports import BusMessage
from shared.service.orders import place_order

DAY = date(2026, 1, 5)


def messages(ctx: bootstrap.AzureContext) -> list[BusMessage]:
    queue = ctx.bus.service.get_queue_client(NOTICES)  # type: ignore[attr-defined]
    taken: list[BusMessage] = []
    while received := list(queue.receive_messages(max_messages=32, visibility_timeout=600)):
        taken += [m for r in received for m in unpack(r.content)]
    return taken


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--documents", type=int, default=300)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()
    azurite, box = Azurite.start(in_memory=True), Mailbox().up()
    os.environ["AzureWebJobsStorage"] = azurite.connection_string
    os.environ["ABONNO_SMTP_HOST"], os.environ["ABONNO_SMTP_PORT"] = "127.0.0.1", str(box.port)
    try:
        ctx = bootstrap.connect(azurite.connection_string, SettableClock(oslo_morning(DAY)), pool_size=64)
        bootstrap.set_context(ctx)
        tenant = "bench-delivery"
        install_catalogue(ctx, tenant)
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(lambda i: place_order(ctx, order(tenant, i)), range(1, args.documents + 1)))
        work = messages(ctx)
        from functions.notification_worker import handle

        trips = ctx.storage.round_trips.count
        started = time.perf_counter()
        with ThreadPoolExecutor(args.threads) as pool:
            done = list(pool.map(lambda m: handle(m.encode().encode()), work))
        elapsed = time.perf_counter() - started
        trips = ctx.storage.round_trips.count - trips
        assert len(box.raw) == len(work) == sum(len(d or []) for d in done), "every document mailed once"
        ceiling = measure_ceiling(ctx, tenant, box, work, args.threads)
    finally:
        box.down()
        azurite.stop()
    rate = len(work) / elapsed
    emit({"documents": len(work), "elapsed_s": round(elapsed, 2), "deliveries_per_s": round(rate, 1),
          "round_trips_per_delivery": round(trips / max(len(work), 1), 2), "ceiling_per_s": round(ceiling, 1),
          "ratio": round(rate / ceiling, 3), "threads": args.threads})


def measure_ceiling(ctx: bootstrap.AzureContext, tenant: str, box: Mailbox, work: list[BusMessage],
                    threads: int) -> float:
    """The same documents rendered, mailed with smtplib and logged with one table write, directly."""
    from shared.adapters.bus import event_of
    from shared.adapters.mail import as_message
    from shared.documents.pdf import render_pdf
    from shared.ports import Attachment, Mail
    from shared.service import notices
    from shared.service.delivery import _found, message_id

    found = [_found(ctx, tenant, event_of(m)) for m in work]  # the reads are the worker's, not the ceiling's
    mailer = SmtpMailer("127.0.0.1", box.port)
    table = ctx.storage.table("Subscribers")

    def direct(i: int) -> None:
        f = found[i]
        text = notices.mail(f.document)
        pdf = render_pdf(f.document)
        mailer.send(Mail(message_id(tenant, f.account.number, f.document.id, 9), ctx.mail_sender,
                         f.account.subscriber.email, text.subject, text.text, text.html,
                         (Attachment(f"{f.document.id}.pdf", "application/pdf", pdf),)))
        table.upsert_entity({"PartitionKey": f"ceiling|{i}", "RowKey": "x", "Status": "sent"})

    assert as_message  # the same message the worker sends
    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(direct, range(len(found))))
    return len(found) / (time.perf_counter() - started)


if __name__ == "__main__":
    main()
