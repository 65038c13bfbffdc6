"""The tenant summary's number-series check: invoices and credit notes share one series."""

from __future__ import annotations

from dataclasses import replace

from shared.adapters.accounts import partition_key
from shared.adapters.codec import dumps, loads
from shared.domain.invoicing import Invoice
from shared.service import customer_service, queries
from shared.service.context import Context
from shared.service.orders import place_order
from tests.fixtures import order


def test_a_credit_note_last_in_the_series_counts_in_it(ctx: Context, shop: str) -> None:
    # invoices 1 and 2, then the credit note of invoice 1 takes number 3: the series is 1..3
    first = place_order(ctx, order(shop, 1))
    place_order(ctx, order(shop, 2))
    customer_service.credit_invoice(ctx, shop, first.subscriber_no, first.invoices[0].number, "mistake")
    s = queries.summary(ctx, shop)
    assert (s.invoice_number_first, s.invoice_number_last) == (1, 3)
    assert (s.invoices_issued, s.credit_notes) == (2, 1)
    assert s.number_series_gapless is True


def test_a_number_issued_twice_is_not_a_gapless_series(ctx: Context, shop: str) -> None:
    # two subscribers' documents holding one number (what the issue found) must show in the summary
    a = place_order(ctx, order(shop, 1))
    b = place_order(ctx, order(shop, 2))

    row = ctx.storage.get("Subscribers", partition_key(shop, b.subscriber_no),
                          f"1|inv|{b.invoices[0].demand_no:08d}")
    assert row is not None
    twin = replace(loads(Invoice, row["Body"]), number=a.invoices[0].number)
    ctx.storage.upsert("Subscribers", {**{k: v for k, v in row.items() if k != "etag"}, "Body": dumps(twin),
                                       "Number": twin.number})
    assert queries.summary(ctx, shop).number_series_gapless is False
