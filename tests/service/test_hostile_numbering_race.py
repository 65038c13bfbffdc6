"""Racing every operation that takes invoice numbers (L1, issue 8 part 3): orders with the
same and different references, renewals run twice at once, credit notes and additional
invoices posted twice at once, on the same subscribers. However they interleave, the
series is 1..N: no duplicate, no gap, nothing left claimed or free."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.domain.credit import CreditRefused
from shared.service import customer_service
from shared.service.billing import BatchResult, bill_subscribers
from shared.service.context import Context
from shared.service.orders import OrderConflict, place_order
from tests.conftest import oslo_morning
from tests.fixtures import install_catalogue, order
from tests.service.test_numbering_gapless import issued, series

pytestmark = pytest.mark.fakes  # each test runs on Azurite and on the in-memory fakes

Op = tuple[str, int]
OPS = st.lists(st.tuples(st.sampled_from(["order", "renew", "credit", "additional"]), st.integers(0, 2)),
               min_size=4, max_size=12)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=OPS)
def test_racing_operations_keep_the_series_1_to_n(ctx: Context, ops: list[Op]) -> None:
    tenant = f"r{uuid.uuid4().hex[:10]}"
    install_catalogue(ctx, tenant)
    ctx.clock.set(oslo_morning(date(2026, 1, 5)))  # type: ignore[attr-defined]
    subscribers = [place_order(ctx, order(tenant, i, ref=f"o{i}")).subscriber_no for i in range(3)]
    ctx.clock.set(oslo_morning(date(2026, 1, 22)))  # type: ignore[attr-defined]
    today = date(2026, 1, 22)

    def run(op: Op) -> Any:
        kind, i = op
        try:
            if kind == "order":  # the same order again, and a new one with its own reference
                place_order(ctx, order(tenant, i, ref=f"o{i}"))
                return place_order(ctx, order(tenant, 10 + i, ref=f"n{i}"))
            if kind == "renew":
                return bill_subscribers(ctx, tenant, today, subscribers)
            if kind == "credit":
                first = min(inv.number for inv in ctx.accounts.documents(tenant, subscribers[i]).invoices)
                return customer_service.credit_invoice(ctx, tenant, subscribers[i], first, "Mistake")
            return customer_service.additional_invoice(
                ctx, tenant, subscribers[i], "avisa", [customer_service.LineSpec("Extra", 5000, 2500)], "x1", 14)
        except (CreditRefused, OrderConflict) as exc:  # credited already by the racer: refused, fine
            return exc

    with ThreadPoolExecutor(len(ops)) as pool:
        results = list(pool.map(run, ops + ops))  # every operation twice, all at once
    renewed = [r for r in results if isinstance(r, BatchResult)]
    assert not renewed or sum(r.invoices for r in renewed) == len(subscribers)  # renewed once each, by someone
    assert ctx.attention.all(tenant) == []
    numbers = issued(ctx, tenant)
    assert len(set(numbers)) == len(numbers), numbers  # no duplicate
    assert numbers == list(range(1, len(numbers) + 1)), numbers  # no gap
    assert ctx.invoice_numbers.free_numbers(series(ctx, tenant)) == ()
    loose = set(ctx.invoice_numbers.claims(series(ctx, tenant)).values()) - set(numbers)
    assert not loose, loose  # a live claim no document carries: a gap until the sweep
