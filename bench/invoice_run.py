"""Benchmark the invoice run: N subscriptions all due on one day.

Prints one JSON object:
  invoices_per_s          renewal invoices issued per second, end to end on Azurite
  round_trips_per_invoice storage calls counted at the adapter during the run / invoices
  client_cpu_ms_per_invoice  CPU time of this (client) process during the run / invoices:
                          what a Functions instance pays per invoice (Azurite not included)
  ceiling_per_s           the same storage shape done directly with the SDK in this run
                          (``bench.shape.Ceiling``: per partition of the tenant's layout one
                          query of the hot rows and the same entities per subscriber in
                          transactions of at most 100, as many partitions at once as the run
                          works); half measured just before the run, half just after
  ratio                   invoices_per_s / ceiling_per_s
  entities_per_s          entities the run's transactions carried per second (every table)
  raw_entities_per_s      Azurite's own rate in 100-entity create transactions, this run
  engine_invoices_per_s   the pure domain alone (due drafts + issue), one core, no storage

    python -m bench.invoice_run --subscriptions 5000 [--bucket-size 64] [--layout 2|3]

``--layout 2`` is the first shape (a partition per subscriber); ``--bucket-size`` sets the
tenant's buckets (layout 3) before any of its data is written.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from typing import Any, TypeVar

from azure.core.exceptions import ServiceRequestError, ServiceResponseError
from tqdm import tqdm

from bench.common import FIRST_NUMBER, emit, shop, work_items
from bench.shape import Ceiling, EntityCount, layout_of, raw_entity_rate
from devhost.azurite import Azurite
from devhost.builders import newspaper, order, oslo_morning
from shared.adapters.bus import RUN_WORK
from shared.clock import SettableClock
from shared.domain.account import Account, due_drafts, issue
from shared.domain.calendar import Frequency
from shared.domain.catalogue import PaymentType
from shared.domain.placement import BUCKET_SIZE, Layout
from shared.domain.subscriptions import Subscriber, Subscription
from shared.service.billing import BATCH, bill_subscribers, start_invoice_run
from shared.service.orders import place_order

T = TypeVar("T")
ORDER_DAY, RUN_DAY = date(2026, 1, 5), date(2026, 1, 22)  # renewal of 5 Feb is produced 14 days before
MESSAGES_IN_FLIGHT = 4
THREADS_PER_MESSAGE = 16
# a renewal commit: subscriber row (with its outbox), subscription, open demand, invoice and
# ledger entry = 5 entities (the run's ``entities_by_table`` shows what it really wrote)
RENEWAL_ENTITIES = 5


def partitions_at_once(layout: Layout, in_flight: int, threads: int) -> int:
    """How many partitions the run works at once: each message in flight works its
    partitions (``BATCH`` subscribers, whole buckets) ``threads`` at a time."""
    size = layout.bucket_size if layout.bucketed else 1
    return in_flight * min(threads, max(1, BATCH // size))


def engine_rate(n: int) -> float:
    """Invoices per second from the pure domain: a renewal for each of n accounts whose
    anchors spread over a year (so no cache flatters it), each run on its production day."""
    catalogue = newspaper()
    work = []
    for i in range(n):
        anchor = ORDER_DAY + timedelta(days=i % 365)
        sub = Subscription("s", "digital-monthly", "avisa", Frequency.MONTHLY, anchor, PaymentType.INVOICE,
                           next_period=1)
        work.append((Account(Subscriber(i + 1, "x", "x@example.no"), {"s": sub}),
                     sub.period(1).start - timedelta(days=14)))
    started = time.perf_counter()
    issued = 0
    for acc, day in work:
        drafts = due_drafts(acc, catalogue, day)
        issued += len(issue(acc, drafts, {d.natural_key: 1 for d in drafts}, catalogue, day).invoices)
    assert issued == n
    return n / (time.perf_counter() - started)


def again(call: Callable[[], T], attempts: int = 4) -> T:
    """The set-up's call again after a connection reset (a loaded Azurite drops some; an
    order placed again is the same order, so nothing is placed twice)."""
    for attempt in range(attempts):
        try:
            return call()
        except (ServiceRequestError, ServiceResponseError):
            if attempt == attempts - 1:
                raise
            time.sleep(0.2 * (attempt + 1))
    raise AssertionError("unreachable")


def run(subscriptions: int, layout: Layout, in_flight: int = MESSAGES_IN_FLIGHT,
        threads: int = THREADS_PER_MESSAGE, engine: bool = True) -> dict[str, Any]:
    """One invoice run of ``subscriptions`` renewals on a private Azurite, with its ceiling."""
    concurrency = partitions_at_once(layout, in_flight, threads)
    azurite = Azurite.start(in_memory=True)
    try:
        ctx, tenant = shop(azurite, ORDER_DAY, layout)
        clock: SettableClock = ctx.clock  # type: ignore[assignment]
        with ThreadPoolExecutor(16) as pool, tqdm(total=subscriptions, desc="orders", file=sys.stderr,
                                                  disable=None) as bar:
            numbers = []
            for placed in pool.map(lambda i: again(lambda: place_order(ctx, order(tenant, i), FIRST_NUMBER + i)),
                                   range(subscriptions)):
                numbers.append(placed.subscriber_no)
                bar.update()
        ceiling = Ceiling(ctx.storage, numbers, layout, RENEWAL_ENTITIES, concurrency)
        ceiling.seed()
        raw_before = raw_entity_rate(ctx.storage, concurrency)
        ceiling_before = ceiling.measure_half(second=False)
        clock.set(oslo_morning(RUN_DAY))
        ctx.bus.service.get_queue_client(RUN_WORK).clear_messages()  # type: ignore[attr-defined]
        entities = EntityCount(ctx.storage)
        trips_before = ctx.storage.round_trips.count
        started, cpu = time.perf_counter(), time.process_time()
        start_invoice_run(ctx, tenant)
        batches = work_items(ctx)
        with ThreadPoolExecutor(in_flight) as pool:
            results = list(pool.map(lambda b: bill_subscribers(ctx, tenant, RUN_DAY, b["subscribers"],
                                                               workers=threads), batches))
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu
        invoices = sum(r.invoices for r in results)
        trips = ctx.storage.round_trips.count - trips_before
        written, by_table, calls = entities.count, entities.by_table, entities.calls
        ceiling_after = ceiling.measure_half(second=True)
        raw_after = raw_entity_rate(ctx.storage, concurrency)
    finally:
        azurite.stop()
    rate = invoices / elapsed
    ceiling_rate = (ceiling_before + ceiling_after) / 2
    raw = (raw_before + raw_after) / 2
    result = {
        "subscriptions": subscriptions,
        "layout": layout.version,
        "bucket_size": layout.bucket_size if layout.bucketed else 1,
        "invoices": invoices,
        "partitions": len(ceiling.partitions),
        "elapsed_s": round(elapsed, 2),
        "invoices_per_s": round(rate, 1),
        "round_trips_per_invoice": round(trips / max(invoices, 1), 3),
        "client_cpu_ms_per_invoice": round(1000 * cpu / max(invoices, 1), 2),
        "ceiling_per_s": round(ceiling_rate, 1),
        "ceiling_before_after_per_s": [round(ceiling_before, 1), round(ceiling_after, 1)],
        "ceiling_client_cpu_ms_per_subscriber": round(ceiling.cpu_ms_per_subscriber, 2),
        "ratio": round(rate / ceiling_rate, 3),
        "entities_per_invoice": round(written / max(invoices, 1), 2),
        "entities_per_s": round(written / elapsed, 1),
        "entities_by_table": by_table,
        "calls": dict(sorted(calls.items())),
        "ceiling_entities_per_s": round(ceiling_rate * RENEWAL_ENTITIES, 1),
        "raw_entities_per_s": round(raw, 1),
        "raw_before_after_per_s": [round(raw_before, 1), round(raw_after, 1)],
        "conflicts": sum(r.conflicts for r in results),
        "needs_attention": sum(r.needs_attention for r in results),
        "messages": len(batches),
        "concurrency": {"messages_in_flight": in_flight, "threads_per_message": threads,
                        "partitions_at_once": ceiling.concurrency},
    }
    if engine:
        result["engine_invoices_per_s"] = round(engine_rate(20000), 1)
    return result


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--layout", type=int, choices=(2, 3), default=3,
                        help="2: a partition per subscriber (the first shape); 3: bucket partitions")
    parser.add_argument("--bucket-size", type=int, default=BUCKET_SIZE, help="subscribers per bucket (layout 3)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subscriptions", type=int, default=5000)
    parser.add_argument("--messages-in-flight", type=int, default=MESSAGES_IN_FLIGHT)
    parser.add_argument("--threads-per-message", type=int, default=THREADS_PER_MESSAGE)
    arguments(parser)
    args = parser.parse_args()
    emit(run(args.subscriptions, layout_of(args.layout, args.bucket_size), args.messages_in_flight,
             args.threads_per_message))


if __name__ == "__main__":
    main()
