"""Benchmark the dunning run: N subscribers with an invoice due 19 January, a fifth of
them unpaid, dunned on 26 January (the first reminder's day).

Prints one JSON object:
  subscribers_per_s           subscribers visited per second (plan, bus, worker), on Azurite
  round_trips_per_subscriber  storage calls counted at the adapter during the run / subscribers
  client_cpu_ms_per_subscriber  CPU time of this (client) process during the run / subscribers visited
  ceiling_per_s               the same storage shape done directly with the SDK in this run:
                              a partition read for every subscriber, and for the unpaid ones an
                              index write and one transaction of as many entities; same
                              concurrency, same data volume; half of it measured just before
                              the run and half just after (Azurite's speed drifts), the mean
  ratio                       subscribers_per_s / ceiling_per_s
  reminders                   reminders issued (one per unpaid subscriber)

    python -m bench.dunning_run --subscriptions 5000
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date

from tqdm import tqdm

from bench.common import emit, shop, with_invoice, work_items
from bench.invoice_run import MESSAGES_IN_FLIGHT, THREADS_PER_MESSAGE, Ceiling
from devhost.azurite import Azurite
from devhost.builders import oslo_morning
from shared.adapters.bus import RUN_WORK
from shared.adapters.tables import MAX_BATCH, Storage
from shared.domain.account import receive_payment
from shared.domain.payments import MatchType, ReceivedPayment
from shared.service.dunning import dun_subscribers, start_dunning_run

ORDER_DAY, RUN_DAY = date(2026, 1, 5), date(2026, 1, 26)
UNPAID_EVERY = 5


class DunningCeiling(Ceiling):
    """A partition read for everyone; for every fifth, an index write and a transaction."""

    def __init__(self, storage: Storage, n: int, entities: int) -> None:
        super().__init__(storage, n, entities)
        self.index = storage.table("Indexes")

    def measure_half(self, second: bool) -> float:
        """The rate over one half of the partitions: one half before the run, one after."""
        half = len(self.pks) // 2
        return self.measure(self.pks[half:] if second else self.pks[:half])

    def _work(self, pk: str) -> None:
        if int(pk.rsplit("|", 1)[1]) % UNPAID_EVERY:
            list(self.table.query_entities("PartitionKey eq @pk and RowKey lt '1'", parameters={"pk": pk}))
            return
        self.index.upsert_entity({"PartitionKey": "dun|ceiling|2026-02-10", "RowKey": pk})
        super()._work(pk)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subscriptions", type=int, default=5000)
    parser.add_argument("--messages-in-flight", type=int, default=16)
    args = parser.parse_args()
    n, in_flight = args.subscriptions, args.messages_in_flight
    threads = MESSAGES_IN_FLIGHT * THREADS_PER_MESSAGE // in_flight  # the ceiling's concurrency, split
    azurite = Azurite.start(in_memory=True)
    try:
        ctx, tenant = shop(azurite, ORDER_DAY)
        catalogue = ctx.catalogue.get(tenant)
        # a first reminder: subscriber row, reminder row, ReminderIssued event, and the deletes
        # of the order's two delivered outbox rows = 5 entities
        ceiling = DunningCeiling(ctx.storage, n, entities=5)
        ceiling.seed()

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

        ceiling_before = ceiling.measure_half(second=False)
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
        ceiling_after = ceiling.measure_half(second=True)
        ceiling_rate = (ceiling_before + ceiling_after) / 2
    finally:
        azurite.stop()
    visited = sum(r.subscribers for r in results)
    rate = visited / elapsed
    emit({
        "subscriptions": n,
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
        "ratio": round(rate / ceiling_rate, 3),
        "conflicts": sum(r.conflicts for r in results),
        "messages": len(batches),
        "concurrency": {"messages_in_flight": in_flight, "threads_per_message": threads},
    })


if __name__ == "__main__":
    main()
