"""The dunning run against Azurite, through the timer's plan, the bus and the worker
function: reminders, notices, payment stop and balance invoice (manual 7.7, 7.9,
7.11, 7.19), idempotent, and a year in one subscriber's life."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date, timedelta

import pytest
from dateutil.relativedelta import relativedelta

from devhost.mailbox import Mailbox
from functions.notification_worker import handle as notify
from functions.run_worker import handle as work
from shared import bootstrap
from shared.adapters.bus import EVENTS, NOTICES, RUN_WORK, BusMessage, event_of
from shared.adapters.notify import CONTAINER
from shared.domain.demands import OpenDemand
from shared.domain.events import (
    CreditNoteIssued,
    Event,
    InvoiceIssued,
    InvoicePaid,
    PaymentCompleted,
    PaymentStopNotice,
    ReminderIssued,
    SubscriptionCreated,
    SubscriptionStopped,
)
from shared.domain.import_report import Outcome
from shared.domain.invoicing import DocumentKind
from shared.domain.ledger import EntryKind
from shared.domain.subscriptions import StopKind
from shared.formats import ocr_giro
from shared.service import payments_in
from shared.service.billing import start_invoice_run
from shared.service.context import Context
from shared.service.dunning import DunningResult, dun_subscribers, start_dunning_run
from shared.service.orders import place_order
from shared.service.queries import find_by_kid
from tests.conftest import oslo_morning
from tests.fixtures import order, received


def drain(ctx: Context, queue_name: str, handler) -> list:  # type: ignore[no-untyped-def,type-arg]
    results = []
    while batch := received(ctx, queue_name):
        results += [handler(item.encode().encode()) for item in batch]
    return results


def day(ctx: Context, tenant: str, on: date) -> list:  # type: ignore[type-arg]
    """What the timers and workers do on one day: invoice run, then dunning run, then notices."""
    ctx.clock.set(oslo_morning(on))  # type: ignore[attr-defined]
    start_invoice_run(ctx, tenant)
    drain(ctx, RUN_WORK, work)
    start_dunning_run(ctx, tenant)
    done = drain(ctx, RUN_WORK, work)
    drain(ctx, NOTICES, notify)
    return done


def published(ctx: Context, tenant: str) -> list[BusMessage]:
    """The tenant's messages on the events queue, taken off it, in the order they were sent."""
    mine = []
    while batch := received(ctx, EVENTS):
        mine += [m for m in batch if m.body["tenant"] == tenant]
    return mine


def pay_kid(ctx: Context, tenant: str, kid: str, amount: int, on: date) -> None:
    text = ocr_giro.transmission([(kid, amount)], on, number=f"{on:%y%m%d}1", account="86011117947")
    result = payments_in.import_bank_file(ctx, tenant, f"ocr-{on}.txt", text.encode())
    assert result.count(Outcome.BOOKED) == 1, result


@pytest.mark.fakes
def test_a_renewal_reminded_by_cadence_and_a_first_invoice_by_the_dunning_index(ctx: Context, shop: str) -> None:
    first = place_order(ctx, order(shop, 1))  # 5 Jan, due 19 Jan: indexed for 26 Jan
    start = date(2026, 1, 5)
    reminded = {}
    for n in range(0, 40):
        on = start + timedelta(days=n)
        for result in day(ctx, shop, on):
            if isinstance(result, DunningResult) and result.reminders:
                reminded[on] = result.reminders
    # the first invoice: 19 Jan + 7 = 26 Jan; the renewal due 5 Feb (by cadence): 12 Feb;
    # the first invoice's second reminder: 5 Feb (due of reminder 1) + 5 = 10 Feb
    assert reminded == {date(2026, 1, 26): 1, date(2026, 2, 10): 1, date(2026, 2, 12): 1}
    history = ctx.accounts.documents(shop, first.subscriber_no)
    assert [(r.reminder.step, r.reminder.amount_minor) for r in history.reminders] == [
        (1, 34800), (2, 34800 + 3500), (1, 38700)]
    found = find_by_kid(ctx, shop, history.reminders[1].reminder.kid)  # customer service looks a reminder up
    assert found["reminder"]["invoice_number"] == history.invoices[0].number


