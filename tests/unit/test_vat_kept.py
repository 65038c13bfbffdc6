"""VAT is kept through stops, pauses, credits and payment stops (L4, manual 6.4, 7.7,
7.11, 7.15). Pure and fast: random subscriptions of products at 0, 12, 15 and 25 % VAT
(prices gross), random days, payments, credit notes, corrections, stops, changed or
removed stops, pauses and write-offs, with the dunning visit every day. After every step:

* every document's total is the sum of its lines, and every line is net + VAT;
* a credit note is the credited invoice's lines negated;
* a charge for delivered days is the invoice's gross per rate pro-rated to the days
  delivered before the stop (each rate within one øre of its exact share, summing to
  the delivered share of the total), VAT split out of each part by the one rule;
* per rate, VAT invoiced - VAT credited + VAT charged = the VAT of what was delivered,
  and the ledger's VAT per rate says the same;
* a balance invoice bills, per rate, exactly the charges it covers, on lines of their own;
* the ledger balance is the sum of its entries, and every amount is accounted for.
"""

from __future__ import annotations

from collections import defaultdict
from contextlib import suppress
from dataclasses import replace
from datetime import date, timedelta

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from shared.domain.account import Account, Changes, Correction, due_drafts, issue, receive_payment
from shared.domain.calendar import Frequency
from shared.domain.catalogue import (
    BillingPlan,
    Catalogue,
    Fee,
    Organization,
    PaymentType,
    PricePoint,
    Product,
    SubscriptionPlan,
)
from shared.domain.credit import CreditRefused, add_correction, credit_issued, write_off
from shared.domain.dunning_visit import dun
from shared.domain.events import SubscriptionStopChanged, SubscriptionStopped
from shared.domain.invoicing import DocumentKind, Invoice, InvoiceLine, vat_parts
from shared.domain.kid import KidScheme
from shared.domain.ledger import EntryKind, LedgerEntry, VatPart, merge_vat
from shared.domain.lifecycle import (
    ChangeStop,
    PauseSubscription,
    StopRefused,
    StopSubscription,
    change_stop,
    pause,
    stop,
)
from shared.domain.money import vat_of_gross
from shared.domain.payments import MatchType, ReceivedPayment
from shared.domain.subscriptions import Subscriber, Subscription
from tests.unit.test_dunning_visit import PROCESS, Numbers

RATES = (0, 1200, 1500, 2500)
START = date(2026, 1, 1)


def catalogue(prices: dict[int, int], fee_minor: int, balance_invoice: bool = True) -> Catalogue:
    products = {f"p{r}": Product(f"p{r}", f"Product {r / 100:g} %", r,
                                 (PricePoint(Frequency.MONTHLY, date(2020, 1, 1), price),))
                for r, price in prices.items()}
    fees = (Fee(PaymentType.INVOICE, fee_minor, 2),) if fee_minor else ()
    return Catalogue(
        {"avisa": Organization("avisa", "Avisa", "NOK", kid=KidScheme(length=12, subscriber_digits=6))},
        products, {"m": BillingPlan("m", "Monthly", Frequency.MONTHLY, 14, fees=fees, dunning_process_id=PROCESS.id)},
        {"p": SubscriptionPlan("p", "Bundle", "avisa", "m", tuple(products))},
        {PROCESS.id: PROCESS if balance_invoice else replace(PROCESS, balance_invoice=None)}).check()


def per_rate(pairs: list[tuple[int, int]]) -> dict[int, int]:
    out: dict[int, int] = defaultdict(int)
    for rate, amount in pairs:
        out[rate] += amount
    return {r: a for r, a in out.items() if a}


def line_vat(lines: tuple[InvoiceLine, ...]) -> dict[int, int]:
    return per_rate([(li.vat_rate_bp, li.vat_minor) for li in lines])


def entry_vat(entries: list[LedgerEntry]) -> dict[int, int]:
    return per_rate([(p.rate_bp, p.vat_minor) for e in entries for p in e.vat])


