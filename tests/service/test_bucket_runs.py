"""The invoice run in bucket partitions (issue 13), on Azurite: what a full bucket of renewals
costs in round trips, customer service racing the run on subscribers of the same bucket, and
faults between the steps of ``buckets.in_partition`` (the index written ahead, one transaction
of a bucket's several). Whatever happens: every invoice once, the numbers of the series
gapless, nobody lost, a failing subscriber retried alone or recorded and the others done."""

from __future__ import annotations

import json
import math
import threading
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import date
from typing import Any

import pytest
from azure.core.exceptions import ServiceResponseError
from azure.data.tables._serialize import _add_entity_properties
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.adapters.accounts import TABLE
from shared.adapters.tables import _to_table
from shared.domain.account import Account, Changes, Correction
from shared.domain.placement import Layout
from shared.domain.subscriptions import Subscriber
from shared.ports import Loaded, StorageLimit, Unavailable
from shared.service import billing, customer_service, isolation
from shared.service.billing import bill_subscribers, start_invoice_run
from shared.service.buckets import grouped, in_partition
from shared.service.context import Context
from shared.service.customer_service import LineSpec
from shared.service.orders import place_order
from shared.service.unit_of_work import Seen, UnitOfWork
from tests.conftest import oslo_morning
from tests.contract.test_ports import subscription
from tests.fakes import FakeContext
from tests.fixtures import install_catalogue, order
from tests.service.test_isolation import run
from tests.service.test_numbering_gapless import series

RENEWAL_DAY = date(2026, 1, 22)  # orders of 5 Jan renew on 5 Feb, produced 14 days before
ONE_BUCKET = Layout(3, bucket_size=64, stride=1)  # numbers 64k .. 64k+63 share bucket k
RENEWAL = 34800 + 3900  # the renewal of digital-monthly after the first period (test_isolation)


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(isolation, "BACKOFF_S", 0.0)


def a_full_bucket(ctx: Context, shop: str, layout: Layout = ONE_BUCKET) -> tuple[list[int], list[int]]:
    """Orders until one bucket is full; (every subscriber placed, the full bucket's members)."""
    ctx.accounts.layouts.set(shop, layout)  # type: ignore[attr-defined]
    placed: list[int] = []
    by_bucket: dict[int, list[int]] = {}
    while True:
        n = place_order(ctx, order(shop, len(placed) + 1)).subscriber_no
        placed.append(n)
        members = by_bucket.setdefault(layout.bucket(n), [])
        members.append(n)
        if len(members) == layout.bucket_size:
            assert len(grouped(ctx, shop, members)) == 1
            return placed, members


def invoice_numbers(ctx: Context, shop: str, numbers: list[int]) -> list[int]:
    return sorted(i.number for n in numbers for i in ctx.accounts.documents(shop, n).invoices)


def renewals_of(ctx: Context, shop: str, n: int) -> list[int]:
    return [i.draft.period_index for i in ctx.accounts.documents(shop, n).invoices if i.draft.period_index == 1]


def assert_every_renewal_once_and_numbers_gapless(ctx: Context, shop: str, placed: list[int], members: list[int],
                                                  extra: int = 0) -> None:
    assert {n: renewals_of(ctx, shop, n) for n in members} == {n: [1] for n in members}
    numbers = invoice_numbers(ctx, shop, placed)
    assert numbers == list(range(1, len(placed) + len(members) + extra + 1))  # no gap, none twice


# ---- round trips ---------------------------------------------------------------------------------