@pytest.mark.fakes
def test_two_runs_and_a_redelivered_message_for_one_day_remind_once(ctx: Context, shop: str) -> None:
    placed = place_order(ctx, order(shop, 1))
    ctx.clock.set(oslo_morning(date(2026, 1, 26)))  # type: ignore[attr-defined]
    assert start_dunning_run(ctx, shop).subscribers == 1
    assert start_dunning_run(ctx, shop).subscribers == 0  # the same date again: nothing planned
    (once,) = drain(ctx, RUN_WORK, work)
    again = dun_subscribers(ctx, shop, date(2026, 1, 26), [placed.subscriber_no])  # the message redelivered
    assert (once.reminders, again.reminders) == (1, 0)
    assert len(ctx.accounts.documents(shop, placed.subscriber_no).reminders) == 1


def test_a_reminder_notice_is_an_sms_file_and_an_email_without_a_phone(ctx: Context, shop: str,
                                                                        mailbox: Mailbox) -> None:
    place_order(ctx, replace(order(shop, 1), phone="+47 41234567"))  # the process sends SMS
    place_order(ctx, order(shop, 2))  # no phone number: e-mail instead (manual 6.19)
    day(ctx, shop, date(2026, 1, 26))
    container = bootstrap.blob_service().get_container_client(CONTAINER)
    (name,) = [b.name for b in container.list_blobs(name_starts_with=f"{shop}/")]
    sms = json.loads(container.download_blob(name).readall())
    assert sms["to"] == "+47 41234567" and "348,00 kr" in sms["text"] and "sig=" in sms["text"]  # a signed link
    reminder = next(m for m in mailbox.mails(shop) if "Purring" in m["Subject"])
    assert reminder["To"] == "kari2@example.no"
    assert [p.get_filename() for p in reminder.iter_attachments()] == ["rem-00000002.pdf"]


KEYS: dict[type[Event], tuple[str, ...]] = {  # what the year's assertions look at of each event
    SubscriptionCreated: ("subscription_id",), InvoiceIssued: ("invoice_number", "total_minor"),
    PaymentCompleted: ("amount_minor",), InvoicePaid: ("invoice_number",),
    ReminderIssued: ("invoice_number", "step", "amount_minor", "channel"),
    PaymentStopNotice: ("invoice_number", "stop_date", "owed_minor"),
    CreditNoteIssued: ("credit_note_number", "invoice_number", "total_minor"),
    SubscriptionStopped: ("subscription_id", "stop_date", "kind", "reason")}


def first_sent(subscriber_no: int, sent: list[tuple[date, BusMessage]]) -> dict[str, tuple[date, Event]]:
    """Each event the subscriber's operations published, by id, with the day it was first
    sent. Delivery is at least once (the outbox sends a row again with the partition's next
    transaction): a repeat has the id and the content of the first."""
    first: dict[str, tuple[date, Event]] = {}
    for on, message in sent:
        event = event_of(message)
        assert first.setdefault(event.id, (on, event))[1] == event, event.id
    assert {e.subscriber_no for _, e in first.values()} == {subscriber_no}  # type: ignore[attr-defined]
    return first


def summary(first: dict[str, tuple[date, Event]]) -> list[tuple]:  # type: ignore[type-arg]
    """(day, type, key fields) of each event, in the order they were first sent."""
    return [(on, e.type, *(getattr(e, k) for k in KEYS[type(e)])) for on, e in first.values()]


