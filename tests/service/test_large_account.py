"""A subscriber with 500 unpaid invoices and reminders stays workable (issue 8, part 4).

Before open demands had rows of their own, all of them lived in one property of the
subscriber row, which passed Table Storage's 64 KiB limit at about 92 unpaid invoices:
the subscriber could then never be billed, paid or ordered again. This walks one
subscriber through 500 unpaid weekly invoices, a reminder on each, a renewal, a bank
file, a payment stop that credits every open invoice, and the overview, all through the
real use cases and adapters on Azurite.
"""

from __future__ import annotations

import json
from datetime import date, timedelta

from pydantic import TypeAdapter

from shared.adapters.accounts import HEAD, HEAD_OUTBOX_CHARS, TABLE
from shared.adapters.catalogue_store import KINDS
from shared.clock import SettableClock
from shared.domain.calendar import Frequency
from shared.domain.catalogue import BillingPlan, Product, SubscriptionPlan
from shared.domain.import_report import Outcome
from shared.domain.ledger import EntryKind
from shared.domain.subscriptions import StopKind
from shared.formats import ocr_giro
from shared.service.billing import bill_one, bill_subscribers
from shared.service.catalogue import put_item
from shared.service.context import Context
from shared.service.dunning import dun_subscribers
from shared.service.orders import place_order
from shared.service.payments_in import import_bank_file
from shared.service.queries import overview
from tests.conftest import oslo_morning
from tests.fixtures import order

ACCOUNT = "86011117947"  # the demo organisation's bank account
WEEKLY = 4500


def weekly_plan_with_one_reminder_then_stop(ctx: Context, tenant: str) -> None:
    put_item(ctx, tenant, "dunning_process", TypeAdapter(KINDS["dunning_process"]).validate_python({
        "id": "short", "name": "One reminder, then payment stop", "consume_partial_payments": True,
        "reminders": [{"delay_days": 7, "min_due_days": 10, "fee_minor": 0}],
        "stop_rule": {"delay_days": 10, "threshold_minor": 10000, "cause": "Stopped due to lack of payment"}}))
    put_item(ctx, tenant, "product", TypeAdapter(Product).validate_python(
        {"id": "ukeavis", "name": "Ukeavisa", "vat_rate_bp": 0,
         "prices": [{"frequency": "weekly", "valid_from": "2010-01-01", "amount_minor": WEEKLY}]}))
    put_item(ctx, tenant, "billing_plan", BillingPlan("weekly-14", "Weekly", Frequency.WEEKLY, lead_days=14,
                                                      dunning_process_id="short"))
    put_item(ctx, tenant, "plan", SubscriptionPlan("weekly", "Weekly", "avisa", "weekly-14", ("ukeavis",)))


def subscriber_row_bytes(ctx: Context, tenant: str, subscriber_no: int) -> int:
    """The subscriber row's size but for its outbox, which is bounded on its own (checked here:
    at most ``HEAD_OUTBOX_CHARS``; what does not fit has rows of its own)."""
    place = ctx.accounts.place(tenant, subscriber_no)  # type: ignore[attr-defined]
    row = ctx.storage.get(TABLE, place.pk, place.rk(HEAD))
    assert row is not None
    assert len(row.get("Outbox") or "") <= HEAD_OUTBOX_CHARS
    kept = {k: v for k, v in row.items() if k not in ("etag", "Timestamp", "Outbox")}
    return len(json.dumps(kept, default=str).encode())


def test_a_subscriber_with_500_unpaid_invoices_and_reminders_is_billed_dunned_paid_and_shown(
        ctx: Context, clock: SettableClock, shop: str) -> None:
    weekly_plan_with_one_reminder_then_stop(ctx, shop)
    # weekly from Monday 2 May 2016; not a week paid. On 5 Jan 2026, with 14 days' lead, 507 periods are due
    clock.set(oslo_morning(date(2016, 5, 2)))
    placed = place_order(ctx, order(shop, plan="weekly"))
    no, today = placed.subscriber_no, date(2026, 1, 5)
    day = date(2016, 5, 2)
    while day < today:  # renewals, run with the test clock every 40 weeks (at most 60 periods are due at once)
        day = min(day + timedelta(weeks=40), today)
        clock.set(oslo_morning(day))
        while bill_one(ctx, shop, day, no):
            pass
    loaded = ctx.accounts.load(shop, no)
    assert loaded is not None
    unpaid = len(loaded.account.open_demands)
    due = sum(1 for d in loaded.account.open_demands.values() if d.terms.due_date + timedelta(days=7) <= today)
    # every week of 2 May 2016 - 25 Jan 2026; a week invoiced by a late run falls due 14 days after that run
    assert unpaid == 508 and due > 480

    # one dunning visit: a reminder for each overdue invoice, in as many transactions as it takes
    visit = dun_subscribers(ctx, shop, today, [no])
    assert visit.reminders == due and visit.conflicts == 0
    history = ctx.accounts.documents(shop, no)
    assert len(history.reminders) == due
    before = ctx.storage.round_trips.count
    loaded = ctx.accounts.load(shop, no)
    assert ctx.storage.round_trips.count - before == 1  # still one query
    assert loaded is not None and sum(len(d.dunning.reminders) for d in loaded.account.open_demands.values()) == due
    assert subscriber_row_bytes(ctx, shop, no) < 2048

    # billed again: the next renewal, by the invoice run's worker
    clock.set(oslo_morning(today + timedelta(days=7)))
    billed = bill_subscribers(ctx, shop, today + timedelta(days=7), [no])
    assert billed.invoices == 1

    # a bank file pays the oldest invoice by its reminder's KID
    oldest = min(loaded.account.open_demands.values(), key=lambda d: d.demand_no)
    kid = oldest.dunning.reminders[-1].kid
    paid = import_bank_file(ctx, shop, "ocr.txt", ocr_giro.transmission(
        [(kid, oldest.open_minor)], today + timedelta(days=7), account=ACCOUNT).encode())
    assert (paid.count(Outcome.BOOKED), paid.count(Outcome.SET_ASIDE), paid.balanced) == (1, 0, True)
    after = ctx.accounts.load(shop, no)
    assert after is not None and oldest.demand_no not in after.account.open_demands
    assert len(after.account.open_demands) == unpaid  # one paid, one billed

    # 10 days after the reminders' due date: the payment stop credits every open invoice
    stop_day = today + timedelta(days=20)
    clock.set(oslo_morning(stop_day))
    stopped = dun_subscribers(ctx, shop, stop_day, [no])
    assert stopped.payment_stops == 1 and stopped.conflicts == 0
    final = ctx.accounts.load(shop, no)
    assert final is not None
    (sub,) = final.account.subscriptions.values()
    assert sub.stop_kind is StopKind.PAYMENT and sub.stop_date == stop_day
    overdue = [d for d in after.account.open_demands.values() if d.terms.period_start is not None]
    assert not final.account.open_demands and stopped.credit_notes == len(overdue)
    assert dun_subscribers(ctx, shop, stop_day, [no]).credit_notes == 0  # done: a second visit finds nothing

    # the overview answers, and the books add up
    view = overview(ctx, shop, no)
    assert len(view["invoices"]) == unpaid + 1 and len(view["credit_notes"]) == len(overdue)
    assert view["open_demands"] == []
    ledger = ctx.accounts.documents(shop, no).ledger
    assert sum(e.amount_minor for e in ledger) == final.account.balances["avisa"]
    assert sum(e.amount_minor for e in ledger if e.kind is EntryKind.PAYMENT) == oldest.open_minor
    assert subscriber_row_bytes(ctx, shop, no) < 2048
