"""Moving a tenant from a partition per subscriber (layout 2) to bucket partitions (layout 3)
while it runs (``abonno layout``, ``service.layout_move``; issue 13): everything reads the same
after the move, the runs go on in buckets, the move is idempotent and resumable after dying
anywhere, writers racing it lose nothing, and verify catches a tampered copy."""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from dataclasses import asdict
from datetime import date, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from devhost import cli
from functions.run_worker import handle as work
from shared.adapters.accounts import HEAD, TABLE, AccountRepository, Place, bucket_key, first_shape_key
from shared.adapters.bus import RUN_WORK
from shared.adapters.layout_rows import FirstShape, LayoutRows, kind, tally
from shared.adapters.layouts import Layouts
from shared.domain.account import Account, Changes
from shared.domain.import_report import Outcome
from shared.domain.placement import FIRST, Layout
from shared.domain.subscriptions import Subscriber
from shared.formats import ocr_giro
from shared.ports import ConcurrencyConflict, Delivery, DeliveryStatus
from shared.service import customer_service, layout_move, payments_in, queries
from shared.service.billing import start_invoice_run
from shared.service.context import Context
from shared.service.dunning import start_dunning_run
from shared.service.orders import place_order
from tests.conftest import make_context, oslo_morning
from tests.fixtures import order, received

SUBSCRIBERS = 8


def drain(ctx: Context) -> None:
    while batch := received(ctx, RUN_WORK):
        for item in batch:
            work(item.encode().encode())


def day(ctx: Context, tenant: str, on: date) -> None:
    """The invoice run and the dunning run of one day, through the bus and the worker."""
    ctx.clock.set(oslo_morning(on))  # type: ignore[attr-defined]
    start_invoice_run(ctx, tenant)
    drain(ctx)
    start_dunning_run(ctx, tenant)
    drain(ctx)


def pay(ctx: Context, tenant: str, kids: list[tuple[str, int]], on: date, number: str) -> None:
    text = ocr_giro.transmission(kids, on, number=number.rjust(7, "0"), account="86011117947")
    result = payments_in.import_bank_file(ctx, tenant, f"ocr-{number}.txt", text.encode())
    assert result.count(Outcome.BOOKED) == len(kids), result


def a_tenant_of_layout_2(ctx: Context, shop: str) -> list[int]:
    """Eight subscribers in partitions of the first shape with every kind of row: invoices,
    renewals, payments, a credit note, a correction, reminders, a delivery log row."""
    ctx.accounts.layouts.set(shop, FIRST)  # type: ignore[attr-defined]
    placed = [place_order(ctx, order(shop, n)) for n in range(1, SUBSCRIBERS + 1)]
    numbers = [p.subscriber_no for p in placed]
    pay(ctx, shop, [(p.invoices[0].kid, p.invoices[0].total_minor) for p in placed[:3]], date(2026, 1, 10), "1")
    customer_service.credit_invoice(ctx, shop, numbers[3], placed[3].invoices[0].number, "mistake")
    customer_service.add_correction(ctx, shop, numbers[4], "avisa", -500, "Goodwill", "c1")
    day(ctx, shop, date(2026, 1, 22))  # renewals
    day(ctx, shop, date(2026, 1, 26))  # reminders of the unpaid first invoices
    ctx.deliveries.claim(shop, numbers[5], Delivery("inv-1", "email", 1, DeliveryStatus.SENT,
                                                    datetime(2026, 1, 26, 8, 0)))
    assert all(ctx.accounts.place(shop, n).pk == first_shape_key(shop, n) for n in numbers)  # type: ignore[attr-defined]
    return numbers


