"""One bad item never blocks others (issue 8, part 6), by fault injection on Azurite.

Poisoned states are stored directly through the repository or the catalogue table, as
data written before the boundary checked it would be: a restart in year 9999, a
correction of 10^30, a demand due 9999-12-31, lead days of a billion. The batch goes
through the worker function as the bus hands it over: the healthy subscribers are
billed, the bad one is recorded as needing attention, and the message completes."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import date, timedelta
from typing import Any

import pytest
from azure.core.exceptions import ServiceResponseError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from functions.dunning_timer import dunning_timer
from functions.invoice_timer import invoice_timer
from functions.notification_worker import handle as notify
from functions.run_worker import handle as work
from shared import bootstrap
from shared.adapters import attention
from shared.adapters.attention import TENANT_RUN, Attention
from shared.adapters.bus import RUN_WORK, BusMessage, unpack
from shared.adapters.catalogue_store import TABLE as CATALOGUE
from shared.adapters.codec import dumps
from shared.adapters.indexes import Tenants
from shared.domain.account import Changes, Correction
from shared.service import billing, dunning, isolation
from shared.service.billing import BatchResult, bill_subscribers, start_invoice_run
from shared.service.context import Context
from shared.service.dunning import DunningResult, start_dunning_run
from shared.service.orders import place_order
from tests.conftest import oslo_morning
from tests.fixtures import install_catalogue, order

RENEWAL_DAY = date(2026, 1, 22)  # orders of 5 Jan renew on 5 Feb, produced 14 days before
PLAN = billing.drafts_that_fit
COLLECT = dunning.dun


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(isolation, "BACKOFF_S", 0.0)


def subscribers(ctx: Context, tenant: str, n: int) -> list[int]:
    return [place_order(ctx, order(tenant, i)).subscriber_no for i in range(n)]


def poison_restart(ctx: Context, tenant: str, number: int) -> None:
    """A second subscription restarting on 9999-12-31, as a pause until then left it."""
    loaded = ctx.accounts.load(tenant, number)
    assert loaded is not None
    sub = next(iter(loaded.account.subscriptions.values()))
    ctx.accounts.commit(tenant, loaded, Changes(loaded.account, (
        replace(sub, id="restart", anchor=date(9999, 12, 31), next_period=0, scheduled_start=True),)))


def poison_correction(ctx: Context, tenant: str, number: int) -> None:
    loaded = ctx.accounts.load(tenant, number)
    assert loaded is not None
    big = Correction("huge", "avisa", 10**30, "typo", date(2026, 1, 5))
    ctx.accounts.commit(tenant, loaded, Changes(replace(loaded.account, corrections=(big,))))


def poison_demand(ctx: Context, tenant: str, number: int) -> None:
    """An open demand due on the last day of the calendar: reminding it overflows."""
    loaded = ctx.accounts.load(tenant, number)
    assert loaded is not None
    (demand,) = loaded.account.open_demands.values()
    demands = {demand.demand_no: replace(demand, terms=replace(demand.terms, due_date=date(9999, 12, 31)))}
    ctx.accounts.commit(tenant, loaded, Changes(replace(loaded.account, open_demands=demands)))


POISONS: dict[str, Callable[[Context, str, int], None]] = {"restart": poison_restart, "correction": poison_correction}


def run(ctx: Context, plan: Callable[[Context, str], Any], tenant: str, day: date) -> list[Any]:
    """The timer's plan for ``tenant``, then every message through the worker function."""
    ctx.clock.set(oslo_morning(day))  # type: ignore[attr-defined]
    plan(ctx, tenant)
    return drain(ctx, RUN_WORK, work)


def drain(ctx: Context, queue_name: str, handler: Callable[[bytes], Any]) -> list[Any]:
    queue = ctx.bus.service.get_queue_client(queue_name)  # type: ignore[attr-defined]
    results = []
    while batch := list(queue.receive_messages(max_messages=32, visibility_timeout=30)):
        for message in batch:
            for item in unpack(message.content):
                results.append(handler(item.encode().encode()))  # raises: the message would be redelivered
            queue.delete_message(message)
    return results


