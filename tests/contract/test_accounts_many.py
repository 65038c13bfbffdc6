"""The many-subscriber contract of ``Accounts`` (issue 13): ``partition_of``, ``load_many`` and
``commit_many``, on Azurite and on the fake alike (``[azurite]``, ``[in_memory]``).

Many subscribers share one bucket partition here (``Layout(3, bucket_size=8, stride=1)``:
numbers ``8k .. 8k+7`` are bucket ``k``), so every read is checked for isolation: a
subscriber sees its own rows and nobody else's through every read the port has."""

from __future__ import annotations

import itertools
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.domain.account import Account, Changes, ReminderDocument
from shared.domain.dunning import Reminder
from shared.domain.invoicing import CreditNote, Invoice
from shared.domain.ledger import EntryKind, LedgerEntry
from shared.domain.payments import BookedPayment, MatchType, PaymentState, ReceivedPayment
from shared.domain.placement import FIRST, Layout
from shared.domain.subscriptions import Subscriber
from shared.ports import ConcurrencyConflict, Delivery, DeliveryStatus, Loaded, TooManyEntities
from shared.service.context import Context
from tests.contract.test_ports import DAY, subscription, with_invoice

pytestmark = pytest.mark.fakes
SMALL = Layout(3, bucket_size=8, stride=1)  # numbers 8k .. 8k+7 share bucket k
AT = datetime(2026, 1, 5, 8, tzinfo=UTC)


def in_small_buckets(ctx: Context, tenant: str) -> None:
    """The tenant's layout before any data: on Azurite the adapter's ``layouts``, on the fake its ``layout``."""
    if hasattr(ctx.accounts, "layouts"):
        ctx.accounts.layouts.set(tenant, SMALL)
    else:
        ctx.accounts.layout = SMALL  # type: ignore[attr-defined]


def account(n: int, subs: int = 1) -> Account:
    a = Account(Subscriber(n, f"Payer {n}", f"payer{n}@example.no"), balances={"avisa": -n})
    for k in range(subs):
        a = a.with_subscription(subscription(n, k))
    return a


def created(n: int, subs: int = 1, **documents: Any) -> tuple[None, Changes]:
    a = account(n, subs)
    return None, Changes(a, subscriptions=tuple(a.subscriptions.values()), **documents)


def commit_new(ctx: Context, tenant: str, numbers: list[int], subs: int = 1) -> dict[int, Loaded]:
    answers = ctx.accounts.commit_many(tenant, [created(n, subs) for n in numbers])
    assert all(isinstance(a, Loaded) for a in answers), [repr(a)[:300] for a in answers if not isinstance(a, Loaded)]
    return {n: a for n, a in zip(numbers, answers, strict=True) if isinstance(a, Loaded)}


def round_trips(ctx: Context) -> int:
    """Storage calls so far: requests on Azurite, transactions and bucket queries on the fake."""
    storage = getattr(ctx, "storage", None)
    if storage is not None and hasattr(storage, "round_trips"):
        return int(storage.round_trips.count)
    return int(ctx.accounts.commits + ctx.accounts.queries)  # type: ignore[attr-defined]


# ---- documents for one subscriber ----------------------------------------------------------------


def payment(n: int, k: int) -> BookedPayment:
    received = ReceivedPayment(f"pay-{n}-{k}", "avisa", "NOK", 100 * n + k, DAY, "ocr", MatchType.NO_INVOICE)
    return BookedPayment(received, PaymentState.COMPLETED, DAY, (), 100 * n + k)


