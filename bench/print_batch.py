"""Benchmark: the daily print batch's render and merge, for N invoices (D3).

    python -m bench.print_batch                  # N = 1 000 and 10 000
    python -m bench.print_batch --sizes 200 2000 --traced

Each N runs in a fresh process (so its peak RSS is its own): N distinct one-page invoices
(the renderer's sample invoice with its own number and KID each, ``render_pdf``) are
rendered one at a time and merged (``print_batch.merge``) into a file on disk, as the
batch streams into a blob. Prints JSON per N: pages, seconds, pages/s, bytes, bytes per
page, what the same letters weigh as separate PDFs, and the peak memory: the highest
resident memory sampled during the batch over what it was at the start (``peak_rss_growth_bytes``),
and (``--traced``: slower) tracemalloc's peak. Flat means the peak does not grow with N.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from devhost import sample_documents as sample
from shared.documents.pdf import render_pdf
from shared.documents.print_batch import Merger


def letters(count: int, sizes: list[int]) -> Iterator[bytes]:
    base = sample.document()
    for n in range(count):
        pdf = render_pdf(replace(base, number=100_000 + n, kid=f"{4_711_000_000 + n:013d}"))
        sizes.append(len(pdf))
        yield pdf


def rss() -> int:
    """The process's resident memory now (Linux)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakRss:
    """The highest resident memory seen (sampled every 2 ms) while the block runs."""

    def __enter__(self) -> PeakRss:
        gc.collect()
        ctypes.CDLL("libc.so.6").malloc_trim(0)  # what was freed before goes back: the start is now
        self.start = self.peak = rss()
        self.done = threading.Event()
        self.watcher = threading.Thread(target=self._watch, daemon=True)
        self.watcher.start()
        return self

    def _watch(self) -> None:
        while not self.done.wait(0.002):
            self.peak = max(self.peak, rss())

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.watcher.join()
        self.peak = max(self.peak, rss())


def run(count: int, traced: bool) -> dict[str, Any]:
    render_pdf(sample.document())  # fonts loaded before the start
    sizes: list[int] = []
    with tempfile.TemporaryFile() as out, PeakRss() as memory:
        if traced:
            tracemalloc.start()
        started = time.perf_counter()
        merger = Merger(out)
        for pdf in letters(count, sizes):
            merger.add(pdf)
        pages = merger.close()
        seconds = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1] if traced else None
        tracemalloc.stop()
        written = out.tell()
    result: dict[str, Any] = {
        "n": count, "pages": pages, "seconds": round(seconds, 2), "pages_per_s": round(pages / seconds, 1),
        "bytes": written, "bytes_per_page": round(written / pages), "separate_pdfs_bytes": sum(sizes),
        "objects_shared": merger.objects_shared, "peak_rss_growth_bytes": memory.peak - memory.start,
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}
    if traced:
        result["peak_traced_bytes"] = peak
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000])
    parser.add_argument("--traced", action="store_true", help="also measure tracemalloc's peak (a slower run)")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # a child: one size, this process
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run(args.one, args.traced)))
        return
    for size in args.sizes:
        child = subprocess.run([sys.executable, "-m", "bench.print_batch", "--one", str(size)]
                               + (["--traced"] if args.traced else []),
                               capture_output=True, text=True, check=True, env=dict(os.environ))
        print(child.stdout.strip(), flush=True)


if __name__ == "__main__":
    main()
