"""Dunning, stops and credit on the account, with the manual's worked examples
(6.4, 6.5, 6.6, 6.9, 7.5, 7.6, 7.7, 7.9, 7.10, 7.11, 7.15, 7.19). Pure: no storage."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from itertools import count

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from shared.domain.account import Account, Changes, Correction, OrderBlock, due_drafts, issue, receive_payment
from shared.domain.calendar import Frequency
from shared.domain.catalogue import (
    BillingPlan,
    Catalogue,
    DunningProcess,
    Organization,
    PaymentType,
    PricePoint,
    Product,
    SubscriptionPlan,
)
from shared.domain.credit import (
    AdditionalInvoice,
    CreditRefused,
    add_correction,
    additional_invoice,
    credit_issued,
    write_off,
)
from shared.domain.dunning import BalanceInvoiceRule, NoticeChannel, ReminderStep, StopRule
from shared.domain.dunning_visit import ROWS_PER_STEP, VISIT_ROWS, dun, next_visit, order_blocked, postpone, rows
from shared.domain.events import PaymentStopNotice, ReminderIssued
from shared.domain.invoicing import DocumentKind, Invoice, delivered_share, line
from shared.domain.kid import KidScheme
from shared.domain.ledger import EntryKind
from shared.domain.lifecycle import (
    ChangeStop,
    PauseSubscription,
    StopRefused,
    StopSubscription,
    change_stop,
    pause,
    stop,
)
from shared.domain.payments import MatchType, ReceivedPayment
from shared.domain.subscriptions import StopKind, Subscriber, Subscription

START = date(2026, 1, 1)  # monthly periods on the 1st; the first invoice is due 15 Jan
PROCESS = DunningProcess(
    "standard", "Standard", reminders=(ReminderStep(7, 10, 0), ReminderStep(5, 10, 3500)),
    stop_rule=StopRule(10, 10000), stop_notice_days=5, balance_invoice=BalanceInvoiceRule(1, 9000),
    write_off_fee_on_exact_match=True, notice_channel=NoticeChannel.SMS)


def catalogue(process: DunningProcess | None = PROCESS, **org: object) -> Catalogue:
    return Catalogue(
        {"avisa": Organization("avisa", "Avisa", "NOK", kid=KidScheme(length=12, subscriber_digits=6),
                               bank_account="86011117947", **org)},  # type: ignore[arg-type]
        {"paper": Product("paper", "Paper", 0, (PricePoint(Frequency.MONTHLY, date(2020, 1, 1), 50000),))},
        {"m": BillingPlan("m", "Monthly", Frequency.MONTHLY, 14, dunning_process_id=process.id if process else None)},
        {"p": SubscriptionPlan("p", "Paper monthly", "avisa", "m", ("paper",))},
        {process.id: process} if process else {},
    ).check()


CAT = catalogue()


class Numbers:
    """Invoice numbers by natural key, as the service's claims give them: stable."""

    def __init__(self) -> None:
        self.given: dict[str, int] = {}
        self.next: Iterator[int] = count(1)

    def __call__(self, organization_id: str, key: str) -> int:
        if key not in self.given:
            self.given[key] = next(self.next)
        return self.given[key]


def subscribed(anchor: date = START) -> Account:
    sub = Subscription("s1", "p", "avisa", Frequency.MONTHLY, anchor, PaymentType.INVOICE)
    return Account(Subscriber(7, "Kari Nordmann", "kari@example.no", phone="+47 41234567"), {"s1": sub})


def bill(acc: Account, day: date, numbers: Numbers, cat: Catalogue = CAT) -> Changes:
    drafts = due_drafts(acc, cat, day)
    return issue(acc, drafts, {d.natural_key: numbers(d.organization_id, d.natural_key) for d in drafts}, cat, day)


def pay(acc: Account, amount: int, day: date, demand_no: int | None = None, pid: str = "p1") -> Account:
    payment = ReceivedPayment(pid, "avisa", "NOK", amount, day, "ocr_giro", MatchType.EXTERNAL_IDENTIFIER,
                              demand_no=demand_no)
    return receive_payment(acc, payment, CAT, day).account


def first_invoice() -> tuple[Account, Invoice, Numbers]:
    numbers = Numbers()
    changes = bill(subscribed(), START, numbers)
    return changes.account, changes.invoices[0], numbers


def test_first_invoice_is_500_due_on_the_15th() -> None:
    _acc, inv, _n = first_invoice()
    assert (inv.total_minor, inv.draft.due_date) == (50000, date(2026, 1, 15))


