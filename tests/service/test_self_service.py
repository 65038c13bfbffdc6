"""My page's use cases on the fakes (``service.self_service``): a running subscription moved
to Vipps or card through the checkout's rails and off them again, and every change a
subscriber may make, repeated or made by concurrent requests, takes effect once."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import date, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devhost.builders import oslo_morning
from shared.domain.agreements import AgreementStatus
from shared.domain.catalogue import PaymentType, StopPolicy
from shared.domain.lifecycle import StopRefused
from shared.domain.subscriptions import StopKind, SubscriberError
from shared.ports import ConcurrencyConflict, SubscriberPrincipal, Watch
from shared.service import self_service as my
from shared.service import self_service_changes as mine
from shared.service.billing import bill_subscribers
from shared.service.catalogue import put_item
from shared.service.checkout import reconcile_agreement, reconcile_card_order, reconcile_vipps_agreement, start_checkout
from shared.service.orders import OrderRejected, place_order
from shared.service.unit_of_work import Conflicted
from tests.fakes import FakeContext
from tests.fixtures import install_catalogue, order
from tests.my_page import link, login_of


@pytest.fixture
def shop(fake_ctx: FakeContext, tenant: str) -> str:
    install_catalogue(fake_ctx, tenant)
    return tenant


def holder(ctx: FakeContext, shop: str, n: int = 1, **changes: Any) -> tuple[SubscriberPrincipal, int, str]:
    """Kari ``n``'s login, linked to the subscriber her invoice order made, and its subscription."""
    placed = place_order(ctx, replace(order(shop, n), **changes))
    link(ctx, shop, f"kari{n}", placed.subscriber_no)
    me = SubscriberPrincipal(shop, login_of(shop, f"kari{n}"), "dev", f"kari{n}", f"kari{n}@example.no", None, None)
    return me, placed.subscriber_no, placed.subscription_id


def vipps_of(ctx: FakeContext, key: str) -> str:
    (found,) = [a.id for a in ctx.vipps.agreements.values() if a.external_id == key]
    return found


def account(ctx: FakeContext, shop: str, n: int):  # type: ignore[no-untyped-def]
    loaded = ctx.accounts.load(shop, n)
    assert loaded is not None
    return loaded.account


def test_an_invoice_subscription_moves_to_vipps_when_the_payer_approves_and_its_renewal_is_charged(
        fake_ctx: FakeContext, shop: str) -> None:
    me, n, sub = holder(fake_ctx, shop, phone="+47 412 34 567")
    first = mine.change_payment(fake_ctx, me, n, sub, "vipps")
    again = mine.change_payment(fake_ctx, me, n, sub, "vipps")
    assert first == again and first.redirect_url is not None and first.redirect_url.startswith("https://fake.vipps/")
    assert first.payment == {"type": "invoice", "agreement": {"provider": "vipps", "status": "pending"}}
    assert fake_ctx.vipps.calls.count("create_agreement") == 1
    (key,) = account(fake_ctx, shop, n).agreements
    draft = fake_ctx.vipps.drafts[vipps_of(fake_ctx, key)]
    # the running period is invoiced already: no initial charge; each period's price from the next on
    assert (draft.price_minor, draft.initial_charge_minor, draft.phone) == (29900 + 4900, None, "4741234567")
    fake_ctx.vipps.approve(vipps_of(fake_ctx, key))
    reconcile_vipps_agreement(fake_ctx, shop, vipps_of(fake_ctx, key))
    moved = account(fake_ctx, shop, n).subscriptions[sub]
    assert (moved.payment_type, moved.agreement) == (PaymentType.VIPPS, key)
    assert my.subscriptions(fake_ctx, me, n)[0]["payment"] == {"type": "vipps",
                                                                "agreement": {"provider": "vipps", "status": "active"}}
    bill_subscribers(fake_ctx, shop, date(2026, 1, 22), [n])  # February's invoice: a charge on the agreement
    assert [c.agreement_key for c in account(fake_ctx, shop, n).charges.values()] == [key]