def invoiced(ctx: Context, tenant: str, number: int) -> int:
    return len(ctx.accounts.documents(tenant, number).invoices)


def rows(ctx: Context, tenant: str) -> dict[tuple[str, int], Attention]:
    return {(a.run, a.subscriber_no): a for a in ctx.attention.all(tenant)}


def test_a_batch_with_a_restart_in_9999_and_a_correction_of_10_to_30_bills_the_other_subscribers(
        ctx: Context, shop: str) -> None:
    numbers = subscribers(ctx, shop, 6)
    poison_restart(ctx, shop, numbers[1])
    poison_correction(ctx, shop, numbers[4])
    (result,) = run(ctx, start_invoice_run, shop, RENEWAL_DAY)  # one message of six: it completes
    assert (result.invoices, result.needs_attention) == (4, 2)
    assert [invoiced(ctx, shop, n) for n in numbers] == [2, 1, 2, 2, 1, 2]
    found = rows(ctx, shop)
    assert set(found) == {("invoice", numbers[1]), ("invoice", numbers[4])}
    restart, correction = found[("invoice", numbers[1])], found[("invoice", numbers[4])]
    assert restart.reason == "ValueOutOfRange: period anchor 9999-12-31 is outside 2000-01-01..2100-12-31"
    assert correction.reason.startswith("ValueOutOfRange: correction huge 1000000000000000000000000000000")
    assert (correction.day, correction.count) == (RENEWAL_DAY, 1)


def test_the_same_failure_again_is_one_row_counted_twice_and_issues_nothing_more(ctx: Context, shop: str) -> None:
    numbers = subscribers(ctx, shop, 3)
    poison_correction(ctx, shop, numbers[0])
    body = BusMessage("m", {"kind": "invoice", "tenant": shop, "date": RENEWAL_DAY.isoformat(),
                            "subscribers": numbers}).encode().encode()
    first, again = work(body), work(body)  # the message redelivered
    assert (first.invoices, again.invoices) == (2, 0)
    (row,) = ctx.attention.all(shop)
    assert (row.subscriber_no, row.count, row.first_day) == (numbers[0], 2, RENEWAL_DAY)


def test_the_next_run_retries_a_recorded_subscriber_and_clears_it_once_fixed(ctx: Context, shop: str) -> None:
    numbers = subscribers(ctx, shop, 2)
    poison_correction(ctx, shop, numbers[0])
    run(ctx, start_invoice_run, shop, RENEWAL_DAY)
    (result,) = run(ctx, start_invoice_run, shop, RENEWAL_DAY + timedelta(days=1))  # not due by cadence: retried
    assert (result.subscribers, result.invoices, result.needs_attention) == (1, 0, 1)
    assert ctx.attention.all(shop)[0].count == 2
    loaded = ctx.accounts.load(shop, numbers[0])  # customer service fixes the correction
    assert loaded is not None
    fixed = Correction("huge", "avisa", -1000, "typo fixed", date(2026, 1, 5))
    ctx.accounts.commit(shop, loaded, Changes(replace(loaded.account, corrections=(fixed,))))
    (result,) = run(ctx, start_invoice_run, shop, RENEWAL_DAY + timedelta(days=2))
    assert (result.invoices, result.needs_attention) == (1, 0)
    assert ctx.attention.all(shop) == []
    assert ctx.accounts.documents(shop, numbers[0]).invoices[-1].total_minor == 34800 + 3900 - 1000
    assert run(ctx, start_invoice_run, shop, RENEWAL_DAY + timedelta(days=3)) == []  # nobody to retry