def test_manual_7_9_example_1_invoice_500_paid_400_gives_a_reminder_of_100() -> None:
    acc, inv, numbers = first_invoice()
    acc = pay(acc, 40000, date(2026, 1, 10), inv.demand_no)
    changes = dun(acc, CAT, date(2026, 1, 22), numbers)  # due 15 Jan + delay 7
    (doc,) = changes.reminders
    assert (doc.reminder.amount_minor, doc.invoice_number, doc.reminder.due_date) == (10000, inv.number,
                                                                                      date(2026, 2, 1))
    assert doc.reminder.kid and doc.reminder.kid != inv.kid  # a KID of its own
    assert [e.type for e in changes.events] == ["ReminderIssued"]
    reminded = changes.events[0]
    assert isinstance(reminded, ReminderIssued)
    assert (reminded.channel, reminded.to) == ("sms", "+47 41234567")
    no_phone = replace(acc, subscriber=replace(acc.subscriber, phone=None))
    event = dun(no_phone, CAT, date(2026, 1, 22), numbers).events[0]  # manual 6.19: e-mail instead
    assert isinstance(event, ReminderIssued)
    assert (event.channel, event.to) == ("email", "kari@example.no")


def test_manual_7_9_example_2_a_credit_before_the_reminder_leaves_it_at_100_and_goes_to_the_next_invoice() -> None:
    acc, inv, numbers = first_invoice()
    acc = pay(acc, 40000, date(2026, 1, 10), inv.demand_no)
    acc = add_correction(acc, Correction("c1", "avisa", -10000, "Goodwill", date(2026, 1, 12))).account
    changes = dun(acc, CAT, date(2026, 1, 22), numbers)
    assert changes.reminders[0].reminder.amount_minor == 10000  # direct payments only lower a reminder
    nxt = bill(changes.account, date(2026, 1, 18), numbers)  # February's invoice, 14 days ahead
    (feb,) = nxt.invoices
    assert [li.gross_minor for li in feb.draft.lines] == [50000, -10000] and feb.total_minor == 40000
    assert nxt.account.corrections == ()  # invoiced, so no longer pending


def test_paying_the_reminder_kid_settles_the_original_invoice() -> None:
    acc, _inv, numbers = first_invoice()
    changes = dun(acc, CAT, date(2026, 1, 22), numbers)
    kid_demand = changes.reminders[0].reminder.demand_no
    acc = pay(changes.account, 50000, date(2026, 1, 25), kid_demand)
    assert acc.open_demands == {} and acc.balances["avisa"] == 0


def test_manual_7_19_reminder_2_five_days_after_reminder_1_falls_due_and_the_fee_accumulates() -> None:
    acc, _inv, numbers = first_invoice()
    acc = dun(acc, CAT, date(2026, 1, 22), numbers).account  # reminder 1 due 1 Feb
    assert next_visit(acc, CAT, date(2026, 1, 22)) == date(2026, 2, 6)
    assert dun(acc, CAT, date(2026, 2, 5), numbers).empty
    second = dun(acc, CAT, date(2026, 2, 6), numbers)
    (doc,) = second.reminders
    assert (doc.reminder.step, doc.reminder.amount_minor, doc.reminder.fee_minor) == (2, 53500, 3500)
    assert [e.kind for e in second.ledger] == [EntryKind.REMINDER_FEE] and second.ledger[0].amount_minor == -3500


def test_the_same_day_twice_issues_one_reminder() -> None:
    acc, _inv, numbers = first_invoice()
    once = dun(acc, CAT, date(2026, 1, 22), numbers)
    assert dun(once.account, CAT, date(2026, 1, 22), numbers).empty


def test_write_off_unpaid_reminder_fee_on_exact_match() -> None:
    acc, inv, numbers = first_invoice()
    acc = dun(acc, CAT, date(2026, 1, 22), numbers).account
    acc = dun(acc, CAT, date(2026, 2, 6), numbers).account  # fee 35 on reminder 2
    acc = pay(acc, 50000, date(2026, 2, 8), inv.demand_no)  # the invoice's own KID, its exact amount
    assert acc.open_demands == {} and acc.balances["avisa"] == 0
    without = replace(PROCESS, write_off_fee_on_exact_match=False)
    cat = catalogue(without)
    acc2, inv2, n2 = first_invoice()
    acc2 = dun(dun(acc2, cat, date(2026, 1, 22), n2).account, cat, date(2026, 2, 6), n2).account
    acc2 = receive_payment(acc2, ReceivedPayment("p", "avisa", "NOK", 50000, date(2026, 2, 8), "ocr_giro",
                                                 MatchType.EXTERNAL_IDENTIFIER, demand_no=inv2.demand_no),
                           cat, date(2026, 2, 8)).account
    assert acc2.balances["avisa"] == -3500 and sum(d.open_minor for d in acc2.open_demands.values()) == 3500


