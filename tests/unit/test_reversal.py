"""Reversals (OCR giro transaction types 18 and 20): a payment taken back is booked as a
reversal of its own kind against that payment, and what the payment settled is owed again.

Property: after any invoices and payments, reversing any one payment leaves the ledger
exact and every demand owing what it would have owed had the payment never come, as far
as the payment paid it (write-offs the payment allowed are taken back too)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.domain.account import Account, due_drafts, issue, receive_payment, reversal_target, reverse_payment
from shared.domain.invoicing import Invoice
from shared.domain.ledger import EntryKind
from shared.domain.payments import BookedPayment, MatchType, PaymentKind, ReceivedPayment, row_id
from shared.domain.subscriptions import Subscriber
from tests.unit.test_invoicing import CAT, monthly

DAY = date(2026, 1, 5)


def billed(months: int) -> tuple[Account, dict[int, Invoice]]:
    acc = Account(Subscriber(1001, "Kari", "kari@example.no"), {"s1": monthly(DAY)})
    invoices: dict[int, Invoice] = {}
    today = DAY
    for n in range(months):
        drafts = due_drafts(acc, CAT, today)
        changes = issue(acc, drafts, {d.natural_key: 100 + n * 10 + i for i, d in enumerate(drafts)}, CAT, today)
        acc = changes.account
        invoices |= {i.demand_no: i for i in changes.invoices}
        today += timedelta(days=31)
    return acc, invoices


def pay(acc: Account, pid: str, amount: int, demand_no: int | None) -> tuple[Account, BookedPayment]:
    payment = ReceivedPayment(pid, "avisa", "NOK", amount, DAY, "ocr_giro", MatchType.EXTERNAL_IDENTIFIER,
                              f"kid{demand_no}", demand_no)
    changes = receive_payment(acc, payment, CAT, DAY)
    return changes.account, changes.payments[0]


def reversal_of(booked: BookedPayment, rid: str = "r1") -> ReceivedPayment:
    return replace(booked.payment, id=rid, kind=PaymentKind.REVERSAL, reverses=booked.payment.id)


def test_a_reversal_reopens_the_settled_invoice_and_is_a_debit_of_its_own_kind() -> None:
    acc, invoices = billed(1)
    (demand,) = acc.open_demands.values()
    paid_acc, booked = pay(acc, "p1", demand.open_minor, demand.demand_no)
    assert paid_acc.open_demands == {}
    changes = reverse_payment(paid_acc, reversal_of(booked), booked, invoices, DAY)
    assert [(e.kind, e.amount_minor) for e in changes.ledger] == [(EntryKind.REVERSAL, -demand.open_minor)]
    assert changes.account.balances == acc.balances
    assert [d.open_minor for d in changes.account.open_demands.values()] == [demand.open_minor]
    assert row_id(changes.payments[0].payment) == "p1~rev"  # a payment can be reversed once


def test_a_reversal_is_never_of_another_amount() -> None:
    acc, invoices = billed(1)
    (demand,) = acc.open_demands.values()
    paid_acc, booked = pay(acc, "p1", demand.open_minor, demand.demand_no)
    with pytest.raises(ValueError):
        reverse_payment(paid_acc, replace(reversal_of(booked), amount_minor=1), booked, invoices, DAY)


def test_the_target_is_the_oldest_payment_of_that_kid_and_amount_not_reversed_yet() -> None:
    acc, _ = billed(2)
    first, second = sorted(acc.open_demands)
    acc, p1 = pay(acc, "p1", 500, first)
    acc, p2 = pay(acc, "p2", 500, first)
    acc, p3 = pay(acc, "p3", 700, second)
    reversed_p1 = BookedPayment(reversal_of(p1, "r1"), p1.state, DAY, (), 0)
    booked = [p1, p2, p3, reversed_p1]
    assert reversal_target(booked, "kid" + str(first), 500, "r2") is p2
    assert reversal_target(booked, "kid" + str(first), 500, "r1") is p1  # the one r1 took back already
    assert reversal_target(booked, "kid" + str(first), 700, "r2") is None


@settings(max_examples=150, deadline=None)
@given(months=st.integers(1, 4), payments=st.lists(st.tuples(st.integers(1, 80000), st.integers(0, 5)), min_size=1,
                                                   max_size=6), which=st.integers(0, 5))
def test_reversing_any_payment_restores_what_it_paid(months: int, payments: list[tuple[int, int]], which: int) -> None:
    acc, invoices = billed(months)
    booked = []
    for n, (amount, demand) in enumerate(payments):
        acc, b = pay(acc, f"p{n}", amount, demand or None)
        booked.append(b)
    target = booked[which % len(booked)]
    before_open = {d.demand_no: d.open_minor for d in acc.open_demands.values()}
    changes = reverse_payment(acc, reversal_of(target), target, invoices, DAY)
    after = changes.account
    written_back = sum(a.written_off_minor for a in target.allocations)
    assert after.balances["avisa"] == acc.balances["avisa"] - target.payment.amount_minor - written_back
    assert sum(e.amount_minor for e in changes.ledger) == -target.payment.amount_minor - written_back
    for a in target.allocations:  # each demand the payment paid owes that much more again
        assert after.open_demands[a.demand_no].open_minor == before_open.get(a.demand_no, 0) + a.paid_minor + \
            a.written_off_minor
    untouched = set(before_open) - {a.demand_no for a in target.allocations}
    assert all(after.open_demands[d].open_minor == before_open[d] for d in untouched)
    # the ledger still says what is owed: open demands less credit on the ledger
    owed = sum(d.open_minor for d in after.open_demands.values())
    assert after.balances["avisa"] == -owed + (acc.balances["avisa"] + sum(before_open.values())) - \
        target.credit_minor
