"""Benchmark the invoice run: N subscriptions all due on one day.

Prints one JSON object:
  invoices_per_s          renewal invoices issued per second, end to end on Azurite
  round_trips_per_invoice storage calls counted at the adapter during the run / invoices
  client_cpu_ms_per_invoice  CPU time of this (client) process during the run / invoices:
                          what a Functions instance pays per invoice (Azurite not included)
  ceiling_per_s           the same storage shape done directly with the SDK in this run
                          (per subscriber: one partition read and one entity-group
                          transaction of as many entities), at the same concurrency
  ratio                   invoices_per_s / ceiling_per_s
  engine_invoices_per_s   the pure domain alone (due drafts + issue), one core, no storage

    python -m bench.invoice_run --subscriptions 5000
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from typing import Any

from azure.core import MatchConditions
from tqdm import tqdm

from bench.common import emit, shop, work_items
from devhost.azurite import Azurite
from devhost.builders import newspaper, order, oslo_morning
from shared.adapters.bus import RUN_WORK
from shared.adapters.tables import Storage
from shared.clock import SettableClock
from shared.domain.account import Account, due_drafts, issue
from shared.domain.calendar import Frequency
from shared.domain.catalogue import PaymentType
from shared.domain.subscriptions import Subscriber, Subscription
from shared.service.billing import bill_subscribers, start_invoice_run
from shared.service.orders import place_order

ORDER_DAY, RUN_DAY = date(2026, 1, 5), date(2026, 1, 22)  # renewal of 5 Feb is produced 14 days before
MESSAGES_IN_FLIGHT = 4
THREADS_PER_MESSAGE = 16


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


class Ceiling:
    """Per partition: one read and one transaction of ``entities`` entities, via the SDK.

    ``seed`` runs before the orders are placed and ``measure`` just before the invoice
    run, so both see the same volume of data in Azurite (it slows as its store grows).
    """

    def __init__(self, storage: Storage, n: int, entities: int) -> None:
        self.table = storage.table("Subscribers")
        tenant = f"ceiling-{uuid.uuid4().hex[:6]}"
        self.pks = [f"{tenant}|{i:010d}" for i in range(n)]
        self.entities = entities
        self.threads = MESSAGES_IN_FLIGHT * THREADS_PER_MESSAGE

    def seed(self) -> None:
        with ThreadPoolExecutor(self.threads) as pool:
            list(pool.map(self._seed_one, self.pks))

    def measure(self, pks: list[str] | None = None) -> float:
        """Partitions worked per second, over all of them or over ``pks``."""
        pks = self.pks if pks is None else pks
        with ThreadPoolExecutor(self.threads) as pool:
            started = time.perf_counter()
            list(pool.map(self._work, pks))
            return len(pks) / (time.perf_counter() - started)

    def _seed_one(self, pk: str) -> None:
        self.table.submit_transaction([("create", {"PartitionKey": pk, "RowKey": "0|subscriber", "Body": "x" * 600}),
                                  ("create", {"PartitionKey": pk, "RowKey": "0|sub|s", "Body": "x" * 300}),
                                  *[("create", {"PartitionKey": pk, "RowKey": f"0|out|{k}", "Body": "x" * 300})
                                    for k in range(2)]])

    def _work(self, pk: str) -> None:
        rows = list(self.table.query_entities("PartitionKey eq @pk and RowKey lt '1'", parameters={"pk": pk}))
        head = next(r for r in rows if r["RowKey"] == "0|subscriber")
        ops: list[Any] = [("update", {"PartitionKey": pk, "RowKey": "0|subscriber", "Body": "y" * 600},
                           {"mode": "replace", "etag": head.metadata["etag"],
                            "match_condition": MatchConditions.IfNotModified}),
                          ("upsert", {"PartitionKey": pk, "RowKey": "0|sub|s", "Body": "y" * 300})]
        ops += [("delete", {"PartitionKey": pk, "RowKey": f"0|out|{k}"}) for k in range(2)]
        ops += [("create", {"PartitionKey": pk, "RowKey": f"1|new|{k}", "Body": "y" * 800})
                for k in range(self.entities - len(ops))]
        self.table.submit_transaction(ops)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subscriptions", type=int, default=5000)
    args = parser.parse_args()
    azurite = Azurite.start(in_memory=True)
    try:
        ctx, tenant = shop(azurite, ORDER_DAY)
        clock: SettableClock = ctx.clock  # type: ignore[assignment]
        # a renewal commit: subscriber, subscription, invoice, ledger entry, outbox row,
        # and the deletes of the order's two delivered outbox rows = 7 entities
        ceiling = Ceiling(ctx.storage, args.subscriptions, entities=7)
        ceiling.seed()
        with ThreadPoolExecutor(32) as pool, tqdm(total=args.subscriptions, desc="orders", file=sys.stderr,
                                                  disable=None) as bar:
            for _ in pool.map(lambda i: place_order(ctx, order(tenant, i)), range(1, args.subscriptions + 1)):
                bar.update()

        ceiling_rate = ceiling.measure()
        clock.set(oslo_morning(RUN_DAY))
        ctx.bus.service.get_queue_client(RUN_WORK).clear_messages()  # type: ignore[attr-defined]
        trips_before = ctx.storage.round_trips.count
        started, cpu = time.perf_counter(), time.process_time()
        start_invoice_run(ctx, tenant)
        batches = work_items(ctx)
        with ThreadPoolExecutor(MESSAGES_IN_FLIGHT) as pool:
            results = list(pool.map(lambda b: bill_subscribers(ctx, tenant, RUN_DAY, b["subscribers"],
                                                               workers=THREADS_PER_MESSAGE), batches))
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu
        invoices = sum(r.invoices for r in results)
        trips = ctx.storage.round_trips.count - trips_before
    finally:
        azurite.stop()
    rate = invoices / elapsed
    emit({
        "subscriptions": args.subscriptions,
        "invoices": invoices,
        "elapsed_s": round(elapsed, 2),
        "invoices_per_s": round(rate, 1),
        "round_trips_per_invoice": round(trips / max(invoices, 1), 3),
        "client_cpu_ms_per_invoice": round(1000 * cpu / max(invoices, 1), 2),
        "ceiling_per_s": round(ceiling_rate, 1),
        "ratio": round(rate / ceiling_rate, 3),
        "engine_invoices_per_s": round(engine_rate(20000), 1),
        "conflicts": sum(r.conflicts for r in results),
        "messages": len(batches),
        "concurrency": {"messages_in_flight": MESSAGES_IN_FLIGHT, "threads_per_message": THREADS_PER_MESSAGE},
    })


if __name__ == "__main__":
    main()