def minus(a: dict[int, int], b: dict[int, int]) -> dict[int, int]:
    return per_rate([*a.items(), *((r, -v) for r, v in b.items())])


class Model:
    """The documents and ledger of one subscriber, and the stop date behind each credit note."""

    def __init__(self, cat: Catalogue) -> None:
        self.cat, self.numbers = cat, Numbers()
        sub = Subscription("s1", "p", "avisa", Frequency.MONTHLY, START, PaymentType.INVOICE)
        self.acc = Account(Subscriber(7, "Kari", "kari@example.no"), {"s1": sub})
        self.docs = Changes(self.acc)
        self.invoices: dict[int, Invoice] = {}
        self.delivered_until: dict[int, date | None] = {}  # credited invoice -> stop date (None: no charge)
        self.since: tuple[VatPart, ...] = ()  # charges no balance invoice has billed yet
        self.mirrored: set[int] = set()  # invoices credited with the invoice at hand (not by a dunning visit)

    def apply(self, changes: Changes, with_invoices: bool = False, goodwill: bool = False) -> None:
        """``goodwill``: credit notes by customer service, which charge nothing. Any other
        credit note charges the days before the stop it made, moved to, or (an unpaid
        invoice when the subscription ended) the stop the subscription had."""
        stops = {s.id: s.stop_date for s in changes.account.subscriptions.values()}
        stops |= {e.subscription_id: e.stop_date for e in changes.events if isinstance(e, SubscriptionStopped)}
        stops |= {e.subscription_id: e.to for e in changes.events
                  if isinstance(e, SubscriptionStopChanged) and e.to}
        for note in changes.credit_notes:
            self.delivered_until[note.invoice_number] = None if goodwill else stops.get(note.subscription_id)
            if with_invoices:
                self.mirrored.add(note.invoice_number)
        self.trace_balance_invoices(changes)
        self.docs = replace(self.docs.then(changes), account=changes.account)
        self.invoices.update({i.number: i for i in changes.invoices})
        self.acc = changes.account

    def trace_balance_invoices(self, changes: Changes) -> None:
        """A balance invoice bills, per rate, exactly the charges made since the last one
        (while a stop's balance check was pending: a check that finds too little owed and
        leaves none pending lets them go, as the debt stays unbilled)."""
        self.since = merge_vat((*self.since, *(p for e in changes.ledger if e.kind is EntryKind.CHARGE
                                                for p in e.vat)))
        for inv in changes.invoices:
            if inv.draft.kind is DocumentKind.BALANCE:
                delivered = [li for li in inv.draft.lines if li.description.startswith("Delivered")]
                assert vat_parts(delivered) == self.since
                self.since = ()
        if not changes.account.balance_checks:
            self.since = ()

    def bill(self, today: date) -> None:
        drafts = due_drafts(self.acc, self.cat, today)
        keys = {d.natural_key: self.numbers(d.organization_id, d.natural_key) for d in drafts}
        self.apply(issue(self.acc, drafts, keys, self.cat, today))


def check_documents(m: Model) -> None:
    for inv in m.invoices.values():
        assert inv.total_minor == sum(li.gross_minor for li in inv.draft.lines)
        for li in inv.draft.lines:
            if inv.draft.kind is not DocumentKind.BALANCE:  # balance lines carry the VAT as it was charged
                assert li.vat_minor == vat_of_gross(li.gross_minor, li.vat_rate_bp)
    for note in m.docs.credit_notes:
        assert note.total_minor == -sum(li.gross_minor for li in note.lines)
        credited = m.invoices[note.invoice_number].draft.lines
        assert note.vat == tuple(-p for p in vat_parts(credited))  # mirrored per rate, always
        if note.invoice_number in m.mirrored:  # and line by line where the invoice was at hand
            assert note.lines == tuple(-li for li in credited)
    for e in m.docs.ledger:
        if e.kind in (EntryKind.INVOICE, EntryKind.CREDIT_NOTE, EntryKind.CHARGE):
            assert sum(p.gross_minor for p in e.vat) == -e.amount_minor  # the VAT parts are the whole entry
            assert all(p.net_minor + p.vat_minor == p.gross_minor for p in e.vat)
        else:
            assert e.vat == ()  # payments, fees, write-offs: no supply, no VAT