def documents_for(template: Invoice, n: int, invoices: int, reminders: int, credits: int, payments: int
                  ) -> dict[str, tuple[Any, ...]]:
    inv = tuple(replace(template, number=1000 * n + k, demand_no=k + 1, kid=f"{n:06d}{k:04d}")
                for k in range(invoices))
    rem = tuple(ReminderDocument(Reminder(1, DAY, DAY, 3500, 10000 + n, 50 + k, f"9{n:05d}{k:04d}"), 1000 * n, 1,
                                 "avisa", "NOK", f"s{n}-0") for k in range(reminders))
    crn = tuple(CreditNote(2000 * n + k, 1000 * n, 1, "avisa", "NOK", f"s{n}-0", DAY, 100 + k, f"why {n}")
                for k in range(credits))
    led = tuple(LedgerEntry(k + 1, "avisa", "NOK", DAY, EntryKind.INVOICE, -(n * 10 + k), f"ref {n}/{k}")
                for k in range(invoices + credits))
    return {"invoices": inv, "reminders": rem, "credit_notes": crn, "ledger": led,
            "payments": tuple(payment(n, k) for k in range(payments))}


def delivery(n: int, k: int) -> Delivery:
    return Delivery(f"invoice-{n}-{k}", "email", 1, DeliveryStatus.SENT, AT, recipient=f"payer{n}@example.no")


def assert_reads_only_its_own(ctx: Context, tenant: str, n: int, docs: dict[str, tuple[Any, ...]], subs: int,
                              deliveries: int, loaded_many: Loaded) -> None:
    loaded = ctx.accounts.load(tenant, n)
    assert loaded is not None and loaded.account == account(n, subs)
    assert loaded_many.account == loaded.account and loaded_many.etag == loaded.etag
    history = ctx.accounts.documents(tenant, n)
    assert sorted(history.invoices, key=lambda i: i.demand_no) == list(docs["invoices"])
    assert sorted(history.reminders, key=lambda r: r.reminder.demand_no) == list(docs["reminders"])
    assert sorted(history.credit_notes, key=lambda c: c.number) == list(docs["credit_notes"])
    assert sorted(history.ledger, key=lambda e: e.seq) == list(docs["ledger"])
    assert ctx.accounts.history(tenant, n) == (history.invoices, history.ledger)
    assert sorted(ctx.accounts.payments(tenant, n), key=lambda b: b.payment.id) == sorted(
        docs["payments"], key=lambda b: b.payment.id)
    others = [f"pay-{m}-{k}" for m in range(n - 8, n + 9) if m != n for k in range(3)]
    mine = [b.payment.id for b in docs["payments"]]
    assert ctx.accounts.booked(tenant, n, [*mine, *others, f"pay-{n}-9"]) == set(mine)
    for k in range(1, 4):  # demand numbers every subscriber of the bucket may have used
        invoice = next((i for i in docs["invoices"] if i.demand_no == k), None)
        assert ctx.accounts.invoice(tenant, n, k) == invoice
        assert ctx.accounts.load_with_invoice(tenant, n, k) == (loaded, invoice)
    for k in range(50, 53):
        assert ctx.accounts.reminder(tenant, n, k) == next(
            (r for r in docs["reminders"] if r.reminder.demand_no == k), None)
    assert [d.document_id for d in ctx.deliveries.list(tenant, n)] == [f"invoice-{n}-{k}" for k in range(deliveries)]
    assert ctx.deliveries.list(tenant, n, f"invoice-{n + 1}-0") == []
    assert ctx.deliveries.get(tenant, n, f"invoice-{n + 1}-0", "email", 1) is None


# ---- partition_of, load_many -----------------------------------------------------------------


def test_subscribers_of_one_bucket_share_a_partition_and_load_many_reads_each_bucket_once(
        ctx: Context, tenant: str) -> None:
    in_small_buckets(ctx, tenant)
    assert len({ctx.accounts.partition_of(tenant, n) for n in range(8, 16)}) == 1
    assert len({ctx.accounts.partition_of(tenant, n) for n in (7, 8, 16, 24)}) == 4
    committed = commit_new(ctx, tenant, [*range(8, 15), 17, 18])  # 15 never created
    before = round_trips(ctx)
    many = ctx.accounts.load_many(tenant, [*range(8, 16), 17, 18, 8])
    assert round_trips(ctx) - before == 2  # one query per bucket, however many subscribers in it
    assert sorted(many) == [*range(8, 15), 17, 18]  # no partition, left out; a repeat read once
    for n, one in many.items():
        assert one.account == account(n) and one.etag == committed[n].etag == ctx.accounts.load(tenant, n).etag
    assert ctx.accounts.load_many(tenant, []) == {} and ctx.accounts.load_many(tenant, [15, 23]) == {}


