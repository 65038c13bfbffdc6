"""The contract of every port, asserted against its Azure adapter (on Azurite) and against
its in-memory fake (``tests/fakes``) alike: each test runs once per backend
(``[azurite]``, ``[in_memory]``), so a fake that drifts from its adapter fails here
before a fast service test on it can pass for the wrong reason."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from datetime import date, timedelta

import pytest

from shared import bootstrap
from shared.adapters.bus import EVENTS
from shared.adapters.notify import CONTAINER, BlobNotifier
from shared.domain.account import Account, Changes, due_drafts, issue
from shared.domain.calendar import Frequency
from shared.domain.catalogue import Catalogue, PaymentType
from shared.domain.import_report import ImportReport, Status
from shared.domain.subscriptions import Subscriber, Subscription
from shared.ports import (
    TENANT_RUN,
    BusMessage,
    ConcurrencyConflict,
    Notice,
    Notifier,
    NumberClaim,
    OrderRecord,
    PendingOrder,
    TooManyEntities,
)
from shared.service.context import Context
from tests.fakes import FakeNotifier
from tests.fixtures import received

pytestmark = pytest.mark.fakes  # every test: once on Azurite, once on the fakes
DAY = date(2026, 1, 5)


def subscription(number: int, n: int = 0) -> Subscription:
    return Subscription(f"s{number}-{n}", "digital-monthly", "avisa", Frequency.MONTHLY, DAY, PaymentType.INVOICE)


def new_account(number: int) -> Account:
    return Account(Subscriber(number, f"Payer {number}", f"payer{number}@example.no")).with_subscription(
        subscription(number))


def with_invoice(catalogue: Catalogue, number: int) -> Changes:
    """A new subscriber on the monthly plan, its first invoice issued (number ``number``)."""
    account = new_account(number)
    drafts = due_drafts(account, catalogue, DAY)
    return issue(account, drafts, {drafts[0].natural_key: number}, catalogue, DAY)


# ---- accounts ----------------------------------------------------------------------------------


def test_a_new_subscriber_loads_as_committed_and_is_created_once(ctx: Context, tenant: str) -> None:
    account = new_account(7)
    assert ctx.accounts.load(tenant, 7) is None
    committed = ctx.accounts.commit(tenant, None, Changes(account, subscriptions=tuple(account.subscriptions.values())))
    loaded = ctx.accounts.load(tenant, 7)
    assert loaded is not None and loaded.etag is not None and committed.etag == loaded.etag
    assert loaded.account == account and loaded.outbox == []
    with pytest.raises(ConcurrencyConflict):  # a second creation of the same subscriber
        ctx.accounts.commit(tenant, None, Changes(account))


def test_a_commit_based_on_a_stale_load_or_a_load_before_a_fence_conflicts(ctx: Context, tenant: str) -> None:
    account = new_account(8)
    ctx.accounts.commit(tenant, None, Changes(account, subscriptions=tuple(account.subscriptions.values())))
    first, second = ctx.accounts.load(tenant, 8), ctx.accounts.load(tenant, 8)
    assert first is not None and second is not None
    renamed = Account(Subscriber(8, "New Name", "payer8@example.no"), account.subscriptions)
    ctx.accounts.commit(tenant, first, Changes(renamed))
    with pytest.raises(ConcurrencyConflict):
        ctx.accounts.commit(tenant, second, Changes(account))
    before_fence = ctx.accounts.load(tenant, 8)
    assert before_fence is not None and before_fence.account.subscriber.name == "New Name"
    assert ctx.accounts.fence(tenant, 8) is True
    with pytest.raises(ConcurrencyConflict):
        ctx.accounts.commit(tenant, before_fence, Changes(account))
    assert ctx.accounts.fence(tenant, 9) is False  # no subscriber row: nothing to fence


def test_documents_are_read_back_and_the_outbox_clears_on_the_next_commit(ctx: Context, shop: str) -> None:
    changes = with_invoice(ctx.catalogue.get(shop), 11)
    (invoice,) = changes.invoices
    assert changes.events  # issuing raises events: they go to the outbox with the documents
    committed = ctx.accounts.commit(shop, None, changes)
    assert [e.id for e in committed.outbox] == [e.id for e in changes.events]
    loaded = ctx.accounts.load(shop, 11)
    assert loaded is not None
    assert sorted(e.id for e in loaded.outbox) == sorted(e.id for e in changes.events)
    assert ctx.accounts.invoice(shop, 11, invoice.demand_no) == invoice
    assert ctx.accounts.invoice(shop, 11, invoice.demand_no + 1) is None
    assert ctx.accounts.load_with_invoice(shop, 11, invoice.demand_no) == (loaded, invoice)  # one query, both
    assert ctx.accounts.load_with_invoice(shop, 11, invoice.demand_no + 1) == (loaded, None)
    assert ctx.accounts.load_with_invoice(shop, 12, invoice.demand_no) == (None, None)
    assert ctx.accounts.reminder(shop, 11, invoice.demand_no) is None
    docs = ctx.accounts.documents(shop, 11)
    assert (docs.invoices, docs.ledger, docs.reminders, docs.credit_notes) == ([invoice], list(changes.ledger), [], [])
    assert ctx.accounts.history(shop, 11) == ([invoice], list(changes.ledger))
    assert ctx.accounts.booked(shop, 11, ["p1"]) == set() and ctx.accounts.payments(shop, 11) == []
    ((scanned, history),) = list(ctx.accounts.scan_tenant(shop))
    assert scanned.account.number == 11 and history.invoices == [invoice]
    after = ctx.accounts.commit(shop, loaded, Changes(loaded.account))  # the outbox was delivered meanwhile
    assert after.outbox == []
    reloaded = ctx.accounts.load(shop, 11)
    assert reloaded is not None and reloaded.outbox == []
    with pytest.raises(ConcurrencyConflict):  # the same document created twice
        ctx.accounts.commit(shop, reloaded, Changes(reloaded.account, invoices=changes.invoices))
    assert ctx.accounts.documents(shop, 11).invoices == [invoice]


def test_changes_that_need_more_than_one_transaction_are_refused_before_anything_is_written(
        ctx: Context, tenant: str) -> None:
    account = new_account(12)
    many = tuple(subscription(12, n) for n in range(1, 101))  # 100 subscription rows + the subscriber row
    with pytest.raises(TooManyEntities):
        ctx.accounts.commit(tenant, None, Changes(account, subscriptions=many))
    assert ctx.accounts.load(tenant, 12) is None
    ctx.accounts.commit(tenant, None, Changes(account, subscriptions=many[:99]))  # 100 rows: one transaction
    loaded = ctx.accounts.load(tenant, 12)
    assert loaded is not None and len(loaded.account.subscriptions) == 99


# ---- numbering ---------------------------------------------------------------------------------


def test_invoice_numbers_are_claimed_per_key_released_and_reused_lowest_first(ctx: Context, tenant: str) -> None:
    numbers, pk = ctx.invoice_numbers, f"{tenant}|avisa|invoice"
    assert numbers.claim(pk, ["a", "b"]) == {"a": 1, "b": 2}
    assert numbers.claim(pk, ["a", "c"]) == {"a": 1, "c": 3}  # a key keeps its number
    assert numbers.void(pk, {"b": 99}) == {}  # not the number it holds: nothing voided
    voided = numbers.void(pk, {"b": 2})
    assert list(voided) == ["b"] and (voided["b"].number, voided["b"].void) == (2, True)
    assert numbers.claims(pk) == {"a": 1, "c": 3}  # a void claim is no live claim
    numbers.free(pk, voided)
    assert numbers.free_numbers(pk) == (2,)
    assert numbers.claim(pk, ["d"]) == {"d": 2}  # released numbers first
    assert numbers.free_numbers(pk) == ()
    numbers.free(pk, numbers.void(pk, {"c": 3}))  # the last one handed out: the counter steps back
    assert numbers.free_numbers(pk) == () and numbers.claim(pk, ["e"]) == {"e": 3}
    numbers.free(pk, numbers.void(pk, {"d": 2, "a": 1}))
    assert numbers.free_numbers(pk) == (1, 2) and numbers.claim(pk, ["x"]) == {"x": 1}  # the lowest first


def test_a_void_claim_is_never_handed_out_and_restore_undoes_void(ctx: Context, tenant: str) -> None:
    numbers, pk = ctx.invoice_numbers, f"{tenant}|avisa|invoice"
    numbers.claim(pk, ["a", "b"])
    voided = numbers.void(pk, {"a": 1})
    assert numbers.claim(pk, ["a"]) == {"a": 3}  # its claimer meets the void claim: a new number
    numbers.free(pk, voided)  # the row was replaced meanwhile: kept; its old number is free
    assert numbers.claims(pk) == {"a": 3, "b": 2} and numbers.free_numbers(pk) == (1,)
    held = numbers.void(pk, {"b": 2})
    soon = time.time() + 5
    assert numbers.stale_voids(pk, older_than=soon) == held and numbers.stale_voids(pk, older_than=0) == {}
    assert numbers.claims(pk, older_than=soon) == {"a": 3} and numbers.claims(pk, older_than=0) == {}
    numbers.restore(pk, held)
    assert numbers.claims(pk) == {"a": 3, "b": 2} and numbers.stale_voids(pk, older_than=soon) == {}


def test_under_random_claims_and_releases_issued_and_free_numbers_are_exactly_1_to_n(
        ctx: Context, tenant: str) -> None:
    numbers, pk, rng = ctx.invoice_numbers, f"{tenant}|avisa|invoice", random.Random(9)
    for step in range(40):
        live = numbers.claims(pk)
        if live and rng.random() < 0.4:
            key = rng.choice(sorted(live))
            voided: dict[str, NumberClaim] = numbers.void(pk, {key: live[key]})
            if rng.random() < 0.3:
                numbers.restore(pk, voided)
            else:
                numbers.free(pk, voided)
        else:
            numbers.claim(pk, [f"k{step}", f"k{rng.randrange(step + 1)}"])
        issued, free = list(numbers.claims(pk).values()), numbers.free_numbers(pk)
        assert len(set(issued)) == len(issued)  # never one number twice
        assert sorted([*issued, *free]) == list(range(1, len(issued) + len(free) + 1))  # no gap


def test_subscriber_numbers_are_unique_and_increasing_per_tenant(ctx: Context, tenant: str) -> None:
    taken = [ctx.subscriber_numbers.next(tenant) for _ in range(5)]
    assert taken == sorted(set(taken)) and taken[0] >= 1000


# ---- indexes, tenants, attention ---------------------------------------------------------------


def test_the_due_and_dunning_indexes_find_who_was_entered(ctx: Context, tenant: str) -> None:
    ctx.due_index.add(tenant, "m05", 7, "s7")
    ctx.due_index.add(tenant, "m05", 3, "s3")
    ctx.due_index.add(tenant, "m05", 7, "s7b")
    ctx.due_index.add(tenant, "m06", 5, "s5")
    assert ctx.due_index.subscribers(tenant, ["m05"]) == [3, 7]
    assert ctx.due_index.subscribers(tenant, ["m06", "m05"]) == [3, 5, 7]
    assert ctx.due_index.subscribers(tenant, []) == [] and ctx.due_index.subscribers(tenant + "x", ["m05"]) == []
    ctx.dunning_index.add(tenant, DAY, 4)
    ctx.dunning_index.add(tenant, DAY + timedelta(days=1), 9)
    ctx.dunning_index.add(tenant, DAY, 4)
    assert ctx.dunning_index.subscribers(tenant, [DAY]) == {4}
    assert ctx.dunning_index.subscribers(tenant, [DAY, DAY + timedelta(days=1)]) == {4, 9}


def test_an_email_belongs_to_the_first_claimer_whatever_its_case_and_spaces(ctx: Context, tenant: str) -> None:
    assert ctx.emails.claim(tenant, " Kari@Example.no ", 10) == 10
    assert ctx.emails.claim(tenant, "kari@example.no", 11) == 10
    assert ctx.emails.find(tenant, "KARI@example.NO") == 10 and ctx.emails.find(tenant, "ola@example.no") is None


def test_an_email_is_released_only_by_the_subscriber_it_names(ctx: Context, tenant: str) -> None:
    assert ctx.emails.claim(tenant, "kari@example.no", 10) == 10
    assert ctx.emails.release(tenant, "kari@example.no", 11) is False  # not 11's to release
    assert ctx.emails.find(tenant, "kari@example.no") == 10
    assert ctx.emails.release(tenant, " KARI@example.no", 10) is True
    assert ctx.emails.find(tenant, "kari@example.no") is None
    assert ctx.emails.release(tenant, "kari@example.no", 10) is False
    assert ctx.emails.claim(tenant, "kari@example.no", 11) == 11  # free again: the next claim wins


def test_an_order_reference_is_bound_to_the_first_order(ctx: Context, tenant: str) -> None:
    first, other = OrderRecord("fp1", 10, "sub-1"), OrderRecord("fp2", 11, "sub-2")
    assert ctx.orders.bind(tenant, "form/1?#", first) == first
    assert ctx.orders.bind(tenant, "form/1?#", other) == first
    assert ctx.orders.bind(tenant, "form/2", other) == other


def test_a_pending_order_is_held_once_and_decided_once(ctx: Context, tenant: str) -> None:
    held = ctx.pending.add(tenant, PendingOrder("o1", 10, {"plan_id": "digital-monthly"}, "2026-01-05T09:00:00"))
    assert (held.state, held.subscriber_no, held.order) == ("pending", 10, {"plan_id": "digital-monthly"})
    assert held.etag
    assert ctx.pending.add(tenant, PendingOrder("o1", 99, {}, "later")) == held  # the first one stays
    assert ctx.pending.get(tenant, "o1") == held and ctx.pending.get(tenant, "o2") is None
    assert ctx.pending.list(tenant) == [held]
    confirmed = ctx.pending.decide(tenant, held, "confirmed")
    assert confirmed.state == "confirmed" and confirmed.etag != held.etag
    assert ctx.pending.list(tenant) == [] and [p.id for p in ctx.pending.list(tenant, "confirmed")] == ["o1"]
    with pytest.raises(ConcurrencyConflict):  # a second decision on what was read before the first
        ctx.pending.decide(tenant, held, "rejected")


def test_tenants_register_and_a_watermark_is_what_the_run_state_reads(ctx: Context, tenant: str) -> None:
    assert not ctx.tenants.exists(tenant)
    ctx.tenants.register(tenant)
    assert ctx.tenants.exists(tenant) and tenant in ctx.tenants.all()
    assert ctx.attention.run_state(tenant, "invoice").watermark is None
    ctx.tenants.set_watermark(tenant, "invoice", DAY)
    state = ctx.attention.run_state(tenant, "invoice")
    assert (state.watermark, state.attention, state.done_through) == (DAY, frozenset(), DAY)
    assert ctx.attention.run_state(tenant, "dunning").watermark is None


def test_attention_counts_a_failure_on_its_row_until_it_is_resolved(ctx: Context, tenant: str) -> None:
    later = DAY + timedelta(days=2)
    assert ctx.attention.record(tenant, "invoice", 12, DAY, "boom").count == 1
    again = ctx.attention.record(tenant, "invoice", 12, later, "boom again")
    assert (again.count, again.first_day, again.day, again.reason) == (2, DAY, later, "boom again")
    notice = ctx.attention.record(tenant, "invoice", 12, DAY, "no notice", ref="notice/1#x")
    assert notice.ref == "notice_1_x"  # as keyed: no character that breaks a key
    assert ctx.attention.find(tenant, "invoice", 12, "notice/1#x") == notice
    assert ctx.attention.find(tenant, "invoice", 13) is None
    ctx.attention.record(tenant, "invoice", TENANT_RUN, later, "catalogue unreadable")
    state = ctx.attention.run_state(tenant, "invoice")
    assert (state.attention, state.failed_since, state.done_through) == (
        frozenset({12, TENANT_RUN}), later, later - timedelta(days=1))
    assert len(ctx.attention.all(tenant)) == 3
    for number, ref in ((12, ""), (12, "notice/1#x"), (TENANT_RUN, "")):
        ctx.attention.resolve(tenant, "invoice", number, ref)
    ctx.attention.resolve(tenant, "invoice", 12)  # a row already gone is no error
    assert ctx.attention.all(tenant) == [] and ctx.attention.run_state(tenant, "invoice").attention == frozenset()


# ---- catalogue, imports ------------------------------------------------------------------------


def test_the_catalogue_reads_back_what_was_put_and_forgets_what_was_deleted(ctx: Context, shop: str) -> None:
    catalogue = ctx.catalogue.get(shop)
    assert "digital-monthly" in catalogue.plans and "avisa" in catalogue.organizations
    ctx.catalogue.delete(shop, "plan", "digital-monthly")
    assert "digital-monthly" not in ctx.catalogue.get(shop).plans
    ctx.catalogue.put(shop, "plan", catalogue.plans["digital-monthly"])
    assert ctx.catalogue.get(shop).plans["digital-monthly"] == catalogue.plans["digital-monthly"]
    assert ctx.catalogue.get(shop + "x").plans == {}


def test_a_transmission_is_claimed_once_and_attempts_count_until_decided(ctx: Context, tenant: str) -> None:
    first = ctx.imports.claim(tenant, "tx1", "d1", "a.txt")
    assert (first.fresh, first.state, first.report_id) == (True, "importing", "tx1")
    again = ctx.imports.claim(tenant, "tx1", "d2", "b.txt", report="other")
    assert (again.fresh, again.digest, again.file, again.report_id) == (False, "d1", "a.txt", "tx1")
    ctx.imports.imported(tenant, "tx1", "d1", "a.txt")
    assert ctx.imports.claim(tenant, "tx1", "d1", "a.txt").state == "imported"
    ctx.imports.release(tenant, "tx1")
    assert ctx.imports.claim(tenant, "tx1", "d3", "c.txt").fresh
    name, data = f"{tenant}/inbound/x.txt", tenant.encode()
    assert [ctx.imports.attempt(name, data) for _ in range(2)] == [(1, None), (2, None)]
    ctx.imports.decide(name, data, "rejected", "r1")
    assert ctx.imports.attempt(name, data) == (2, "rejected")
    report = ImportReport("r1", "x.txt", "ocr", "id", "digest", "2026-01-05T09:00:00", Status.IMPORTED, (), {})
    ctx.imports.save(tenant, report)
    assert ctx.imports.report(tenant, "r1") == report and ctx.imports.reports(tenant) == [report]
    assert ctx.imports.report(tenant, "r2") is None


# ---- bus, notifier ------------------------------------------------------------------------------


def test_the_bus_delivers_what_was_sent_in_order(ctx: Context, tenant: str) -> None:
    sent = [BusMessage(f"{tenant}.{n}", {"tenant": tenant, "n": n, "text": "Æøå"}) for n in range(3)]
    ctx.bus.send(EVENTS, sent)
    ctx.bus.send(EVENTS, [])
    assert [m for m in received(ctx, EVENTS) if m.body.get("tenant") == tenant] == sent
    assert received(ctx, EVENTS) == []


@pytest.fixture
def notifier(ctx: Context, backend: str) -> Iterator[Notifier]:
    yield FakeNotifier() if backend == "in_memory" else BlobNotifier(bootstrap.blob_service())


def delivered(notifier: Notifier, tenant: str) -> list[str]:
    """The ids of the notices delivered for ``tenant`` (the files, or the fake's record)."""
    if isinstance(notifier, FakeNotifier):
        return sorted(n.id for n in notifier.delivered.values() if n.tenant == tenant)
    container = bootstrap.blob_service().get_container_client(CONTAINER)
    return sorted(b.name.rsplit("/", 1)[1].rsplit(".", 1)[0] for b in container.list_blobs(f"{tenant}/"))


def test_a_notice_delivered_twice_is_delivered_once(notifier: Notifier, tenant: str) -> None:
    notice = Notice("n1", tenant, "email", "kari@example.no", "Reminder", "Pay", "avisa@example.no", "2026-01-05")
    notifier.send(notice)
    notifier.send(notice)
    notifier.send(Notice("n2", tenant, "sms", "+4741234567", "", "Pay", "Avisa", "2026-01-05"))
    assert delivered(notifier, tenant) == ["n1", "n2"]