def test_a_declined_vipps_agreement_leaves_the_subscription_on_invoice_and_a_new_try_makes_a_new_one(
        fake_ctx: FakeContext, shop: str) -> None:
    me, n, sub = holder(fake_ctx, shop)
    mine.change_payment(fake_ctx, me, n, sub, "vipps")
    (key,) = account(fake_ctx, shop, n).agreements
    fake_ctx.vipps.reject(vipps_of(fake_ctx, key))
    reconcile_vipps_agreement(fake_ctx, shop, vipps_of(fake_ctx, key))
    acc = account(fake_ctx, shop, n)
    assert acc.agreements[key].status is AgreementStatus.REJECTED
    assert (acc.subscriptions[sub].payment_type, acc.subscriptions[sub].agreement) == (PaymentType.INVOICE, None)
    mine.change_payment(fake_ctx, me, n, sub, "vipps")
    assert len(account(fake_ctx, shop, n).agreements) == 2 and fake_ctx.vipps.calls.count("create_agreement") == 2


def test_leaving_vipps_for_invoice_by_email_stops_the_agreement_at_vipps_and_a_later_stop_keeps_that_stop(
        fake_ctx: FakeContext, shop: str, clock) -> None:  # type: ignore[no-untyped-def]
    me, n, sub = holder(fake_ctx, shop)
    second = place_order(fake_ctx, order(shop, 1, ref="second", plan="digital-yearly"), subscriber_no=n)
    mine.change_payment(fake_ctx, me, n, sub, "vipps")
    (key,) = account(fake_ctx, shop, n).agreements
    remote = vipps_of(fake_ctx, key)
    fake_ctx.vipps.approve(remote)
    reconcile_vipps_agreement(fake_ctx, shop, remote)
    done = mine.change_payment(fake_ctx, me, n, sub, "email")
    assert done.payment == {"type": "invoice", "agreement": None}
    today = date(2026, 1, 5)
    assert account(fake_ctx, shop, n).agreements[key].stop_on == today  # no charge open on it
    assert (shop, today, Watch(n, "vipps", key)) in fake_ctx.provider_watch.entries
    mine.stop(fake_ctx, me, n, second.subscription_id, None, None)  # schedule_stops runs: the stop stays
    assert account(fake_ctx, shop, n).agreements[key].stop_on == today
    reconcile_agreement(fake_ctx, shop, n, key)  # the provider timer's call for the watch
    assert fake_ctx.vipps.agreements[remote].status == "STOPPED"
    assert account(fake_ctx, shop, n).agreements[key].status is AgreementStatus.STOPPED


def test_card_is_refused_clearly_without_a_registered_card_and_set_at_once_with_one(
        fake_ctx: FakeContext, shop: str) -> None:
    me, n, sub = holder(fake_ctx, shop)
    with pytest.raises(OrderRejected, match="no card is registered"):
        mine.change_payment(fake_ctx, me, n, sub, "card")
    card_order = replace(order(shop, 1, ref="card", plan="digital-yearly"), payment_type=PaymentType.CARD)
    start_checkout(fake_ctx, card_order, n, "cardyearly1")  # her yearly order paid by card
    (po,) = fake_ctx.swedbankpay.orders.values()
    fake_ctx.swedbankpay.complete(po.id, date(2027, 12, 31))
    reconcile_card_order(fake_ctx, shop, po.id)
    done = mine.change_payment(fake_ctx, me, n, sub, "card")
    assert done.redirect_url is None and done.payment["type"] == "card"
    assert account(fake_ctx, shop, n).subscriptions[sub].agreement == po.payee_reference


def test_a_group_admin_is_refused_everything_of_the_subscriber_but_its_group_subscription(
        fake_ctx: FakeContext, shop: str) -> None:
    from shared.domain.identity import Role
    from shared.ports import NotFound

    _me, n, sub = holder(fake_ctx, shop)
    other = place_order(fake_ctx, order(shop, 1, ref="second"), subscriber_no=n).subscription_id
    link(fake_ctx, shop, "admin", n, Role.ADMIN, sub)
    admin = SubscriberPrincipal(shop, login_of(shop, "admin"), "dev", "admin", None, None, None)
    assert [s["id"] for s in my.subscriptions(fake_ctx, admin, n)] == [sub]
    for call in (lambda: mine.stop(fake_ctx, admin, n, other, None, None),
                 lambda: mine.restart(fake_ctx, admin, n, other),
                 lambda: mine.pause(fake_ctx, admin, n, other, date(2026, 4, 5)),
                 lambda: mine.change_payment(fake_ctx, admin, n, other, "email")):
        with pytest.raises(NotFound):
            call()