def test_a_bucket_of_many_subscribers_with_many_rows_each_reads_back_each_subscriber_exactly(
        ctx: Context, tenant: str) -> None:
    in_small_buckets(ctx, tenant)
    numbers = list(range(8, 16))
    commit_new(ctx, tenant, numbers, subs=12)  # 8 x 13 rows: more than one transaction
    many = ctx.accounts.load_many(tenant, numbers)
    assert {n: sorted(one.account.subscriptions) for n, one in many.items()} == {
        n: sorted(account(n, 12).subscriptions) for n in numbers}


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(0, 7), st.integers(0, 3), st.integers(0, 2), st.integers(0, 2),
                          st.integers(0, 3), st.integers(0, 2), st.integers(1, 3)),
                min_size=1, max_size=8, unique_by=lambda t: t[0]))
def test_random_documents_for_random_subscribers_of_one_bucket_each_read_back_exactly_its_own(
        ctx: Context, shop: str, plan: list[tuple[int, int, int, int, int, int, int]]) -> None:
    in_small_buckets(ctx, shop)  # the same each example: the fixtures' tenant lives through them all
    bucket = next(_buckets)  # a fresh bucket each example
    template = with_invoice(ctx.catalogue.get(shop), 1).invoices[0]
    docs: dict[int, dict[str, tuple[Any, ...]]] = {}
    items = []
    for slot, invoices, reminders, credits, payments, _dlv, subs in plan:
        n = 8 * bucket + slot
        docs[n] = documents_for(template, n, invoices, reminders, credits, payments)
        items.append(created(n, subs, **docs[n]))
    answers = ctx.accounts.commit_many(shop, items)
    assert all(isinstance(a, Loaded) for a in answers), [repr(a)[:300] for a in answers if not isinstance(a, Loaded)]
    for slot, *_rest, dlv, _subs in plan:
        for k in range(dlv):
            ctx.deliveries.claim(shop, 8 * bucket + slot, delivery(8 * bucket + slot, k))
    many = ctx.accounts.load_many(shop, [8 * bucket + k for k in range(8)])
    assert sorted(many) == sorted(docs)
    for slot, *_rest, dlv, subs in plan:
        n = 8 * bucket + slot
        assert_reads_only_its_own(ctx, shop, n, docs[n], subs, dlv, many[n])


_buckets = itertools.count(1)


def test_the_tenant_scan_reads_each_subscriber_of_a_shared_bucket_once_with_its_own_documents(
        ctx: Context, shop: str) -> None:
    in_small_buckets(ctx, shop)
    template = with_invoice(ctx.catalogue.get(shop), 1).invoices[0]
    docs = {n: documents_for(template, n, n % 3, 0, 0, 0) for n in range(8, 13)}
    assert all(isinstance(a, Loaded) for a in ctx.accounts.commit_many(
        shop, [created(n, **docs[n]) for n in docs]))
    scanned = {loaded.account.number: history for loaded, history in ctx.accounts.scan_tenant(shop)}
    assert sorted(scanned) == sorted(docs)
    for n, history in scanned.items():
        assert sorted(history.invoices, key=lambda i: i.demand_no) == list(docs[n]["invoices"])


# ---- commit_many ---------------------------------------------------------------------------------


def transactions(ctx: Context) -> int:
    return int(ctx.accounts.commits if hasattr(ctx.accounts, "commits") else ctx.storage.round_trips.count)