def expected_events(first: str, second: str) -> list[tuple]:  # type: ignore[type-arg]
    """The year's events, as ``test_a_year_of_one_subscriber`` tells it: invoices are issued
    14 days (the lead days) before the period they bill, each payment completes and pays one
    invoice, a reminder follows the due date by 7 days, the second 5 days after the first's due
    date (10 days later), the stop notice 5 days before the stop."""
    cause, owed = "Stopped due to lack of payment", 38700 + 38700 + 3500  # invoices 3 and 4, the fee of reminder 2
    balance = 38700 + 38700 * 11 // 30 + 3500  # March, 11/30 of April and the fee: the balance invoice
    renewals = []
    for k in range(1, 9):  # the second subscription's renewals, 2 Jun 2026 to 2 Jan 2027, each paid when due
        due = date(2026, 5, 2) + relativedelta(months=k)
        renewals += [(due - timedelta(days=14), "InvoiceIssued", 8 + k, 38700), (due, "PaymentCompleted", 38700),
                     (due, "InvoicePaid", 8 + k)]
    return [
        (date(2026, 1, 5), "SubscriptionCreated", first), (date(2026, 1, 5), "InvoiceIssued", 1, 34800),
        (date(2026, 1, 19), "PaymentCompleted", 34800), (date(2026, 1, 19), "InvoicePaid", 1),
        (date(2026, 1, 22), "InvoiceIssued", 2, 38700),  # 5 Feb - 14
        (date(2026, 2, 10), "PaymentCompleted", 38700), (date(2026, 2, 10), "InvoicePaid", 2),  # late
        (date(2026, 2, 19), "InvoiceIssued", 3, 38700),
        (date(2026, 3, 12), "ReminderIssued", 3, 1, 38700, "email"),  # due 5 Mar + 7
        (date(2026, 3, 22), "InvoiceIssued", 4, 38700),
        (date(2026, 3, 27), "ReminderIssued", 3, 2, 38700 + 3500, "email"),
        (date(2026, 4, 11), "PaymentStopNotice", 3, date(2026, 4, 16), owed),
        (date(2026, 4, 12), "ReminderIssued", 4, 1, 38700, "email"),
        (date(2026, 4, 16), "CreditNoteIssued", 5, 3, 38700), (date(2026, 4, 16), "CreditNoteIssued", 6, 4, 38700),
        (date(2026, 4, 16), "SubscriptionStopped", first, date(2026, 4, 16), StopKind.PAYMENT, cause),
        (date(2026, 4, 17), "InvoiceIssued", 7, balance),  # a day after the stop
        (date(2026, 4, 25), "PaymentCompleted", balance), (date(2026, 4, 25), "InvoicePaid", 7),
        (date(2026, 5, 2), "SubscriptionCreated", second), (date(2026, 5, 2), "InvoiceIssued", 8, 34800),
        (date(2026, 5, 16), "PaymentCompleted", 34800), (date(2026, 5, 16), "InvoicePaid", 8),
        *renewals,
    ]


