"""The dunning run in buckets (issue 13): a message visits a whole bucket, read in one
query, the next visits indexed in one write per day and the changes committed in shared
100-row transactions; a payment stop (or a backlog of reminders) too big for one
transaction still goes on in parts; a payment booked while the run visits the same
subscriber wins (that subscriber's visit is redone alone and finds the debt paid)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from typing import Any

import pytest

from shared.adapters.bus import RUN_WORK
from shared.domain.import_report import Outcome
from shared.domain.subscriptions import StopKind
from shared.service import payments_in
from shared.service.billing import bill_one
from shared.service.context import Context
from shared.service.dunning import dun_subscribers, start_dunning_run
from shared.service.orders import place_order
from tests.conftest import oslo_morning
from tests.fixtures import order, received
from tests.service.test_bucket_payments import BUCKET, Paid, bucket_of_subscribers, layout_of, ocr, trips
from tests.service.test_large_account import weekly_plan_with_one_reminder_then_stop

ORDERED = date(2026, 1, 5)  # the first invoices fall due on 19 Jan
REMINDED = date(2026, 1, 26)  # 7 days after: the first reminder


def set_day(ctx: Context, on: date) -> None:
    ctx.clock.set(oslo_morning(on))  # type: ignore[attr-defined]


def pay(ctx: Context, tenant: str, paid: Sequence[Paid], number: str = "1000001") -> None:
    report = payments_in.import_bank_file(ctx, tenant, f"ocr-{number}.txt", ocr([(k, t) for _, k, t in paid],
                                                                                 number))
    assert (report.count(Outcome.BOOKED), report.balanced) == (len(paid), True)


def reminders(ctx: Context, tenant: str, subscriber_no: int) -> int:
    return len(ctx.accounts.documents(tenant, subscriber_no).reminders)


def four_fifths_paid(ctx: Context, tenant: str) -> tuple[list[Paid], list[Paid]]:
    """A bucket of 64 subscribers ordered on 5 Jan; every fifth leaves its invoice unpaid."""
    everyone = bucket_of_subscribers(ctx, tenant)
    unpaid = everyone[::5]
    paid = [p for p in everyone if p not in unpaid]
    set_day(ctx, date(2026, 1, 15))
    pay(ctx, tenant, paid)
    return paid, unpaid


# ---- round trips ---------------------------------------------------------------------------------

def test_a_bucket_of_64_visited_costs_a_query_the_index_write_and_the_transactions(ctx: Context, shop: str) -> None:
    paid, unpaid = four_fifths_paid(ctx, shop)
    set_day(ctx, REMINDED)
    before = trips(ctx)
    result = dun_subscribers(ctx, shop, REMINDED, [n for n, *_ in paid + unpaid])
    spent = trips(ctx) - before
    assert (result.subscribers, result.reminders, result.conflicts, result.needs_attention) == (64, 13, 0, 0)
    # one query of the bucket, the next visits of the 13 reminded (one day: one write), and the
    # reminders of 13 subscribers in shared transactions (about 7 rows each: 1 or 2)
    assert spent == 1 + 1 + 1, spent  # 13 reminders of 6 rows: one transaction of 78
    assert spent / 64 <= 0.1, spent  # 0.047; was 2 a subscriber (its read and its transaction)
    assert all(reminders(ctx, shop, n) == 1 for n, *_ in unpaid)
    assert all(reminders(ctx, shop, n) == 0 for n, *_ in paid)
    again = dun_subscribers(ctx, shop, REMINDED, [n for n, *_ in paid + unpaid])  # the message redelivered
    assert (again.reminders, again.needs_attention) == (0, 0)
    assert all(reminders(ctx, shop, n) == 1 for n, *_ in unpaid)


@pytest.mark.fakes
def test_the_timer_sends_the_bucket_in_one_message_and_the_worker_reminds_the_unpaid(ctx: Context, shop: str) -> None:
    from functions.run_worker import handle as work

    paid, unpaid = four_fifths_paid(ctx, shop)
    set_day(ctx, REMINDED)
    started = start_dunning_run(ctx, shop)
    # the dunning index names all 64 (written ahead when ordered; a payment leaves it): one message
    assert (started.subscribers, started.messages) == (64, 1)
    (message,) = received(ctx, RUN_WORK)
    assert sorted(message.body["subscribers"]) == sorted(n for n, *_ in paid + unpaid)
    (result,) = [work(message.encode().encode())]
    assert (result.reminders, result.needs_attention) == (13, 0)
    assert all(reminders(ctx, shop, n) == 1 for n, *_ in unpaid)


# ---- in parts ------------------------------------------------------------------------------------

@pytest.mark.fakes
def test_reminder_backlogs_and_payment_stops_too_big_for_one_transaction_go_on_in_parts(
        ctx: Context, shop: str) -> None:
    weekly_plan_with_one_reminder_then_stop(ctx, shop)
    numbers = layout_of(ctx, shop).members(BUCKET)
    start, today = date(2025, 6, 2), date(2026, 1, 5)  # 31 weeks unpaid: ~124 reminder rows, ~155 credit rows
    set_day(ctx, start)
    big = [place_order(ctx, order(shop, n, plan="weekly"), subscriber_no=n).subscriber_no for n in numbers[:3]]
    on = start
    while on < today:  # the invoice runs, every four weeks (a week invoiced late falls due 14 days after)
        on = min(on + timedelta(weeks=4), today)
        set_day(ctx, on)
        for n in big:
            while bill_one(ctx, shop, on, n):
                pass
    small = [place_order(ctx, order(shop, n), subscriber_no=n).subscriber_no for n in numbers[3:11]]
    assert len({ctx.accounts.partition_of(shop, n) for n in big + small}) == 1
    overdue = {n: _overdue(ctx, shop, n, today) for n in big}
    assert min(overdue.values()) > 15, overdue  # more reminders than one part (60 rows) holds

    visit = dun_subscribers(ctx, shop, today, big + small)
    assert (visit.reminders, visit.needs_attention) == (sum(overdue.values()), 0)
    assert {n: reminders(ctx, shop, n) for n in big} == overdue
    assert all(reminders(ctx, shop, n) == 0 for n in small)  # ordered today: nothing due

    stop_day = today + timedelta(days=20)  # 10 days after the reminders fall due: the payment stop
    set_day(ctx, stop_day)
    open_before = {n: _open(ctx, shop, n) for n in big}
    stopped = dun_subscribers(ctx, shop, stop_day, big + small)
    assert (stopped.payment_stops, stopped.needs_attention) == (3, 0)
    for n in big:
        loaded = ctx.accounts.load(shop, n)
        assert loaded is not None
        (sub,) = loaded.account.subscriptions.values()
        assert (sub.stop_kind, sub.stop_date) == (StopKind.PAYMENT, stop_day)
        credited = len(ctx.accounts.documents(shop, n).credit_notes)
        assert credited > 11 and credited <= open_before[n]  # more credit notes than one part (60 rows) holds
    assert stopped.credit_notes == sum(len(ctx.accounts.documents(shop, n).credit_notes) for n in big)
    assert dun_subscribers(ctx, shop, stop_day, big + small).credit_notes == 0  # done: nothing the second time


def _overdue(ctx: Context, tenant: str, n: int, today: date) -> int:
    loaded = ctx.accounts.load(tenant, n)
    assert loaded is not None
    return sum(1 for d in loaded.account.open_demands.values() if d.terms.due_date + timedelta(days=7) <= today)


def _open(ctx: Context, tenant: str, n: int) -> int:
    loaded = ctx.accounts.load(tenant, n)
    assert loaded is not None
    return len(loaded.account.open_demands)


# ---- concurrency ---------------------------------------------------------------------------------

@pytest.mark.fakes
def test_a_payment_booked_between_the_runs_read_and_its_commit_wins(
        ctx: Context, shop: str, monkeypatch: pytest.MonkeyPatch) -> None:
    _paid, unpaid = four_fifths_paid(ctx, shop)
    late = unpaid[2]
    set_day(ctx, REMINDED)
    real = ctx.accounts.commit_many
    state = {"calls": 0}

    def paid_meanwhile(tenant: str, items: Sequence[Any]) -> list[Any]:
        state["calls"] += 1
        if state["calls"] == 1:  # the run read the bucket and decided; the bank file comes in now
            pay(ctx, shop, [late], "1000002")
        return real(tenant, items)

    monkeypatch.setattr(ctx.accounts, "commit_many", paid_meanwhile)
    result = dun_subscribers(ctx, shop, REMINDED, [n for n, *_ in unpaid])
    assert (result.reminders, result.conflicts, result.needs_attention) == (12, 1, 0)
    assert reminders(ctx, shop, late[0]) == 0  # redone alone: paid, nothing to remind
    loaded = ctx.accounts.load(shop, late[0])
    assert loaded is not None and loaded.account.open_demands == {} and loaded.account.balances["avisa"] == 0
    assert all(reminders(ctx, shop, n) == 1 for n, *_ in unpaid if n != late[0])


def test_payments_and_the_dunning_run_racing_on_one_bucket_lose_nothing(ctx: Context, shop: str) -> None:
    everyone = bucket_of_subscribers(ctx, shop, 40)
    set_day(ctx, REMINDED)
    go = threading.Barrier(3)

    def run() -> Any:
        go.wait()
        return dun_subscribers(ctx, shop, REMINDED, [n for n, *_ in everyone])

    def bank(part: list[Paid], number: str) -> None:
        go.wait()
        pay(ctx, shop, part, number)

    with ThreadPoolExecutor(3) as pool:
        visiting = pool.submit(run)
        banks = [pool.submit(bank, everyone[0::2], "1000001"), pool.submit(bank, everyone[1::2], "1000002")]
        result = visiting.result()
        for b in banks:
            b.result()
    assert result.needs_attention == 0
    reminded = 0
    for n, _kid, total in everyone:
        loaded = ctx.accounts.load(shop, n)
        assert loaded is not None
        assert [b.payment.amount_minor for b in ctx.accounts.payments(shop, n)] == [total]
        assert loaded.account.open_demands == {} and loaded.account.balances["avisa"] == 0
        reminded += reminders(ctx, shop, n)
        assert reminders(ctx, shop, n) <= 1  # reminded once before the payment came, or not at all
    assert result.reminders == reminded
