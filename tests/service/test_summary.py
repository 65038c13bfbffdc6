"""The tenant summary's number-series check: invoices and credit notes share one series."""

from __future__ import annotations

from dataclasses import asdict, replace
from datetime import date

from shared.adapters.codec import dumps, loads
from shared.domain.invoicing import Invoice
from shared.formats import ocr_giro
from shared.service import customer_service, payments_in, queries
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

    place = ctx.accounts.place(shop, b.subscriber_no)  # type: ignore[attr-defined]
    row = ctx.storage.get("Subscribers", place.pk, place.rk(f"1|inv|{b.invoices[0].demand_no:08d}"))
    assert row is not None
    twin = replace(loads(Invoice, row["Body"]), number=a.invoices[0].number)
    ctx.storage.upsert("Subscribers", {**{k: v for k, v in row.items() if k != "etag"}, "Body": dumps(twin),
                                       "Number": twin.number})
    assert queries.summary(ctx, shop).number_series_gapless is False


def test_every_figure_of_a_tenant_with_payments_credit_write_off_and_set_asides(ctx: Context, shop: str) -> None:
    # three subscribers: the first pays its invoice by KID, the second's invoice is credited, the
    # third's written off; the bank file also holds a payment with a KID of nobody (set aside)
    placed = [place_order(ctx, order(shop, n)) for n in (1, 2, 3)]
    (t1, t2, t3) = (p.invoices[0].total_minor for p in placed)
    paid = ocr_giro.transmission([(placed[0].invoices[0].kid, t1), ("12345678903", 100)], date(2026, 1, 10),
                                 account="86011117947")
    payments_in.import_bank_file(ctx, shop, "ocr.txt", paid.encode())
    customer_service.credit_invoice(ctx, shop, placed[1].subscriber_no, placed[1].invoices[0].number, "mistake")
    customer_service.write_off(ctx, shop, placed[2].subscriber_no, "avisa", "gone")
    s = queries.summary(ctx, shop)
    figures = {k: v for k, v in asdict(s).items() if k not in ("by_currency", "by_status")}
    assert figures == {
        "subscribers": 3, "subscriptions_active": 3, "invoices_issued": 3, "invoice_number_first": 1,
        "invoice_number_last": 4,  # invoices 1..3, the credit note 4
        "amount_invoiced_minor": t1 + t2 + t3, "ledger_balance_minor_total": 0,  # paid, credited, written off
        "payments_booked": 1, "amount_paid_minor": t1, "invoices_open": 0,
        "invoices_paid": 2,  # 3 issued - 0 open - 1 credited (the written-off one counts as paid)
        "requires_processing": 1, "requires_processing_minor": 100, "currency": "NOK", "reminders_issued": 0,
        "reminder_fees_minor": 0, "payment_stops": 0, "credit_notes": 1, "amount_credited_minor": t2,
        "balance_invoices": 0, "amount_charged_minor": 0, "amount_written_off_minor": t3,
        "amount_reversed_minor": 0, "number_series_gapless": True}
    assert s.by_status == {"active": 3}
    assert s.by_currency == {"NOK": {m: figures[m] for m in queries.MONEY}}