def test_a_decision_that_raises_for_one_subscriber_leaves_the_others_billed(
        ctx: Context, shop: str, monkeypatch: pytest.MonkeyPatch) -> None:
    numbers = subscribers(ctx, shop, 5)
    real = billing.issue

    def issue(account: Any, *args: Any, **kw: Any) -> Changes:
        if account.number == numbers[2]:
            raise RuntimeError(f"bad data for {account.subscriber.email}")
        return real(account, *args, **kw)

    monkeypatch.setattr(billing, "issue", issue)
    (result,) = run(ctx, start_invoice_run, shop, RENEWAL_DAY)
    assert (result.invoices, result.needs_attention) == (4, 1)
    (row,) = ctx.attention.all(shop)
    assert row.reason == "RuntimeError: bad data for <e-mail>"  # no address shown to customer service


def test_a_passing_storage_failure_is_retried_alone_and_recorded_only_if_it_persists(
        ctx: Context, shop: str, monkeypatch: pytest.MonkeyPatch) -> None:
    numbers = subscribers(ctx, shop, 3)
    load, failing = ctx.accounts.load, {numbers[0]: 2, numbers[1]: 99}  # failures to come per subscriber

    def flaky(tenant: str, number: int) -> Any:
        if failing.get(number, 0) > 0:
            failing[number] -= 1
            raise ServiceResponseError("connection reset")
        return load(tenant, number)

    load_many = ctx.accounts.load_many

    def flaky_bucket(tenant: str, wanted: Any) -> Any:  # the fast path's read of a whole bucket
        if any(failing.get(n, 0) > 0 for n in wanted):
            for n in wanted:
                failing[n] = max(0, failing.get(n, 0) - 1)
            raise ServiceResponseError("connection reset")
        return load_many(tenant, wanted)

    monkeypatch.setattr(ctx.accounts, "load", flaky)
    monkeypatch.setattr(ctx.accounts, "load_many", flaky_bucket)
    (result,) = run(ctx, start_invoice_run, shop, RENEWAL_DAY)
    assert (result.invoices, result.needs_attention) == (2, 1)
    assert [(a.subscriber_no, a.reason) for a in ctx.attention.all(shop)] == [
        (numbers[1], "ServiceResponseError: connection reset")]


def test_when_even_recording_fails_the_message_raises_to_be_redelivered(
        ctx: Context, shop: str, monkeypatch: pytest.MonkeyPatch) -> None:
    numbers = subscribers(ctx, shop, 2)
    poison_correction(ctx, shop, numbers[0])

    def down(*_args: Any, **_kw: Any) -> None:
        raise ServiceResponseError("storage unreachable")

    monkeypatch.setattr(ctx.attention, "record", down)
    with pytest.raises(ServiceResponseError):
        bill_subscribers(ctx, shop, RENEWAL_DAY, numbers)
    assert invoiced(ctx, shop, numbers[1]) == 2  # the healthy one is billed; the redelivery finds it done


def test_a_dunning_batch_with_a_demand_due_in_9999_reminds_the_others(ctx: Context, shop: str) -> None:
    numbers = subscribers(ctx, shop, 4)  # first invoices due 19 Jan, reminded 26 Jan
    poison_demand(ctx, shop, numbers[2])
    (result,) = run(ctx, start_dunning_run, shop, date(2026, 1, 26))
    assert isinstance(result, DunningResult)
    assert (result.reminders, result.needs_attention) == (3, 1)
    (row,) = ctx.attention.all(shop)
    assert (row.run, row.subscriber_no) == ("dunning", numbers[2])
    assert [len(ctx.accounts.documents(shop, n).reminders) for n in numbers] == [1, 1, 0, 1]


def test_a_visit_that_raises_is_recorded_and_cleared_when_it_next_succeeds(
        ctx: Context, shop: str, monkeypatch: pytest.MonkeyPatch) -> None:
    numbers = subscribers(ctx, shop, 3)
    real = dunning.dun
    broken = {numbers[0]}

    def dun(account: Any, *args: Any) -> Changes:
        if account.number in broken:
            raise KeyError("organization")
        return real(account, *args)

    monkeypatch.setattr(dunning, "dun", dun)
    (result,) = run(ctx, start_dunning_run, shop, date(2026, 1, 26))
    assert (result.reminders, result.needs_attention) == (2, 1)
    assert rows(ctx, shop)[("dunning", numbers[0])].reason == "KeyError: 'organization'"
    broken.clear()
    (result,) = run(ctx, start_dunning_run, shop, date(2026, 1, 27))  # the next run visits it again
    assert (result.subscribers, result.reminders, result.needs_attention) == (1, 1, 0)
    assert ctx.attention.all(shop) == []


