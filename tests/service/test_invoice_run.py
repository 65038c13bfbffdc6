"""The invoice run (S3): due subscribers found through the index, invoices issued once."""

from __future__ import annotations

import threading
from datetime import date, timedelta

from azure.functions.servicebus import ServiceBusMessage

from shared.adapters.bus import RUN_WORK, unpack
from shared.clock import SettableClock
from shared.domain.calendar import Frequency
from shared.service.billing import bill_one, bill_subscribers, start_invoice_run
from shared.service.context import Context
from shared.service.orders import place_order
from tests.conftest import make_context, oslo_morning
from tests.fixtures import order


def run_day(ctx: Context, tenant: str, day: date) -> int:
    """What the timer and the worker do for one day, driven directly."""
    ctx.clock.set(oslo_morning(day))  # type: ignore[attr-defined]
    start_invoice_run(ctx, tenant)
    queue = ctx.bus.service.get_queue_client(RUN_WORK)  # type: ignore[attr-defined]
    issued = 0
    while batch := list(queue.receive_messages(max_messages=32, visibility_timeout=30)):
        for message in batch:
            for item in unpack(message.content):
                body = item.body
                assert body["tenant"] == tenant
                issued += bill_subscribers(ctx, tenant, date.fromisoformat(body["date"]),
                                           body["subscribers"]).invoices
            queue.delete_message(message)
    return issued


def invoices_of(ctx: Context, tenant: str, subscriber_no: int) -> list[tuple[int, date, int]]:
    invoices, _ = ctx.accounts.history(tenant, subscriber_no)
    return [(i.draft.period_index, i.draft.due_date, i.total_minor) for i in invoices]


def test_the_run_issues_the_renewal_14_days_before_the_period_and_only_then(ctx: Context, shop: str) -> None:
    placed = place_order(ctx, order(shop))  # 5 Jan 2026
    assert run_day(ctx, shop, date(2026, 1, 21)) == 0
    assert run_day(ctx, shop, date(2026, 1, 22)) == 1  # 5 Feb - 14 days
    assert invoices_of(ctx, shop, placed.subscriber_no) == [
        (0, date(2026, 1, 19), 34800), (1, date(2026, 2, 5), 34800 + 3900)]


def test_running_the_invoice_run_twice_for_one_day_issues_nothing_the_second_time(ctx: Context, shop: str) -> None:
    placed = place_order(ctx, order(shop))
    assert run_day(ctx, shop, date(2026, 1, 22)) == 1
    trips = ctx.storage.round_trips.count
    assert bill_subscribers(ctx, shop, date(2026, 1, 22), [placed.subscriber_no]).invoices == 0
    assert ctx.storage.round_trips.count - trips == 1  # one partition read, nothing written
    assert len(invoices_of(ctx, shop, placed.subscriber_no)) == 2


def test_two_racing_runs_for_one_subscriber_and_day_issue_exactly_one_invoice(azurite, ctx: Context, shop: str) -> None:  # type: ignore[no-untyped-def]
    placed = place_order(ctx, order(shop))
    day = date(2026, 1, 22)
    # two "processes": their own storage clients, number caches and catalogue caches
    runs = [make_context(azurite.connection_string, SettableClock(oslo_morning(day))) for _ in range(2)]
    barrier = threading.Barrier(2)
    results = []

    def run(c: Context) -> None:
        barrier.wait()
        results.append(bill_subscribers(c, shop, day, [placed.subscriber_no]))

    threads = [threading.Thread(target=run, args=(c,)) for c in runs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r.invoices for r in results) == 1
    invoices, ledger = ctx.accounts.history(shop, placed.subscriber_no)
    assert sorted(i.number for i in invoices) == [invoices[0].number, invoices[0].number + 1]
    assert len(ledger) == 2


def test_a_missed_day_is_caught_up_by_the_next_run(ctx: Context, shop: str) -> None:
    placed = place_order(ctx, order(shop))
    run_day(ctx, shop, date(2026, 1, 20))
    assert run_day(ctx, shop, date(2026, 1, 25)) == 1  # the 22nd was never run
    assert len(invoices_of(ctx, shop, placed.subscriber_no)) == 2


def test_the_timer_batches_subscribers_into_bus_messages(ctx: Context, shop: str) -> None:
    for n in range(1, 4):
        place_order(ctx, order(shop, n))
    ctx.clock.set(oslo_morning(date(2026, 1, 22)))  # type: ignore[attr-defined]
    planned = start_invoice_run(ctx, shop)
    assert (planned.subscribers, planned.messages) == (3, 1)


