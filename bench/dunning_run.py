"""Benchmark the dunning run: N subscribers with an invoice due 19 January, a fifth of
them unpaid, dunned on 26 January (the first reminder's day).

Prints one JSON object:
  subscribers_per_s           subscribers visited per second (plan, bus, worker), on Azurite
  round_trips_per_subscriber  storage calls counted at the adapter during the run / subscribers
  client_cpu_ms_per_subscriber  CPU time of this (client) process during the run / subscribers visited
  ceiling_per_s               the same storage shape done directly with the SDK in this run
                              (``bench.shape.Ceiling``): per partition of the tenant's layout one
                              query of the hot rows, and if any of its subscribers is unpaid one
                              index write of their next visits and their changes in transactions
                              of at most 100 entities; as many partitions at once as the run
                              works, same data volume; half of it measured just before the run
                              and half just after (Azurite's speed drifts), the mean
  ratio                       subscribers_per_s / ceiling_per_s
  entities_per_s              entities the run's transactions carried per second (every table)
  raw_entities_per_s          Azurite's own rate in 100-entity create transactions, this run
  reminders                   reminders issued (one per unpaid subscriber)

    python -m bench.dunning_run --subscriptions 5000 [--bucket-size 64] [--layout 2|3]
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date

from tqdm import tqdm

from bench.common import emit, shop, with_invoice, work_items
from bench.invoice_run import MESSAGES_IN_FLIGHT, THREADS_PER_MESSAGE, arguments, partitions_at_once
from bench.shape import Ceiling, EntityCount, layout_of, raw_entity_rate
from devhost.azurite import Azurite
from devhost.builders import oslo_morning
from shared.adapters.bus import RUN_WORK
from shared.adapters.tables import MAX_BATCH
from shared.domain.account import receive_payment
from shared.domain.payments import MatchType, ReceivedPayment
from shared.service.dunning import dun_subscribers, start_dunning_run

ORDER_DAY, RUN_DAY = date(2026, 1, 5), date(2026, 1, 26)
UNPAID_EVERY = 5


# a first reminder: the subscriber row (its outbox, with the ReminderIssued event and the
# order's events it replaces, rides in it), the open demand and the reminder row = 3 entities
REMINDER_ENTITIES = 3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subscriptions", type=int, default=5000)
    parser.add_argument("--messages-in-flight", type=int, default=16)
    arguments(parser)
    args = parser.parse_args()
    n, in_flight, layout = args.subscriptions, args.messages_in_flight, layout_of(args.layout, args.bucket_size)
    threads = MESSAGES_IN_FLIGHT * THREADS_PER_MESSAGE // in_flight  # 64 threads in all, split
    concurrency = partitions_at_once(layout, in_flight, threads)
    azurite = Azurite.start(in_memory=True)
    try:
        ctx, tenant = shop(azurite, ORDER_DAY, layout)
        catalogue = ctx.catalogue.get(tenant)

        def subscriber(i: int) -> int:
            changes = with_invoice(catalogue, i, ORDER_DAY)
            if i % UNPAID_EVERY:
                invoice = changes.invoices[0]
                changes = changes.then(receive_payment(changes.account, ReceivedPayment(
                    f"p{i}", "avisa", "NOK", invoice.total_minor, date(2026, 1, 19), "ocr_giro",
                    MatchType.EXTERNAL_IDENTIFIER, demand_no=invoice.demand_no), catalogue, ORDER_DAY))
            ctx.accounts.commit(tenant, None, changes)
            return changes.account.number

        with ThreadPoolExecutor(THREADS_PER_MESSAGE * 2) as pool, tqdm(total=n, desc="subscribers", file=sys.stderr,
                                                                       disable=None) as bar:
            numbers = []
            for number in pool.map(subscriber, range(n)):
                numbers.append(number)
                bar.update()
        # what orders write: every first invoice's first reminder day in the dunning index
        for start in range(0, n, MAX_BATCH):
            rows = [{"PartitionKey": f"dun|{tenant}|{RUN_DAY}", "RowKey": f"{k:010d}"}
                    for k in numbers[start : start + MAX_BATCH]]
            ctx.storage.transact("Indexes", [("upsert", row) for row in rows])

        ceiling = Ceiling(ctx.storage, numbers, layout, REMINDER_ENTITIES, concurrency,
                          changed=lambda number: number % UNPAID_EVERY == 0, index_per_partition=True)
        ceiling.seed()
        raw_before = raw_entity_rate(ctx.storage, concurrency)
        ceiling_before = ceiling.measure_half(second=False)
        entities = EntityCount(ctx.storage)
        ctx.clock.set(oslo_morning(RUN_DAY))  # type: ignore[attr-defined]
        ctx.bus.service.get_queue_client(RUN_WORK).clear_messages()  # type: ignore[attr-defined]
        trips_before = ctx.storage.round_trips.count
        started, cpu = time.perf_counter(), time.process_time()
        planned = start_dunning_run(ctx, tenant)
        plan_s = time.perf_counter() - started
        batches = work_items(ctx)
        with ThreadPoolExecutor(in_flight) as pool:
            results = list(pool.map(lambda b: dun_subscribers(ctx, tenant, RUN_DAY, b["subscribers"],
                                                              workers=threads), batches))
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu
        trips = ctx.storage.round_trips.count - trips_before
        written, by_table, calls = entities.count, entities.by_table, entities.calls
        ceiling_after = ceiling.measure_half(second=True)
        raw_after = raw_entity_rate(ctx.storage, concurrency)
        ceiling_rate = (ceiling_before + ceiling_after) / 2
    finally:
        azurite.stop()
    visited = sum(r.subscribers for r in results)
    rate = visited / elapsed
    emit({
        "subscriptions": n,
        "layout": layout.version,
        "bucket_size": layout.bucket_size if layout.bucketed else 1,
        "visited": visited,
        "planned": planned.subscribers,
        "reminders": sum(r.reminders for r in results),
        "elapsed_s": round(elapsed, 2),
        "plan_s": round(plan_s, 2),
        "client_cpu_s": round(cpu, 2),
        "subscribers_per_s": round(rate, 1),
        "round_trips_per_subscriber": round(trips / max(visited, 1), 3),
        "client_cpu_ms_per_subscriber": round(1000 * cpu / max(visited, 1), 2),
        "ceiling_per_s": round(ceiling_rate, 1),
        "ceiling_before_after_per_s": [round(ceiling_before, 1), round(ceiling_after, 1)],
        "ceiling_client_cpu_ms_per_subscriber": round(ceiling.cpu_ms_per_subscriber, 2),
        "ratio": round(rate / ceiling_rate, 3),
        "partitions": len(ceiling.partitions),
        "entities_per_subscriber": round(written / max(visited, 1), 2),
        "entities_per_s": round(written / elapsed, 1),
        "raw_entities_per_s": round((raw_before + raw_after) / 2, 1),
        "raw_before_after_per_s": [round(raw_before, 1), round(raw_after, 1)],
        "entities_by_table": by_table,
        "calls": dict(sorted(calls.items())),
        "conflicts": sum(r.conflicts for r in results),
        "messages": len(batches),
        "concurrency": {"messages_in_flight": in_flight, "threads_per_message": threads,
                        "partitions_at_once": ceiling.concurrency},
    })


if __name__ == "__main__":
    main()
