"""The payment import grouped by bucket (issue 13): a file's payments are booked by the
partition of the subscriber they identify, one read and a few 100-row transactions per
bucket (``booking.book_in_partition``), and every landing and the import report are what
they were when each subscriber was booked alone: a duplicate import books nothing twice,
two importers of one file book each payment once, a subscriber customer service changes
mid-import gets both changes, a subscriber that does not exist is set aside without
holding up its bucket, and any generated OCR file lands every record exactly once."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from typing import Any

import pytest
from azure.core.exceptions import ServiceResponseError
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from shared.domain.account import Account, due_drafts, issue
from shared.domain.calendar import Frequency
from shared.domain.catalogue import PaymentType
from shared.domain.import_report import Outcome, Reason
from shared.domain.placement import FIRST, Layout
from shared.domain.subscriptions import Subscriber, Subscription
from shared.ports import ConcurrencyConflict
from shared.service import payments_in
from shared.service.context import Context
from shared.service.customer_service import set_order_block
from shared.service.orders import place_order
from shared.service.payments_in import bank_file, booking
from shared.service.payments_in.booking import PAYMENTS_PER_COMMIT
from tests.fixtures import install_catalogue, order
from tests.service.test_bank_file_import import PURCHASE, nets

DAY = date(2026, 1, 5)
BUCKET = 3  # a bucket of the default layout: numbers 3, 19, 35, ... (dealt out 16 at a time)
Paid = tuple[int, str, int]  # subscriber, KID of its first invoice, amount owed


def layout_of(ctx: Context, tenant: str) -> Layout:
    layouts = getattr(ctx.accounts, "layouts", None)
    return layouts.get(tenant) if layouts is not None else ctx.accounts.layout  # type: ignore[attr-defined,no-any-return]


def bucket_of_subscribers(ctx: Context, tenant: str, size: int = 64, bucket: int = BUCKET) -> list[Paid]:
    """``size`` subscribers of one bucket, each with an open first invoice (orders placed in parallel)."""
    numbers = layout_of(ctx, tenant).members(bucket)[:size]
    with ThreadPoolExecutor(8) as pool:
        placed = list(pool.map(lambda n: place_order(ctx, order(tenant, n), subscriber_no=n), numbers))
    assert len({ctx.accounts.partition_of(tenant, p.subscriber_no) for p in placed}) == 1
    return [(p.subscriber_no, p.invoices[0].kid, p.invoices[0].total_minor) for p in placed]


def ocr(paid: Sequence[tuple[str, int]], number: str = "1000001") -> bytes:
    return nets(*[(kid, amount, PURCHASE) for kid, amount in paid], number=number).encode("iso-8859-1")


def kid_for(ctx: Context, tenant: str, subscriber_no: int, demand_no: int = 1) -> str:
    return str(ctx.catalogue.get(tenant).organizations["avisa"].kid.encode(subscriber_no, demand_no))


def payments_of(ctx: Context, tenant: str, subscriber_no: int) -> list[tuple[str, int]]:
    return sorted((b.payment.id, b.payment.amount_minor) for b in ctx.accounts.payments(tenant, subscriber_no))


def balance(ctx: Context, tenant: str, subscriber_no: int) -> int:
    loaded = ctx.accounts.load(tenant, subscriber_no)
    assert loaded is not None
    return loaded.account.balances.get("avisa", 0)


def each_paid_once(ctx: Context, tenant: str, paid: Sequence[Paid]) -> None:
    """Every subscriber has exactly one payment of what it owed, and owes nothing."""
    for n, _kid, total in paid:
        assert [amount for _id, amount in payments_of(ctx, tenant, n)] == [total], n
        assert balance(ctx, tenant, n) == 0, n


def trips(ctx: Context) -> int:
    return int(ctx.storage.round_trips.count)  # type: ignore[attr-defined]


# ---- round trips -------------------------------------------------------------------------------

def invoiced(ctx: Context, tenant: str, numbers: Sequence[int]) -> list[Paid]:
    """Subscribers as an invoice run leaves them: an open invoice, its event the one row in
    the outbox (written directly, as the benchmarks do; numbered by subscriber)."""
    catalogue = ctx.catalogue.get(tenant)
    out = []
    for n in numbers:
        sub = Subscription(f"s{n}", "digital-monthly", "avisa", Frequency.MONTHLY, DAY, PaymentType.INVOICE)
        account = Account(Subscriber(n, f"Payer {n}", f"payer{n}@example.no")).with_subscription(sub)
        drafts = due_drafts(account, catalogue, DAY)
        changes = issue(account, drafts, {drafts[0].natural_key: n}, catalogue, DAY)
        ctx.accounts.commit(tenant, None, changes)
        out.append((n, changes.invoices[0].kid, changes.invoices[0].total_minor))
    return out


@pytest.mark.parametrize("state", ["invoiced by the run", "just ordered"])
def test_a_file_paying_a_bucket_costs_a_query_and_its_rows_in_100_row_transactions(
        ctx: Context, shop: str, state: str) -> None:
    numbers = layout_of(ctx, shop).members(BUCKET)
    # rows a payment writes: the subscriber row (its outbox goes with it: the events found at
    # load and the payment's own ride in it, no row each), the open demand settled, the ledger
    # entry and the payment: 4, whatever the order or the run left in the outbox
    rows = 4
    # just ordered: the order's two events in the outbox; invoiced: the run's invoice event
    paid = bucket_of_subscribers(ctx, shop) if state == "just ordered" else invoiced(ctx, shop, numbers)
    (_lone, lone_kid, lone_total), = invoiced(ctx, shop, layout_of(ctx, shop).members(BUCKET + 1)[:1])
    # a file's fixed cost (transmission claim, catalogue, report, journal): a file paying one
    # subscriber costs that plus the subscriber's read and its transaction
    before = trips(ctx)
    one = payments_in.import_bank_file(ctx, shop, "one.txt", ocr([(lone_kid, lone_total)], "1000001"))
    fixed = trips(ctx) - before - 2
    assert one.count(Outcome.BOOKED) == 1 and fixed >= 0
    before = trips(ctx)
    report = payments_in.import_bank_file(ctx, shop, "bucket.txt", ocr([(k, t) for _, k, t in paid], "1000002"))
    booking = trips(ctx) - before - fixed
    assert (report.count(Outcome.BOOKED), report.amount(Outcome.BOOKED)) == (64, sum(t for *_, t in paid))
    assert report.balanced and report.status == "imported"
    # one query of the bucket, then whole subscribers packed into transactions of <= 100 rows
    assert booking == 1 + -(-64 // (100 // rows)), booking
    if state == "invoiced by the run":
        assert booking / 64 <= 0.1, booking  # 6 / 64 = 0.094 (a partition per subscriber: 2)
    each_paid_once(ctx, shop, paid)


def test_in_a_partition_per_subscriber_a_payment_still_costs_its_read_and_its_transaction(
        ctx: Context, tenant: str) -> None:
    ctx.accounts.layouts.set(tenant, FIRST)  # type: ignore[attr-defined]  # an early tenant, not yet moved
    install_catalogue(ctx, tenant)
    paid = invoiced(ctx, tenant, range(1, 9))
    before = trips(ctx)
    one = payments_in.import_bank_file(ctx, tenant, "one.txt", ocr([paid[0][1:]], "1000001"))
    fixed = trips(ctx) - before - 2
    before = trips(ctx)
    report = payments_in.import_bank_file(ctx, tenant, "rest.txt", ocr([(k, t) for _, k, t in paid[1:]], "1000002"))
    assert (one.count(Outcome.BOOKED), report.count(Outcome.BOOKED), report.balanced) == (1, 7, True)
    assert trips(ctx) - before - fixed == 2 * 7
    each_paid_once(ctx, tenant, paid)


# ---- duplicates and races ----------------------------------------------------------------------

@pytest.mark.fakes
def test_an_import_that_died_half_way_books_the_rest_and_nothing_twice(
        ctx: Context, shop: str, monkeypatch: pytest.MonkeyPatch) -> None:
    paid = bucket_of_subscribers(ctx, shop, 24)
    data = ocr([(k, t) for _, k, t in paid])
    monkeypatch.setattr(bank_file, "CHUNK", 12)  # two chunks; the second dies (a host restart)
    chunks = 0
    real = bank_file._import_chunk

    def dies_on_the_second(*args: Any) -> None:
        nonlocal chunks
        chunks += 1
        if chunks == 2:
            raise ServiceResponseError("the host went down")
        real(*args)

    monkeypatch.setattr(bank_file, "_import_chunk", dies_on_the_second)
    with pytest.raises(ServiceResponseError):
        payments_in.import_bank_file(ctx, shop, "ocr.txt", data)
    monkeypatch.setattr(bank_file, "_import_chunk", real)
    assert sum(len(payments_of(ctx, shop, n)) for n, *_ in paid) == 12
    again = payments_in.import_bank_file(ctx, shop, "ocr.txt", data)  # the blob trigger delivers it again
    assert (again.count(Outcome.ALREADY_BOOKED), again.count(Outcome.BOOKED), again.balanced) == (12, 12, True)
    each_paid_once(ctx, shop, paid)
    third = payments_in.import_bank_file(ctx, shop, "copy.txt", data)  # the same transmission, another name
    assert (third.status, third.count(Outcome.DUPLICATE), third.count(Outcome.BOOKED)) == ("duplicate", 24, 0)
    each_paid_once(ctx, shop, paid)


@pytest.mark.parametrize("names", [("ocr.txt", "ocr.txt"), ("ocr.txt", "copy.txt")])
def test_two_importers_of_one_file_at_once_book_each_payment_once(ctx: Context, shop: str,
                                                                 names: tuple[str, str]) -> None:
    """The same blob delivered twice (same name: both run the import, racing on every
    subscriber of the bucket), or the file dropped twice (the second is refused or a duplicate)."""
    paid = bucket_of_subscribers(ctx, shop, 48)
    data = ocr([(k, t) for _, k, t in paid])
    start = threading.Barrier(2)

    def run(name: str) -> Any:
        start.wait()
        try:
            return payments_in.import_bank_file(ctx, shop, name, data)
        except payments_in.TransmissionConflict as refused:
            return refused

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(run, names))
    reports = [r for r in results if not isinstance(r, Exception)]
    assert reports and all(r.balanced for r in reports)
    booked = sum(r.count(Outcome.BOOKED) for r in reports)
    assert booked == 48  # each payment booked by exactly one of them; the other says already booked
    assert all(r.count(Outcome.BOOKED) + r.count(Outcome.ALREADY_BOOKED) in (0, 48) for r in reports)
    assert all(r.count(Outcome.SET_ASIDE) == 0 for r in reports)
    each_paid_once(ctx, shop, paid)


@pytest.mark.fakes
def test_a_subscriber_changed_by_customer_service_mid_import_gets_both(
        ctx: Context, shop: str, monkeypatch: pytest.MonkeyPatch) -> None:
    paid = bucket_of_subscribers(ctx, shop, 16)
    changed = paid[5][0]
    real = ctx.accounts.commit_many
    calls = 0

    def between_read_and_commit(tenant: str, items: Sequence[Any]) -> list[Any]:
        nonlocal calls
        calls += 1
        if calls == 1:  # the bucket was read; customer service blocks one subscriber's orders now
            set_order_block(ctx, shop, changed, "avisa", "called in")
        return real(tenant, items)

    monkeypatch.setattr(ctx.accounts, "commit_many", between_read_and_commit)
    report = payments_in.import_bank_file(ctx, shop, "ocr.txt", ocr([(k, t) for _, k, t in paid]))
    assert (report.count(Outcome.BOOKED), report.balanced, calls) == (16, True, 1)
    each_paid_once(ctx, shop, paid)
    loaded = ctx.accounts.load(shop, changed)
    assert loaded is not None and loaded.account.order_blocks["avisa"].reason == "called in"


def test_customer_service_racing_the_import_on_the_same_bucket_loses_nothing(ctx: Context, shop: str) -> None:
    paid = bucket_of_subscribers(ctx, shop, 40)
    numbers = [n for n, *_ in paid]
    go = threading.Event()

    def service(k: int) -> None:
        go.wait()
        for n in numbers[k::4]:
            set_order_block(ctx, shop, n, "avisa", f"block {n}")

    with ThreadPoolExecutor(5) as pool:
        racers = [pool.submit(service, k) for k in range(4)]
        importing = pool.submit(lambda: (go.wait(), payments_in.import_bank_file(
            ctx, shop, "ocr.txt", ocr([(k, t) for _, k, t in paid])))[1])
        go.set()
        report = importing.result()
        for racer in racers:
            racer.result()
    assert (report.count(Outcome.BOOKED), report.balanced) == (40, True)
    each_paid_once(ctx, shop, paid)
    for n in numbers:
        loaded = ctx.accounts.load(shop, n)
        assert loaded is not None and loaded.account.order_blocks["avisa"].reason == f"block {n}"


# ---- what the fast path cannot book goes alone, landing as it always did ----------------------

@pytest.mark.fakes
def test_a_payment_for_a_subscriber_that_does_not_exist_is_set_aside_and_its_bucket_is_booked(
        ctx: Context, shop: str) -> None:
    paid = bucket_of_subscribers(ctx, shop, 20)
    nobody = layout_of(ctx, shop).members(BUCKET)[20]  # in the same bucket, never created
    records = [(k, t) for _, k, t in paid]
    records.insert(7, (kid_for(ctx, shop, nobody), 12345))
    report = payments_in.import_bank_file(ctx, shop, "ocr.txt", ocr(records))
    assert (report.count(Outcome.BOOKED), report.count(Outcome.SET_ASIDE), report.balanced) == (20, 1, True)
    (aside,) = payments_in.requires_processing(ctx, shop)
    assert (aside["reason_code"], aside["amount_minor"]) == (Reason.NO_SUCH_SUBSCRIBER.value, 12345)
    assert f"subscriber {nobody}, who does not exist" in aside["reason"]
    each_paid_once(ctx, shop, paid)


@pytest.mark.fakes
def test_a_subscriber_paid_more_often_than_one_transaction_holds_is_booked_alone(ctx: Context, shop: str) -> None:
    paid = bucket_of_subscribers(ctx, shop, 6)
    (many, many_kid, _), (limit, limit_kid, _) = paid[0], paid[1]
    records = [(many_kid, 100 + i) for i in range(PAYMENTS_PER_COMMIT + 1)]
    records += [(limit_kid, 200 + i) for i in range(PAYMENTS_PER_COMMIT)]
    records += [(k, t) for _, k, t in paid[2:]]
    report = payments_in.import_bank_file(ctx, shop, "ocr.txt", ocr(records))
    assert (report.count(Outcome.BOOKED), report.amount(Outcome.BOOKED), report.balanced) == (
        len(records), sum(a for _, a in records), True)
    assert sorted(a for _, a in payments_of(ctx, shop, many)) == sorted(100 + i for i in range(PAYMENTS_PER_COMMIT + 1))
    assert sorted(a for _, a in payments_of(ctx, shop, limit)) == sorted(200 + i for i in range(PAYMENTS_PER_COMMIT))
    each_paid_once(ctx, shop, paid[2:])


@pytest.mark.fakes
@pytest.mark.parametrize("fault", ["the bucket read fails", "one subscriber's commit fails",
                                   "the whole commit raises", "a decision raises"])
def test_a_failure_in_the_fast_path_books_those_subscribers_alone(
        ctx: Context, shop: str, monkeypatch: pytest.MonkeyPatch, fault: str) -> None:
    paid = bucket_of_subscribers(ctx, shop, 12)
    hit = paid[4][0]
    if fault == "the bucket read fails":
        def read_many(*_args: Any) -> Any:
            raise ServiceResponseError("connection reset")
        monkeypatch.setattr(ctx.accounts, "load_many", read_many)
    elif fault == "a decision raises":
        monkeypatch.setattr(booking, "_receive", _failing_receive(hit))
    else:
        real = ctx.accounts.commit_many

        def commit_many(tenant: str, items: Sequence[Any]) -> list[Any]:
            if fault == "the whole commit raises":
                raise ServiceResponseError("timed out")
            answers = real(tenant, [i for i in items if i[1].account.number != hit])
            it = iter(answers)
            return [ServiceResponseError("throttled") if i[1].account.number == hit else next(it) for i in items]

        monkeypatch.setattr(ctx.accounts, "commit_many", commit_many)
    report = payments_in.import_bank_file(ctx, shop, "ocr.txt", ocr([(k, t) for _, k, t in paid]))
    assert (report.count(Outcome.BOOKED), report.balanced) == (12, True)
    each_paid_once(ctx, shop, paid)


def _failing_receive(hit: int) -> Callable[..., Any]:
    """``booking._receive`` that raises for subscriber ``hit`` in the fast path (its first call)."""
    real = booking._receive
    failed: list[int] = []

    def receive(seen: Any, payments: Any) -> Any:
        if seen.account.number == hit and not failed:
            failed.append(hit)
            raise ServiceResponseError("a passing failure")
        return real(seen, payments)

    return receive


# ---- any OCR file ------------------------------------------------------------------------------

SUBSCRIBERS = 3
records = st.lists(st.tuples(st.sampled_from(["valid", "valid", "valid", "bad check digit", "nobody"]),
                             st.integers(0, SUBSCRIBERS - 1), st.integers(1, 60000)), min_size=1, max_size=24)


@pytest.mark.fakes
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture],
          phases=[Phase.explicit, Phase.reuse, Phase.generate])
@given(items=records)
def test_any_ocr_file_paying_a_bucket_lands_every_record_once_and_adds_up(
        ctx: Context, items: list[tuple[str, int, int]]) -> None:
    tenant = f"b{uuid.uuid4().hex[:10]}"
    install_catalogue(ctx, tenant)
    paid = bucket_of_subscribers(ctx, tenant, SUBSCRIBERS)
    nobody = layout_of(ctx, tenant).members(BUCKET)[SUBSCRIBERS]
    lines = []
    for how, who, amount in items:
        kid = paid[who][1] if how != "nobody" else kid_for(ctx, tenant, nobody)
        if how == "bad check digit":
            kid = kid[:-1] + str((int(kid[-1]) + 1) % 10)
        lines.append((kid, amount))
    data = ocr(lines)
    report = payments_in.import_bank_file(ctx, tenant, "ocr.txt", data)
    good = [(paid[who][0], amount) for how, who, amount in items if how == "valid"]
    assert report.balanced and report.records == len(items)
    assert (report.count(Outcome.BOOKED), report.amount(Outcome.BOOKED)) == (len(good), sum(a for _, a in good))
    assert report.count(Outcome.SET_ASIDE) == len(items) - len(good)
    assert len(payments_in.requires_processing(ctx, tenant)) == len(items) - len(good)
    for n, _kid, total in paid:
        mine = sorted(a for who, a in good if who == n)
        assert sorted(a for _, a in payments_of(ctx, tenant, n)) == mine
        assert balance(ctx, tenant, n) == sum(mine) - total
    again = payments_in.import_bank_file(ctx, tenant, "again.txt", data)
    assert (again.status, again.count(Outcome.BOOKED), again.count(Outcome.DUPLICATE)) == (
        "duplicate", 0, len(items))
    assert sum(len(payments_of(ctx, tenant, n)) for n, *_ in paid) == len(good)


FATES = ["committed", "refused", "failed", "committed, answer lost"]


@pytest.mark.fakes
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture],
          phases=[Phase.explicit, Phase.reuse, Phase.generate])
@given(fates=st.lists(st.sampled_from(FATES), min_size=6, max_size=6),
       payments=st.lists(st.integers(1, 3), min_size=6, max_size=6))
def test_whatever_the_buckets_commit_answers_for_each_subscriber_every_payment_lands_once(
        ctx: Context, fates: list[str], payments: list[int]) -> None:
    """Fault injection at the bucket's commit, per subscriber: refused (a racer's ETag), failed
    (nothing written), or written with the answer lost. Each is booked alone as the retry of
    that attempt: booked once, and said to be already booked exactly when the lost answer did."""
    tenant = f"f{uuid.uuid4().hex[:10]}"
    install_catalogue(ctx, tenant)
    paid = bucket_of_subscribers(ctx, tenant, 6)
    fate = {n: f for (n, *_), f in zip(paid, fates, strict=True)}
    real = ctx.accounts.commit_many
    calls: list[int] = []

    def injected(t: str, items: Sequence[Any]) -> list[Any]:
        calls.append(len(items))
        if len(calls) > 1:
            return real(t, items)
        written = [i for i in items if fate[i[1].account.number] in ("committed", "committed, answer lost")]
        answers = iter(real(t, written))
        out: list[Any] = []
        for item in items:
            f = fate[item[1].account.number]
            answer = next(answers) if f in ("committed", "committed, answer lost") else None
            out.append(answer if f == "committed" else ConcurrencyConflict("refused") if f == "refused"
                       else ServiceResponseError("no answer"))
        return out

    ctx.accounts.commit_many = injected  # type: ignore[method-assign]
    try:
        lines = [(kid, 100 * (k + 1)) for (_, kid, _), count in zip(paid, payments, strict=True)
                 for k in range(count)]
        report = payments_in.import_bank_file(ctx, tenant, "ocr.txt", ocr(lines))
    finally:
        del ctx.accounts.commit_many
    lost = sum(count for (n, *_), count in zip(paid, payments, strict=True) if fate[n] == "committed, answer lost")
    assert (report.count(Outcome.ALREADY_BOOKED), report.count(Outcome.BOOKED)) == (lost, len(lines) - lost)
    assert report.balanced and report.amount(Outcome.BOOKED) + report.amount(Outcome.ALREADY_BOOKED) == sum(
        a for _, a in lines)
    for (n, _kid, _total), count in zip(paid, payments, strict=True):
        assert sorted(a for _, a in payments_of(ctx, tenant, n)) == [100 * (k + 1) for k in range(count)], n
