"""Checkout with Vipps and cards on the fakes (``service.checkout``): an order paid at a provider
is placed once the payer approves there, exactly once, and nothing of it exists before."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import date, timedelta

import pytest

from devhost.builders import oslo_morning
from shared.adapters.bus import EVENTS, event_of
from shared.domain.agreements import AgreementStatus, ChargeState, Provider
from shared.domain.catalogue import PaymentType
from shared.domain.events import AgreementChanged
from shared.ports import CardPaymentOrder, Unavailable, Watch
from shared.service import customer_service as cs
from shared.service import isolation
from shared.service.billing import bill_subscribers
from shared.service.catalogue import put_item
from shared.service.checkout import (
    card_expiry_notice,
    checkout_status,
    reconcile_agreement,
    reconcile_card_order,
    reconcile_vipps_agreement,
    stop_agreement_due,
)
from shared.service.orders import OrderRejected, OrderTaken, PlaceOrder, place_order, take_order
from tests.fakes import FakeContext, FakeSwedbankPay
from tests.fixtures import install_catalogue, order
from tests.service.test_numbering_gapless import series

DAY = date(2026, 1, 5)  # the clock fixture's day
FIRST_MINOR = 29900 + 4900  # digital-monthly: the paper and the crossword app, no invoice fee on Vipps


def vipps_order(tenant: str, n: int = 1, ref: str | None = "ref-1", pay: PaymentType = PaymentType.VIPPS,
                plan: str = "digital-monthly") -> PlaceOrder:
    return replace(order(tenant, n, plan=plan, ref=ref), payment_type=pay, phone="+47 412 34 567")


def start(ctx: FakeContext, tenant: str, pay: PaymentType = PaymentType.VIPPS, n: int = 1) -> tuple[OrderTaken, str]:
    taken = take_order(ctx, vipps_order(tenant, n, ref=f"ref-{n}", pay=pay))
    (key,) = [k for p in ctx.accounts.partitions.values() for k in p.account.agreements
              if k.startswith(f"a{subscriber(ctx, tenant, n)}-")]
    return taken, key


def subscriber(ctx: FakeContext, tenant: str, n: int) -> int:
    found = ctx.emails.find(tenant, f"kari{n}@example.no")
    assert found is not None
    return found


def agreement_id(ctx: FakeContext, key: str) -> str:
    (found,) = [a.id for a in ctx.vipps.agreements.values() if a.external_id == key]
    return found


def agreement_events(ctx: FakeContext) -> list[AgreementChanged]:
    """The ``AgreementChanged`` events sent, once each (the bus drops a re-sent message by its id)."""
    found = {m.id: e for m in ctx.bus.messages(EVENTS) if isinstance(e := event_of(m), AgreementChanged)}
    return list(found.values())


def account(ctx: FakeContext, tenant: str, n: int = 1):  # type: ignore[no-untyped-def]
    loaded = ctx.accounts.load(tenant, subscriber(ctx, tenant, n))
    assert loaded is not None
    return loaded.account


@pytest.fixture
def shop(fake_ctx: FakeContext, tenant: str) -> str:
    install_catalogue(fake_ctx, tenant)
    return tenant


def test_a_vipps_order_makes_a_draft_agreement_and_places_nothing_yet(fake_ctx: FakeContext, shop: str) -> None:
    taken, key = start(fake_ctx, shop)
    n = subscriber(fake_ctx, shop, 1)
    assert taken.accepted and taken.created and taken.payment is None
    draft = fake_ctx.vipps.drafts[agreement_id(fake_ctx, key)]
    assert taken.redirect_url == f"https://fake.vipps/confirm/{agreement_id(fake_ctx, key)}"
    assert (draft.external_id, draft.price_minor, draft.currency, draft.interval_unit, draft.interval_count) == (
        key, FIRST_MINOR, "NOK", "MONTH", 1)
    assert (draft.initial_charge_minor, draft.initial_charge_id) == (FIRST_MINOR, f"i{key[1:]}")
    assert draft.merchant_redirect_url == f"http://localhost:7071/api/salesposter/{shop}/checkout/{key}"
    assert draft.phone == "4741234567" and len(draft.product_name) <= 45 and len(draft.product_description) <= 100
    acc = account(fake_ctx, shop)
    agreement = acc.agreements[key]
    assert agreement.status is AgreementStatus.PENDING and agreement.order is not None
    assert acc.subscriptions == {} and acc.open_demands == {} and acc.balances == {}
    assert fake_ctx.invoice_numbers.claims(series(fake_ctx, shop)) == {}  # no number burned
    assert (shop, DAY + timedelta(days=1), Watch(n, "vipps", key)) in fake_ctx.provider_watch.entries


def test_the_same_order_again_gives_the_same_redirect_and_one_agreement(fake_ctx: FakeContext, shop: str) -> None:
    first, _key = start(fake_ctx, shop)
    again = take_order(fake_ctx, vipps_order(shop, 1, ref="ref-1"))
    assert (again.redirect_url, again.created) == (first.redirect_url, False)
    assert fake_ctx.vipps.calls.count("create_agreement") == 1 and len(fake_ctx.vipps.agreements) == 1


def test_approval_places_the_order_on_the_agreement_and_books_the_initial_charge(
        fake_ctx: FakeContext, shop: str) -> None:
    _taken, key = start(fake_ctx, shop)
    fake_ctx.vipps.approve(agreement_id(fake_ctx, key))
    reconcile_vipps_agreement(fake_ctx, shop, agreement_id(fake_ctx, key))
    acc = account(fake_ctx, shop)
    (sub,) = acc.subscriptions.values()
    assert (sub.payment_type, sub.agreement) == (PaymentType.VIPPS, key)
    assert acc.agreements[key].status is AgreementStatus.ACTIVE and acc.agreements[key].order is None
    (invoice,) = fake_ctx.accounts.documents(shop, acc.number).invoices
    assert (invoice.number, invoice.total_minor) == (1, FIRST_MINOR)
    assert acc.open_demands == {} and acc.balances == {"avisa": 0} and acc.charges == {}  # paid by the charge
    (payment,) = fake_ctx.accounts.payments(shop, acc.number)
    assert (payment.payment.id, payment.payment.reference, payment.payment.demand_no) == (
        f"vipps.i{key[1:]}", invoice.kid, invoice.demand_no)
    assert [(e.agreement_key, e.status) for e in agreement_events(fake_ctx)] == [(key, "active")]
    assert checkout_status(fake_ctx, shop, key).status == "active"


def test_the_return_page_reconciles_before_any_webhook(fake_ctx: FakeContext, shop: str) -> None:
    _taken, key = start(fake_ctx, shop)
    assert checkout_status(fake_ctx, shop, key).status == "pending"
    fake_ctx.vipps.approve(agreement_id(fake_ctx, key))
    status = checkout_status(fake_ctx, shop, key)  # no webhook came
    assert (status.status, status.payment_type) == ("active", "vipps")
    assert status.subscription_id in account(fake_ctx, shop).subscriptions


@pytest.mark.parametrize(("move", "status"), [("reject", "rejected"), ("expire", "expired")])
def test_a_declined_or_ignored_agreement_drops_the_order_and_burns_no_number(
        fake_ctx: FakeContext, shop: str, move: str, status: str) -> None:
    _taken, key = start(fake_ctx, shop)
    getattr(fake_ctx.vipps, move)(agreement_id(fake_ctx, key))
    for _ in range(2):
        reconcile_vipps_agreement(fake_ctx, shop, agreement_id(fake_ctx, key))
    acc = account(fake_ctx, shop)
    assert acc.agreements[key].status.value == status and acc.subscriptions == {}
    assert checkout_status(fake_ctx, shop, key) == type(checkout_status(fake_ctx, shop, key))(key, status)
    placed = place_order(fake_ctx, order(shop, 2))  # the next invoice is number 1: none was burned
    assert [i.number for i in placed.invoices] == [1]


def test_with_fallback_to_invoice_a_declined_agreement_places_the_order_on_invoice(
        fake_ctx: FakeContext, shop: str) -> None:
    org = fake_ctx.catalogue.get(shop).organizations["avisa"]
    put_item(fake_ctx, shop, "organization", replace(org, fallback_to_invoice=True))
    _taken, key = start(fake_ctx, shop)
    fake_ctx.vipps.expire(agreement_id(fake_ctx, key))
    reconcile_agreement(fake_ctx, shop, subscriber(fake_ctx, shop, 1), key)
    reconcile_vipps_agreement(fake_ctx, shop, agreement_id(fake_ctx, key))
    acc = account(fake_ctx, shop)
    (sub,) = acc.subscriptions.values()
    assert (sub.payment_type, sub.agreement, acc.agreements[key].status) == (
        PaymentType.INVOICE, None, AgreementStatus.EXPIRED)
    assert sum(d.open_minor for d in acc.open_demands.values()) == FIRST_MINOR  # to pay by KID
    assert checkout_status(fake_ctx, shop, key).payment_type == "invoice"


def test_an_ignored_agreement_stays_pending_and_is_polled_again(fake_ctx: FakeContext, shop: str,
                                                                 clock) -> None:  # type: ignore[no-untyped-def]
    _taken, key = start(fake_ctx, shop)
    n = subscriber(fake_ctx, shop, 1)
    clock.set(oslo_morning(DAY + timedelta(days=1)))
    reconcile_agreement(fake_ctx, shop, n, key)
    assert account(fake_ctx, shop).agreements[key].status is AgreementStatus.PENDING
    assert (shop, DAY + timedelta(days=2), Watch(n, "vipps", key)) in fake_ctx.provider_watch.entries


def test_a_failure_between_the_provider_call_and_the_commit_is_retried_onto_the_same_agreement(
        fake_ctx: FakeContext, shop: str) -> None:
    fake_ctx.accounts.inject("commit", *[Unavailable("storage away")] * 10)  # every try of the first call
    with pytest.raises(Unavailable):
        take_order(fake_ctx, vipps_order(shop))
    fake_ctx.accounts.clear_faults()
    taken = take_order(fake_ctx, vipps_order(shop))
    (made,) = fake_ctx.vipps.agreements.values()  # the retry got the agreement the first call made
    assert taken.redirect_url == made.confirmation_url
    assert set(account(fake_ctx, shop).agreements) == {made.external_id}


def test_a_card_checkout_whose_commit_failed_is_retried_onto_a_new_payment_order_and_activates(
        fake_ctx: FakeContext, shop: str) -> None:
    # Swedbank Pay refuses a second payment order with a used payeeReference (409) and cannot be
    # asked for the first by it: a retry with the same reference was refused for good (the order
    # could never be taken again). The payer never saw the lost order (its answer was never given).
    fake_ctx.accounts.inject("commit", *[Unavailable("storage away")] * 10)
    with pytest.raises(Unavailable):
        take_order(fake_ctx, vipps_order(shop, ref="ref-1", pay=PaymentType.CARD))
    fake_ctx.accounts.clear_faults()
    taken = take_order(fake_ctx, vipps_order(shop, ref="ref-1", pay=PaymentType.CARD))
    again = take_order(fake_ctx, vipps_order(shop, ref="ref-1", pay=PaymentType.CARD))
    lost, made = sorted(fake_ctx.swedbankpay.orders.values(), key=lambda o: o.payee_reference)
    (key,) = account(fake_ctx, shop).agreements
    assert lost.payee_reference == key and made.payee_reference == f"{key}-2"
    assert taken.redirect_url == again.redirect_url == made.redirect_url
    fake_ctx.swedbankpay.complete(made.id, date(2030, 12, 31))
    reconcile_card_order(fake_ctx, shop, made.id)  # the callback names the order the payer paid
    acc = account(fake_ctx, shop)
    (sub,) = acc.subscriptions.values()
    assert acc.agreements[key].status is AgreementStatus.ACTIVE and sub.agreement == key
    assert acc.open_demands == {} and acc.balances == {"avisa": 0}  # the first invoice paid by that order


def test_concurrent_activations_place_the_order_once(fake_ctx: FakeContext, shop: str) -> None:
    _taken, key = start(fake_ctx, shop)
    fake_ctx.vipps.approve(agreement_id(fake_ctx, key))
    failures: list[BaseException] = []

    def activate() -> None:
        try:
            reconcile_vipps_agreement(fake_ctx, shop, agreement_id(fake_ctx, key))
        except BaseException as exc:  # collected for the assertion
            failures.append(exc)

    threads = [threading.Thread(target=activate) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    acc = account(fake_ctx, shop)
    assert len(acc.subscriptions) == 1 and acc.open_demands == {} and acc.balances == {"avisa": 0}
    assert [i.number for i in fake_ctx.accounts.documents(shop, acc.number).invoices] == [1]
    assert len(fake_ctx.accounts.payments(shop, acc.number)) == 1
    assert fake_ctx.invoice_numbers.free_numbers(series(fake_ctx, shop)) == ()


def test_a_vipps_plan_must_cost_at_least_one_krone(fake_ctx: FakeContext, shop: str) -> None:
    catalogue = fake_ctx.catalogue.get(shop)
    for product_id in ("avis", "kryssord"):
        product = catalogue.products[product_id]
        put_item(fake_ctx, shop, "product", replace(product, prices=tuple(
            replace(p, amount_minor=0) for p in product.prices)))
    with pytest.raises(OrderRejected):
        take_order(fake_ctx, vipps_order(shop))
    assert fake_ctx.vipps.agreements == {}


def test_an_agreement_the_user_stops_puts_the_subscription_on_invoice_from_the_next_period(
        fake_ctx: FakeContext, shop: str, clock) -> None:  # type: ignore[no-untyped-def]
    _taken, key = start(fake_ctx, shop)
    fake_ctx.vipps.approve(agreement_id(fake_ctx, key))
    reconcile_vipps_agreement(fake_ctx, shop, agreement_id(fake_ctx, key))
    fake_ctx.vipps.user_stop(agreement_id(fake_ctx, key))
    for _ in range(3):
        reconcile_vipps_agreement(fake_ctx, shop, agreement_id(fake_ctx, key))
    acc = account(fake_ctx, shop)
    (sub,) = acc.subscriptions.values()
    assert (sub.payment_type, sub.agreement) == (PaymentType.INVOICE, None)
    agreement = acc.agreements[key]
    assert (agreement.status, agreement.stopped_by) == (AgreementStatus.STOPPED, "user")
    (row,) = fake_ctx.attention.all(shop)
    assert (row.run, row.ref, row.count) == ("providers", key, 1)
    (listed,) = isolation.needs_attention(fake_ctx, shop)  # customer service sees it, named, and can dismiss it
    assert listed["operation"] == "payment agreement (Vipps, card)"
    assert isolation.dismiss(fake_ctx, shop, "providers", acc.number, key) and fake_ctx.attention.all(shop) == []
    assert [(e.status, e.by) for e in agreement_events(fake_ctx)] == [("active", ""), ("stopped", "user")]
    bill_subscribers(fake_ctx, shop, date(2026, 1, 22), [acc.number])  # the renewal: an invoice with KID
    renewal = max(fake_ctx.accounts.documents(shop, acc.number).invoices, key=lambda i: i.number)
    assert renewal.draft.period_index == 1 and renewal.letter is not None
    assert renewal.letter.payment.value == "giro"
    assert account(fake_ctx, shop).charges == {}


def test_a_stop_in_abonno_stops_the_agreement_at_vipps_only_at_the_end_of_the_paid_period(
        fake_ctx: FakeContext, shop: str, clock) -> None:  # type: ignore[no-untyped-def]
    _taken, key = start(fake_ctx, shop)
    remote = agreement_id(fake_ctx, key)
    fake_ctx.vipps.approve(remote)
    reconcile_vipps_agreement(fake_ctx, shop, remote)
    n = subscriber(fake_ctx, shop, 1)
    (sub,) = account(fake_ctx, shop).subscriptions.values()
    cs.stop(fake_ctx, shop, n, sub.id, True, None, None, "Moving abroad")
    end = date(2026, 2, 5)  # the first period is paid: it runs to its end
    assert account(fake_ctx, shop).agreements[key].stop_on == end
    assert (shop, end, Watch(n, "vipps", key)) in fake_ctx.provider_watch.entries
    for day in (DAY, end - timedelta(days=1)):
        clock.set(oslo_morning(day))
        stop_agreement_due(fake_ctx, shop, n, key)
        reconcile_agreement(fake_ctx, shop, n, key)
        assert fake_ctx.vipps.agreements[remote].status == "ACTIVE"  # never early
    clock.set(oslo_morning(end))
    reconcile_agreement(fake_ctx, shop, n, key)  # the timer's one call for the watch
    assert fake_ctx.vipps.agreements[remote].status == "STOPPED"
    agreement = account(fake_ctx, shop).agreements[key]
    assert (agreement.status, agreement.stopped_by) == (AgreementStatus.STOPPED, "merchant")
    assert fake_ctx.attention.all(shop) == []  # our own stop: nothing for customer service


def test_a_removed_stop_takes_the_agreements_stop_day_away(fake_ctx: FakeContext, shop: str) -> None:
    _taken, key = start(fake_ctx, shop)
    fake_ctx.vipps.approve(agreement_id(fake_ctx, key))
    reconcile_vipps_agreement(fake_ctx, shop, agreement_id(fake_ctx, key))
    n = subscriber(fake_ctx, shop, 1)
    (sub,) = account(fake_ctx, shop).subscriptions.values()
    cs.stop(fake_ctx, shop, n, sub.id, True, None, None, "Moving abroad")
    cs.change_stop(fake_ctx, shop, n, sub.id, None, "Stays after all")
    assert account(fake_ctx, shop).agreements[key].stop_on is None


def test_a_card_order_stores_the_token_and_tells_the_subscriber_once_before_the_card_expires(
        fake_ctx: FakeContext, shop: str, clock) -> None:  # type: ignore[no-untyped-def]
    taken, key = start(fake_ctx, shop, PaymentType.CARD)
    (po,) = fake_ctx.swedbankpay.orders.values()
    assert taken.redirect_url == po.redirect_url and po.payee_reference == key
    purchase = fake_ctx.swedbankpay.purchases[po.id]
    assert purchase.callback_url == f"http://localhost:7071/api/swedbankpay/{shop}/callback"
    expiry = date(2026, 3, 31)
    fake_ctx.swedbankpay.complete(po.id, expiry)
    reconcile_card_order(fake_ctx, shop, po.id)
    reconcile_card_order(fake_ctx, shop, po.id)
    acc = account(fake_ctx, shop)
    agreement = acc.agreements[key]
    assert (agreement.status, agreement.provider, agreement.card_mask, agreement.card_expiry) == (
        AgreementStatus.ACTIVE, Provider.SWEDBANKPAY, "492500******0004", expiry)
    assert agreement.token and acc.open_demands == {} and acc.balances == {"avisa": 0}
    (sub,) = acc.subscriptions.values()
    assert (sub.payment_type, sub.agreement) == (PaymentType.CARD, key)
    notice_day = expiry - timedelta(days=30)
    assert (shop, notice_day, Watch(acc.number, "swedbankpay", key)) in fake_ctx.provider_watch.entries
    card_expiry_notice(fake_ctx, shop, acc.number, key)
    assert fake_ctx.notifier.delivered == {}  # not yet
    for day in (notice_day, notice_day + timedelta(days=1)):
        clock.set(oslo_morning(day))
        card_expiry_notice(fake_ctx, shop, acc.number, key)
        reconcile_agreement(fake_ctx, shop, acc.number, key)
    (notice,) = fake_ctx.notifier.delivered.values()
    assert notice.to == "kari1@example.no" and "492500******0004" in notice.body
    assert account(fake_ctx, shop).agreements[key].expiry_noticed
    clock.set(oslo_morning(expiry + timedelta(days=1)))  # the card has expired: on invoice from now on
    card_expiry_notice(fake_ctx, shop, acc.number, key)  # the timer's call for a card watch ends it
    acc = account(fake_ctx, shop)
    (sub,) = acc.subscriptions.values()
    assert (acc.agreements[key].status, sub.payment_type, sub.agreement) == (
        AgreementStatus.EXPIRED, PaymentType.INVOICE, None)


def test_an_aborted_card_payment_drops_the_order(fake_ctx: FakeContext, shop: str) -> None:
    _taken, key = start(fake_ctx, shop, PaymentType.CARD)
    (po,) = fake_ctx.swedbankpay.orders.values()
    fake_ctx.swedbankpay.abort(po.id)
    reconcile_card_order(fake_ctx, shop, po.id)
    acc = account(fake_ctx, shop)
    assert acc.agreements[key].status is AgreementStatus.REJECTED and acc.subscriptions == {}


def test_an_initial_charge_captured_after_activation_is_booked_then(fake_ctx: FakeContext, shop: str) -> None:
    _taken, key = start(fake_ctx, shop)
    remote = agreement_id(fake_ctx, key)
    fake_ctx.vipps.agreements[remote] = replace(fake_ctx.vipps.agreements[remote], status="ACTIVE")
    fake_ctx.vipps.settle(f"i{key[1:]}", "RESERVED")
    reconcile_vipps_agreement(fake_ctx, shop, remote)
    acc = account(fake_ctx, shop)
    (charge,) = acc.charges.values()
    assert charge.state is ChargeState.RESERVED and sum(d.open_minor for d in acc.open_demands.values()) == FIRST_MINOR
    assert (shop, DAY + timedelta(days=1), Watch(acc.number, "vipps", key, charge.id)) in \
        fake_ctx.provider_watch.entries
    fake_ctx.vipps.settle(charge.id, "CHARGED")
    reconcile_agreement(fake_ctx, shop, acc.number, key)
    acc = account(fake_ctx, shop)
    assert acc.charges == {} and acc.open_demands == {} and acc.balances == {"avisa": 0}


def test_an_order_from_an_existing_subscribers_email_is_still_held_for_customer_service(
        fake_ctx: FakeContext, shop: str) -> None:
    place_order(fake_ctx, order(shop, 1))
    taken = take_order(fake_ctx, vipps_order(shop, 1, ref="another"))
    assert (taken.accepted, taken.redirect_url) == (False, None)
    assert fake_ctx.vipps.agreements == {}


def test_a_card_order_on_the_trusted_path_reuses_the_subscribers_valid_card(fake_ctx: FakeContext, shop: str) -> None:
    _taken, key = start(fake_ctx, shop, PaymentType.CARD)
    (po,) = fake_ctx.swedbankpay.orders.values()
    fake_ctx.swedbankpay.complete(po.id, date(2027, 12, 31))
    reconcile_card_order(fake_ctx, shop, po.id)
    n = subscriber(fake_ctx, shop, 1)
    yearly = replace(vipps_order(shop, 1, ref="second", pay=PaymentType.CARD, plan="digital-yearly"))
    placed = place_order(fake_ctx, yearly, subscriber_no=n)  # customer service: no payment page
    assert placed.redirect_url is None and placed.created and len(placed.invoices) == 1
    assert account(fake_ctx, shop).subscriptions[placed.subscription_id].agreement == key
    assert len(fake_ctx.swedbankpay.orders) == 1  # no second payment order


def test_an_order_blocked_before_the_payer_approved_is_not_placed_and_customer_service_is_told(
        fake_ctx: FakeContext, shop: str) -> None:
    _taken, key = start(fake_ctx, shop)
    remote = agreement_id(fake_ctx, key)
    n = subscriber(fake_ctx, shop, 1)
    cs.set_order_block(fake_ctx, shop, n, "avisa", "Bad credit")
    fake_ctx.vipps.approve(remote)
    for _ in range(2):
        reconcile_vipps_agreement(fake_ctx, shop, remote)
    acc = account(fake_ctx, shop)
    assert acc.subscriptions == {} and acc.agreements[key].status is AgreementStatus.STOPPED
    assert fake_ctx.vipps.agreements[remote].status == "STOPPED"  # so it is never charged
    (row,) = fake_ctx.attention.all(shop)
    assert row.ref == key and "refund" in row.reason


def test_a_payer_who_declined_vipps_may_order_again_with_invoice_without_being_held(
        fake_ctx: FakeContext, shop: str) -> None:
    _taken, key = start(fake_ctx, shop)
    fake_ctx.vipps.reject(agreement_id(fake_ctx, key))
    reconcile_vipps_agreement(fake_ctx, shop, agreement_id(fake_ctx, key))
    taken = take_order(fake_ctx, order(shop, 1, ref="by-invoice"))  # the same e-mail, a new order
    assert taken.accepted and taken.payment is not None and taken.payment.amount_minor == FIRST_MINOR
    again = take_order(fake_ctx, order(shop, 1, ref="by-invoice"))  # posted again: the same answer
    assert (again.accepted, again.created, again.payment) == (True, False, taken.payment)
    acc = account(fake_ctx, shop)
    assert len(acc.subscriptions) == 1 and acc.agreements[key].status is AgreementStatus.REJECTED
    assert fake_ctx.pending.list(shop, "pending") == []


def test_a_vipps_order_starting_so_far_back_that_two_periods_are_due_is_refused(
        fake_ctx: FakeContext, shop: str) -> None:
    back = replace(vipps_order(shop), start_date=DAY - timedelta(days=40))  # two monthly periods due at once
    with pytest.raises(OrderRejected):
        take_order(fake_ctx, back)
    assert fake_ctx.vipps.agreements == {}
    yesterday = take_order(fake_ctx, replace(vipps_order(shop, ref="r2"), start_date=DAY - timedelta(days=1)))
    assert yesterday.redirect_url  # one period due: its first payment is the initial charge


def test_news_of_an_approved_agreement_whose_order_was_never_stored_tells_customer_service_once(
        fake_ctx: FakeContext, shop: str) -> None:
    fake_ctx.accounts.inject("commit", *[ValueError("refused for good")] * 10)
    with pytest.raises(ValueError):
        take_order(fake_ctx, vipps_order(shop))
    fake_ctx.accounts.clear_faults()
    (made,) = fake_ctx.vipps.agreements.values()  # made at Vipps, never stored; the payer approves anyway
    fake_ctx.vipps.approve(made.id)
    for _ in range(2):
        reconcile_vipps_agreement(fake_ctx, shop, made.id)
    (row,) = fake_ctx.attention.all(shop)
    assert (row.ref, row.count) == (made.external_id, 1) and "refund" in row.reason


def test_a_confirmed_held_vipps_order_gives_customer_service_the_payers_link(fake_ctx: FakeContext, shop: str) -> None:
    from shared.service.orders import confirm_pending, pending_orders

    place_order(fake_ctx, order(shop, 1))
    take_order(fake_ctx, vipps_order(shop, 1, ref="held"))
    (held,) = pending_orders(fake_ctx, shop)
    placed = confirm_pending(fake_ctx, shop, held.id)
    (made,) = fake_ctx.vipps.agreements.values()
    assert (placed.redirect_url, placed.invoices) == (made.confirmation_url, ())
    assert account(fake_ctx, shop).agreements[made.external_id].status is AgreementStatus.PENDING


def test_a_failed_activation_commit_is_retried_to_one_placement_without_a_gap(fake_ctx: FakeContext,
                                                                              shop: str) -> None:
    _taken, key = start(fake_ctx, shop)
    remote = agreement_id(fake_ctx, key)
    fake_ctx.vipps.approve(remote)
    fake_ctx.accounts.inject("commit", *[Unavailable("storage away")] * 10)  # the activation's every try
    with pytest.raises(Unavailable):
        reconcile_vipps_agreement(fake_ctx, shop, remote)
    fake_ctx.accounts.clear_faults()
    assert account(fake_ctx, shop).subscriptions == {}  # nothing half done
    reconcile_vipps_agreement(fake_ctx, shop, remote)  # the webhook again
    acc = account(fake_ctx, shop)
    assert len(acc.subscriptions) == 1 and acc.open_demands == {}
    assert [i.number for i in fake_ctx.accounts.documents(shop, acc.number).invoices] == [1]


def test_the_provider_timer_drives_the_checkouts_watches(fake_ctx: FakeContext, shop: str, clock) -> None:  # type: ignore[no-untyped-def]
    from shared.service.charges import poll

    _taken, key = start(fake_ctx, shop)
    remote = agreement_id(fake_ctx, key)
    fake_ctx.vipps.approve(remote)  # the webhook is lost
    tomorrow = DAY + timedelta(days=1)
    clock.set(oslo_morning(tomorrow))
    poll(fake_ctx, shop, tomorrow)
    n = subscriber(fake_ctx, shop, 1)
    (sub,) = account(fake_ctx, shop).subscriptions.values()
    assert account(fake_ctx, shop).agreements[key].active
    assert sub.anchor == tomorrow  # ordered without a start date: it starts when the payer approved
    cs.stop(fake_ctx, shop, n, sub.id, True, None, None, "Moving abroad")
    end = date(2026, 2, 6)  # the end of the paid first period
    clock.set(oslo_morning(end - timedelta(days=1)))
    poll(fake_ctx, shop, end - timedelta(days=1))
    assert fake_ctx.vipps.agreements[remote].status == "ACTIVE"
    clock.set(oslo_morning(end))
    poll(fake_ctx, shop, end)
    assert fake_ctx.vipps.agreements[remote].status == "STOPPED"
    assert account(fake_ctx, shop).agreements[key].stopped_by == "merchant"


def test_a_payment_stop_of_a_subscription_on_vipps_stops_the_agreement_too(fake_ctx: FakeContext, shop: str,
                                                                           clock) -> None:  # type: ignore[no-untyped-def]
    from shared.service.dunning import dun_subscribers

    _taken, key = start(fake_ctx, shop)
    remote = agreement_id(fake_ctx, key)
    fake_ctx.vipps.agreements[remote] = replace(fake_ctx.vipps.agreements[remote], status="ACTIVE")
    fake_ctx.vipps.settle(f"i{key[1:]}", "RESERVED")  # approved; the money never comes
    reconcile_vipps_agreement(fake_ctx, shop, remote)
    n = subscriber(fake_ctx, shop, 1)
    day = DAY
    while account(fake_ctx, shop).agreements[key].stop_on is None and day < DAY + timedelta(days=90):
        day += timedelta(days=1)
        clock.set(oslo_morning(day))
        dun_subscribers(fake_ctx, shop, day, [n])
    acc = account(fake_ctx, shop)
    (sub,) = acc.subscriptions.values()
    assert sub.stop_date is not None and acc.agreements[key].stop_on is not None  # the dunning's payment stop
    assert acc.agreements[key].stop_on >= sub.stop_date
    assert (shop, acc.agreements[key].stop_on, Watch(n, "vipps", key)) in fake_ctx.provider_watch.entries


def test_a_paused_subscription_keeps_its_agreement_for_the_restart(fake_ctx: FakeContext, shop: str) -> None:
    _taken, key = start(fake_ctx, shop)
    fake_ctx.vipps.approve(agreement_id(fake_ctx, key))
    reconcile_vipps_agreement(fake_ctx, shop, agreement_id(fake_ctx, key))
    n = subscriber(fake_ctx, shop, 1)
    (sub,) = account(fake_ctx, shop).subscriptions.values()
    cs.pause(fake_ctx, shop, n, sub.id, date(2026, 4, 1), None)
    acc = account(fake_ctx, shop)
    restart = next(s for s in acc.subscriptions.values() if s.id != sub.id)
    assert (restart.agreement, restart.payment_type) == (key, PaymentType.VIPPS)
    assert acc.agreements[key].active and acc.agreements[key].stop_on is None  # not stopped: it pays the restart


class AuthorizingSwedbankPay(FakeSwedbankPay):
    """A payment page that only authorizes (two-phase), and a capture whose answer, as Swedbank
    Pay's, carries no paid details (token, mask, expiry)."""

    def capture(self, tenant: str, payment_order_id: str, amount_minor: int, vat_minor: int,
                payee_reference: str) -> CardPaymentOrder:
        order = self.orders[payment_order_id]
        if order.status != "Paid" or amount_minor != order.amount_minor:
            return super().capture(tenant, payment_order_id, amount_minor, vat_minor, payee_reference)
        self.orders[payment_order_id] = captured = replace(order, captured_minor=amount_minor)
        return replace(captured, token="", card_mask="", card_expiry=None)


