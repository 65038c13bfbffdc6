"""Benchmark documents and their delivery (L7, D3).

Prints one JSON object:
  pdfs_per_s              one-page invoices with 3 lines rendered per second by ``render_pdf``,
                          in process, on one core (the process pinned to one CPU), each with
                          its own number and KID: per second of the rendering thread's CPU time
                          (``pdfs_per_wall_s``: per second of wall time, lower on a busy machine)
  ehf_per_s               the same invoices (to an organisation) rendered by ``render_ehf``, the
                          PDF already made (the EHF render alone), on one core (``ehf_per_wall_s``)
  bytes_per_pdf           the size of one such PDF
  deliveries_per_s        invoices delivered by e-mail per second end to end: the ``deliver``
                          use case of the notification worker on the real ``notices`` messages
                          of issued invoices (stored in Azurite), the PDF rendered and mailed to
                          a local aiosmtpd server (in its own process), the delivery log written
  round_trips_per_delivery storage calls counted at the adapter during the deliveries / deliveries
  client_cpu_ms_per_delivery CPU time of this (client) process during the deliveries / deliveries
  ceiling_per_s           the same work without our code around it, in the same run at the same
                          concurrency: per delivery, the same table reads and writes done directly
                          with the SDK (as many as the deliveries counted) and one SMTP send of a
                          mail the deliveries sent (its bytes as received); half measured just
                          before the deliveries, half just after, the mean
  ceiling_client_cpu_ms_per_delivery  this process's CPU per delivery in the ceiling: what our
                          code adds is client_cpu_ms_per_delivery less this
  ratio                   deliveries_per_s / ceiling_per_s
  print_batch             the print batch's benchmark (``bench.print_batch``) when it exists, run
                          as it is: 1,000 and 10,000 invoices rendered and merged, each in a
                          process of its own; ``peak_rss_growth_mib`` per size (flat: no growth)

    python -m bench.documents --renders 300 --deliveries 500
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import multiprocessing
import os
import smtplib
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import date
from typing import Any

from azure.core import MatchConditions
from tqdm import tqdm

from bench.common import emit
from devhost import sample_documents
from devhost.azurite import Azurite
from devhost.builders import install_catalogue, order, oslo_morning
from shared import bootstrap
from shared.adapters.accounts import Place, subscriber_of
from shared.adapters.bus import NOTICES, unpack
from shared.adapters.mail import SmtpMailer
from shared.clock import SettableClock
from shared.documents.ehf import render_ehf
from shared.documents.pdf import render_pdf
from shared.domain.documents import Document
from shared.ports import BusMessage, DeliveryStatus
from shared.service.context import Context
from shared.service.delivery import deliver
from shared.service.orders import place_order

ORDER_DAY = date(2026, 1, 5)
CONCURRENCY = 16  # the Functions host's default for a Service Bus trigger (maxConcurrentCalls)


# ---- rendering, one core ---------------------------------------------------------------------------


def invoices(n: int) -> list[Document]:
    """n one-page invoices with 3 lines to an organisation (so each can be EHF), numbered apart."""
    base = sample_documents.document(buyer=sample_documents.subscriber(organization=True))
    return [replace(base, id=f"inv-{i:08d}", number=10_000 + i, kid=f"{10_000 + i:07d}{i % 10}")
            for i in range(1, n + 1)]


def one_core() -> set[int] | None:
    """Pin the process to one CPU; returns the CPUs it had (to give back), or None."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {sorted(before)[-1]})
    return before


def render_rates(n: int) -> dict[str, Any]:
    """Renders per second of CPU time of the one thread that renders (on one pinned CPU, so
    other processes on a busy machine take wall time from it, not CPU time), and per second
    of wall time."""
    docs = invoices(n)
    pdf = render_pdf(docs[0])
    render_ehf(docs[0], pdf)  # warm-up: fonts, templates, imports
    cpus = one_core()
    try:
        wall, cpu = time.perf_counter(), time.thread_time()
        sizes = [len(render_pdf(d)) for d in docs]
        pdf_wall, pdf_cpu = time.perf_counter() - wall, time.thread_time() - cpu
        wall, cpu = time.perf_counter(), time.thread_time()
        for d in docs:
            render_ehf(d, pdf)
        ehf_wall, ehf_cpu = time.perf_counter() - wall, time.thread_time() - cpu
    finally:
        if cpus:
            os.sched_setaffinity(0, cpus)
    return {"pdfs_per_s": round(n / pdf_cpu, 1), "ehf_per_s": round(n / ehf_cpu, 1),
            "pdfs_per_wall_s": round(n / pdf_wall, 1), "ehf_per_wall_s": round(n / ehf_wall, 1),
            "bytes_per_pdf": round(sum(sizes) / len(sizes))}