def test_a_notice_that_cannot_be_made_is_recorded_for_its_subscriber_and_its_message_completes(
        ctx: Context, shop: str) -> None:
    body = {"tenant": shop, "type": "ReminderIssued", "payload": {"subscriber_no": 1234, "currency": "NOK"}}
    assert notify(BusMessage("reminder.avisa.7.1", body).encode().encode()) is None
    (row,) = ctx.attention.all(shop)
    assert (row.run, row.subscriber_no, row.ref) == ("notice", 1234, "reminder.avisa.7.1")
    assert row.reason.startswith("ValidationError: ") and "ReminderIssued" in row.reason
    with pytest.raises(KeyError):  # a message that names no subscriber: for the poison queue
        notify(BusMessage("x", {"tenant": shop, "type": "ReminderIssued", "payload": {}}).encode().encode())


# ---- tenants --------------------------------------------------------------------------------

class OnlyThese(Tenants):
    """The tenant registry limited to this test's tenants (the Azurite is shared by the suite)."""

    def __init__(self, ctx: Context, tenants: list[str]) -> None:
        super().__init__(ctx.storage)
        self.tenants = tenants

    def all(self) -> list[str]:
        return list(self.tenants)


@pytest.fixture
def tenants(ctx: Context) -> Iterator[tuple[Context, list[str]]]:
    names = [f"{n}{uuid.uuid4().hex[:8]}" for n in ("ta", "tbad", "tc")]
    for name in names:
        install_catalogue(ctx, name)
    limited = replace(ctx, tenants=OnlyThese(ctx, names))
    bootstrap.set_context(limited)
    yield limited, names
    bootstrap.set_context(ctx)


def store_raw(ctx: Context, tenant: str, kind: str, item: Any) -> None:
    """Write a catalogue item as stored data, past every check."""
    ctx.storage.upsert(CATALOGUE, {"PartitionKey": tenant, "RowKey": f"{kind}|{item.id}", "Body": dumps(item)})
    ctx.catalogue.invalidate(tenant)


def test_a_tenant_whose_billing_plan_has_lead_days_of_a_billion_stops_no_other_tenants_runs(
        tenants: tuple[Context, list[str]]) -> None:
    ctx, (a, bad, c) = tenants
    placed = {t: subscribers(ctx, t, 2) for t in (a, bad, c)}
    plan = ctx.catalogue.get(bad).billing_plans["monthly-14"]
    store_raw(ctx, bad, "billing_plan", replace(plan, lead_days=10**9))
    ctx.clock.set(oslo_morning(RENEWAL_DAY))  # type: ignore[attr-defined]
    invoice_timer(None)  # the timer function itself
    results = drain(ctx, RUN_WORK, work)
    assert sorted(r.invoices for r in results) == [2, 2]  # tenants a and c renewed
    assert all(invoiced(ctx, t, n) == 2 for t in (a, c) for n in placed[t])
    (row,) = ctx.attention.all(bad)
    assert (row.run, row.subscriber_no) == ("invoice", TENANT_RUN)
    assert row.reason == "ValueOutOfRange: billing plan monthly-14: lead days 1000000000 is outside 0..366"
    assert ctx.attention.run_state(bad, "invoice").watermark is None  # not advanced: the 22nd is caught up
    dunning_timer(None)  # the dunning run of the same tenant does not need the lead days: it runs

    store_raw(ctx, bad, "billing_plan", plan)  # fixed: the next day's run catches up from 5 Jan
    ctx.clock.set(oslo_morning(RENEWAL_DAY + timedelta(days=1)))  # type: ignore[attr-defined]
    invoice_timer(None)
    drain(ctx, RUN_WORK, work)
    assert all(invoiced(ctx, bad, n) == 2 for n in placed[bad])
    assert ctx.attention.all(bad) == []