def test_an_authorized_card_payment_is_captured_and_its_card_kept(fake_ctx: FakeContext, shop: str) -> None:
    fake_ctx.swedbankpay = AuthorizingSwedbankPay()
    _taken, key = start(fake_ctx, shop, PaymentType.CARD)
    (po,) = fake_ctx.swedbankpay.orders.values()
    fake_ctx.swedbankpay.complete(po.id, date(2027, 6, 30))
    paid = fake_ctx.swedbankpay.orders[po.id]
    fake_ctx.swedbankpay.orders[po.id] = replace(paid, captured_minor=0)  # Paid, but only authorized
    reconcile_card_order(fake_ctx, shop, po.id)
    acc = account(fake_ctx, shop)
    agreement = acc.agreements[key]
    assert fake_ctx.swedbankpay.orders[po.id].captured_minor == FIRST_MINOR  # we captured the first period
    assert (agreement.status, agreement.token, agreement.card_expiry) == (
        AgreementStatus.ACTIVE, paid.token, date(2027, 6, 30))
    assert acc.open_demands == {} and acc.balances == {"avisa": 0}


@pytest.mark.parametrize("status", ["ACTIVE", "EXPIRED", "STOPPED"])
def test_news_of_another_vipps_agreement_claiming_our_key_reads_ours_and_changes_nothing(
        fake_ctx: FakeContext, shop: str, status: str) -> None:
    """Hostile review (issue 11): an agreement at Vipps whose externalId is our key but which is
    not the one our row names (a stale draft of the same order, an odd answer) is only a signal:
    the agreement our row names is read, and it is still pending."""
    from shared.ports import VippsAgreement
    _taken, key = start(fake_ctx, shop)
    ours = agreement_id(fake_ctx, key)
    fake_ctx.vipps.agreements["agr_other"] = VippsAgreement("agr_other", status, key, 100, "NOK")
    reconcile_vipps_agreement(fake_ctx, shop, "agr_other")
    acc = account(fake_ctx, shop)
    assert acc.agreements[key].status is AgreementStatus.PENDING and acc.subscriptions == {}
    fake_ctx.vipps.approve(ours)  # ours, approved: the same signal now activates it
    reconcile_vipps_agreement(fake_ctx, shop, "agr_other")
    assert account(fake_ctx, shop).agreements[key].status is AgreementStatus.ACTIVE


def test_news_of_another_payment_order_claiming_our_key_reads_ours_and_changes_nothing(
        fake_ctx: FakeContext, shop: str) -> None:
    _taken, key = start(fake_ctx, shop, PaymentType.CARD)
    ours = account(fake_ctx, shop).agreements[key].provider_id
    other = replace(fake_ctx.swedbankpay.orders[ours], id="/psp/paymentorders/other", status="Aborted")
    fake_ctx.swedbankpay.orders[other.id] = other
    reconcile_card_order(fake_ctx, shop, other.id)
    assert account(fake_ctx, shop).agreements[key].status is AgreementStatus.PENDING