def check_charges(m: Model) -> dict[int, int]:
    """Each charge is the delivered share of its invoice per rate; returns the VAT delivered."""
    charges = {e.reference: e for e in m.docs.ledger if e.kind is EntryKind.CHARGE}
    delivered: list[tuple[int, int]] = []
    for inv in m.invoices.values():
        if inv.draft.kind is DocumentKind.BALANCE:
            continue
        if inv.number not in m.acc.credited:
            delivered += [(li.vat_rate_bp, li.vat_minor) for li in inv.draft.lines]
            continue
        until = m.delivered_until[inv.number]
        charge = charges.get(str(inv.number))
        span = inv.draft.span
        assert span is not None
        days = (span[1] - span[0]).days
        d = 0 if until is None else min(max((until - span[0]).days, 0), days)
        gross = per_rate([(li.vat_rate_bp, li.gross_minor) for li in inv.draft.lines])
        if d == 0 or sum(gross.values()) * d // days <= 0:
            assert charge is None
            continue
        assert charge is not None
        got = per_rate([(p.rate_bp, p.gross_minor) for p in charge.vat])
        assert -charge.amount_minor == sum(gross.values()) * d // days  # the delivered share of the total
        if d == days:  # delivered whole: exactly the invoice
            assert entry_vat([charge]) == line_vat(inv.draft.lines)
        else:
            for rate in gross.keys() | got.keys():
                assert gross.get(rate, 0) * d // days <= got.get(rate, 0) <= gross.get(rate, 0) * d // days + 1
            assert all(p.vat_minor == vat_of_gross(p.gross_minor, p.rate_bp) for p in charge.vat)
        delivered += [(p.rate_bp, p.vat_minor) for p in charge.vat]
    return per_rate(delivered)


def check_vat(m: Model) -> None:
    check_documents(m)
    delivered = check_charges(m)
    invoiced = per_rate([(li.vat_rate_bp, li.vat_minor) for i in m.invoices.values()
                         if i.draft.kind is not DocumentKind.BALANCE for li in i.draft.lines])
    credited = per_rate([(li.vat_rate_bp, -li.vat_minor) for c in m.docs.credit_notes for li in c.lines])
    charged = entry_vat([e for e in m.docs.ledger if e.kind is EntryKind.CHARGE])
    assert minus(per_rate([*invoiced.items(), *charged.items()]), credited) == delivered
    assert entry_vat(list(m.docs.ledger)) == delivered  # the ledger says the same, per rate
    billed = per_rate([(li.vat_rate_bp, li.vat_minor) for i in m.invoices.values()
                       if i.draft.kind is DocumentKind.BALANCE for li in i.draft.lines])
    assert all(0 <= billed.get(r, 0) <= charged.get(r, 0) for r in RATES if r)  # never more than charged


def check_money(m: Model) -> None:
    entries = m.docs.ledger
    balance = m.acc.balances.get("avisa", 0)
    assert balance == sum(e.amount_minor for e in entries)
    kind = {k: sum(e.amount_minor for e in entries if e.kind is k) for k in EntryKind}
    assert kind[EntryKind.INVOICE] == -sum(i.total_minor for i in m.invoices.values()
                                           if i.draft.kind is not DocumentKind.BALANCE)
    assert kind[EntryKind.CREDIT_NOTE] == sum(c.total_minor for c in m.docs.credit_notes)
    assert kind[EntryKind.PAYMENT] == sum(p.payment.amount_minor for p in m.docs.payments)
    assert kind[EntryKind.REMINDER_FEE] == -sum(r.reminder.fee_minor for r in m.docs.reminders)
    for inv in m.invoices.values():  # a balance invoice asks for exactly the debt nothing else asked for
        if inv.draft.kind is DocumentKind.BALANCE:
            assert inv.total_minor > 0


