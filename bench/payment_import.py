"""Benchmark the bank file import: one OCR giro file paying N open invoices.

Prints one JSON object:
  payments_per_s          payments identified and booked per second, end to end on Azurite
  round_trips_per_payment storage calls counted at the adapter during the import / payments
  client_cpu_ms_per_payment  CPU time of this (client) process during the import / payments booked
  ceiling_per_s           the same storage shape done directly with the SDK in this run
                          (``bench.shape.Ceiling``: per partition of the tenant's layout one
                          query of the hot rows and the same entities per subscriber in
                          transactions of at most 100), same concurrency, same data volume;
                          half measured just before the import, half just after
  ratio                   payments_per_s / ceiling_per_s
  entities_per_s          entities the import's transactions carried per second (every table)
  raw_entities_per_s      Azurite's own rate in 100-entity create transactions, this run
  file_bytes, max_rss_mib the file's size and the process's peak resident memory

    python -m bench.payment_import --payments 20000 [--bucket-size 64] [--layout 2|3]
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date

from tqdm import tqdm

from bench.common import emit, shop, with_invoice
from bench.invoice_run import arguments
from bench.shape import Ceiling, EntityCount, layout_of, raw_entity_rate
from devhost.azurite import Azurite
from shared.domain.import_report import Outcome
from shared.formats import ocr_giro
from shared.service.payments_in import import_bank_file

DAY = date(2026, 1, 5)
THREADS = 16  # the import works the file's partitions 16 at a time (``bank_file``'s pool)
# a payment booking: the subscriber row (its outbox, PaymentCompleted and InvoicePaid, rides
# in it), the open demand, the payment row and the ledger entry = 4 entities (the run's
# ``entities_by_table`` shows what it really wrote)
BOOKING_ENTITIES = 4


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--payments", type=int, default=20000)
    arguments(parser)
    args = parser.parse_args()
    n, layout = args.payments, layout_of(args.layout, args.bucket_size)
    azurite = Azurite.start(in_memory=True)
    try:
        ctx, tenant = shop(azurite, DAY, layout)
        catalogue = ctx.catalogue.get(tenant)

        def open_invoice(i: int) -> tuple[int, str, int]:
            changes = with_invoice(catalogue, i, DAY)
            ctx.accounts.commit(tenant, None, changes)
            return changes.account.number, changes.invoices[0].kid, changes.invoices[0].total_minor

        with ThreadPoolExecutor(THREADS * 2) as pool, tqdm(total=n, desc="invoices", file=sys.stderr,
                                                           disable=None) as bar:
            paid = []
            for item in pool.map(open_invoice, range(n)):
                paid.append(item)
                bar.update()
        data = ocr_giro.transmission([(kid, total) for _, kid, total in paid], DAY, account="86011117947").encode()
        ceiling = Ceiling(ctx.storage, [number for number, _, _ in paid], layout, BOOKING_ENTITIES, THREADS)
        ceiling.seed()
        raw_before = raw_entity_rate(ctx.storage, THREADS)
        ceiling_before = ceiling.measure_half(second=False)
        entities = EntityCount(ctx.storage)
        trips_before = ctx.storage.round_trips.count
        started, cpu = time.perf_counter(), time.process_time()
        result = import_bank_file(ctx, tenant, "bench.txt", data)
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu
        peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        trips = ctx.storage.round_trips.count - trips_before
        written, by_table, calls = entities.count, entities.by_table, entities.calls
        ceiling_after = ceiling.measure_half(second=True)
        raw_after = raw_entity_rate(ctx.storage, THREADS)
    finally:
        azurite.stop()
    booked = result.count(Outcome.BOOKED)
    rate = booked / elapsed
    ceiling_rate = (ceiling_before + ceiling_after) / 2
    emit({
        "payments": n,
        "layout": layout.version,
        "bucket_size": layout.bucket_size if layout.bucketed else 1,
        "booked": booked,
        "requires_processing": result.count(Outcome.SET_ASIDE),
        "balanced": result.balanced,
        "elapsed_s": round(elapsed, 2),
        "payments_per_s": round(rate, 1),
        "round_trips_per_payment": round(trips / max(booked, 1), 3),
        "client_cpu_ms_per_payment": round(1000 * cpu / max(booked, 1), 2),
        "ceiling_per_s": round(ceiling_rate, 1),
        "ceiling_before_after_per_s": [round(ceiling_before, 1), round(ceiling_after, 1)],
        "ceiling_client_cpu_ms_per_subscriber": round(ceiling.cpu_ms_per_subscriber, 2),
        "ratio": round(rate / ceiling_rate, 3),
        "partitions": len(ceiling.partitions),
        "entities_per_payment": round(written / max(booked, 1), 2),
        "entities_per_s": round(written / elapsed, 1),
        "ceiling_entities_per_s": round(ceiling_rate * BOOKING_ENTITIES, 1),
        "raw_entities_per_s": round((raw_before + raw_after) / 2, 1),
        "raw_before_after_per_s": [round(raw_before, 1), round(raw_after, 1)],
        "entities_by_table": by_table,
        "calls": dict(sorted(calls.items())),
        "file_bytes": len(data),
        "max_rss_mib": round(peak_kib / 1024, 1),
    })

if __name__ == "__main__":
    main()