def test_postponed_reminder_waits_for_its_new_date() -> None:
    acc, inv, numbers = first_invoice()
    acc = postpone(acc, inv.demand_no, date(2026, 1, 30), "Customer is travelling", date(2026, 1, 20)).account
    assert dun(acc, CAT, date(2026, 1, 29), numbers).empty
    assert len(dun(acc, CAT, date(2026, 1, 30), numbers).reminders) == 1


def dunned_to_stop() -> tuple[Account, Invoice, Numbers]:
    """Unpaid January invoice: reminder 1 on 22 Jan (due 1 Feb), reminder 2 on 6 Feb (due 16 Feb);
    February's invoice issued 18 Jan is unpaid too."""
    acc, inv, numbers = first_invoice()
    acc = dun(acc, CAT, date(2026, 1, 22), numbers).account
    acc = bill(acc, date(2026, 1, 18), numbers).account
    for day in (date(2026, 2, 6), date(2026, 2, 8)):
        acc = dun(acc, CAT, day, numbers).account
    return acc, inv, numbers


def test_manual_7_7_stop_rule_delay_10_threshold_100_stops_credits_and_charges_what_was_delivered() -> None:
    acc, _inv, numbers = dunned_to_stop()
    # reminder 2 of January's invoice falls due 16 Feb; + delay 10 = 26 Feb. Notice 5 days ahead.
    notice = dun(acc, CAT, date(2026, 2, 21), numbers)
    assert [e.type for e in notice.events] == ["PaymentStopNotice"]
    noticed = notice.events[0]
    assert isinstance(noticed, PaymentStopNotice)
    assert noticed.channel == "sms" and noticed.stop_date.isoformat() == "2026-02-26"
    acc = dun(notice.account, CAT, date(2026, 2, 23), numbers).account  # February's reminder 2, fee 35
    assert dun(acc, CAT, date(2026, 2, 25), numbers).empty
    stopped = dun(acc, CAT, date(2026, 2, 26), numbers)
    sub = stopped.account.subscriptions["s1"]
    assert (sub.stop_date, sub.stop_kind) == (date(2026, 2, 26), StopKind.PAYMENT)
    # both open invoices credited in full; January delivered whole, February 25 of 28 days
    assert sorted(c.total_minor for c in stopped.credit_notes) == [50000, 50000]
    charges = sorted(-e.amount_minor for e in stopped.ledger if e.kind is EntryKind.CHARGE)
    assert charges == sorted([50000, 50000 * 25 // 28])
    assert stopped.account.open_demands == {}
    owed = -stopped.account.balances["avisa"]
    assert owed == 50000 + 50000 * 25 // 28 + 2 * 3500  # delivered days and two reminder fees
    # manual 7.11: a balance invoice one day after the stop, since 90 kr or more is owed
    balance = dun(stopped.account, CAT, date(2026, 2, 27), numbers)
    (bal,) = balance.invoices
    assert (bal.draft.kind, bal.total_minor, bal.draft.due_date) == (DocumentKind.BALANCE, owed, date(2026, 3, 13))
    # it bills the charges per VAT rate (the paper is 0 %) and the reminder fees, which carry no VAT
    assert [(li.description, li.vat_rate_bp, li.gross_minor, li.vat_minor) for li in bal.draft.lines] == [
        ("Delivered before the stop, VAT 0 %", 0, 50000 + 50000 * 25 // 28, 0),
        ("Reminder fees and other debt", 0, 2 * 3500, 0)]
    assert [c.lines[0].gross_minor for c in stopped.credit_notes] == [-50000, -50000]  # the invoices, negated
    assert balance.ledger == ()  # the debt is on the ledger already
    assert balance.account.unbilled_debt("avisa") == 0
    assert dun(balance.account, CAT, date(2026, 2, 27), numbers).empty


def test_the_stop_rule_spares_a_subscriber_under_the_threshold() -> None:
    acc, _inv, numbers = dunned_to_stop()
    acc = pay(acc, 50000 + 50000 + 3500 - 9999, date(2026, 2, 20), pid="most")
    assert -acc.balances["avisa"] == 9999
    assert dun(acc, CAT, date(2026, 2, 26), numbers).account.subscriptions["s1"].stop_date is None


def test_no_dunning_process_no_reminders_and_no_stop() -> None:
    cat = catalogue(None)
    numbers = Numbers()
    acc = bill(subscribed(), START, numbers, cat).account
    for day in range(0, 200, 3):
        assert dun(acc, cat, START + timedelta(days=day), numbers).empty


# ---- manual 6.4: the five stop cases ---------------------------------------------------------

def test_6_4_case_1_stop_before_the_invoice_is_issued_runs_to_the_end_date() -> None:
    acc, inv, numbers = first_invoice()
    acc = pay(acc, 50000, date(2026, 1, 10), inv.demand_no)
    changes = stop(acc, CAT, StopSubscription("s1", True, None, None, "Moving abroad"),
                   [inv], date(2026, 1, 10), numbers)
    assert changes.account.subscriptions["s1"].stop_date == date(2026, 2, 1)
    assert changes.credit_notes == () and bill(changes.account, date(2026, 1, 20), numbers).invoices == ()


def test_6_4_case_1_a_stop_on_a_date_in_a_period_not_yet_invoiced_invoices_the_delivered_days_only() -> None:
    acc, inv, numbers = first_invoice()
    acc = pay(acc, 50000, date(2026, 1, 10), inv.demand_no)
    acc = stop(acc, CAT, StopSubscription("s1", False, date(2026, 2, 11), None, "Moving"),
               [inv], date(2026, 1, 10), numbers).account
    billed = bill(acc, date(2026, 1, 18), numbers)
    (feb,) = billed.invoices  # February, 10 of 28 days delivered
    assert (feb.total_minor, feb.draft.lines[0].period_end) == (50000 * 10 // 28, date(2026, 2, 10))
    assert bill(billed.account, date(2026, 2, 18), numbers).invoices == ()  # nothing after the stop


def test_an_invoice_of_delivered_days_unpaid_when_the_subscription_ends_is_credited_then_not_reminded() -> None:
    acc, inv, numbers = first_invoice()
    acc = pay(acc, 50000, date(2026, 1, 10), inv.demand_no)
    acc = stop(acc, CAT, StopSubscription("s1", False, date(2026, 2, 11), None, "Moving"),
               [inv], date(2026, 1, 10), numbers).account
    feb = bill(acc, date(2026, 1, 18), numbers)  # 1-10 Feb delivered: 500.00 * 10 // 28 = 178.57, due 1 Feb
    acc, seen = feb.account, Changes(feb.account)
    for day in range(31, 80):  # 1 Feb to 20 Mar
        seen = seen.then(dun(acc, CAT, date(2026, 1, 1) + timedelta(days=day), numbers))
        acc = seen.account
    assert [(r.reminder.step, r.reminder.produced) for r in seen.reminders] == [(1, date(2026, 2, 8))]  # not after
    (note,) = seen.credit_notes
    assert (note.invoice_number, note.issue_date, note.total_minor) == (feb.invoices[0].number, date(2026, 2, 11),
                                                                       50000 * 10 // 28)
    assert [(e.kind, e.amount_minor) for e in seen.ledger] == [(EntryKind.CREDIT_NOTE, 17857),
                                                               (EntryKind.CHARGE, -17857)]  # delivered whole
    assert [(i.draft.kind, i.draft.issue_date, i.total_minor) for i in seen.invoices] == [
        (DocumentKind.BALANCE, date(2026, 2, 12), 17857)]
    assert [e.type for e in seen.events if e.type == "PaymentStopNotice"] == []


def test_6_4_case_2_stop_when_issued_not_paid_credits_the_invoice() -> None:
    acc, inv, numbers = first_invoice()
    acc = pay(acc, 50000, date(2026, 1, 10), inv.demand_no)
    feb = bill(acc, date(2026, 1, 18), numbers)
    changes = stop(feb.account, CAT, StopSubscription("s1", True, None, None, "Too expensive"), [inv, *feb.invoices],
                   date(2026, 1, 20), numbers)
    (note,) = changes.credit_notes
    assert (note.invoice_number, note.total_minor) == (feb.invoices[0].number, 50000)
    assert changes.account.subscriptions["s1"].stop_date == date(2026, 2, 1)
    assert changes.account.open_demands == {} and changes.account.balances["avisa"] == 0


def test_6_4_case_2_the_unpaid_current_invoice_is_credited_its_days_charged_and_billed_not_reminded() -> None:
    acc, inv, numbers = first_invoice()
    acc = dun(acc, CAT, date(2026, 1, 22), numbers).account  # reminder 1 of January, due 1 Feb
    feb = bill(acc, date(2026, 1, 18), numbers)
    changes = stop(feb.account, CAT, StopSubscription("s1", True, None, None, "Too expensive"), [inv, *feb.invoices],
                   date(2026, 1, 25), numbers)
    assert changes.account.subscriptions["s1"].stop_date == date(2026, 2, 1)
    assert [(c.invoice_number, c.total_minor) for c in changes.credit_notes] == [(inv.number, 50000),
                                                                                 (feb.invoices[0].number, 50000)]
    assert [(e.kind, e.amount_minor) for e in changes.ledger] == [
        (EntryKind.CREDIT_NOTE, 50000), (EntryKind.CHARGE, -50000), (EntryKind.CREDIT_NOTE, 50000)]
    acc = changes.account
    assert acc.open_demands == {} and acc.unbilled_debt("avisa") == 50000  # January, delivered, owed
    issued: list[Invoice] = []
    for day in range(25, 60):  # no reminder 2 of January, no stop notice: nothing is dunned
        visit = dun(acc, CAT, date(2026, 1, 1) + timedelta(days=day), numbers)
        assert visit.reminders == () and [e.type for e in visit.events] in ([], ["InvoiceIssued"])
        acc, issued = visit.account, issued + list(visit.invoices)
    assert [(i.draft.kind, i.draft.issue_date, i.total_minor) for i in issued] == [
        (DocumentKind.BALANCE, date(2026, 2, 2), 50000)]  # a day after the stop


def test_without_a_balance_invoice_the_unpaid_current_invoice_stays_open_to_ask_for_the_debt() -> None:
    cat = catalogue(replace(PROCESS, balance_invoice=None))
    acc, inv, numbers = first_invoice()
    changes = stop(acc, cat, StopSubscription("s1", True, None, None, "Too expensive"),
                   [inv], date(2026, 1, 25), numbers)
    assert changes.credit_notes == () and list(changes.account.open_demands) == [inv.demand_no]


def test_a_stop_on_a_later_date_leaves_invoices_of_periods_not_begun_to_be_paid() -> None:
    acc, inv, numbers = first_invoice()
    acc = pay(acc, 50000, date(2026, 1, 10), inv.demand_no)
    feb = bill(acc, date(2026, 1, 18), numbers)  # February, not begun, unpaid
    changes = stop(feb.account, CAT, StopSubscription("s1", False, date(2026, 3, 1), None, "Moving"),
                   [inv, *feb.invoices],
                   date(2026, 1, 20), numbers)
    assert changes.credit_notes == () and list(changes.account.open_demands) == [feb.invoices[0].demand_no]


def test_6_4_case_3_stop_when_issued_and_paid_runs_to_the_end_of_the_paid_period() -> None:
    acc, inv, numbers = first_invoice()
    acc = pay(acc, 50000, date(2026, 1, 10), inv.demand_no)
    feb = bill(acc, date(2026, 1, 18), numbers)
    acc = pay(feb.account, 50000, date(2026, 1, 19), feb.invoices[0].demand_no, pid="p2")
    changes = stop(acc, CAT, StopSubscription("s1", True, None, None, "Too expensive"),
                   [inv, *feb.invoices], date(2026, 1, 20),
                   numbers)
    assert changes.credit_notes == () and changes.account.subscriptions["s1"].stop_date == date(2026, 3, 1)


def test_6_4_a_stop_mid_period_credits_the_paid_invoice_and_charges_the_delivered_days() -> None:
    acc, inv, numbers = first_invoice()
    acc = pay(acc, 50000, date(2026, 1, 10), inv.demand_no)
    changes = stop(acc, CAT, StopSubscription("s1", False, date(2026, 1, 11), None, "Deceased"),
                   [inv], date(2026, 1, 10), numbers)
    assert [c.total_minor for c in changes.credit_notes] == [50000]
    assert [e.amount_minor for e in changes.ledger if e.kind is EntryKind.CHARGE] == [-(50000 * 10 // 31)]
    assert changes.account.balances["avisa"] == 50000 - 50000 * 10 // 31  # credit for 21 undelivered days


def test_6_4_case_4_stop_when_the_invoice_was_credited_credits_nothing_more() -> None:
    acc, inv, numbers = first_invoice()
    acc = credit_issued(acc, inv, "Wrong price", date(2026, 1, 5), numbers).account
    changes = stop(acc, CAT, StopSubscription("s1", False, START, None, "Never wanted it"),
                   [inv], date(2026, 1, 1), numbers)
    assert changes.credit_notes == () and changes.account.subscriptions["s1"].stop_date == START


def test_6_4_case_5_stop_after_the_end_date_takes_no_action() -> None:
    acc, inv, numbers = first_invoice()
    acc = stop(acc, CAT, StopSubscription("s1", True, None, None, "Bye"), [inv], date(2026, 1, 10), numbers).account
    with pytest.raises(StopRefused, match="no action"):
        stop(acc, CAT, StopSubscription("s1", True, None, None, "Bye again"), [inv], date(2026, 2, 3), numbers)


def test_6_13_stop_codes_when_configured_replace_the_free_text() -> None:
    cat = catalogue(stop_codes=("price", "moved"))
    acc, inv, numbers = first_invoice()
    with pytest.raises(StopRefused, match="one of price, moved"):
        stop(acc, cat, StopSubscription("s1", True, None, "angry", ""), [inv], date(2026, 1, 10), numbers)
    changes = stop(acc, cat, StopSubscription("s1", True, None, "moved", ""), [inv], date(2026, 1, 10), numbers)
    assert changes.account.subscriptions["s1"].stop_code == "moved"
    with pytest.raises(StopRefused, match="needs a reason"):
        stop(acc, CAT, StopSubscription("s1", True, None, None, " "), [inv], date(2026, 1, 10), numbers)


def test_6_5_change_or_remove_a_future_stop_needs_a_reason() -> None:
    acc, inv, numbers = first_invoice()
    feb = bill(acc, date(2026, 1, 18), numbers)
    acc = stop(feb.account, CAT, StopSubscription("s1", True, None, None, "Price"),
               [inv, *feb.invoices], date(2026, 1, 20),
               numbers).account
    with pytest.raises(StopRefused, match="reason"):
        change_stop(acc, CAT, ChangeStop("s1", None, ""), [inv, *feb.invoices], date(2026, 1, 21), numbers)
    removed = change_stop(acc, CAT, ChangeStop("s1", None, "Changed her mind"),
                          [inv, *feb.invoices], date(2026, 1, 21), numbers)
    sub = removed.account.subscriptions["s1"]
    assert sub.stop_date is None and sub.next_period == 2  # February stays credited: delivered without pay
    assert bill(removed.account, date(2026, 2, 15), numbers).invoices[0].draft.period_index == 2


def test_6_6_pause_credits_the_paused_periods_and_restarts_by_itself() -> None:
    acc, inv, numbers = first_invoice()
    acc = pay(acc, 50000, date(2026, 1, 10), inv.demand_no)
    feb = bill(acc, date(2026, 1, 18), numbers)
    acc = pay(feb.account, 50000, date(2026, 1, 19), feb.invoices[0].demand_no, pid="p2")
    paused = pause(acc, CAT, PauseSubscription("s1", date(2026, 4, 1), "s1r", None),
                   [inv, *feb.invoices], date(2026, 1, 20), numbers)
    assert paused.account.subscriptions["s1"].stop_date == date(2026, 2, 1)
    assert [c.total_minor for c in paused.credit_notes] == [50000]  # February paid, then paused: money back
    restart = paused.account.subscriptions["s1r"]
    assert (restart.anchor, restart.resumes) == (date(2026, 4, 1), "s1")
    assert bill(paused.account, date(2026, 3, 17), numbers).invoices == ()
    april = bill(paused.account, date(2026, 3, 18), numbers).invoices  # 14 days ahead, like a renewal
    assert [(i.draft.subscription_id, i.total_minor, i.credit_applied_minor) for i in april] == [
        ("s1r", 50000, 50000)]  # the credit from February pays April


def test_7_15_credit_note_on_a_paid_invoice_is_deducted_from_the_next_invoice() -> None:
    acc, inv, numbers = first_invoice()
    acc = pay(acc, 50000, date(2026, 1, 10), inv.demand_no)
    credited = credit_issued(acc, inv, "Delivery failed", date(2026, 1, 12), numbers)
    assert credited.credit_notes[0].total_minor == 50000 and credited.account.balances["avisa"] == 50000
    feb = bill(credited.account, date(2026, 1, 18), numbers).invoices[0]
    assert (feb.credit_applied_minor, feb.amount_due_minor) == (50000, 0)
    with pytest.raises(CreditRefused, match="already"):
        credit_issued(credited.account, inv, "again", date(2026, 1, 12), numbers)


def test_7_15_credit_note_on_an_unpaid_invoice_zeroes_it() -> None:
    acc, inv, numbers = first_invoice()
    credited = credit_issued(acc, inv, "Wrong", date(2026, 1, 12), numbers)
    assert credited.account.open_demands == {} and credited.account.balances["avisa"] == 0
    assert dun(credited.account, CAT, date(2026, 2, 1), numbers).empty  # nothing left to remind


def test_7_6_write_off_clears_overdue_demands_and_the_balance_and_is_idempotent() -> None:
    acc, _inv, numbers = dunned_to_stop()
    acc = dun(acc, CAT, date(2026, 2, 26), numbers).account  # stopped; debt on the ledger
    acc = dun(acc, CAT, date(2026, 2, 27), numbers).account  # balance invoice
    written = write_off(acc, "avisa", "NOK", "Uncollectable", date(2026, 5, 1))
    assert written.account.balances["avisa"] == 0 and written.account.open_demands == {}
    assert write_off(written.account, "avisa", "NOK", "Uncollectable", date(2026, 5, 1)).empty


def test_7_10_additional_invoice_with_free_lines_is_issued_at_once() -> None:
    numbers = Numbers()
    bag = AdditionalInvoice("avisa", (line("Tote bag", 2, 14900, 2500),), "bag-1", 14)
    changes = additional_invoice(subscribed(), CAT, bag, date(2026, 3, 3), numbers)
    (inv,) = changes.invoices
    assert (inv.total_minor, inv.draft.vat_minor, inv.draft.due_date) == (29800, 5960, date(2026, 3, 17))
    assert changes.account.balances["avisa"] == -29800 and changes.account.subscriptions["s1"].next_period == 0


def test_6_9_order_blockage_at_the_threshold_or_by_hand() -> None:
    cat = catalogue(order_blockage_minor=50000)
    acc, _inv, _numbers = first_invoice()
    assert order_blocked(acc, cat, "avisa") is not None  # owes 500, the threshold
    assert order_blocked(pay(acc, 1, date(2026, 1, 2)), cat, "avisa") is None
    blocked = replace(subscribed(), order_blocks={"avisa": OrderBlock("Bad credit check", date(2026, 1, 1))})
    assert "Bad credit check" in (order_blocked(blocked, CAT, "avisa") or "")


# ---- property: money is never created or lost ----------------------------------------------

ops = st.lists(st.one_of(
    st.tuples(st.just("days"), st.integers(1, 60)),
    st.tuples(st.just("days"), st.integers(20, 60)),
    st.tuples(st.just("pay"), st.integers(1, 60000), st.integers(0, 12)),
    st.tuples(st.just("credit"), st.integers(0, 5)),
    st.tuples(st.just("correct"), st.integers(-20000, 20000).filter(bool)),
    st.tuples(st.just("stop"), st.integers(0, 40)),
    st.tuples(st.just("write_off"),),
), min_size=1, max_size=30)


@dataclass
class Books:
    """What the property's operations did: the account on ``today`` and every document."""

    acc: Account
    today: date
    numbers: Numbers
    docs: Changes
    invoices: dict[int, Invoice] = field(default_factory=dict)
    stopped: bool = False

    def apply(self, changes: Changes) -> None:
        self.docs = replace(self.docs.then(changes), account=changes.account)
        self.invoices.update({i.number: i for i in changes.invoices})
        self.acc = changes.account


def operate(b: Books, n: int, op: tuple) -> None:  # type: ignore[type-arg]
    """One operation of the property: days pass (billed and dunned), a payment, a credit
    note, a correction, a stop or a write-off."""
    if op[0] == "days":
        for _ in range(op[1]):
            b.today += timedelta(days=1)
            b.apply(bill(b.acc, b.today, b.numbers))
            b.apply(dun(b.acc, CAT, b.today, b.numbers))
    elif op[0] == "pay":
        payment = ReceivedPayment(f"p{n}", "avisa", "NOK", op[1], b.today, "ocr_giro", MatchType.EXTERNAL_IDENTIFIER,
                                  demand_no=op[2] or None)
        b.apply(receive_payment(b.acc, payment, CAT, b.today))
    elif op[0] == "credit":
        open_ = sorted((i for i in b.invoices.values() if i.number not in b.acc.credited
                       and i.draft.kind is DocumentKind.SUBSCRIPTION), key=lambda i: i.number)
        if open_:
            inv = open_[op[1] % len(open_)]
            b.apply(credit_issued(b.acc, inv, "test", b.today, b.numbers))
    elif op[0] == "correct":
        b.apply(add_correction(b.acc, Correction(f"c{n}", "avisa", op[1], "Correction", b.today)))
    elif op[0] == "stop" and not b.stopped:
        with suppress(StopRefused):  # payment-stopped already: case 5, no action
            b.apply(stop(b.acc, CAT, StopSubscription("s1", False, b.today + timedelta(days=op[1]), None, "test"),
                         list(b.invoices.values()), b.today, b.numbers))
        b.stopped = True
    elif op[0] == "write_off":
        b.apply(write_off(b.acc, "avisa", "NOK", "test", b.today))


def check_the_ledger(b: Books) -> None:
    acc, docs, invoices = b.acc, b.docs, b.invoices
    entries = docs.ledger
    balance = acc.balances.get("avisa", 0)
    assert balance == sum(e.amount_minor for e in entries)  # the balance is the sum of its entries
    by_kind = {k: sum(e.amount_minor for e in entries if e.kind is k) for k in EntryKind}
    assert by_kind[EntryKind.INVOICE] == -sum(i.total_minor for i in invoices.values()
                                              if i.draft.kind is not DocumentKind.BALANCE)
    assert by_kind[EntryKind.CREDIT_NOTE] == sum(c.total_minor for c in docs.credit_notes)
    assert by_kind[EntryKind.REMINDER_FEE] == -sum(r.reminder.fee_minor for r in docs.reminders)
    assert by_kind[EntryKind.PAYMENT] == sum(p.payment.amount_minor for p in docs.payments)
    for d in acc.open_demands.values():  # every open demand asks for what its invoice and reminders did
        assert 0 < d.open_minor <= d.terms.amount_due_minor + d.fees_minor
    if not any(s.stop_kind is StopKind.PAYMENT for s in acc.subscriptions.values()) and not by_kind[
            EntryKind.CHARGE]:  # only a stop leaves debt no invoice or reminder asks for
        assert acc.unbilled_debt("avisa") == 0


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops)
def test_the_ledger_matches_invoices_reminders_credit_notes_and_stops(steps: list[tuple]) -> None:  # type: ignore[type-arg]
    acc = subscribed()
    books = Books(acc, START, Numbers(), Changes(acc))
    books.apply(bill(acc, START, books.numbers))
    for n, op in enumerate(steps):
        operate(books, n, op)
        event(f"reminders: {min(len(books.docs.reminders), 3)}, payment stop: "
              f"{any(s.stop_kind is StopKind.PAYMENT for s in books.acc.subscriptions.values())}")
        check_the_ledger(books)


def test_a_visit_is_done_in_parts_that_fit_a_transaction_and_each_part_goes_on_where_the_last_stopped() -> None:
    numbers = Numbers()
    acc = subscribed()
    for month in range(25):  # two years unpaid, invoiced late in one go: 25 open invoices
        acc = bill(acc, date(2026, 1, 1) + timedelta(days=31 * month), numbers).account
    day = date(2028, 3, 1)
    first = dun(acc, CAT, day, numbers)
    # a fee-free reminder writes 3 rows (reminder, demand, event): 19 * 3 = 57 fit in 60
    assert len(first.reminders) == 19 and rows(first) <= VISIT_ROWS < rows(first) + ROWS_PER_STEP
    assert next_visit(first.account, CAT, day) == day + timedelta(days=1)  # had the worker stopped there
    second = dun(first.account, CAT, day, numbers)
    assert len(second.reminders) == 6
    assert dun(second.account, CAT, day, numbers).empty


def test_25_invoices_unpaid_when_a_stopped_subscription_ends_are_credited_in_parts_and_billed_once() -> None:
    numbers = Numbers()
    acc = subscribed()
    for month in range(25):  # 25 open invoices, January 2026 to January 2028
        acc = bill(acc, date(2026, 1, 1) + timedelta(days=31 * month), numbers).account
    end = date(2028, 2, 1)
    acc = acc.with_subscription(replace(acc.subscriptions["s1"], stop_date=end, stop_kind=StopKind.CUSTOMER))
    parts = [dun(acc, CAT, end, numbers)]
    while not parts[-1].empty:
        assert rows(parts[-1]) <= VISIT_ROWS  # each part fits a transaction
        parts.append(dun(parts[-1].account, CAT, end, numbers))
    done = parts[-1].account
    assert len(parts) > 2 and sum(len(p.credit_notes) for p in parts) == 25 and done.open_demands == {}
    assert all(p.reminders == () for p in parts)  # none reminded while the parts go on
    assert done.unbilled_debt("avisa") == 25 * 50000 and sum(c.charged[0].gross_minor for c in
                                                             done.balance_checks) == 25 * 50000
    balance = dun(done, CAT, end + timedelta(days=1), numbers).invoices  # one, of every charge's VAT
    assert [[(li.vat_rate_bp, li.gross_minor) for li in b.draft.lines] for b in balance] == [[(0, 25 * 50000)]]


@given(st.integers(0, 10**9), st.dates(date(2020, 1, 1), date(2030, 1, 1)), st.integers(1, 400),
       st.integers(-50, 450), st.integers(0, 60))
def test_the_delivered_share_of_an_invoice_is_never_more_than_it_and_grows_with_the_days(
        total: int, start: date, days: int, offset: int, more: int) -> None:
    end, stop_on = start + timedelta(days=days), start + timedelta(days=offset)
    share = delivered_share(total, start, end, stop_on)
    assert 0 <= share <= total
    assert delivered_share(total, start, end, start) == 0 and delivered_share(total, start, end, end) == total
    assert share <= delivered_share(total, start, end, stop_on + timedelta(days=more))