steps = st.lists(st.one_of(
    st.tuples(st.just("days"), st.integers(1, 45)),
    st.tuples(st.just("days"), st.integers(30, 70)),
    st.tuples(st.just("pay"), st.integers(1, 150000), st.integers(0, 10)),
    st.tuples(st.just("credit"), st.integers(0, 9)),
    st.tuples(st.just("correct"), st.integers(-4000, 4000).filter(bool)),
    st.tuples(st.just("stop"), st.booleans(), st.integers(0, 50)),
    st.tuples(st.just("pause"), st.integers(20, 90)),
    st.tuples(st.just("change"), st.one_of(st.none(), st.integers(0, 40))),
    st.tuples(st.just("write_off"),),
), min_size=1, max_size=25)
prices = st.dictionaries(st.sampled_from(RATES), st.integers(10000, 90000), min_size=1, max_size=4)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(prices, st.sampled_from([0, 3900]), st.booleans(), st.booleans(), steps)
def test_vat_invoiced_less_vat_credited_is_the_vat_of_what_was_delivered_per_rate(
        price: dict[int, int], fee: int, read: bool, balance_invoice: bool,
        ops: list[tuple]) -> None:  # type: ignore[type-arg]
    """``read``: the dunning visit is given the issued invoices (as the service reads them
    for a payment stop), so its credit notes mirror them line for line; else per rate."""
    m = Model(catalogue(price, fee, balance_invoice))
    today = START
    m.bill(today)
    for n, op in enumerate(ops):
        if op[0] == "days":
            for _ in range(op[1]):
                today += timedelta(days=1)
                m.bill(today)
                m.apply(dun(m.acc, m.cat, today, m.numbers, list(m.invoices.values()) if read else ()), read)
        elif op[0] == "pay":
            payment = ReceivedPayment(f"p{n}", "avisa", "NOK", op[1], today, "ocr_giro",
                                      MatchType.EXTERNAL_IDENTIFIER, demand_no=op[2] or None)
            m.apply(receive_payment(m.acc, payment, m.cat, today))
        elif op[0] == "credit":
            open_ = sorted((i for i in m.invoices.values() if i.number not in m.acc.credited
                            and i.draft.kind is not DocumentKind.BALANCE), key=lambda i: i.number)
            if open_:
                m.apply(credit_issued(m.acc, open_[op[1] % len(open_)], "Goodwill", today, m.numbers), True, True)
        elif op[0] == "correct":
            m.apply(add_correction(m.acc, Correction(f"c{n}", "avisa", op[1], "Correction", today)))
        elif op[0] in ("stop", "pause", "change"):
            sub_id = max(m.acc.subscriptions)  # the newest: a restart after a pause, if any
            mine = [i for i in m.invoices.values() if i.draft.subscription_id == sub_id]
            with suppress(StopRefused, CreditRefused):
                if op[0] == "change":
                    to = None if op[1] is None else today + timedelta(days=op[1])
                    m.apply(change_stop(m.acc, m.cat, ChangeStop(sub_id, to, "Changed"), mine, today, m.numbers), True)
                elif op[0] == "stop":
                    command = StopSubscription(sub_id, op[1], today + timedelta(days=op[2]), None, "test")
                    m.apply(stop(m.acc, m.cat, command, mine, today, m.numbers), True)
                else:
                    paused = PauseSubscription(sub_id, today + timedelta(days=op[1]), f"{sub_id}r", None)
                    m.apply(pause(m.acc, m.cat, paused, mine, today, m.numbers), True)
        elif op[0] == "write_off":
            m.apply(write_off(m.acc, "avisa", "NOK", "test", today))
        check_vat(m)
        check_money(m)
    event(f"rates: {len(price)}")
    event(f"payment stop: {any(isinstance(e, SubscriptionStopped) and e.kind == 'payment' for e in m.docs.events)}")
    event(f"charges: {min(sum(e.kind is EntryKind.CHARGE for e in m.docs.ledger), 3)}")
    event(f"balance invoices: {sum(i.draft.kind is DocumentKind.BALANCE for i in m.invoices.values()) > 0}")
    event(f"credit notes: {min(len(m.docs.credit_notes), 3)}")