@pytest.mark.fakes
def test_a_year_of_one_subscriber(ctx: Context, shop: str) -> None:
    """Manual 7.7/7.9/7.11/7.19 in sequence: order, renewals, a late payment, two reminders,
    a stop notice, payment stop, balance invoice, its payment, a new order, a year of renewals
    paid on time; every document, ledger entry and event on the bus asserted, and nothing else produced."""
    placed = place_order(ctx, order(shop, 1, ref="first"))  # 5 Jan 2026
    n = placed.subscriber_no

    def pay_on(demand: OpenDemand) -> date | None:
        if demand.terms.kind == DocumentKind.BALANCE:
            return date(2026, 4, 25)
        if demand.terms.subscription_id == placed.subscription_id:  # 1 on time, 2 late, 3 and 4 never
            return {1: demand.terms.due_date, 2: date(2026, 2, 10)}.get(demand.terms.invoice_number)
        return demand.terms.due_date  # the new order: always on time

    sent = [(date(2026, 1, 5), m) for m in published(ctx, shop)]  # the order's events
    on = date(2026, 1, 5)
    while on <= date(2027, 1, 4):
        day(ctx, shop, on)
        if on == date(2026, 5, 2):
            again = place_order(ctx, order(shop, 1, ref="again"))  # the same e-mail: the same subscriber
        loaded = ctx.accounts.load(shop, n)
        assert loaded is not None
        for demand in loaded.account.open_demands.values():
            if pay_on(demand) == on:
                invoice = ctx.accounts.invoice(shop, n, demand.demand_no)
                assert invoice is not None
                pay_kid(ctx, shop, invoice.kid, demand.open_minor, on)
        sent += [(on, m) for m in published(ctx, shop)]
        on += timedelta(days=1)
    first = first_sent(n, sent)
    assert summary(first) == expected_events(placed.subscription_id, again.subscription_id)
    assert {f"invoice-issued.avisa.{k}" for k in (*range(1, 5), *range(7, 17))} | {  # the ids as always: idempotent
        "reminder.avisa.3.1", "reminder.avisa.3.2", "reminder.avisa.4.1", "stop-notice.avisa.3",
        "credit-note.avisa.5", "credit-note.avisa.6", f"subscription-stopped.{placed.subscription_id}.2026-04-16",
        f"subscription-created.{placed.subscription_id}", "invoice-paid.avisa.7"} < set(first)

    docs = ctx.accounts.documents(shop, n)
    acc = ctx.accounts.load(shop, n)
    assert acc is not None
    first = acc.account.subscriptions[placed.subscription_id]
    assert (first.stop_date, first.stop_kind) == (date(2026, 4, 16), StopKind.PAYMENT)
    invoices = [(i.number, i.draft.kind.value, i.draft.due_date.isoformat(), i.total_minor) for i in docs.invoices]
    renewals = [(8 + k, "subscription", (date(2026, 5, 16) if k == 0 else date(2026, 5, 2) + relativedelta(months=k))
                 .isoformat(), 34800 if k == 0 else 38700) for k in range(9)]
    assert invoices == [
        (1, "subscription", "2026-01-19", 34800),  # ordered 5 Jan, due in 14 days
        (2, "subscription", "2026-02-05", 38700),  # renewals add the 39 kr invoice fee
        (3, "subscription", "2026-03-05", 38700),  # never paid
        (4, "subscription", "2026-04-05", 38700),  # never paid
        (7, "balance", "2026-05-01", 38700 + 38700 * 11 // 30 + 3500),  # 17 Apr, a day after the stop
        *renewals,  # the new order of 2 May, and its renewals to 2 Jan 2027
    ]
    assert [(r.invoice_number, r.reminder.step, r.reminder.produced.isoformat(), r.reminder.amount_minor)
            for r in docs.reminders] == [
        (3, 1, "2026-03-12", 38700), (3, 2, "2026-03-27", 38700 + 3500), (4, 1, "2026-04-12", 38700)]
    assert [(c.number, c.invoice_number, c.total_minor) for c in docs.credit_notes] == [(5, 3, 38700), (6, 4, 38700)]
    by_number = {i.number: i for i in docs.invoices}  # the payment stop read them: mirrored line for line
    assert all(c.lines == tuple(-li for li in by_number[c.invoice_number].draft.lines) for c in docs.credit_notes)
    # the balance invoice bills the charges per rate: March whole (33 251 at 0 %, 5 449 at 25 % with VAT 10.90)
    # and 11/30 of April: 12 192.03 and 1 997.97 rounded down, the øre left to the larger remainder (25 %):
    # 12 192 + 1 998 = 14 190 = 38 700 * 11 // 30, VAT of 19.98 at 25 % = 4.00; then the reminder fee, no VAT
    balance_lines = next(i for i in docs.invoices if i.draft.kind is DocumentKind.BALANCE).draft.lines
    assert [(li.vat_rate_bp, li.gross_minor, li.vat_minor) for li in balance_lines] == [
        (0, 33251 + 12192, 0), (2500, 5449 + 1998, 1090 + 400), (0, 3500, 0)]
    kinds = [(e.kind, e.amount_minor) for e in docs.ledger]
    assert kinds == [
        (EntryKind.INVOICE, -34800), (EntryKind.PAYMENT, 34800),
        (EntryKind.INVOICE, -38700), (EntryKind.PAYMENT, 38700),  # late, 10 Feb
        (EntryKind.INVOICE, -38700), (EntryKind.INVOICE, -38700),
        (EntryKind.REMINDER_FEE, -3500),
        (EntryKind.CREDIT_NOTE, 38700), (EntryKind.CHARGE, -38700),  # March delivered whole
        (EntryKind.CREDIT_NOTE, 38700), (EntryKind.CHARGE, -(38700 * 11 // 30)),  # 5-15 April delivered
        (EntryKind.PAYMENT, 38700 + 38700 * 11 // 30 + 3500),  # the balance invoice, by its KID
        *[(kind, sign * amount) for _n, _k, _d, amount in renewals
          for kind, sign in ((EntryKind.INVOICE, -1), (EntryKind.PAYMENT, 1))],
    ]
    assert acc.account.balances["avisa"] == 0 and acc.account.open_demands == {}


@pytest.mark.fakes
def test_a_balance_check_that_finds_too_little_owed_is_done_with_and_stored(ctx: Context, shop: str) -> None:
    from shared.service import customer_service

    placed = place_order(ctx, order(shop, 1))  # 5 Jan
    payments_in.register_payment(ctx, shop, placed.subscriber_no, "avisa", 34800, date(2026, 1, 6), "paid-1")
    customer_service.stop(ctx, shop, placed.subscriber_no, placed.subscription_id, True, None, None, "Moving")
    loaded = ctx.accounts.load(shop, placed.subscriber_no)
    assert loaded is not None and [c.on for c in loaded.account.balance_checks] == [date(2026, 2, 6)]
    result = dun_subscribers(ctx, shop, date(2026, 2, 6), [placed.subscriber_no])  # owes nothing: no invoice
    assert result.balance_invoices == 0
    loaded = ctx.accounts.load(shop, placed.subscriber_no)
    assert loaded is not None and loaded.account.balance_checks == ()