def test_a_tenant_whose_dunning_planning_overflows_stops_no_other_tenants_dunning(
        tenants: tuple[Context, list[str]]) -> None:
    ctx, (a, bad, c) = tenants
    placed = {t: subscribers(ctx, t, 1) for t in (a, bad, c)}
    process = ctx.catalogue.get(bad).dunning_processes["standard"]
    store_raw(ctx, bad, "dunning_process",
              replace(process, reminders=(replace(process.reminders[0], delay_days=10**9),)))
    ctx.clock.set(oslo_morning(date(2026, 1, 26)))  # type: ignore[attr-defined]
    dunning_timer(None)
    drain(ctx, RUN_WORK, work)
    assert [len(ctx.accounts.documents(t, placed[t][0]).reminders) for t in (a, bad, c)] == [1, 0, 1]
    (row,) = ctx.attention.all(bad)
    assert (row.run, row.subscriber_no, row.reason.split(":")[0]) == ("dunning", TENANT_RUN, "OverflowError")


# ---- the property ---------------------------------------------------------------------------

@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(poisons=st.lists(st.sampled_from([None, None, "restart", "correction", "decision"]), min_size=1,
                        max_size=6))
def test_exactly_the_healthy_subscribers_are_billed_and_exactly_the_poisoned_are_recorded(
        ctx: Context, poisons: list[str | None], monkeypatch: pytest.MonkeyPatch) -> None:
    tenant = f"p{uuid.uuid4().hex[:10]}"  # each example: a new tenant ordering on 5 Jan
    ctx.clock.set(oslo_morning(date(2026, 1, 5)))  # type: ignore[attr-defined]
    install_catalogue(ctx, tenant)
    numbers = subscribers(ctx, tenant, len(poisons))
    decided_badly = {n for n, p in zip(numbers, poisons, strict=True) if p == "decision"}
    for number, poison in zip(numbers, poisons, strict=True):
        if poison in POISONS:
            POISONS[poison](ctx, tenant, number)
    def plan(loaded: Any, *args: Any, **kw: Any) -> Any:
        if loaded.account.number in decided_badly:
            raise ArithmeticError("injected")
        return PLAN(loaded, *args, **kw)

    with monkeypatch.context() as patch:  # undone after each example
        patch.setattr(billing, "drafts_that_fit", plan)
        results: list[BatchResult] = run(ctx, start_invoice_run, tenant, RENEWAL_DAY)
    healthy = {n for n, p in zip(numbers, poisons, strict=True) if p is None}
    assert {n for n in numbers if invoiced(ctx, tenant, n) == 2} == healthy
    assert {a.subscriber_no for a in ctx.attention.all(tenant)} == set(numbers) - healthy
    assert sum(r.invoices for r in results) == len(healthy)



@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(poisons=st.lists(st.sampled_from([None, None, "demand", "decision"]), min_size=1, max_size=6))
def test_exactly_the_healthy_subscribers_are_reminded_and_exactly_the_poisoned_are_recorded(
        ctx: Context, poisons: list[str | None], monkeypatch: pytest.MonkeyPatch) -> None:
    tenant = f"q{uuid.uuid4().hex[:10]}"  # each example: a new tenant ordering on 5 Jan, reminded on the 26th
    ctx.clock.set(oslo_morning(date(2026, 1, 5)))  # type: ignore[attr-defined]
    install_catalogue(ctx, tenant)
    numbers = subscribers(ctx, tenant, len(poisons))
    for number, poison in zip(numbers, poisons, strict=True):
        if poison == "demand":
            poison_demand(ctx, tenant, number)
    decided_badly = {n for n, p in zip(numbers, poisons, strict=True) if p == "decision"}

    def dun(account: Any, *args: Any) -> Changes:
        if account.number in decided_badly:
            raise LookupError("injected")
        return COLLECT(account, *args)

    with monkeypatch.context() as patch:
        patch.setattr(dunning, "dun", dun)
        results: list[DunningResult] = run(ctx, start_dunning_run, tenant, date(2026, 1, 26))
    healthy = {n for n, p in zip(numbers, poisons, strict=True) if p is None}
    assert {n for n in numbers if ctx.accounts.documents(tenant, n).reminders} == healthy
    assert {a.subscriber_no for a in ctx.attention.all(tenant)} == set(numbers) - healthy
    assert sum(r.reminders for r in results) == len(healthy)