# ---- the local SMTP server, in a process of its own ------------------------------------------------


def _serve_mailbox(port: int, conn: Any) -> None:
    from devhost.mailbox import Mailbox

    box = Mailbox(port).up()
    conn.send("up")
    while conn.recv() == "count":
        conn.send((len(box.raw), box.raw[-1] if box.raw else b""))
    box.down()


class MailServer:
    """aiosmtpd (``devhost.mailbox``) in a child process, so it takes no CPU from the client
    measured here: a Functions instance sends to a mail server elsewhere."""

    def __init__(self) -> None:
        from devhost.mailbox import free_port

        self.port = free_port()
        spawn = multiprocessing.get_context("spawn")
        self._conn, child = spawn.Pipe()
        self._process = spawn.Process(target=_serve_mailbox, args=(self.port, child), daemon=True)
        self._process.start()
        assert self._conn.recv() == "up"

    def received(self) -> tuple[int, bytes]:
        """Mails received so far, and the last one's bytes."""
        self._conn.send("count")
        count, last = self._conn.recv()
        return int(count), bytes(last)

    def stop(self) -> None:
        self._conn.send("stop")
        self._process.join(10)


# ---- delivering, end to end ------------------------------------------------------------------------


def notices(ctx: Context) -> list[BusMessage]:
    """Every message on the ``notices`` queue (what the notification worker gets)."""
    queue = ctx.bus.service.get_queue_client(NOTICES)  # type: ignore[attr-defined]
    items: list[BusMessage] = []
    while received := list(queue.receive_messages(max_messages=32, visibility_timeout=600)):
        items += [item for m in received for item in unpack(m.content)]
    return items


class Ceiling:
    """What one e-mail delivery does to storage and the mail server, directly with the SDK and
    smtplib: the subscriber's partition and its invoice row read in one query, a delivery log
    row created and replaced under its ETag (3 round trips, as ``deliver`` counts), and one
    SMTP send of ``mail`` (the bytes a delivery sent) to the same server."""

    ROUND_TRIPS = 3

    def __init__(self, ctx: Context, port: int, mail: bytes) -> None:
        self.table = ctx.storage.table("Subscribers")  # type: ignore[attr-defined]
        self.port, self.mail = port, mail
        self.tag = uuid.uuid4().hex[:6]

    def measure(self, partitions: list[tuple[Place, str]]) -> tuple[float, float]:
        """Deliveries per second over ``partitions`` (partition key, invoice row key), and this
        process's CPU seconds for them."""
        with ThreadPoolExecutor(CONCURRENCY) as pool:
            started, cpu = time.perf_counter(), time.process_time()
            list(pool.map(self._one, partitions))
            return len(partitions) / (time.perf_counter() - started), time.process_time() - cpu

    def _one(self, partition: tuple[Place, str]) -> None:
        place, invoice = partition
        lo, hi = place.span("0")  # the subscriber's hot rows (in a bucket: its own prefix)
        list(self.table.query_entities("PartitionKey eq @pk and (RowKey eq @rk or (RowKey ge @lo and RowKey lt @hi ) )",
                                       parameters={"pk": place.pk, "rk": invoice, "lo": lo, "hi": hi}))
        row = {"PartitionKey": place.pk, "RowKey": place.rk(f"1|dlv|ceiling-{self.tag}|email|001"), "Status": "queued",
               "At": "2026-01-05T08:00:00+00:00",
               "Recipient": "ceiling@example.no", "ProviderId": "", "Reason": "", "ClaimedAt": ""}
        meta = self.table.create_entity(row)
        self.table.update_entity(row | {"Status": "sent", "ProviderId": "<x@abonno>"}, mode="replace",
                                 etag=meta["etag"], match_condition=MatchConditions.IfNotModified)
        with smtplib.SMTP("127.0.0.1", self.port, timeout=20) as smtp:
            smtp.sendmail("no-reply@abonno.local", ["ceiling@example.no"], self.mail)


