"""A flaky world against the daily print batch: the timer fires twice at once for the same
day (two hosts, a retried timer). Both runs stage blocks of the same blobs with the same
block ids; what ends up committed must still be one whole, readable PDF with every letter
once, a manifest that matches it and one report."""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor

import pytest
from pypdf import PdfReader

from shared.adapters import print_files
from shared.service.context import Context
from shared.service.printing import print_batch

from .test_printing import DAY, files, printed_by_post


def test_two_runs_of_the_same_day_at_once_leave_one_whole_batch(ctx: Context, shop: str,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(print_files, "BLOCK", 8 * 1024)  # many blocks: the runs' staging interleaves
    printed_by_post(ctx, shop, ("0150", "5003", "9990", "1234", "0001", "7000"))
    with ThreadPoolExecutor(2) as pool:
        batches = [f.result() for f in [pool.submit(print_batch, ctx, shop, DAY) for _ in range(2)]]
    pdf, rows, report = files(ctx, shop)
    assert len(PdfReader(io.BytesIO(pdf)).pages) == report["pages"] == sum(int(r["pages"]) for r in rows)
    assert len(pdf) == report["pdf_bytes"]
    letters = [(r["subscriber_no"], r["document_id"]) for r in rows]
    assert len(letters) == len(set(letters))
    assert report["letters"] == len(rows) == 6
    assert all(b[0].letters == 6 for b in batches)