def test_transient_means_storage_and_network_failures_not_faults_of_the_data() -> None:
    from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

    from shared.ports import ConcurrencyConflict

    def http(status: int) -> HttpResponseError:
        error = HttpResponseError(message=str(status))
        error.status_code = status
        return error

    assert all(attention.transient(e) for e in (ServiceResponseError("reset"), ConcurrencyConflict("412"),
                                                http(503), http(429)))
    assert not any(attention.transient(e) for e in (ValueError("x"), OverflowError("x"), http(400),
                                                    ResourceNotFoundError("gone")))


def test_a_reason_is_short_and_shows_no_address() -> None:
    exc = ValueError("kari.nordmann@example.no owes " + "x" * 1000)
    assert isolation.reason(exc).startswith("ValueError: <e-mail> owes xxx")
    assert len(isolation.reason(exc)) == isolation.REASON_LENGTH
    storage = ServiceResponseError("The specified resource does not exist.\nRequestId:9f67\nContent: <?xml ...")
    assert isolation.reason(storage) == "ServiceResponseError: The specified resource does not exist."
    assert isolation.reason(KeyError()) == "KeyError"



# ---- customer service sees them -------------------------------------------------------------

def test_customer_service_lists_what_needs_attention_and_dismisses_a_notice(ctx: Context, shop: str) -> None:
    from devhost import issuer
    from tests.integration.test_merchant import call

    numbers = subscribers(ctx, shop, 2)
    poison_correction(ctx, shop, numbers[0])
    run(ctx, start_invoice_run, shop, RENEWAL_DAY)
    body = {"tenant": shop, "type": "PaymentStopNotice", "payload": {"subscriber_no": numbers[1]}}
    notify(BusMessage("stop-notice.avisa.2", body).encode().encode())
    reader, support = issuer.token(shop, ["reader"]), issuer.token(shop, ["support"])
    status, listed = call("attention_list", "GET", reader)
    assert status == 200
    assert [(r["operation"], r["subscriber_no"], r["ref"], r["count"]) for r in listed] == [
        ("notice", numbers[1], "stop-notice.avisa.2", 1), ("invoice run", numbers[0], None, 1)]
    assert listed[1]["reason"].startswith("ValueOutOfRange: correction huge") and listed[1]["day"] == "2026-01-22"
    assert call("attention_list", "GET", issuer.token("someone-else", ["admin"]))[1] == []  # tenant's own only
    route = {"run": "notice", "subscriber_no": str(numbers[1])}
    assert call("attention_dismiss", "DELETE", reader, route, params={"ref": "stop-notice.avisa.2"})[0] == 403
    assert call("attention_dismiss", "DELETE", support, route, params={"ref": "stop-notice.avisa.2"})[0] == 204
    assert call("attention_dismiss", "DELETE", support, route, params={"ref": "stop-notice.avisa.2"})[0] == 404
    assert call("attention_dismiss", "DELETE", support, {"run": "a|b", "subscriber_no": "1"})[0] == 400  # not a run
    assert call("attention_dismiss", "DELETE", support, {"run": "invoice", "subscriber_no": "x"})[0] == 400
    assert [r["operation"] for r in call("attention_list", "GET", reader)[1]] == ["invoice run"]