# ---- every change, repeated and raced, takes effect once ----------------------------------------

Change = Callable[[FakeContext, SubscriberPrincipal, int, str], Any]
CHANGES: dict[str, tuple[Change, Callable[[FakeContext, str], None]]] = {
    "stop": (lambda c, me, n, s: mine.stop(c, me, n, s, None, None), lambda c, shop: None),
    "restart after the end": (lambda c, me, n, s: mine.restart(c, me, n, s), lambda c, shop: None),
    "withdraw a stop": (lambda c, me, n, s: mine.restart(c, me, n, s), lambda c, shop: None),
    "pause": (lambda c, me, n, s: mine.pause(c, me, n, s, date(2026, 4, 5)), lambda c, shop: None),
    "invoice by e-mail": (lambda c, me, n, s: mine.change_payment(c, me, n, s, "email"), lambda c, shop: None),
    "vipps": (lambda c, me, n, s: mine.change_payment(c, me, n, s, "vipps"), lambda c, shop: None),
}


def _prepare(ctx: FakeContext, shop: str, name: str, me: SubscriberPrincipal, n: int, sub: str, clock: Any) -> None:
    plan = ctx.catalogue.get(shop).plans["digital-monthly"]
    put_item(ctx, shop, "plan", replace(plan, pause_allowed=True))
    if name in ("restart after the end", "withdraw a stop"):
        mine.stop(ctx, me, n, sub, None, None)
    if name == "restart after the end":
        clock.set(oslo_morning(date(2026, 2, 10)))


def _state(ctx: FakeContext, shop: str, n: int) -> tuple[Any, ...]:
    acc = account(ctx, shop, n)
    history = ctx.accounts.documents(shop, n)
    return (acc.subscriptions, acc.agreements, acc.open_demands, acc.balances, len(history.invoices),
            len(history.credit_notes), len(ctx.vipps.agreements))


@pytest.mark.parametrize("name", list(CHANGES))
def test_a_change_asked_again_changes_nothing_more(fake_ctx: FakeContext, shop: str, clock, name: str) -> None:  # type: ignore[no-untyped-def]
    me, n, sub = holder(fake_ctx, shop)
    _prepare(fake_ctx, shop, name, me, n, sub, clock)
    run = CHANGES[name][0]
    first = run(fake_ctx, me, n, sub)
    once = _state(fake_ctx, shop, n)
    assert run(fake_ctx, me, n, sub) == first and _state(fake_ctx, shop, n) == once


