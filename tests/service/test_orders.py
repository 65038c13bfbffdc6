"""Placing orders (S2) against Azurite through the use-case layer."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import date

import pytest

from shared.adapters.bus import EVENTS
from shared.service.context import Context
from shared.service.orders import OrderBlocked, OrderRejected, place_order
from tests.fixtures import order, queued

pytestmark = pytest.mark.fakes  # each test runs on Azurite and on the in-memory fakes


def test_an_order_creates_subscriber_subscription_first_invoice_and_ledger_debit(ctx: Context, shop: str) -> None:
    placed = place_order(ctx, order(shop))
    assert placed.created
    (invoice,) = placed.invoices
    # 299.00 newspaper (0 % VAT) + 49.00 crossword app (25 % VAT); no invoice fee in period 1
    assert invoice.total_minor == 34800 and invoice.draft.vat_minor == 980
    assert invoice.draft.due_date == date(2026, 1, 19)  # ordered 5 Jan, 14 days
    loaded = ctx.accounts.load(shop, placed.subscriber_no)
    assert loaded is not None
    assert loaded.account.balances == {"avisa": -34800}
    invoices, ledger = ctx.accounts.history(shop, placed.subscriber_no)
    assert [i.number for i in invoices] == [invoice.number]
    assert [(e.kind.value, e.amount_minor) for e in ledger] == [("invoice", -34800)]
    ref = ctx.catalogue.get(shop).organizations["avisa"].kid.decode(invoice.kid)
    assert (ref.subscriber_no, ref.demand_no) == (placed.subscriber_no, invoice.demand_no)


def test_the_order_publishes_its_outbox_events_to_the_bus(ctx: Context, shop: str) -> None:
    placed = place_order(ctx, order(shop))
    mine = [m for m in queued(ctx, EVENTS) if m.body["tenant"] == shop]
    assert {m.body["type"] for m in mine} == {"SubscriptionCreated", "InvoiceIssued"}
    assert any(m.body["payload"].get("invoice_number") == placed.invoices[0].number for m in mine)


def test_the_same_order_posted_twice_is_placed_once(ctx: Context, shop: str) -> None:
    first = place_order(ctx, order(shop, ref="form-123"))
    again = place_order(ctx, order(shop, ref="form-123"))
    assert not again.created
    assert (again.subscriber_no, again.subscription_id) == (first.subscriber_no, first.subscription_id)
    assert [i.number for i in again.invoices] == [i.number for i in first.invoices]
    _, ledger = ctx.accounts.history(shop, first.subscriber_no)
    assert len(ledger) == 1


def test_concurrent_orders_with_one_email_make_one_subscriber_with_two_subscriptions(ctx: Context, shop: str) -> None:
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda n: place_order(ctx, order(shop, n, email="same@example.no")), [1, 2]))
    assert results[0].subscriber_no == results[1].subscriber_no
    loaded = ctx.accounts.load(shop, results[0].subscriber_no)
    assert loaded is not None and len(loaded.account.subscriptions) == 2
    assert loaded.account.balances["avisa"] == -2 * 34800


def test_an_unknown_or_disabled_plan_is_refused(ctx: Context, shop: str) -> None:
    from shared.domain.catalogue import CatalogueError

    with pytest.raises(CatalogueError):
        place_order(ctx, order(shop, plan="nope"))
    with pytest.raises(OrderRejected):
        place_order(ctx, order(shop, start=date(2030, 1, 1)))


def test_manual_7_8_automatic_stop_ends_the_subscription_with_its_first_period(ctx: Context, shop: str) -> None:
    from dataclasses import replace

    from shared.domain.subscriptions import StopKind
    from shared.service.billing import bill_one
    from shared.service.catalogue import put_item

    offer = replace(ctx.catalogue.get(shop).plans["digital-monthly"], id="offer", automatic_stop=True)
    put_item(ctx, shop, "plan", offer)
    placed = place_order(ctx, order(shop, plan="offer"))  # 5 Jan: one month, 5 Jan to 4 Feb
    loaded = ctx.accounts.load(shop, placed.subscriber_no)
    assert loaded is not None
    sub = loaded.account.subscriptions[placed.subscription_id]
    assert (sub.stop_date, sub.stop_kind) == (date(2026, 2, 5), StopKind.AUTOMATIC)
    assert bill_one(ctx, shop, date(2026, 1, 22), placed.subscriber_no) == 0  # no renewal is produced


def test_an_order_blockage_threshold_refuses_the_order_of_a_subscriber_who_owes_that_much(ctx: Context,
                                                                                        shop: str) -> None:
    from dataclasses import replace

    from shared.service.catalogue import put_item

    org = replace(ctx.catalogue.get(shop).organizations["avisa"], order_blockage_minor=30000)
    put_item(ctx, shop, "organization", org)
    place_order(ctx, order(shop, ref="one"))  # owes 348.00 now, over the 300.00 threshold
    with pytest.raises(OrderBlocked) as refused:
        place_order(ctx, order(shop, ref="two", plan="digital-yearly"))
    assert "order blockage threshold" in refused.value.reason  # for customer service
    assert "threshold" not in str(refused.value) and "owes" not in str(refused.value)  # what a caller may read


def test_an_order_ref_reused_with_another_email_is_refused_three_times_over(ctx: Context, shop: str) -> None:
    # issue 8: three posts of one order_ref with different e-mails all got invoice number 1
    from shared.service.orders import OrderConflict

    first = place_order(ctx, order(shop, 1, ref="form-9"))
    for n in (2, 3):
        with pytest.raises(OrderConflict):
            place_order(ctx, order(shop, n, ref="form-9"))
    assert ctx.emails.find(shop, "kari2@example.no") is None  # nothing written for a refused order
    assert [p.number for p in first.invoices] == [1]
    assert len(list(ctx.accounts.scan_tenant(shop))) == 1


def test_subscribers_whose_subscriptions_share_an_id_never_share_a_number(ctx: Context, shop: str,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    # the class behind the duplicates: the claim key names the subscriber, whatever the subscription id
    from shared.service import customer_service, orders
    from shared.service.billing import bill_subscribers

    monkeypatch.setattr(orders, "subscription_id", lambda _order: "same-id")
    placed = [place_order(ctx, order(shop, n)) for n in (1, 2, 3)]
    assert {p.subscription_id for p in placed} == {"same-id"}
    bill_subscribers(ctx, shop, date(2026, 1, 22), [p.subscriber_no for p in placed])  # one batch, one claim
    for p in placed:
        customer_service.credit_invoice(ctx, shop, p.subscriber_no, p.invoices[0].number, "Mistake")
    numbers = sorted(n for _loaded, h in ctx.accounts.scan_tenant(shop)
                     for n in [*(i.number for i in h.invoices), *(c.number for c in h.credit_notes)])
    assert numbers == list(range(1, 10))  # 3 first invoices, 3 renewals, 3 credit notes


def test_concurrent_identical_orders_with_one_ref_place_one_order(ctx: Context, shop: str) -> None:
    with ThreadPoolExecutor(10) as pool:
        results = list(pool.map(lambda _: place_order(ctx, order(shop, 1, ref="same")), range(10)))
    assert len({(r.subscriber_no, r.subscription_id) for r in results}) == 1
    assert sum(r.created for r in results) == 1
    assert {tuple(i.number for i in r.invoices) for r in results} == {(1,)}