def test_commit_many_packs_whole_subscribers_into_transactions_of_at_most_100_rows(ctx: Context, tenant: str) -> None:
    in_small_buckets(ctx, tenant)
    numbers = list(range(8, 16))
    before = round_trips(ctx)
    commit_new(ctx, tenant, numbers, subs=23)  # 24 rows each: 4 per transaction (96), 8 -> 2 transactions
    sent = round_trips(ctx) - before
    assert sent == (2 if hasattr(ctx, "storage") and hasattr(ctx.storage, "round_trips") else len(numbers))
    loaded = ctx.accounts.load_many(tenant, numbers)
    assert all(len(loaded[n].account.subscriptions) == 23 for n in numbers)  # nobody split
    before = round_trips(ctx)
    commit_new(ctx, tenant, list(range(16, 24)), subs=11)  # 12 rows each: 8 in one transaction (96)
    assert round_trips(ctx) - before in (1, 8)


def test_one_stale_etag_conflicts_only_its_subscriber_and_the_others_commit(ctx: Context, tenant: str) -> None:
    in_small_buckets(ctx, tenant)
    numbers = list(range(8, 16))
    commit_new(ctx, tenant, numbers)
    many = ctx.accounts.load_many(tenant, numbers)
    for stale in (8, 12, 15):  # first, middle and last of the transaction
        ctx.accounts.commit(tenant, many[stale], Changes(replace(many[stale].account, balances={"avisa": 1})))
    renamed = {n: replace(many[n].account, subscriber=replace(many[n].account.subscriber, name=f"New {n}"))
               for n in numbers}
    answers = ctx.accounts.commit_many(tenant, [(many[n], Changes(renamed[n])) for n in numbers])
    for n, answer in zip(numbers, answers, strict=True):
        now = ctx.accounts.load(tenant, n)
        assert now is not None
        if n in (8, 12, 15):
            assert isinstance(answer, ConcurrencyConflict), (n, answer)
            assert now.account.subscriber.name == f"Payer {n}" and now.account.balances == {"avisa": 1}
        else:
            assert isinstance(answer, Loaded) and answer.etag == now.etag, (n, answer)
            assert now.account == renamed[n]


def test_a_payment_booked_twice_conflicts_only_that_subscriber(ctx: Context, tenant: str) -> None:
    in_small_buckets(ctx, tenant)
    numbers = list(range(8, 14))
    commit_new(ctx, tenant, numbers)
    many = ctx.accounts.load_many(tenant, numbers)
    first = ctx.accounts.commit(tenant, many[11], Changes(many[11].account, payments=(payment(11, 0),)))
    many[11] = first
    answers = ctx.accounts.commit_many(tenant, [(many[n], Changes(many[n].account, payments=(payment(n, 0),)))
                                                for n in numbers])
    assert [type(a).__name__ for a in answers] == ["Loaded"] * 3 + ["ConcurrencyConflict"] + ["Loaded"] * 2
    assert {n: [b.payment.id for b in ctx.accounts.payments(tenant, n)] for n in numbers} == {
        n: [f"pay-{n}-0"] for n in numbers}
    assert ctx.accounts.load(tenant, 11).etag == first.etag  # the refused one wrote nothing


def test_too_many_rows_for_one_subscriber_fail_it_alone_before_anything_is_sent(ctx: Context, tenant: str) -> None:
    in_small_buckets(ctx, tenant)
    answers = ctx.accounts.commit_many(tenant, [created(8), created(9, subs=100), created(10)])
    assert isinstance(answers[0], Loaded) and isinstance(answers[2], Loaded)
    assert isinstance(answers[1], TooManyEntities)
    assert sorted(ctx.accounts.load_many(tenant, [8, 9, 10])) == [8, 10]


def test_a_new_subscriber_created_twice_in_one_call_is_created_once(ctx: Context, tenant: str) -> None:
    in_small_buckets(ctx, tenant)
    answers = ctx.accounts.commit_many(tenant, [created(8), created(9), created(8)])
    assert [type(a).__name__ for a in answers].count("Loaded") == 2
    assert isinstance(answers[1], Loaded)
    assert sum(isinstance(a, ConcurrencyConflict) for a in answers) == 1
    assert sorted(ctx.accounts.load_many(tenant, [8, 9])) == [8, 9]


# ---- a hypothesis property: good, stale and duplicate items mixed ----------------------------------


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(["good", "stale", "duplicate", "too_many", "new"]), min_size=1, max_size=8),
       st.integers(0, 40))
