"""Numbered operations racing the online mover (issue 13 review, hostile-data): credit notes
and additional invoices posted twice at once, and a catch-up renewal, on subscribers the
mover fences and copies meanwhile. The series stays 1..N with nothing free or loosely claimed,
every document is issued once, and the moved tenant verifies."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from shared.domain.credit import CreditRefused
from shared.ports import ConcurrencyConflict
from shared.service import customer_service, layout_move
from shared.service.context import Context
from tests.service.test_layout_move import Slow, a_tenant_of_layout_2, in_bucket, money_adds_up, mover
from tests.service.test_numbering_gapless import issued, series


def _again(fn: Any) -> Any:
    for _ in range(40):  # a subscriber mid-move says "try again"
        try:
            return fn()
        except ConcurrencyConflict:
            time.sleep(0.02)
    raise AssertionError("kept conflicting")


def test_numbered_operations_racing_the_move_keep_the_series_1_to_n(ctx: Context, shop: str) -> None:
    numbers = a_tenant_of_layout_2(ctx, shop)
    first = {n: min(i.number for i in ctx.accounts.documents(shop, n).invoices) for n in numbers}
    credited = {n for n in numbers if ctx.accounts.documents(shop, n).credit_notes}

    def op(k: int) -> Any:
        n = numbers[k % len(numbers)]
        try:
            if (k // len(numbers)) % 2 == 0 and n not in credited:
                return _again(lambda: customer_service.credit_invoice(ctx, shop, n, first[n], "Mistake"))
            return _again(lambda: customer_service.additional_invoice(
                ctx, shop, n, "avisa", [customer_service.LineSpec("Extra", 5000, 2500)], "x1", 14))
        except CreditRefused as exc:
            return exc

    with ThreadPoolExecutor(9) as pool:
        ops = [pool.submit(op, k) for k in [*range(2 * len(numbers)), *range(2 * len(numbers))]]
        report = layout_move.move(Slow(ctx.storage), ctx.accounts.layouts, shop, 4, wait_s=0)  # type: ignore[attr-defined]
        results = [f.result(timeout=120) for f in ops]
    assert report.ok, report
    assert all(in_bucket(ctx, shop, n) for n in numbers)
    assert ctx.attention.all(shop) == [], results
    found = issued(ctx, shop)
    assert found == list(range(1, len(found) + 1)), found
    assert ctx.invoice_numbers.free_numbers(series(ctx, shop)) == ()
    assert not set(ctx.invoice_numbers.claims(series(ctx, shop)).values()) - set(found)
    for n in numbers:  # each document once
        docs = ctx.accounts.documents(shop, n)
        assert len([i for i in docs.invoices if i.draft.natural_key.endswith("x1")]) == 1, n
        assert len(docs.credit_notes) == 1, n
    money_adds_up(ctx, shop, numbers)
    assert layout_move.verify(*mover(ctx), shop).ok

