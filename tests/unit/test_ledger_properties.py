"""Property: under any sequence of invoices, payments (matched or not, partial, over,
deductions) and refunds, the ledger is exact: its entries sum to the balance, the
balance is minus what was invoiced plus what was paid and written off, less refunds,
every øre of every payment is either allocated to a demand or left as credit, and
credit pays later invoices only as far as it exists (ledger billing)."""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.domain.account import Account, BookRefund, due_drafts, issue, receive_payment, refund
from shared.domain.ledger import EntryKind
from shared.domain.payments import MatchType, ReceivedPayment
from shared.domain.subscriptions import Subscriber
from tests.unit.test_invoicing import CAT, monthly

steps = st.lists(st.one_of(
    st.tuples(st.just("days"), st.integers(1, 40)),
    st.tuples(st.just("pay"), st.integers(-5000, 120000), st.integers(0, 6)),
    st.tuples(st.just("refund"), st.integers(1, 20000)),
), min_size=1, max_size=25)


@settings(max_examples=120, deadline=None)
@given(steps)
def test_the_ledger_always_balances_against_invoices_payments_and_refunds(ops: list[tuple]) -> None:  # type: ignore[type-arg]
    acc = Account(Subscriber(1001, "Kari", "kari@example.no"), {"s1": monthly(date(2026, 1, 5))})
    today, ledger, n = date(2026, 1, 5), [], 0
    invoiced = paid = refunded = allocated = credit = credit_applied = credit_left = 0
    for op in ops:
        if op[0] == "days":
            today += timedelta(days=op[1])
        elif op[0] == "pay":
            n += 1
            demand = op[2] if op[2] else None  # 0: no reference; may also name a paid or unknown demand
            payment = ReceivedPayment(f"p{n}", "avisa", "NOK", op[1], today, "ocr_giro",
                                      MatchType.EXTERNAL_IDENTIFIER, demand_no=demand)
            changes = receive_payment(acc, payment, CAT, today)
            paid += op[1]
            allocated += sum(a.paid_minor for a in changes.payments[0].allocations)
            credit += changes.payments[0].credit_minor
            credit_left += max(0, changes.payments[0].credit_minor)
            acc, ledger = changes.account, ledger + list(changes.ledger)
        else:
            n += 1
            changes = refund(acc, BookRefund(f"r{n}", "avisa", "NOK", op[1], f"ref{n}"), today)
            refunded += op[1]
            acc, ledger = changes.account, ledger + list(changes.ledger)
        drafts = due_drafts(acc, CAT, today)
        changes = issue(acc, drafts, {d.natural_key: 100 + i + n * 50 for i, d in enumerate(drafts)}, CAT, today)
        invoiced += sum(i.total_minor for i in changes.invoices)
        credit_applied += sum(i.credit_applied_minor for i in changes.invoices)
        acc, ledger = changes.account, ledger + list(changes.ledger)
    written_off = sum(e.amount_minor for e in ledger if e.kind is EntryKind.WRITE_OFF)
    balance = acc.balances.get("avisa", 0)
    assert sum(e.amount_minor for e in ledger) == balance
    assert balance == -invoiced + paid + written_off - refunded
    assert allocated + credit == paid  # no payment amount lost
    open_total = sum(d.open_minor for d in acc.open_demands.values())
    # what is still owed on invoices: ledger credit applied when they were issued paid some
    assert open_total == invoiced - allocated - written_off - credit_applied
    assert credit_applied <= credit_left  # only credit that payments left was applied
    assert all(d.open_minor > 0 for d in acc.open_demands.values())
