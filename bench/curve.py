"""The invoice run over bucket sizes: where does putting more subscribers in a bucket stop paying?

Runs ``bench.invoice_run`` (each on a fresh Azurite, so no run pays for another's data)
for each bucket size (default 1, 2, 4, 8, 16, 32, 64; ``--first-shape`` adds layout 2,
a partition per subscriber, as size 0), then prints one JSON object:

  runs       each run's figures (``bench.invoice_run``'s JSON)
  curve      per size: invoices_per_s, round trips, ratio, client CPU, and the gain in
             invoices_per_s over the previous size (``gain``: 1.0 = no faster)
  bends_at   the first size after which a doubling gains less than ``--flat`` (default 15 %)
             in invoices per second, and the same read off the ceiling's rate (the shape
             alone, without our code): past it the round trips are no longer what costs

    python -m bench.curve --subscriptions 2000
"""

from __future__ import annotations

import argparse
import json
import sys
from itertools import pairwise
from typing import Any

from bench.common import emit
from bench.invoice_run import run
from bench.shape import layout_of

SIZES = (1, 2, 4, 8, 16, 32, 64)


def bend(points: list[tuple[int, float]], flat: float) -> int | None:
    """The size after which the next doubling gains less than ``flat`` (and every later one too)."""
    for i in range(len(points) - 1):
        if all(later / earlier < 1 + flat for (_, earlier), (_, later) in pairwise(points[i:])):
            return points[i][0]
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subscriptions", type=int, default=2000)
    parser.add_argument("--sizes", type=int, nargs="*", default=list(SIZES))
    parser.add_argument("--first-shape", action="store_true", help="also run layout 2 (a partition per subscriber)")
    parser.add_argument("--flat", type=float, default=0.15, help="a doubling gaining less than this is flat")
    args = parser.parse_args()
    runs: list[dict[str, Any]] = []
    failed: list[dict[str, Any]] = []
    layouts = ([layout_of(2, 1)] if args.first_shape else []) + [layout_of(3, size) for size in args.sizes]
    for layout in layouts:
        try:
            runs.append(run(args.subscriptions, layout, engine=False))
        except Exception as exc:  # one size's Azurite falling over does not lose the others'
            failed.append({"layout": layout.version, "bucket_size": layout.bucket_size, "error": repr(exc)})
            print(failed[-1], file=sys.stderr)
            continue
        print(json.dumps(runs[-1]), file=sys.stderr)
    curve = []
    previous: dict[str, Any] | None = None
    for r in runs:
        curve.append({
            "layout": r["layout"], "bucket_size": r["bucket_size"], "invoices_per_s": r["invoices_per_s"],
            "ceiling_per_s": r["ceiling_per_s"], "ratio": r["ratio"],
            "round_trips_per_invoice": r["round_trips_per_invoice"],
            "client_cpu_ms_per_invoice": r["client_cpu_ms_per_invoice"],
            "entities_per_s": r["entities_per_s"], "raw_entities_per_s": r["raw_entities_per_s"],
            "gain": None if previous is None else round(r["invoices_per_s"] / previous["invoices_per_s"], 2),
        })
        previous = r
    bucketed = [r for r in runs if r["layout"] == 3]
    emit({
        "subscriptions": args.subscriptions,
        "curve": curve,
        "bends_at": bend([(r["bucket_size"], r["invoices_per_s"]) for r in bucketed], args.flat),
        "ceiling_bends_at": bend([(r["bucket_size"], r["ceiling_per_s"]) for r in bucketed], args.flat),
        "flat": args.flat,
        "failed": failed,
        "runs": runs,
    })


if __name__ == "__main__":
    main()