@pytest.mark.parametrize("name", list(CHANGES))
def test_a_change_asked_by_concurrent_requests_takes_effect_once(fake_ctx: FakeContext, shop: str, clock,  # type: ignore[no-untyped-def]
                                                                 name: str) -> None:
    me, n, sub = holder(fake_ctx, shop)
    _prepare(fake_ctx, shop, name, me, n, sub, clock)
    run = CHANGES[name][0]
    start = threading.Barrier(4)
    answers: list[Any] = []

    def request() -> None:
        start.wait()
        try:
            answers.append(run(fake_ctx, me, n, sub))
        except (Conflicted, ConcurrencyConflict):  # answered 409: the caller asks again
            pass

    threads = [threading.Thread(target=request) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert answers, "at least one request succeeds"
    once = _state(fake_ctx, shop, n)
    assert run(fake_ctx, me, n, sub) == answers[0] and _state(fake_ctx, shop, n) == once
    subs = account(fake_ctx, shop, n).subscriptions.values()
    assert len([s for s in subs if s.resumes == sub]) <= 1  # never a second restart
    assert len([s for s in subs if s.stop_kind is StopKind.CUSTOMER]) <= 1


def test_the_restart_window_is_three_months_to_the_day(fake_ctx: FakeContext, shop: str, clock) -> None:  # type: ignore[no-untyped-def]
    me, n, sub = holder(fake_ctx, shop)
    mine.stop(fake_ctx, me, n, sub, None, None)  # ends on 5 Feb
    acc = account(fake_ctx, shop, n)
    stopped = acc.subscriptions[sub]
    for day, allowed in ((date(2026, 5, 4), True), (date(2026, 5, 5), False)):
        assert (my.why_not_restart(acc, stopped, day) is None) is allowed, day
    assert my.why_not_restart(acc, stopped, date(2026, 2, 5) - timedelta(days=1)) is None  # a stop still ahead


# ---- any sequence of a subscriber's own changes, on any days --------------------------------------

EXPECTED = (StopRefused, OrderRejected, SubscriberError)  # a refusal with a reason: 422, never a fault
Op = tuple[str, int]  # (what, a day offset or a choice)
OPS = st.lists(st.tuples(st.sampled_from(["stop", "stop on", "restart", "pause", "email", "days", "bill"]),
                         st.integers(0, 120)), min_size=1, max_size=8)


def _pick(ctx: FakeContext, shop: str, n: int, k: int) -> str:
    subs = sorted(account(ctx, shop, n).subscriptions.values(), key=lambda s: (s.anchor, s.id))
    return subs[k % len(subs)].id


def _apply(ctx: FakeContext, shop: str, me: SubscriberPrincipal, n: int, op: Op, sub: str, clock: Any) -> Any:
    what, k = op
    today = ctx.today(ctx.catalogue.get(shop))
    if what == "days":
        clock.set(oslo_morning(today + timedelta(days=k)))
        return None
    if what == "bill":
        return bill_subscribers(ctx, shop, today, [n]) and None
    calls: dict[str, Callable[[], Any]] = {
        "stop": lambda: mine.stop(ctx, me, n, sub, None, None),
        "stop on": lambda: mine.stop(ctx, me, n, sub, today + timedelta(days=k % 40), None),
        "restart": lambda: mine.restart(ctx, me, n, sub),
        "pause": lambda: mine.pause(ctx, me, n, sub, today + timedelta(days=k + 1)),
        "email": lambda: mine.change_payment(ctx, me, n, sub, "email"),
    }
    try:
        return calls[what]()
    except EXPECTED as exc:
        return type(exc)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=OPS, optional=st.booleans())
def test_any_sequence_of_changes_repeats_harmlessly_restarts_once_and_keeps_the_ledger(
        fake_ctx: FakeContext, clock: Any, ops: list[Op], optional: bool) -> None:
    clock.set(oslo_morning(date(2026, 1, 5)))
    shop = f"p{uuid.uuid4().hex[:10]}"
    install_catalogue(fake_ctx, shop)
    plan = fake_ctx.catalogue.get(shop).plans["digital-monthly"]
    put_item(fake_ctx, shop, "plan", replace(plan, pause_allowed=True,
                                              stop_policy=StopPolicy.OPTIONAL if optional else plan.stop_policy))
    me, n, _sub = holder(fake_ctx, shop)
    for op in ops:
        sub = _pick(fake_ctx, shop, n, op[1])
        first = _apply(fake_ctx, shop, me, n, op, sub, clock)
        if op[0] in ("days", "bill"):
            continue
        state = _state(fake_ctx, shop, n)
        assert _apply(fake_ctx, shop, me, n, op, sub, clock) == first, op  # asked again: the same answer ...
        assert _state(fake_ctx, shop, n) == state, op  # ... and nothing more changed
    acc = account(fake_ctx, shop, n)
    resumed = [s.resumes for s in acc.subscriptions.values() if s.resumes is not None]
    assert len(resumed) == len(set(resumed))  # a subscription is restarted (or resumed after a pause) once
    ledger = fake_ctx.accounts.documents(shop, n).ledger
    assert acc.balances.get("avisa", 0) == sum(e.amount_minor for e in ledger)