def test_random_mixes_commit_exactly_the_good_ones_each_failing_one_gets_its_own_exception(
        ctx: Context, tenant: str, kinds: list[str], subs: int) -> None:
    t = f"{tenant}{uuid.uuid4().hex[:6]}"
    in_small_buckets(ctx, t)
    numbers = [8 + k for k in range(len(kinds))]
    existing = [n for n, kind in zip(numbers, kinds, strict=True) if kind not in ("new",)]
    commit_new(ctx, t, existing)
    many = ctx.accounts.load_many(t, existing)
    for n, kind in zip(numbers, kinds, strict=True):
        if kind == "stale":
            ctx.accounts.commit(t, many[n], Changes(many[n].account))
        if kind == "duplicate":
            many[n] = ctx.accounts.commit(t, many[n], Changes(many[n].account, payments=(payment(n, 0),)))
    items: list[tuple[Loaded | None, Changes]] = []
    for n, kind in zip(numbers, kinds, strict=True):
        if kind == "new":
            items.append(created(n, subs=subs % 5))
            continue
        extra = tuple(subscription(n, 100 + k) for k in range(100 if kind == "too_many" else subs))
        after = account(n, 1)
        for s in extra:
            after = after.with_subscription(s)
        items.append((many[n], Changes(after, subscriptions=extra, payments=(payment(n, 0),))))
    answers = ctx.accounts.commit_many(t, items)
    expected = {"good": Loaded, "new": Loaded, "stale": ConcurrencyConflict, "duplicate": ConcurrencyConflict,
                "too_many": TooManyEntities}
    assert [type(a) for a in answers] == [expected[k] for k in kinds]
    for n, kind, (_loaded, changes) in zip(numbers, kinds, items, strict=True):
        now = ctx.accounts.load(t, n)
        assert now is not None
        paid = [b.payment.id for b in ctx.accounts.payments(t, n)]
        if kind in ("good", "new"):
            assert now.account == changes.account and paid == ([f"pay-{n}-0"] if kind == "good" else [])
        else:  # nothing of it written: its subscriptions and payments as before
            assert sorted(now.account.subscriptions) == [f"s{n}-0"]
            assert paid == ([f"pay-{n}-0"] if kind == "duplicate" else [])


# ---- layout 2 (a partition per subscriber): the same contract, one partition each -----------------


def in_first_shape(ctx: Context, tenant: str) -> None:
    if hasattr(ctx.accounts, "layouts"):
        ctx.accounts.layouts.set(tenant, FIRST)
    else:
        ctx.accounts.layout = FIRST  # type: ignore[attr-defined]


def test_in_the_first_shape_every_subscriber_is_a_partition_of_its_own_and_commit_many_still_isolates(
        ctx: Context, tenant: str) -> None:
    in_first_shape(ctx, tenant)
    numbers = list(range(8, 14))
    assert len({ctx.accounts.partition_of(tenant, n) for n in numbers}) == len(numbers)
    commit_new(ctx, tenant, numbers)
    many = ctx.accounts.load_many(tenant, numbers)
    assert sorted(many) == numbers and all(many[n].account == account(n) for n in numbers)
    ctx.accounts.commit(tenant, many[10], Changes(many[10].account))  # 10 is stale now
    answers = ctx.accounts.commit_many(tenant, [(many[n], Changes(many[n].account, payments=(payment(n, 0),)))
                                                for n in numbers])
    assert [isinstance(a, ConcurrencyConflict) for a in answers] == [n == 10 for n in numbers]
    assert {n: len(ctx.accounts.payments(tenant, n)) for n in numbers} == {n: int(n != 10) for n in numbers}


