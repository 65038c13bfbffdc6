"""Invoice timing and content, with the manual's rules (6.3 "Add subscription plan",
7.18 "Billing plan", 10.1 "How Renewal&Demands work")."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devhost.builders import newspaper
from shared.domain.account import Account, due_drafts, issue, next_drafts
from shared.domain.calendar import Frequency
from shared.domain.catalogue import PaymentType
from shared.domain.invoicing import delivered_share, due_period_indexes, prorate, vat_parts
from shared.domain.kid import KidScheme
from shared.domain.ledger import VatPart, balance, merge_vat
from shared.domain.subscriptions import Subscriber, Subscription

CAT = newspaper()
MONTHLY = CAT.billing_plans["monthly-14"]


def monthly(anchor: date, next_period: int = 0, **kw: object) -> Subscription:
    return Subscription("s1", "digital-monthly", "avisa", Frequency.MONTHLY, anchor, PaymentType.INVOICE,
                        next_period=next_period, **kw)  # type: ignore[arg-type]


def account(*subs: Subscription) -> Account:
    return Account(Subscriber(1001, "Kari Nordmann", "kari@example.no"), {s.id: s for s in subs})


def test_first_invoice_is_due_14_days_after_an_order_starting_today() -> None:
    # manual 7.18: "the due date will be the chosen number of days from subscription startdate"
    (draft,) = due_drafts(account(monthly(date(2026, 1, 5))), CAT, date(2026, 1, 5))
    assert (draft.issue_date, draft.due_date) == (date(2026, 1, 5), date(2026, 1, 19))


def test_first_invoice_for_a_start_within_the_lead_is_due_order_date_plus_lead() -> None:
    # manual 6.3: start 10 days ahead is less than the 14 days: due = registration + 14 days
    (draft,) = due_drafts(account(monthly(date(2026, 1, 15))), CAT, date(2026, 1, 5))
    assert draft.due_date == date(2026, 1, 19)


def test_first_invoice_for_a_start_beyond_the_lead_is_due_on_the_start_date() -> None:
    # manual 6.3: start 30 days ahead is more than 14 days: due = start date
    (draft,) = due_drafts(account(monthly(date(2026, 2, 4))), CAT, date(2026, 1, 5))
    assert (draft.issue_date, draft.due_date) == (date(2026, 1, 5), date(2026, 2, 4))


def test_due_days_set_the_terms_of_the_first_invoice_but_not_of_renewals() -> None:
    cat = replace(CAT, billing_plans={**CAT.billing_plans, "monthly-14": replace(MONTHLY, due_days=10)})
    (first,) = due_drafts(account(monthly(date(2026, 1, 5))), cat, date(2026, 1, 5))
    (renewal,) = due_drafts(account(monthly(date(2026, 1, 5), 1)), cat, date(2026, 1, 22))
    assert (first.due_date, renewal.due_date) == (date(2026, 1, 15), date(2026, 2, 5))


def test_renewal_invoice_is_produced_14_days_before_the_next_period_and_due_on_its_first_day() -> None:
    sub = monthly(date(2026, 1, 5), next_period=1)
    assert due_period_indexes(sub, MONTHLY, date(2026, 1, 21)) == []
    assert due_period_indexes(sub, MONTHLY, date(2026, 1, 22)) == [1]  # 5 Feb - 14 days
    (draft,) = due_drafts(account(sub), CAT, date(2026, 1, 22))
    assert draft.due_date == date(2026, 2, 5)
    assert (draft.lines[0].period_start, draft.lines[0].period_end) == (date(2026, 2, 5), date(2026, 3, 4))


def test_a_late_run_catches_up_every_missed_period_and_gives_the_payer_the_full_lead() -> None:
    sub = monthly(date(2026, 1, 5), next_period=1)
    drafts = due_drafts(account(sub), CAT, date(2026, 3, 1))
    assert [d.period_index for d in drafts] == [1, 2]
    assert all(d.due_date == date(2026, 3, 15) for d in drafts)


def test_no_invoice_for_a_period_after_the_stop_date() -> None:
    sub = monthly(date(2026, 1, 5), next_period=1, stop_date=date(2026, 2, 5))
    assert due_drafts(account(sub), CAT, date(2026, 3, 1)) == []
    assert next_drafts(account(sub), CAT) == []


def test_the_invoice_fee_is_added_from_the_second_period() -> None:
    # billing plan: invoice fee 39.00 from period 2; split over 0 % and 25 % by product value
    first = due_drafts(account(monthly(date(2026, 1, 5))), CAT, date(2026, 1, 5))[0]
    second = due_drafts(account(monthly(date(2026, 1, 5), 1)), CAT, date(2026, 1, 22))[0]
    assert first.total_minor == 29900 + 4900
    assert second.total_minor == 29900 + 4900 + 3900
    fees = [li for li in second.lines if li.description == "Fee"]
    assert sum(f.gross_minor for f in fees) == 3900
    # 39.00 split 299:49 -> 33.51 at 0 % and 5.49 at 25 % (VAT 1.10)
    assert sorted((f.vat_rate_bp, f.gross_minor, f.vat_minor) for f in fees) == [(0, 3351, 0), (2500, 549, 110)]


def test_a_future_price_applies_from_the_period_that_starts_on_or_after_it() -> None:
    avis = CAT.products["avis"]
    later = replace(avis.prices[0], valid_from=date(2026, 2, 1), amount_minor=32900)
    raised = replace(avis, prices=(*avis.prices, later))
    cat = replace(CAT, products={**CAT.products, "avis": raised})
    jan = due_drafts(account(monthly(date(2026, 1, 5))), cat, date(2026, 1, 5))[0]
    feb = due_drafts(account(monthly(date(2026, 1, 5), 1)), cat, date(2026, 1, 22))[0]
    assert (jan.lines[0].unit_price_minor, feb.lines[0].unit_price_minor) == (29900, 32900)


def test_issuing_debits_the_ledger_and_advances_the_subscription() -> None:
    acc = account(monthly(date(2026, 1, 5)))
    drafts = due_drafts(acc, CAT, date(2026, 1, 5))
    changes = issue(acc, drafts, {drafts[0].natural_key: 17}, CAT, date(2026, 1, 5))
    (invoice,) = changes.invoices
    assert invoice.number == 17 and invoice.kid == CAT.organizations["avisa"].kid.encode(1001, 1)
    assert [e.amount_minor for e in changes.ledger] == [-34800]
    assert changes.account.balances == {"avisa": -34800}
    assert changes.account.subscriptions["s1"].next_period == 1
    assert [e.type for e in changes.events] == ["InvoiceIssued"]
    assert due_drafts(changes.account, CAT, date(2026, 1, 5)) == []  # idempotent by construction


def test_demand_numbers_skip_those_whose_mod11_kid_would_need_a_dash() -> None:
    scheme = KidScheme(length=12, modulus="MOD11", subscriber_digits=6, allow_dash=False)
    cat = replace(CAT, organizations={"avisa": replace(CAT.organizations["avisa"], kid=scheme)})
    acc = account(monthly(date(2024, 1, 5)))
    drafts = due_drafts(acc, cat, date(2026, 1, 5))[:30]
    changes = issue(acc, drafts, {d.natural_key: i for i, d in enumerate(drafts, 1)}, cat, date(2026, 1, 5))
    demand_nos = [i.demand_no for i in changes.invoices]
    # 25 monthly periods from 5 Jan 2024 to 5 Jan 2026; some demand numbers are skipped
    assert len(drafts) == 25 and len(set(demand_nos)) == 25 and max(demand_nos) > 25
    assert all("-" not in i.kid for i in changes.invoices)
    assert all(scheme.decode(i.kid).demand_no == i.demand_no for i in changes.invoices)


@settings(max_examples=60)
@given(st.dates(min_value=date(2025, 1, 1), max_value=date(2027, 12, 31)),
       st.lists(st.integers(min_value=1, max_value=60), min_size=1, max_size=12))
def test_ledger_balance_always_equals_minus_what_was_invoiced(anchor: date, steps: list[int]) -> None:
    acc = account(monthly(anchor))
    today, ledger, invoiced = anchor, [], 0
    for step in steps:
        drafts = due_drafts(acc, CAT, today)
        changes = issue(acc, drafts, {d.natural_key: i for i, d in enumerate(drafts)}, CAT, today)
        acc = changes.account
        ledger += changes.ledger
        invoiced += sum(i.total_minor for i in changes.invoices)
        today = today + (date(2000, 1, 1 + step % 28) - date(2000, 1, 1))
    assert balance(ledger, "avisa") == acc.balances.get("avisa", 0) == -invoiced
    indexes = [e.seq for e in ledger]
    assert indexes == list(range(1, len(ledger) + 1))


def test_a_subscriber_with_an_invalid_organisation_number_is_refused() -> None:
    with pytest.raises(ValueError):
        Subscriber(1, "Firma AS", "post@firma.no", organization_number="123456789")
    assert Subscriber(1, "Firma AS", "post@firma.no", organization_number="974760673").organization_number


def test_a_payment_by_kid_settles_its_invoice_and_books_payment_and_ledger() -> None:
    from shared.domain.account import receive_payment
    from shared.domain.payments import MatchType, ReceivedPayment

    acc = account(monthly(date(2026, 1, 5)))
    drafts = due_drafts(acc, CAT, date(2026, 1, 5))
    acc = issue(acc, drafts, {drafts[0].natural_key: 7}, CAT, date(2026, 1, 5)).account
    assert [d.open_minor for d in acc.open_demands.values()] == [34800]
    paid = ReceivedPayment("f1.1", "avisa", "NOK", 40000, date(2026, 1, 10), "ocr_giro",
                           MatchType.EXTERNAL_IDENTIFIER, demand_no=1)
    changes = receive_payment(acc, paid, CAT, date(2026, 1, 11))
    # 400.00 pays the 348.00 invoice; 52.00 stays as credit on the ledger
    assert changes.account.open_demands == {}
    assert changes.account.balances == {"avisa": 5200}
    assert [(e.kind.value, e.amount_minor) for e in changes.ledger] == [("payment", 40000)]
    assert [e.type for e in changes.events] == ["PaymentCompleted", "InvoicePaid"]
    assert changes.payments[0].credit_minor == 5200


def test_credit_from_an_overpayment_pays_part_of_the_next_invoice_and_shows_on_it() -> None:
    # manual 7.1 ledger billing: 400.00 paid on a 348.00 invoice leaves 52.00 credit; the
    # next invoice (348.00 + 39.00 fee = 387.00) shows 52.00 paid from the balance, 335.00 due
    from shared.domain.account import receive_payment
    from shared.domain.payments import MatchType, ReceivedPayment

    acc = account(monthly(date(2026, 1, 5)))
    drafts = due_drafts(acc, CAT, date(2026, 1, 5))
    acc = issue(acc, drafts, {drafts[0].natural_key: 1}, CAT, date(2026, 1, 5)).account
    paid = ReceivedPayment("p", "avisa", "NOK", 40000, date(2026, 1, 10), "ocr_giro", MatchType.EXTERNAL_IDENTIFIER,
                           demand_no=1)
    acc = receive_payment(acc, paid, CAT, date(2026, 1, 10)).account
    drafts = due_drafts(acc, CAT, date(2026, 1, 22))
    changes = issue(acc, drafts, {drafts[0].natural_key: 2}, CAT, date(2026, 1, 22))
    (invoice,) = changes.invoices
    assert (invoice.total_minor, invoice.credit_applied_minor, invoice.amount_due_minor) == (38700, 5200, 33500)
    assert [e.amount_minor for e in changes.ledger] == [-38700]  # the full debit: the credit is on the ledger
    assert changes.account.balances == {"avisa": -33500}
    assert [d.open_minor for d in changes.account.open_demands.values()] == [33500]


# ---- VAT kept on every document (L4; prices are gross) ----------------------------------------

def test_an_invoice_and_its_ledger_entry_carry_net_and_vat_per_rate() -> None:
    acc = account(monthly(date(2026, 1, 5), 1))
    drafts = due_drafts(acc, CAT, date(2026, 1, 22))
    changes = issue(acc, drafts, {drafts[0].natural_key: 2}, CAT, date(2026, 1, 22))
    # 299.00 paper at 0 %, 49.00 app at 25 % (VAT 9.80), fee 39.00 split 33.51 / 5.49 (VAT 1.10)
    expected = (VatPart(0, 29900 + 3351, 0), VatPart(2500, 4900 + 549, 980 + 110))
    assert vat_parts(changes.invoices[0].draft.lines) == expected
    assert changes.ledger[0].vat == expected and expected[1].net_minor == 5449 - 1090
    assert next(iter(changes.account.open_demands.values())).terms.vat == expected  # for a stop without the invoice


def test_five_of_thirty_one_days_of_a_mixed_vat_invoice_are_charged_per_rate_summing_to_the_share() -> None:
    # 348.00 for 31 days, 5 delivered: 348.00 * 5 // 31 = 56.12; per rate 299.00 * 5 / 31 = 48.2258
    # and 49.00 * 5 / 31 = 7.9032, rounded down 48.22 + 7.90 = 56.12: nothing left to give out
    parts = prorate((VatPart(0, 29900, 0), VatPart(2500, 4900, 980)), 5, 31)
    assert parts == (VatPart(0, 4822, 0), VatPart(2500, 790, 158))
    assert sum(p.gross_minor for p in parts) == delivered_share(34800, date(2026, 1, 5), date(2026, 2, 5),
                                                                date(2026, 1, 10))


@given(st.lists(st.tuples(st.sampled_from([0, 1200, 1500, 2500]), st.integers(-50000, 500000)), min_size=1,
                max_size=6), st.integers(1, 400), st.integers(0, 400))
def test_a_pro_rated_charge_sums_exactly_to_the_delivered_share_and_each_rate_is_within_an_ore(
        lines: list[tuple[int, int]], days: int, delivered: int) -> None:
    parts = merge_vat(VatPart.of_gross(rate, gross) for rate, gross in lines)
    total = sum(p.gross_minor for p in parts)
    shares = {p.rate_bp: p for p in prorate(parts, delivered, days)}
    expected = total if delivered >= days else total * delivered // days
    assert sum(p.gross_minor for p in shares.values()) == expected
    for p in parts:
        got = shares[p.rate_bp].gross_minor if p.rate_bp in shares else 0
        exact_floor = p.gross_minor if delivered >= days else p.gross_minor * delivered // days
        assert exact_floor <= got <= exact_floor + (0 if delivered >= days else 1)
    assert all(s.net_minor + s.vat_minor == s.gross_minor for s in shares.values())


def test_documents_stored_before_vat_breakdowns_still_load() -> None:
    from shared.adapters.codec import load_demand, loads
    from shared.domain.account import BalanceCheck
    from shared.domain.invoicing import CreditNote
    from shared.domain.ledger import LedgerEntry

    note = loads(CreditNote, '{"number": 5, "invoice_number": 3, "demand_no": 3, "organization_id": "avisa",'
                             ' "currency": "NOK", "subscription_id": "s1", "issue_date": "2026-03-01",'
                             ' "total_minor": 38700, "reason": "Stopped"}')
    entry = loads(LedgerEntry, '{"seq": 9, "organization_id": "avisa", "currency": "NOK", "booked": "2026-03-01",'
                               ' "kind": "charge", "amount_minor": -38700, "reference": "3", "text": "Delivered"}')
    demand = load_demand('{"demand_no": 3, "invoice_number": 3, "organization_id": "avisa",'
                               ' "subscription_id": "s1", "due_date": "2026-03-05", "open_minor": 38700}')
    check = loads(BalanceCheck, '{"organization_id": "avisa", "subscription_id": "s1", "on": "2026-03-02"}')
    assert (note.lines, entry.vat, demand.terms.vat, check.charged) == ((), (), (), ())
    from shared.domain.invoicing import InvoiceLine
    old_line = loads(InvoiceLine, '{"description": "Kryssord", "quantity": 1, "unit_price_minor": 4900,'
                                  ' "vat_rate_bp": 2500, "gross_minor": 4900, "vat_minor": 980}')
    assert old_line.net_minor == 3920  # derived when read