def test_a_full_bucket_of_64_renewals_costs_one_query_the_claim_and_its_transactions(ctx: Context, shop: str) -> None:
    placed, members = a_full_bucket(ctx, shop)
    ctx.clock.set(oslo_morning(RENEWAL_DAY))  # type: ignore[attr-defined]
    ctx.catalogue.get(shop)  # the catalogue is cached: not part of a batch's cost
    sent: list[int] = []
    transact = ctx.storage.transact

    def counting(table: str, ops: Any) -> Any:
        if table == TABLE:
            sent.append(len(ops))
        return transact(table, ops)

    ctx.storage.transact = counting  # type: ignore[method-assign]
    before = ctx.storage.round_trips.count
    result = bill_subscribers(ctx, shop, RENEWAL_DAY, members)
    trips = ctx.storage.round_trips.count - before
    assert (result.invoices, result.needs_attention, result.conflicts) == (64, 0, 0)
    ops, each = sum(sent), sum(sent) // 64  # every renewal writes the same rows
    assert ops == 64 * each and all(n <= 100 for n in sent)
    assert all(n + each > 100 for n in sent[:-1]) and len(sent) == math.ceil(64 / (100 // each))  # packed full
    assert trips == 1 + 1 + len(sent), (trips, sent)  # the bucket's query, the series' claim, the transactions
    assert_every_renewal_once_and_numbers_gapless(ctx, shop, placed, members)


# ---- concurrency ---------------------------------------------------------------------------------


def test_customer_service_racing_the_run_on_the_same_bucket_loses_nothing_and_numbers_stay_gapless(
        ctx: Context, shop: str) -> None:
    placed, members = a_full_bucket(ctx, shop)
    ctx.clock.set(oslo_morning(RENEWAL_DAY))  # type: ignore[attr-defined]
    chosen = members[::4]  # 16 subscribers of the bucket get customer service during the run
    errors: list[BaseException] = []
    start = threading.Barrier(3)

    def serve(part: list[int]) -> None:
        start.wait()
        for n in part:
            try:
                customer_service.add_correction(ctx, shop, n, "avisa", -100 - n, f"goodwill {n}", f"cs-{n}")
                customer_service.additional_invoice(ctx, shop, n, "avisa", [LineSpec("Extra copy", 5000)],
                                                    f"extra-{n}", 14)
            except BaseException as exc:
                errors.append(exc)

    outcome: list[Any] = []

    def run() -> None:
        start.wait()
        outcome.append(bill_subscribers(ctx, shop, RENEWAL_DAY, members))

    threads = [threading.Thread(target=serve, args=(chosen[:8],)), threading.Thread(target=serve, args=(chosen[8:],)),
               threading.Thread(target=run)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and outcome[0].needs_attention == 0
    assert_every_renewal_once_and_numbers_gapless(ctx, shop, placed, members, extra=len(chosen))
    for n in chosen:  # each additional invoice issued once
        refs = [i.draft.ref for i in ctx.accounts.documents(shop, n).invoices if i.draft.period_index != 1
                and i.draft.ref]
        assert refs == [f"{n}.extra-{n}"], (n, refs)
    for n in members:  # a correction is on the renewal or still waiting for the next: never lost, never twice
        loaded = ctx.accounts.load(shop, n)
        assert loaded is not None
        (renewal,) = [i for i in ctx.accounts.documents(shop, n).invoices if i.draft.period_index == 1]
        waiting = sum(c.amount_minor for c in loaded.account.corrections)
        assert renewal.total_minor - RENEWAL + waiting == (-100 - n if n in chosen else 0), n


# ---- faults between the steps ------------------------------------------------------------------


def fail_transactions(ctx: Context, monkeypatch: pytest.MonkeyPatch, which: Callable[[int, list[Any]], bool],
                      after: bool = False, error: Callable[[], Exception] = lambda: ServiceResponseError("reset")
                      ) -> list[int]:
    """Make the Subscribers transactions ``which`` accepts (their count so far, their ops) fail:
    before they are sent, or (``after``) once they went through, as a lost response."""
    calls: list[int] = []
    transact = ctx.storage.transact

    def flaky(table: str, ops: Any) -> Any:
        if table != TABLE:
            return transact(table, ops)
        calls.append(len(ops))
        if which(len(calls), list(ops)) and not after:
            raise error()
        result = transact(table, ops)
        if which(len(calls), list(ops)) and after:
            raise error()
        return result

    monkeypatch.setattr(ctx.storage, "transact", flaky)
    return calls


def subscribers_in(ops: list[Any]) -> set[str]:
    return {op[1]["RowKey"][2:12] for op in ops}


def test_one_of_a_buckets_transactions_failing_once_sends_its_subscribers_alone_and_the_others_commit(
        ctx: Context, shop: str, monkeypatch: pytest.MonkeyPatch) -> None:
    placed, members = a_full_bucket(ctx, shop)
    calls = fail_transactions(ctx, monkeypatch, lambda k, ops: k == 2)  # the second of the bucket's transactions
    result = bill_subscribers(ctx, shop, RENEWAL_DAY, members)
    assert (result.invoices, result.needs_attention) == (64, 0)
    assert len(calls) > 3  # the failed one's subscribers went alone
    assert_every_renewal_once_and_numbers_gapless(ctx, shop, placed, members)


def test_a_buckets_transaction_whose_response_is_lost_issues_every_invoice_once(
        ctx: Context, shop: str, monkeypatch: pytest.MonkeyPatch) -> None:
    placed, members = a_full_bucket(ctx, shop)
    fail_transactions(ctx, monkeypatch, lambda k, ops: k == 1 and len(subscribers_in(ops)) > 1, after=True)
    result = bill_subscribers(ctx, shop, RENEWAL_DAY, members)
    assert result.needs_attention == 0
    assert_every_renewal_once_and_numbers_gapless(ctx, shop, placed, members)


def test_a_subscriber_whose_commit_fails_for_good_is_recorded_and_its_number_released(
        ctx: Context, shop: str, monkeypatch: pytest.MonkeyPatch) -> None:
    placed, members = a_full_bucket(ctx, shop)
    bad = f"{members[10]:010d}"
    fail_transactions(ctx, monkeypatch, lambda k, ops: any(op[1]["RowKey"].startswith(f"1|{bad}|inv")
                                                            for op in ops),  # its commits, not the fence
                      error=lambda: RuntimeError("the disk is on fire"))
    result = bill_subscribers(ctx, shop, RENEWAL_DAY, members)
    assert (result.invoices, result.needs_attention) == (63, 1)
    assert [(a.subscriber_no, a.reason) for a in ctx.attention.all(shop)] == [
        (members[10], "RuntimeError: the disk is on fire")]
    others = [n for n in members if n != members[10]]
    assert renewals_of(ctx, shop, members[10]) == []
    customer_service.additional_invoice(ctx, shop, others[0], "avisa", [LineSpec("Extra copy", 5000)], "x", 14)
    assert_every_renewal_once_and_numbers_gapless(ctx, shop, placed, others, extra=1)  # its number was freed: reused


def test_the_index_written_ahead_failing_for_one_subscriber_fails_only_that_one(
        ctx: Context, shop: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A decision that adds a subscription writes the due index ahead of its commit; that write
    failing for one subscriber stops that subscriber's commit, and no other's."""
    members = a_full_bucket(ctx, shop, Layout(3, 8, 1))[1]
    add = ctx.due_index.add
    bad = members[3]

    def failing(tenant: str, cadence: Any, subscriber_no: int, sub_id: str) -> None:
        if subscriber_no == bad:
            raise ServiceResponseError("reset")
        add(tenant, cadence, subscriber_no, sub_id)

    monkeypatch.setattr(ctx.due_index, "add", failing)

    def second(seen: Seen) -> Changes:
        extra = subscription(seen.account.number, 9)
        return Changes(seen.account.with_subscription(extra), subscriptions=(extra,))

    with UnitOfWork(ctx, shop, RENEWAL_DAY, collect=True) as uow:
        seen = uow.read_many(members)
        outcome = in_partition(uow, seen, lambda _n: second, visits=False)
    assert sorted(outcome.committed) == sorted(n for n in members if n != bad)
    assert list(outcome.failed) == [bad] and outcome.conflicted == [] and outcome.untouched == []
    for n in members:
        loaded = ctx.accounts.load(shop, n)
        assert loaded is not None and (f"s{n}-9" in loaded.account.subscriptions) == (n != bad)


def test_the_visits_written_ahead_failing_fails_only_the_subscribers_that_had_something_to_commit(
        ctx: Context, shop: str, monkeypatch: pytest.MonkeyPatch) -> None:
    members = a_full_bucket(ctx, shop, Layout(3, 8, 1))[1]

    def refused(*_args: Any) -> None:
        raise ServiceResponseError("reset")

    monkeypatch.setattr(ctx.dunning_index, "add_many", refused)
    changing = set(members[:3])

    def some(seen: Seen) -> Changes:
        if seen.account.number not in changing:
            return Changes(seen.account)
        extra = subscription(seen.account.number, 9)
        return Changes(seen.account.with_subscription(extra), subscriptions=(extra,))

    with UnitOfWork(ctx, shop, RENEWAL_DAY, collect=True) as uow:
        outcome = in_partition(uow, uow.read_many(members), lambda _n: some, visits=True)
    assert sorted(outcome.failed) == sorted(changing) and outcome.committed == {}
    assert sorted(outcome.untouched) == sorted(set(members) - changing)


def test_a_run_of_several_buckets_with_one_buckets_read_failing_bills_the_other_buckets(
        ctx: Context, shop: str, monkeypatch: pytest.MonkeyPatch) -> None:
    ctx.accounts.layouts.set(shop, Layout(3, bucket_size=8, stride=1))  # type: ignore[attr-defined]
    placed = [place_order(ctx, order(shop, i)).subscriber_no for i in range(1, 33)]
    load_many = ctx.accounts.load_many
    failed = {"left": 1}

    def flaky(tenant: str, numbers: Any) -> Any:
        if placed[17] in numbers and failed["left"]:
            failed["left"] -= 1
            raise ServiceResponseError("reset")
        return load_many(tenant, numbers)

    monkeypatch.setattr(ctx.accounts, "load_many", flaky)
    result = bill_subscribers(ctx, shop, RENEWAL_DAY, placed)
    assert (result.invoices, result.needs_attention) == (32, 0)
    assert invoice_numbers(ctx, shop, placed) == list(range(1, 65))


def test_the_whole_run_through_the_timer_and_the_worker_bills_every_bucket_once(ctx: Context, shop: str) -> None:
    ctx.accounts.layouts.set(shop, Layout(3, bucket_size=8, stride=4))  # type: ignore[attr-defined]
    placed = [place_order(ctx, order(shop, i)).subscriber_no for i in range(1, 41)]
    results = run(ctx, start_invoice_run, shop, RENEWAL_DAY)
    assert sum(r.invoices for r in results) == 40 and sum(r.needs_attention for r in results) == 0
    assert invoice_numbers(ctx, shop, placed) == list(range(1, 81))
    again = run(ctx, start_invoice_run, shop, RENEWAL_DAY)  # the day's run again: nothing more
    assert sum(r.invoices for r in again) == 0 and invoice_numbers(ctx, shop, placed) == list(range(1, 81))


# ---- the byte limit of a transaction (the adapter's; the fake has no bytes) ---------------------


def wire_bytes(ops: list[Any]) -> int:
    """What the SDK puts on the wire for these operations' entities (JSON, non-ASCII escaped)."""
    return sum(len(json.dumps(_add_entity_properties(_to_table(op[1])))) for op in ops)


def with_long_corrections(n: int, rows: int, text: str) -> Changes:
    account = Account(Subscriber(n, f"Payer {n}", f"payer{n}@example.no"))
    corrections = tuple(Correction(f"c{k}", "avisa", -k, text, RENEWAL_DAY) for k in range(rows))
    return Changes(replace(account, corrections=corrections))


@pytest.mark.parametrize("letter", ["a", "ø", "\u0001"])
def test_big_rows_are_split_by_the_bytes_the_wire_carries_so_every_transaction_is_accepted(
        ctx: Context, tenant: str, monkeypatch: pytest.MonkeyPatch, letter: str) -> None:
    ctx.accounts.layouts.set(tenant, Layout(3, 8, 1))  # type: ignore[attr-defined]
    sent: list[int] = []
    transact = ctx.storage.transact

    def measuring(table: str, ops: Any) -> Any:
        sent.append(wire_bytes(list(ops)))
        return transact(table, ops)

    monkeypatch.setattr(ctx.storage, "transact", measuring)
    numbers = list(range(8, 16))
    text = letter * (1_600 if letter < " " else 10_000)  # a control character: six bytes already in our JSON
    answers = ctx.accounts.commit_many(tenant, [(None, with_long_corrections(n, 10, text)) for n in numbers])
    assert all(isinstance(a, Loaded) for a in answers), answers
    assert max(sent) <= 4 * 1024 * 1024  # none refused for its size (Azure: 413; Azurite too)
    assert len(sent) <= 3, sent  # and no more of them than the bytes need (8 x 0.6 MB: two)
    many = ctx.accounts.load_many(tenant, numbers)
    assert all(len(many[n].account.corrections) == 10 for n in numbers)


def test_one_subscriber_too_big_for_a_transaction_gets_a_storage_limit_and_the_others_commit(
        ctx: Context, tenant: str) -> None:
    ctx.accounts.layouts.set(tenant, Layout(3, 8, 1))  # type: ignore[attr-defined]
    items = [(None, with_long_corrections(n, 30 if n == 9 else 2, "ø" * 30_000)) for n in (8, 9, 10)]
    answers = ctx.accounts.commit_many(tenant, items)
    assert isinstance(answers[0], Loaded) and isinstance(answers[2], Loaded)
    assert isinstance(answers[1], StorageLimit), answers[1]
    assert sorted(ctx.accounts.load_many(tenant, [8, 9, 10])) == [8, 10]


def test_a_decision_in_parts_that_raises_when_asked_what_is_left_goes_on_alone_and_fails_nobody_else(
        ctx: Context, shop: str) -> None:
    members = a_full_bucket(ctx, shop, Layout(3, 8, 1))[1]
    odd = members[2]

    def second(seen: Seen) -> Changes:
        if seen.part == 1 and seen.account.number == odd:
            raise ValueError("cannot say what is left")
        if f"s{seen.account.number}-9" in seen.account.subscriptions:
            return Changes(seen.account)
        extra = subscription(seen.account.number, 9)
        return Changes(seen.account.with_subscription(extra), subscriptions=(extra,))

    with UnitOfWork(ctx, shop, RENEWAL_DAY, collect=True) as uow:
        outcome = in_partition(uow, uow.read_many(members), lambda _n: second, parts=2, visits=False)
    assert sorted(outcome.committed) == sorted(members) and outcome.failed == {}
    assert outcome.more == [odd]  # its first part is committed; the rest (and its failure) alone


# ---- a property on the fakes: any mix of faults in one bucket ------------------------------------

FAULTS = ("ok", "transient", "permanent", "decision", "racer", "read")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(FAULTS), min_size=1, max_size=12))
def test_any_mix_of_faults_in_a_bucket_bills_each_good_subscriber_once_records_each_bad_one_and_keeps_numbers(
        fake_ctx: FakeContext, monkeypatch: pytest.MonkeyPatch, kinds: list[str]) -> None:
    tenant = f"p{uuid.uuid4().hex[:10]}"
    install_catalogue(fake_ctx, tenant)
    fake_ctx.accounts.layout = Layout(3, 16, 1)
    placed = [place_order(fake_ctx, order(tenant, i)).subscriber_no for i in range(1, len(kinds) + 1)]
    assert len(grouped(fake_ctx, tenant, placed)) <= 2
    fault = dict(zip(placed, kinds, strict=True))
    for n, kind in fault.items():
        if kind == "transient":
            fake_ctx.accounts.inject("commit", Unavailable("busy"), when=lambda _t, m, n=n: m == n)
        if kind == "permanent":
            fake_ctx.accounts.inject("commit", *[ValueError("refused")] * 10, when=lambda _t, m, n=n: m == n)
    real_issue, load_many = billing.issue, fake_ctx.accounts.load_many
    read_failed: set[int] = set()

    def issue(account: Any, *args: Any, **kw: Any) -> Changes:
        if fault.get(account.number) == "decision":
            raise RuntimeError("bad data")
        return real_issue(account, *args, **kw)

    def racing(t: str, numbers: Any) -> Any:
        got = load_many(t, numbers)
        for n, one in got.items():
            if fault.get(n) == "racer":  # customer service commits between the run's read and its commit
                fake_ctx.accounts.commit(t, one, Changes(replace(one.account, corrections=(
                    Correction(f"cs{n}", "avisa", -500, "goodwill", RENEWAL_DAY),))))
        if any(fault.get(n) == "read" and n not in read_failed for n in numbers):
            read_failed.update(n for n in numbers if fault.get(n) == "read")
            raise Unavailable("the bucket's read")
        return got

    monkeypatch.setattr(billing, "issue", issue)
    monkeypatch.setattr(fake_ctx.accounts, "load_many", racing)
    try:
        result = bill_subscribers(fake_ctx, tenant, RENEWAL_DAY, placed)
    finally:
        monkeypatch.undo()
        fake_ctx.accounts.clear_faults()
    bad = {n for n, kind in fault.items() if kind in ("permanent", "decision")}
    assert (result.invoices, result.needs_attention) == (len(placed) - len(bad), len(bad))
    assert {a.subscriber_no for a in fake_ctx.attention.all(tenant)} == bad
    for n, kind in fault.items():
        renewals = [i for i in fake_ctx.accounts.documents(tenant, n).invoices if i.draft.period_index == 1]
        assert len(renewals) == (0 if n in bad else 1), (n, kind)
        if kind == "racer":  # the racer's correction is on the renewal: neither lost nor twice
            assert renewals[0].total_minor == RENEWAL - 500
    issued = [i.number for n in placed for i in fake_ctx.accounts.documents(tenant, n).invoices]
    free = fake_ctx.invoice_numbers.free_numbers(series(fake_ctx, tenant))
    assert len(issued) == len(set(issued)) == 2 * len(placed) - len(bad)
    assert sorted([*issued, *free]) == list(range(1, len(issued) + len(free) + 1))  # none lost, none twice