def test_concurrency_stays_per_subscriber_in_a_shared_bucket_commits_and_fences_touch_only_their_own(
        ctx: Context, tenant: str) -> None:
    in_small_buckets(ctx, tenant)
    numbers = list(range(8, 16))
    commit_new(ctx, tenant, numbers)
    first = ctx.accounts.load_many(tenant, numbers)
    for _ in range(3):  # subscriber 8 changes again and again, alone and in a commit_many
        now = ctx.accounts.load(tenant, 8)
        ctx.accounts.commit(tenant, now, Changes(replace(now.account, balances={"avisa": -1})))
    assert ctx.accounts.fence(tenant, 9) is True and ctx.accounts.fence(tenant, 16) is False
    answers = ctx.accounts.commit_many(tenant, [(first[n], Changes(first[n].account)) for n in numbers])
    assert [isinstance(a, ConcurrencyConflict) for a in answers] == [n in (8, 9) for n in numbers]
    assert all(isinstance(a, Loaded) for n, a in zip(numbers, answers, strict=True) if n not in (8, 9))


@pytest.mark.parametrize("stranger", [0, 7, 16, 10**10 + 8, 10**10 * 8 + 8, 123456789012])
def test_a_number_nobody_has_reads_nothing_of_a_full_bucket_whatever_its_digits(
        ctx: Context, shop: str, stranger: int) -> None:
    """A number from outside (a KID, a path) that nobody has, even one longer than the ten
    digits of a row key, reads no row of the subscribers it shares a bucket or a prefix with."""
    in_small_buckets(ctx, shop)
    template = with_invoice(ctx.catalogue.get(shop), 1).invoices[0]
    numbers = [*range(8, 16), 800_000, 1_000_000]
    docs = {n: documents_for(template, n, 2, 1, 1, 2) for n in numbers}
    answers = ctx.accounts.commit_many(shop, [created(n, **docs[n]) for n in numbers])
    assert all(isinstance(a, Loaded) for a in answers), [repr(a)[:300] for a in answers if not isinstance(a, Loaded)]
    for n in numbers:
        ctx.deliveries.claim(shop, n, delivery(n, 0))
    assert ctx.accounts.load(shop, stranger) is None and ctx.accounts.load_many(shop, [stranger]) == {}
    history = ctx.accounts.documents(shop, stranger)
    assert (history.invoices, history.ledger, history.reminders, history.credit_notes) == ([], [], [], [])
    assert ctx.accounts.payments(shop, stranger) == [] and ctx.accounts.invoice(shop, stranger, 1) is None
    assert ctx.accounts.booked(shop, stranger, [f"pay-{n}-0" for n in numbers]) == set()
    assert ctx.accounts.load_with_invoice(shop, stranger, 1) == (None, None)
    assert ctx.deliveries.list(shop, stranger) == []


@pytest.mark.parametrize("what", ["invoice number past Int32", "amount past Int32", "name of 30 000 ø",
                                  "name past 64 KiB", "ledger amount past Int64"])
def test_commit_many_accepts_and_refuses_what_commit_does(ctx: Context, shop: str, what: str) -> None:
    in_small_buckets(ctx, shop)
    template = with_invoice(ctx.catalogue.get(shop), 1).invoices[0]

    def changes(n: int) -> Changes:
        a = account(n)
        if what == "invoice number past Int32":
            return Changes(a, invoices=(replace(template, number=3_000_000_000 + n),))
        if what == "amount past Int32":
            return Changes(a, payments=(replace(payment(n, 0), credit_minor=2**40),))
        if what == "ledger amount past Int64":
            return Changes(a, ledger=(LedgerEntry(1, "avisa", "NOK", DAY, EntryKind.INVOICE, -2**70, "r"),))
        name = ("ø" * 30_000) if what == "name of 30 000 ø" else "x" * 40_000
        return Changes(replace(a, subscriber=replace(a.subscriber, name=name)))

    def outcome(call: Any) -> str:
        try:
            call()
            return "committed"
        except Exception as exc:
            return type(exc).__name__

    alone = outcome(lambda: ctx.accounts.commit(shop, None, changes(8)))
    (many,) = ctx.accounts.commit_many(shop, [(None, changes(9))])
    assert (type(many).__name__ if isinstance(many, Exception) else "committed") == alone
    assert (ctx.accounts.load(shop, 9) is None) == (alone != "committed")