def delivery_rates(n: int) -> dict[str, Any]:
    server = MailServer()
    azurite = Azurite.start(in_memory=True)
    try:
        clock = SettableClock(oslo_morning(ORDER_DAY))
        ctx = bootstrap.connect(azurite.connection_string, clock, pool_size=128,
                                mailer=SmtpMailer("127.0.0.1", server.port))
        tenant = f"bench-{uuid.uuid4().hex[:6]}"
        install_catalogue(ctx, tenant)
        with ThreadPoolExecutor(16) as pool, tqdm(total=n, desc="orders", file=sys.stderr, disable=None) as bar:
            for _ in pool.map(lambda i: place_order(ctx, order(tenant, i)), range(1, n + 1)):
                bar.update()
        messages = [m for m in notices(ctx) if m.body.get("type") == "InvoiceIssued"]
        assert len(messages) == n, f"{len(messages)} invoice notices for {n} orders"

        # a first delivery: warms up, and its mail (as received) is what the ceiling sends
        deliver(ctx, messages[0].id, messages[0].body)
        _, mail = server.received()
        partitions = _partitions(ctx, tenant)
        ceiling = Ceiling(ctx, server.port, mail)
        half = len(partitions) // 2
        before, cpu_before = ceiling.measure(partitions[:half])

        rest = messages[1:]
        mail_before, _ = server.received()
        trips = ctx.storage.round_trips.count  # type: ignore[attr-defined]
        started, cpu = time.perf_counter(), time.process_time()
        with ThreadPoolExecutor(CONCURRENCY) as pool:
            rows = list(pool.map(lambda m: deliver(ctx, m.id, m.body), rest))
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu
        trips = ctx.storage.round_trips.count - trips  # type: ignore[attr-defined]
        mails, _ = server.received()

        after, cpu_after = ceiling.measure(partitions[half:])
    finally:
        azurite.stop()
        server.stop()
    sent = sum(1 for r in rows for d in r or () if d.status is DeliveryStatus.SENT and d.channel == "email")
    rate = len(rest) / elapsed
    ceiling_rate = (before + after) / 2
    return {
        "deliveries": len(rest),
        "emails_sent": sent,
        "emails_received": mails - mail_before,
        "elapsed_s": round(elapsed, 2),
        "deliveries_per_s": round(rate, 1),
        "round_trips_per_delivery": round(trips / max(len(rest), 1), 3),
        "client_cpu_ms_per_delivery": round(1000 * cpu / max(len(rest), 1), 2),
        "ceiling_per_s": round(ceiling_rate, 1),
        "ceiling_before_after_per_s": [round(before, 1), round(after, 1)],
        "ceiling_client_cpu_ms_per_delivery": round(1000 * (cpu_before + cpu_after) / max(len(partitions), 1), 2),
        "ceiling_round_trips_per_delivery": Ceiling.ROUND_TRIPS,
        "ratio": round(rate / ceiling_rate, 3),
        "concurrency": CONCURRENCY,
    }


def _partitions(ctx: Context, tenant: str) -> list[tuple[Place, str]]:
    """(where the subscriber is, invoice row key as stored) of each of the tenant's invoices,
    in either layout (a partition of its own, or a bucket: ``Place``)."""
    table = ctx.storage.table("Subscribers")  # type: ignore[attr-defined]
    rows = table.query_entities("PartitionKey ge @lo and PartitionKey lt @hi", select=["PartitionKey", "RowKey"],
                                parameters={"lo": f"{tenant}|", "hi": f"{tenant}}}"})
    found = []
    for r in rows:
        pk, rk = r["PartitionKey"], r["RowKey"]
        place = Place(pk, subscriber_of(pk, rk), "||" in pk)
        if place.local(rk).startswith("1|inv|"):
            found.append((place, rk))
    return found


# ---- the print batch (the print helper's benchmark) ------------------------------------------------


def print_batch() -> dict[str, Any] | None:
    """The print batch benchmark's figures (``bench.print_batch``: 1,000 and 10,000 invoices
    rendered and merged, each size in a process of its own), if it exists: run as it is, not
    duplicated here. Flat memory: the peak RSS growth does not grow with the invoices."""
    if importlib.util.find_spec("bench.print_batch") is None:
        return None
    done = subprocess.run([sys.executable, "-m", "bench.print_batch"], capture_output=True, text=True, check=True)
    runs = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    return {"runs": runs, "peak_rss_growth_mib": {str(r["n"]): round(r["peak_rss_growth_bytes"] / 2**20, 1)
                                                  for r in runs}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--renders", type=int, default=300)
    parser.add_argument("--deliveries", type=int, default=500)
    parser.add_argument("--no-print-batch", action="store_true", help="skip the print batch benchmark")
    args = parser.parse_args()
    result = {"renders": args.renders, **render_rates(args.renders), **delivery_rates(args.deliveries)}
    if not args.no_print_batch:
        result["print_batch"] = print_batch()
    emit(result)


if __name__ == "__main__":
    main()
