"""The checkout's news may come in any number, at any time, in any order: a property over every
interleaving of the provider's moves (the payer approves, the initial charge is reserved then
captured, the payer stops, declines, ignores) with our calls (webhook, callback, the timer's
poll, the return page, the same order posted again), each any number of times. After the last
move has been reconciled once, the subscriber's account is the one a single reconcile of the
provider's final state makes: no duplicate, no lost payment, no state that depends on order.

(One history is outside the property and documented in ``agreements.vipps_verdict``: a plan
whose first period is free has no initial charge, so an agreement the payer approved and stopped
before we saw it active reads as one the payer declined.)"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devhost.builders import oslo_morning
from shared.clock import SettableClock
from shared.domain.catalogue import PaymentType
from shared.service.catalogue import put_item
from shared.service.checkout import (
    checkout_status,
    reconcile_agreement,
    reconcile_card_order,
    reconcile_vipps_agreement,
)
from shared.service.orders import take_order
from tests.fakes import FakeContext, fake_context
from tests.fixtures import install_catalogue, order

TENANT = "tprop"
DAY = date(2026, 1, 5)

# the provider's legal histories (each a sequence of moves), per rail
VIPPS_HISTORIES = [(), ("approve",), ("activate_reserved",), ("activate_reserved", "capture"),
                   ("approve", "user_stop"), ("activate_reserved", "user_stop"),
                   ("activate_reserved", "capture", "user_stop"), ("reject",), ("expire",)]
CARD_HISTORIES = [(), ("complete",), ("abort",)]
CALLS = ["news", "news", "poll", "status", "order_again"]


def new_shop(fallback: bool) -> FakeContext:
    ctx = fake_context(SettableClock(oslo_morning(DAY)))
    install_catalogue(ctx, TENANT)
    if fallback:
        org = ctx.catalogue.get(TENANT).organizations["avisa"]
        put_item(ctx, TENANT, "organization", replace(org, fallback_to_invoice=True))
    return ctx


def the_order(pay: PaymentType) -> Any:
    return replace(order(TENANT, 1, ref="prop-1"), payment_type=pay)


def number(ctx: FakeContext) -> int:
    found = ctx.emails.find(TENANT, "kari1@example.no")
    assert found is not None
    return found


def key_of(ctx: FakeContext) -> str:
    loaded = ctx.accounts.load(TENANT, number(ctx))
    assert loaded is not None
    (key,) = loaded.account.agreements
    return key


def move(ctx: FakeContext, pay: PaymentType, step: str) -> None:
    key = key_of(ctx)
    if pay is PaymentType.CARD:
        (po,) = ctx.swedbankpay.orders.values()
        if step == "complete":
            ctx.swedbankpay.complete(po.id, date(2027, 12, 31))
        else:
            ctx.swedbankpay.abort(po.id)
        return
    (remote,) = [a.id for a in ctx.vipps.agreements.values() if a.external_id == key]
    initial = f"i{key[1:]}"
    if step == "activate_reserved":
        ctx.vipps.agreements[remote] = replace(ctx.vipps.agreements[remote], status="ACTIVE")
        ctx.vipps.settle(initial, "RESERVED")
    elif step == "capture":
        ctx.vipps.settle(initial, "CHARGED")
    else:
        getattr(ctx.vipps, step)(remote)


def call(ctx: FakeContext, pay: PaymentType, kind: str) -> None:
    key = key_of(ctx)
    if kind == "poll":
        reconcile_agreement(ctx, TENANT, number(ctx), key)
    elif kind == "status":
        checkout_status(ctx, TENANT, key)
    elif kind == "order_again":
        take_order(ctx, the_order(pay))
    elif pay is PaymentType.CARD:
        (po,) = ctx.swedbankpay.orders.values()
        reconcile_card_order(ctx, TENANT, po.id)
    else:
        (remote,) = [a.id for a in ctx.vipps.agreements.values() if a.external_id == key]
        reconcile_vipps_agreement(ctx, TENANT, remote)


def state(ctx: FakeContext) -> tuple[Any, ...]:
    """The subscriber's account as it matters, without the provider's own ids."""
    n = number(ctx)
    loaded = ctx.accounts.load(TENANT, n)
    assert loaded is not None
    acc = loaded.account
    docs = ctx.accounts.documents(TENANT, n)
    return (sorted((a.key, a.status, a.stopped_by, a.order is None, bool(a.token)) for a in acc.agreements.values()),
            sorted((s.id, s.payment_type, s.agreement, s.next_period) for s in acc.subscriptions.values()),
            sorted((c.id, c.state, c.demand_no, c.captured_minor) for c in acc.charges.values()),
            [(i.number, i.total_minor, i.kid) for i in docs.invoices],
            sorted((p.payment.id, p.payment.amount_minor) for p in ctx.accounts.payments(TENANT, n)),
            dict(acc.balances), sorted((d.demand_no, d.open_minor) for d in acc.open_demands.values()),
            sorted((r.run, r.ref, r.count) for r in ctx.attention.all(TENANT)),
            ctx.invoice_numbers.claims(next(iter(ctx.invoice_numbers.series), "")) if ctx.invoice_numbers.series
            else {})


@st.composite
def histories(draw: st.DrawFn) -> tuple[PaymentType, tuple[str, ...], list[list[str]], bool]:
    pay = draw(st.sampled_from([PaymentType.VIPPS, PaymentType.VIPPS, PaymentType.CARD]))
    moves = draw(st.sampled_from(VIPPS_HISTORIES if pay is PaymentType.VIPPS else CARD_HISTORIES))
    calls = [draw(st.lists(st.sampled_from(CALLS), max_size=3)) for _ in range(len(moves) + 1)]
    return pay, moves, calls, draw(st.booleans())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories())
def test_any_interleaving_of_news_and_calls_ends_in_the_state_of_one_reconcile(
        history: tuple[PaymentType, tuple[str, ...], list[list[str]], bool]) -> None:
    pay, moves, calls, fallback = history
    ctx = new_shop(fallback)
    take_order(ctx, the_order(pay))
    for i, step in enumerate(moves):
        for kind in calls[i]:
            call(ctx, pay, kind)
        move(ctx, pay, step)
    for kind in [*calls[-1], "news"]:  # the last move's news comes at least once
        call(ctx, pay, kind)

    once = new_shop(fallback)  # the same history told once, at the end
    take_order(once, the_order(pay))
    for step in moves:
        move(once, pay, step)
    call(once, pay, "news")
    assert state(ctx) == state(once)
    again = state(ctx)
    for kind in ("news", "poll", "status"):  # and any more news changes nothing
        call(ctx, pay, kind)
    assert state(ctx) == again