def everything_read(ctx: Context, tenant: str, numbers: list[int]) -> dict[str, Any]:
    """What a user can see of the subscribers: accounts, documents, payments, deliveries,
    overviews, KID lookups, the tenant summary."""
    seen: dict[str, Any] = {"summary": asdict(queries.summary(ctx, tenant))}
    for n in numbers:
        loaded = ctx.accounts.load(tenant, n)
        assert loaded is not None
        docs = ctx.accounts.documents(tenant, n)
        kids = [i.kid for i in docs.invoices] + [r.reminder.kid for r in docs.reminders]
        seen[str(n)] = {"account": loaded.account, "documents": docs, "payments": ctx.accounts.payments(tenant, n),
                        "deliveries": [(d.document_id, d.status) for d in ctx.deliveries.list(tenant, n)],
                        "overview": queries.overview(ctx, tenant, n),
                        "kids": [queries.find_by_kid(ctx, tenant, k) for k in kids]}
    return seen


def money_adds_up(ctx: Context, tenant: str, numbers: list[int]) -> None:
    """Each subscriber's balance per organisation is the sum of its ledger."""
    for n in numbers:
        loaded = ctx.accounts.load(tenant, n)
        assert loaded is not None
        ledger: dict[str, int] = {}
        for e in ctx.accounts.documents(tenant, n).ledger:
            ledger[e.organization_id] = ledger.get(e.organization_id, 0) + e.amount_minor
        assert {o: b for o, b in loaded.account.balances.items() if b or o in ledger} == ledger, n


def mover(ctx: Context) -> tuple[LayoutRows, Layouts]:
    return LayoutRows(ctx.storage), ctx.accounts.layouts  # type: ignore[attr-defined]


def moved(ctx: Context, tenant: str, bucket_size: int = 4) -> layout_move.MoveReport:
    rows, layouts = mover(ctx)
    return layout_move.move(rows, layouts, tenant, bucket_size, wait_s=0)


def in_bucket(ctx: Context, tenant: str, n: int) -> bool:
    place = ctx.accounts.place(tenant, n)  # type: ignore[attr-defined]
    return "||" in place.pk and ctx.storage.get(TABLE, place.pk, place.rk(HEAD)) is not None  # type: ignore[attr-defined]


def test_a_moved_tenant_reads_the_same_and_its_runs_go_on_in_buckets(ctx: Context, shop: str) -> None:
    numbers = a_tenant_of_layout_2(ctx, shop)
    money_adds_up(ctx, shop, numbers)
    before = everything_read(ctx, shop, numbers)
    stale = make_context(os.environ["AzureWebJobsStorage"], ctx.clock)  # type: ignore[arg-type]
    assert stale.accounts.layouts.get(shop) == FIRST  # another process: layout 2 cached for its TTL

    report = moved(ctx, shop)

    assert report.ok and report.count("moved") == SUBSCRIBERS and report.count("failed") == 0
    assert report.layout == Layout(3, 4, 16)
    assert ctx.accounts.layouts.get(shop) == Layout(3, 4, 16)  # type: ignore[attr-defined]
    assert all(in_bucket(ctx, shop, n) for n in numbers)
    assert everything_read(ctx, shop, numbers) == before
    for s in report.subscribers:  # rows and money per kind, before and after
        assert s.before == s.after and s.before[HEAD] == (1, 0, 0) and s.before["1|inv|"][0] >= 2
    totals = report.totals()
    assert totals["before"] == totals["after"] and totals["before"]["1|pay|"][:2] == [3, sum(
        p.payment.amount_minor for n in numbers for p in ctx.accounts.payments(shop, n))]
    stored = LayoutRows(ctx.storage).reports(shop)  # type: ignore[attr-defined]
    assert stored[-1]["ok"] and stored[-1]["moved"] == SUBSCRIBERS and stored[-1]["before"] == totals["before"]
    per = LayoutRows(ctx.storage).report_of(shop, report.run)  # type: ignore[attr-defined]
    assert [r["subscriber"] for r in per] == sorted(numbers) and per[0]["before"] == per[0]["after"]

    # the process that still thinks layout 2 loads the moved head, is told, and follows
    customer_service.add_correction(stale, shop, numbers[0], "avisa", -100, "Late", "c2")
    assert ctx.accounts.load(shop, numbers[0]).account.corrections[-1].id == "c2"  # type: ignore[union-attr]

    # the runs go on, in the buckets: renewals, payments, reminders; new subscribers too
    late = place_order(ctx, order(shop, 99))
    assert in_bucket(ctx, shop, late.subscriber_no)
    day(ctx, shop, date(2026, 2, 22))
    renewals = {n: ctx.accounts.documents(shop, n).invoices[-1] for n in numbers}
    assert {i.draft.period_index for i in renewals.values()} == {2}  # the third period, issued in buckets
    pay(ctx, shop, [(renewals[n].kid, renewals[n].total_minor) for n in numbers[:2]], date(2026, 2, 25), "2")
    paid = {p.payment.amount_minor for p in ctx.accounts.payments(shop, numbers[0])}
    assert renewals[numbers[0]].total_minor in paid
    day(ctx, shop, date(2026, 3, 12))
    reminders = len(before[str(numbers[7])]["documents"].reminders)
    assert len(ctx.accounts.documents(shop, numbers[7]).reminders) > reminders
    summary = queries.summary(ctx, shop)
    assert summary.number_series_gapless and summary.subscribers == SUBSCRIBERS + 1
    money_adds_up(ctx, shop, [*numbers, late.subscriber_no])
    first_shape = LayoutRows(ctx.storage).first_shape(shop)  # type: ignore[attr-defined]
    assert all(ctx.storage.get(TABLE, pk, HEAD)["Moved"] for pk in first_shape)  # type: ignore[attr-defined,index]

    again = moved(ctx, shop)  # idempotent: nothing left to move, the layout as it was
    assert again.ok and again.count("moved") == 0 and again.count("already") == SUBSCRIBERS and again.passes == 1
    assert ctx.accounts.layouts.get(shop) == Layout(3, 4, 16)  # type: ignore[attr-defined]