def test_a_year_of_one_subscriber_issues_exactly_twelve_consecutive_monthly_invoices(ctx: Context, shop: str) -> None:
    placed = place_order(ctx, order(shop, start=date(2026, 1, 31)))  # renews on the last of short months
    day = date(2026, 1, 5)
    while day < date(2026, 12, 31):
        day += timedelta(days=1)
        run_day(ctx, shop, day)
    invoices, ledger = ctx.accounts.history(shop, placed.subscriber_no)
    starts = [i.draft.lines[0].period_start for i in invoices]
    assert starts == [date(2026, 1, 31), date(2026, 2, 28), *(date(2026, m, 31 if m in (3, 5, 7, 8, 10, 12) else 30)
                                                              for m in range(3, 13))]
    numbers = [i.number for i in invoices]
    assert numbers == list(range(numbers[0], numbers[0] + 12))
    assert sum(e.amount_minor for e in ledger) == -sum(i.total_minor for i in invoices)
    # the January 2027 period is produced on 17 January 2027, after this walk
    assert sum(i.total_minor for i in invoices) == 12 * 34800 + 11 * 3900


def test_the_worker_handles_a_service_bus_message_and_ignores_its_redelivery(ctx: Context, shop: str) -> None:
    from functions.run_worker import run_worker

    placed = place_order(ctx, order(shop))
    ctx.clock.set(oslo_morning(date(2026, 1, 22)))  # type: ignore[attr-defined]
    body = (b'{"id":"m1","body":{"kind":"invoice","tenant":"%s","date":"2026-01-22","subscribers":[%d]}}'
            % (shop.encode(), placed.subscriber_no))
    message = ServiceBusMessage(body=body, message_id="m1", application_properties={}, user_properties={})
    run_worker(message)
    run_worker(message)  # at-least-once delivery: the same message again
    assert len(invoices_of(ctx, shop, placed.subscriber_no)) == 2


def test_a_commit_whose_response_is_lost_is_retried_and_issues_the_invoice_once(ctx: Context, shop: str) -> None:
    from azure.core.exceptions import ServiceResponseError

    placed = place_order(ctx, order(shop))
    client = ctx.storage.table("Subscribers")
    submit = client.submit_transaction
    lost = []

    def committed_but_reset(operations, **kwargs):  # type: ignore[no-untyped-def]
        result = submit(operations, **kwargs)
        if not lost:  # the first transaction commits, then its response never arrives
            lost.append(True)
            raise ServiceResponseError("Connection reset by peer")
        return result

    client.submit_transaction = committed_but_reset  # type: ignore[method-assign]
    try:
        result = bill_subscribers(ctx, shop, date(2026, 1, 22), [placed.subscriber_no])
    finally:
        client.submit_transaction = submit  # type: ignore[method-assign]
    assert lost and result.conflicts == 1
    invoices, ledger = ctx.accounts.history(shop, placed.subscriber_no)
    assert [i.draft.period_index for i in invoices] == [0, 1] and len(ledger) == 2


def test_a_year_of_weekly_periods_due_at_once_is_issued_in_transactions_azure_accepts(ctx: Context, shop: str) -> None:
    # Backdated a year on a weekly plan, ~55 periods are due at once: more than one
    # transaction of at most 100 entities holds. The order issues what fits (24: four rows
    # each, the invoice, its open demand, its ledger entry and its event, besides the
    # subscriber and subscription rows), the next run the rest; the adapter would refuse
    # any transaction over 100 entities.
    from pydantic import TypeAdapter

    from shared.domain.catalogue import BillingPlan, Product, SubscriptionPlan
    from shared.service.catalogue import put_item

    put_item(ctx, shop, "product", TypeAdapter(Product).validate_python(
        {"id": "ukeavis", "name": "Ukeavisa", "vat_rate_bp": 0,
         "prices": [{"frequency": "weekly", "valid_from": "2020-01-01", "amount_minor": 4500}]}))
    put_item(ctx, shop, "billing_plan", BillingPlan("weekly-14", "Weekly", Frequency.WEEKLY, lead_days=14))
    put_item(ctx, shop, "plan", SubscriptionPlan("weekly", "Weekly", "avisa", "weekly-14", ("ukeavis",)))
    placed = place_order(ctx, order(shop, plan="weekly", start=date(2025, 1, 6)))
    assert len(placed.invoices) == 24
    issued = bill_one(ctx, shop, date(2026, 1, 5), placed.subscriber_no)
    invoices, ledger = ctx.accounts.history(shop, placed.subscriber_no)
    # weekly from Monday 6 Jan 2025; produced 14 days ahead: periods starting up to 19 Jan 2026
    assert len(invoices) == 24 + issued == 55
    assert max(i.draft.lines[0].period_start for i in invoices) == date(2026, 1, 19)
    assert sum(e.amount_minor for e in ledger) == -55 * 4500
