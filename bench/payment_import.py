"""Benchmark the bank file import: one OCR giro file paying N open invoices.

Prints one JSON object:
  payments_per_s          payments identified and booked per second, end to end on Azurite
  round_trips_per_payment storage calls counted at the adapter during the import / payments
  client_cpu_ms_per_payment  CPU time of this (client) process during the import / payments booked
  ceiling_per_s           the same storage shape done directly with the SDK in this run (per
                          subscriber: one partition read and one transaction of as many
                          entities), same concurrency, same data volume
  ratio                   payments_per_s / ceiling_per_s
  file_bytes, max_rss_mib the file's size and the process's peak resident memory

    python -m bench.payment_import --payments 20000
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
from bench.invoice_run import Ceiling
from devhost.azurite import Azurite
from shared.domain.import_report import Outcome
from shared.formats import ocr_giro
from shared.service.payments_in import import_bank_file

DAY = date(2026, 1, 5)
THREADS = 16


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--payments", type=int, default=20000)
    n = parser.parse_args().payments
    azurite = Azurite.start(in_memory=True)
    try:
        ctx, tenant = shop(azurite, DAY)
        catalogue = ctx.catalogue.get(tenant)
        # a payment booking: subscriber row, payment row, ledger entry, PaymentCompleted and
        # InvoicePaid events, and the delete of the invoice's delivered outbox row = 6 entities
        ceiling = Ceiling(ctx.storage, n, entities=6)
        ceiling.seed()

        def open_invoice(i: int) -> tuple[str, int]:
            changes = with_invoice(catalogue, i, DAY)
            ctx.accounts.commit(tenant, None, changes)
            return changes.invoices[0].kid, changes.invoices[0].total_minor

        with ThreadPoolExecutor(THREADS * 2) as pool, tqdm(total=n, desc="invoices", file=sys.stderr,
                                                           disable=None) as bar:
            paid = []
            for item in pool.map(open_invoice, range(n)):
                paid.append(item)
                bar.update()
        data = ocr_giro.transmission(paid, DAY, account="86011117947").encode()
        ceiling_rate = ceiling.measure()
        trips_before = ctx.storage.round_trips.count
        started, cpu = time.perf_counter(), time.process_time()
        result = import_bank_file(ctx, tenant, "bench.txt", data)
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu
        peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        trips = ctx.storage.round_trips.count - trips_before
    finally:
        azurite.stop()
    booked = result.count(Outcome.BOOKED)
    rate = booked / elapsed
    emit({
        "payments": n,
        "booked": booked,
        "requires_processing": result.count(Outcome.SET_ASIDE),
        "balanced": result.balanced,
        "elapsed_s": round(elapsed, 2),
        "payments_per_s": round(rate, 1),
        "round_trips_per_payment": round(trips / max(booked, 1), 3),
        "client_cpu_ms_per_payment": round(1000 * cpu / max(booked, 1), 2),
        "ceiling_per_s": round(ceiling_rate, 1),
        "ratio": round(rate / ceiling_rate, 3),
        "file_bytes": len(data),
        "max_rss_mib": round(peak_kib / 1024, 1),
    })


if __name__ == "__main__":
    main()