class DiesAt(LayoutRows):
    """The mover's storage steps, dying at one point for one subscriber (as a killed process)."""

    def __init__(self, storage: Any, victim: int, where: str) -> None:
        super().__init__(storage)
        self.victim, self.where = victim, where

    def copy(self, rows: Any, place: Place) -> dict[str, str]:
        if place.number == self.victim and self.where == "after the fence":
            raise SystemExit("killed after the fence")
        if place.number == self.victim and self.where == "mid-copy":
            half = sorted(rows, key=lambda r: r["RowKey"])[: len(rows) // 2]
            super().copy(half, place)
            raise SystemExit("killed mid-copy")
        return super().copy(rows, place)


@pytest.mark.parametrize("where", ["after the fence", "mid-copy"])
def test_a_move_killed_mid_subscriber_leaves_it_unreadable_not_half_read_and_the_next_move_completes(
        ctx: Context, shop: str, where: str) -> None:
    numbers = a_tenant_of_layout_2(ctx, shop)
    before = everything_read(ctx, shop, numbers)
    victim = numbers[5]
    with pytest.raises(SystemExit):
        layout_move.move(DiesAt(ctx.storage, victim, where), ctx.accounts.layouts, shop, 4, wait_s=0)  # type: ignore[attr-defined]
    assert ctx.accounts.layouts.get(shop).moving  # type: ignore[attr-defined]
    head = ctx.storage.get(TABLE, first_shape_key(shop, victim), HEAD)  # type: ignore[attr-defined]
    assert head is not None and head["Moved"]
    with pytest.raises(ConcurrencyConflict):  # waits, then says "being moved": never half a subscriber
        ctx.accounts.load(shop, victim)
    with pytest.raises(ConcurrencyConflict):
        customer_service.add_correction(ctx, shop, victim, "avisa", -100, "During", "c9")
    assert ctx.accounts.load(shop, numbers[0]) is not None  # the others: moved or not yet, all readable
    assert ctx.accounts.load(shop, numbers[7]) is not None
    assert asdict(queries.summary(ctx, shop)) == before["summary"]  # a scan counts the victim once, whole

    report = moved(ctx, shop)  # resumed

    assert report.ok and report.by_subscriber[victim].status == "moved"
    assert report.count("moved") + report.count("already") == len(numbers) and report.count("already") >= 1
    assert ctx.accounts.layouts.get(shop) == Layout(3, 4, 16)  # type: ignore[attr-defined]
    assert everything_read(ctx, shop, numbers) == before


class DropsARow(LayoutRows):
    """A copy that silently loses the victim's last ledger row (a bug, or the storage losing it)."""

    def __init__(self, storage: Any, victim: int) -> None:
        super().__init__(storage)
        self.victim = victim

    def copy(self, rows: Any, place: Place) -> dict[str, str]:
        if place.number == self.victim:
            ledger = max(r["RowKey"] for r in rows if r["RowKey"].startswith("1|led|"))
            rows = [r for r in rows if r["RowKey"] != ledger]
        return super().copy(rows, place)


def test_a_copy_that_does_not_add_up_fails_loudly_and_the_subscriber_stays_where_it_was(
        ctx: Context, shop: str) -> None:
    numbers = a_tenant_of_layout_2(ctx, shop)
    victim = numbers[2]
    before = everything_read(ctx, shop, numbers)
    said: list[str] = []
    report = layout_move.move(DropsARow(ctx.storage, victim), ctx.accounts.layouts, shop, 4,  # type: ignore[attr-defined]
                              wait_s=0, progress=said.append)
    assert not report.ok and report.count("failed") == 1 and report.count("moved") == SUBSCRIBERS - 1
    failed = report.by_subscriber[victim]
    assert failed.before["1|led|"][0] == failed.after["1|led|"][0] + 1
    assert failed.before["1|led|"][1] != failed.after["1|led|"][1] or failed.before["1|led|"][1] == 0
    assert any(f"subscriber {victim} NOT moved" in line for line in said)
    assert ctx.accounts.layouts.get(shop).moving  # type: ignore[attr-defined]  # not in buckets for good
    assert LayoutRows(ctx.storage).reports(shop)[-1]["failed"] == 1  # type: ignore[attr-defined]
    assert not in_bucket(ctx, shop, victim)
    place = Place(bucket_key(shop, Layout(3, 4, 16).bucket(victim)), victim, True)
    assert LayoutRows(ctx.storage).read_back(place) == []  # type: ignore[attr-defined]  # nothing half there
    customer_service.add_correction(ctx, shop, victim, "avisa", -100, "Still here", "c3")  # works where it is
    assert everything_read(ctx, shop, numbers)[str(victim)]["documents"] == before[str(victim)]["documents"]

    assert moved(ctx, shop).ok  # the real copy moves it
    assert in_bucket(ctx, shop, victim) and ctx.accounts.load(shop, victim).account.corrections[-1].id == "c3"  # type: ignore[union-attr]


def test_verify_names_a_tampered_and_a_missing_row_and_the_command_exits_1(
        ctx: Context, shop: str, capsys: pytest.CaptureFixture[str]) -> None:
    numbers = a_tenant_of_layout_2(ctx, shop)
    assert moved(ctx, shop).ok
    assert cli.main(["layout", "--tenant", shop, "--verify"]) == 0
    place = ctx.accounts.place(shop, numbers[0])  # type: ignore[attr-defined]
    invoice = next(r for r in LayoutRows(ctx.storage).read_back(place) if r["RowKey"].startswith("1|inv|"))  # type: ignore[attr-defined]
    ctx.storage.upsert(TABLE, {"PartitionKey": place.pk, "RowKey": place.rk(invoice["RowKey"]),  # type: ignore[attr-defined]
                               "Body": invoice["Body"].replace("Kari", "Kåre"), "Total": invoice["Total"]})
    other = ctx.accounts.place(shop, numbers[1])  # type: ignore[attr-defined]
    ledger = next(r for r in LayoutRows(ctx.storage).read_back(other) if r["RowKey"].startswith("1|led|"))  # type: ignore[attr-defined]
    ctx.storage.delete(TABLE, other.pk, other.rk(ledger["RowKey"]))  # type: ignore[attr-defined]
    capsys.readouterr()

    assert cli.main(["layout", "--tenant", shop, "--verify"]) == 1

    out, err = capsys.readouterr()
    assert json.loads(out)["problems"] == 2
    assert f"subscriber {numbers[0]}: {invoice['RowKey']} differs in its bucket" in err
    assert f"subscriber {numbers[1]}: {ledger['RowKey']} missing in its bucket" in err


def test_the_command_moves_shows_the_status_and_refuses_another_bucket_size(
        ctx: Context, shop: str, capsys: pytest.CaptureFixture[str]) -> None:
    numbers = a_tenant_of_layout_2(ctx, shop)
    capsys.readouterr()
    assert cli.main(["layout", "--tenant", shop, "--status"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert (status["layout"], status["first_shape_partitions"], status["left"], status["last_run"]) == (
        2, SUBSCRIBERS, SUBSCRIBERS, None)

    assert cli.main(["layout", "--tenant", shop, "--move", "--bucket-size", "8", "--wait", "0", "--alone"]) == 0
    out, err = capsys.readouterr()
    totals = json.loads(out)
    assert totals["ok"] and totals["moved"] == SUBSCRIBERS and totals["bucket_size"] == 8
    assert "announced" in err and f"moved {SUBSCRIBERS}" in err
    assert cli.main(["layout", "--tenant", shop]) == 0
    status = json.loads(capsys.readouterr().out)
    assert (status["layout"], status["moving"], status["moved"], status["left"]) == (3, False, SUBSCRIBERS, 0)
    assert status["last_run"]["run"] == totals["run"]
    ctx.accounts.layouts.forget(shop)  # type: ignore[attr-defined]
    assert all(in_bucket(ctx, shop, n) for n in numbers)

    assert cli.main(["layout", "--tenant", shop, "--move", "--bucket-size", "16", "--wait", "0", "--alone"]) == 2
    assert "buckets of 8 already" in capsys.readouterr().err


def test_a_second_mover_is_refused_while_the_first_holds_the_lease(ctx: Context, shop: str) -> None:
    a_tenant_of_layout_2(ctx, shop)
    rows, layouts = mover(ctx)
    lease = rows.lease(shop, "the-first")
    with pytest.raises(layout_move.MoveRefused, match="the-first"):
        layout_move.move(rows, layouts, shop, 4, wait_s=0)
    lease.release()
    assert layout_move.move(rows, layouts, shop, 4, wait_s=0).ok


def test_the_lease_of_a_mover_that_died_is_taken_over_once_it_expires(ctx: Context, shop: str) -> None:
    numbers = a_tenant_of_layout_2(ctx, shop)
    rows, layouts = mover(ctx)
    rows.lease(shop, "the-dead")  # never released, never renewed
    with pytest.raises(layout_move.MoveRefused):
        layout_move.move(rows, layouts, shop, 4, wait_s=0)
    ctx.storage.upsert("Tenants", {"PartitionKey": f"move|{shop}", "RowKey": "lease", "Holder": "the-dead",  # type: ignore[attr-defined]
                                   "Until": time.time() - 1})  # its time is up
    assert layout_move.move(rows, layouts, shop, 4, wait_s=0).ok
    assert all(in_bucket(ctx, shop, n) for n in numbers)
    assert ctx.storage.get("Tenants", f"move|{shop}", "lease") is None  # type: ignore[attr-defined]  # released


def in_thread(fn: Any, errors: list[BaseException]) -> threading.Thread:
    def run() -> None:
        try:
            fn()
        except BaseException as exc:
            errors.append(exc)
    return threading.Thread(target=run)


def corrections_until(ctx: Context, shop: str, numbers: list[int], stop: threading.Event, done: list[float]) -> None:
    """Customer service adding corrections round the subscribers until told to stop (at least 8);
    a subscriber mid-move says "try again", and customer service does."""
    k = 0
    while not stop.is_set() or k < 8:
        n = numbers[k % len(numbers)]
        for _ in range(30):
            try:
                customer_service.add_correction(ctx, shop, n, "avisa", -10, "Sorry", f"race{k}")
                done.append(time.monotonic())
                break
            except ConcurrencyConflict:
                continue
        k += 1


class Slow(LayoutRows):
    """A mover that takes its time between fencing a subscriber and copying it: the window
    in which a writer that loaded before the fence must conflict."""

    def copy(self, rows: Any, place: Place) -> dict[str, str]:
        time.sleep(0.15)
        return super().copy(rows, place)


def test_orders_payments_and_customer_service_racing_the_move_lose_nothing(ctx: Context, shop: str) -> None:
    numbers = a_tenant_of_layout_2(ctx, shop)
    renewals = {n: ctx.accounts.documents(shop, n).invoices[-1] for n in numbers}
    errors: list[BaseException] = []
    placed: list[int] = []
    done: list[float] = []
    stop = threading.Event()
    threads = [
        in_thread(lambda: placed.extend(place_order(ctx, order(shop, 100 + k)).subscriber_no for k in range(6)),
                  errors),
        in_thread(lambda: [pay(ctx, shop, [(renewals[n].kid, renewals[n].total_minor)], date(2026, 1, 28), f"9{k}")
                           for k, n in enumerate(numbers[:4])], errors),
        in_thread(lambda: corrections_until(ctx, shop, numbers[4:], stop, done), errors)]
    for t in threads:
        t.start()
    started = time.monotonic()
    report = layout_move.move(Slow(ctx.storage), ctx.accounts.layouts, shop, 4, wait_s=0)  # type: ignore[attr-defined]
    ended = time.monotonic()
    stop.set()
    for t in threads:
        t.join(timeout=120)
    assert errors == [] and report.ok
    assert sum(1 for t in done if started < t < ended) >= 2  # customer service went on during the move

    assert all(in_bucket(ctx, shop, n) for n in [*numbers, *placed]) and len(placed) == 6
    for n in numbers[:4]:  # each payment booked once
        assert [p.payment.amount_minor for p in ctx.accounts.payments(shop, n)].count(renewals[n].total_minor) == 1
    summary = queries.summary(ctx, shop)
    assert summary.payments_booked == 3 + 4 and summary.subscribers == SUBSCRIBERS + 6
    assert summary.number_series_gapless
    corrections = [c.id for n in numbers[4:] for c in ctx.accounts.load(shop, n).account.corrections]  # type: ignore[union-attr]
    assert len(corrections) == len(set(corrections)) and {f"race{k}" for k in range(8)} <= set(corrections)
    money_adds_up(ctx, shop, [*numbers, *placed])
    assert layout_move.verify(*mover(ctx), shop).ok


def test_a_tally_counts_rows_and_sums_money_per_kind() -> None:
    rows = [{"RowKey": HEAD}, {"RowKey": "0|dem|00000001"}, {"RowKey": "1|inv|00000001", "Total": 34800},
            {"RowKey": "1|led|00000001", "Amount": 34800}, {"RowKey": "1|led|00000002", "Amount": -34800},
            {"RowKey": "1|pay|x", "Amount": 34800}, {"RowKey": "1|dlv|inv-1|email|001"}]
    assert tally(rows) == {HEAD: (1, 0, 0), "0|dem|": (1, 0, 0), "1|dlv|": (1, 0, 0), "1|inv|": (1, 0, 34800),
                           "1|led|": (2, 0, 0), "1|pay|": (1, 34800, 0)}
    assert kind("0|sub|s1") == "0|sub|" and FirstShape("t|00|0000000001", 1, rows).items == rows[1:]


def test_a_repository_of_another_process_sees_a_moved_subscriber_in_its_bucket(ctx: Context, shop: str) -> None:
    numbers = a_tenant_of_layout_2(ctx, shop)
    other = AccountRepository(ctx.storage, Layouts(ctx.storage, ttl_s=3600))  # type: ignore[attr-defined]
    assert other.layouts.get(shop) == FIRST
    assert moved(ctx, shop).ok
    loaded = other.load(shop, numbers[0])  # meets Moved, reads the layout again
    assert loaded is not None and "||" in loaded.where


class DeliveredMeanwhile(LayoutRows):
    """While the victim's copy is being checked, the delivery worker (which looked before the
    bucket head existed) writes its log row to the first shape: outside the head's guard."""

    def __init__(self, ctx: Context, shop: str, victim: int) -> None:
        super().__init__(ctx.storage)  # type: ignore[attr-defined]
        self.ctx, self.shop, self.victim = ctx, shop, victim

    def read_back(self, place: Place) -> list[dict[str, Any]]:
        if place.number == self.victim:
            self.ctx.deliveries.claim(self.shop, self.victim, Delivery("rem-1", "sms", 1, DeliveryStatus.QUEUED,
                                                                       datetime(2026, 1, 26, 9, 0)))
        return super().read_back(place)


def test_a_delivery_row_written_to_the_first_shape_during_the_copy_is_carried_to_the_bucket(
        ctx: Context, shop: str) -> None:
    numbers = a_tenant_of_layout_2(ctx, shop)
    victim = numbers[5]
    report = layout_move.move(DeliveredMeanwhile(ctx, shop, victim), ctx.accounts.layouts, shop, 4,  # type: ignore[attr-defined]
                              wait_s=0)
    assert report.ok and report.by_subscriber[victim].carried == 1 and report.totals()["carried"] == 1
    assert in_bucket(ctx, shop, victim)
    assert [(d.document_id, d.status) for d in ctx.deliveries.list(shop, victim)] == [
        ("inv-1", DeliveryStatus.SENT), ("rem-1", DeliveryStatus.QUEUED)]


history_rows = st.lists(st.tuples(st.sampled_from(["1|inv|", "1|led|", "1|pay|", "1|rem|", "1|crn|", "1|dlv|", "0|dem|",
                                                   "0|sub|", "0|out|"]),
                                  st.integers(-10**9, 10**12), st.integers(0, 32_000)), min_size=0, max_size=230)


@settings(max_examples=4, deadline=None, suppress_health_check=list(HealthCheck),
          phases=(Phase.explicit, Phase.reuse, Phase.generate))  # Azurite: no minutes of shrinking
@given(extra=history_rows)
@example(extra=[("1|led|", 3_000_000_000, 30_000)] * 230)  # 230 rows of 60 KB: split by rows and by bytes
def test_any_rows_a_subscriber_has_are_copied_whole_and_tally_the_same(ctx: Context, extra: list[Any]) -> None:
    # up to 230 rows of any kind, money beyond Int32, bodies up to 64 KB (32,000 characters): the copy
    # is cut into transactions by rows (100) and bytes (3 MiB) and every row arrives as it was
    tenant = f"p{uuid.uuid4().hex[:10]}"
    ctx.accounts.layouts.set(tenant, FIRST)  # type: ignore[attr-defined]
    ctx.accounts.commit(tenant, None, Changes(Account(Subscriber(7, "Ola", "ola@example.no"), balances={"avisa": 0})))
    pk = first_shape_key(tenant, 7)
    rows = [{"PartitionKey": pk, "RowKey": f"{k}{i:08d}", "Body": "x" * size, "Amount": amount,
             **({"Total": -amount} if k == "1|inv|" else {})} for i, (k, amount, size) in enumerate(extra)]
    for group in range(0, len(rows), 50):  # written as any history would have been, a part at a time
        for row in rows[group:group + 50]:
            ctx.storage.upsert(TABLE, row)  # type: ignore[attr-defined]
    rows_ = LayoutRows(ctx.storage)  # type: ignore[attr-defined]
    layout = Layout(3, 4, 16, moving=True)
    ctx.accounts.layouts.set(tenant, layout)  # type: ignore[attr-defined]

    outcome = layout_move.move_one(rows_, tenant, layout, pk)

    assert outcome is not None
    moved_, part, place, _ = outcome
    assert moved_.status == "moved" and moved_.before == moved_.after
    assert moved_.before == tally(part.items) | {HEAD: (1, 0, 0)}
    back = {r["RowKey"]: r for r in rows_.read_back(place)}
    assert {k: (r["Body"], r["Amount"], r.get("Total")) for k, r in back.items() if k != HEAD} == {
        r["RowKey"]: (r["Body"], r["Amount"], r.get("Total")) for r in rows}
    assert layout_move.verify(rows_, ctx.accounts.layouts, tenant, layout).ok  # type: ignore[attr-defined]
    assert in_bucket(ctx, tenant, 7)
