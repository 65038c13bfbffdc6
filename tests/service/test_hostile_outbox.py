"""Outbox rows left by one transaction never make the next one too big (issue 8 parts 4
and 6). Every transaction deletes the outbox rows it found at load; work is cut to fit
100 entities (a write-off in parts of 40 demands, a dunning visit in parts of 60 rows),
but the leftovers of the transaction before (a renewal issues up to ~24 invoices, each
with an event) came on top: a write-off after the invoice run answered 422 ("do it in
smaller parts", which customer service cannot do), and the bulk write-off stopped at
that subscriber. The outbox deletion is opportunistic: what does not fit stays, and
goes out (again) with the next transaction."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.clock import SettableClock
from shared.domain.account import Changes
from shared.domain.events import CorrectionAdded
from shared.service import customer_service
from shared.service.billing import bill_one
from shared.service.context import Context
from shared.service.orders import place_order
from tests.conftest import oslo_morning
from tests.fixtures import order
from tests.service.test_large_account import weekly_plan_with_one_reminder_then_stop

pytestmark = pytest.mark.fakes  # each test runs on Azurite and on the in-memory fakes

TODAY = date(2026, 1, 5)


def indebted(ctx: Context, clock: SettableClock, tenant: str, email: str) -> int:
    """A weekly subscriber since June 2025, nothing paid: about 35 open invoices."""
    clock.set(oslo_morning(date(2025, 6, 2)))
    no = place_order(ctx, order(tenant, plan="weekly", email=email)).subscriber_no
    clock.set(oslo_morning(TODAY))
    while bill_one(ctx, tenant, TODAY, no):
        pass
    return no


def leave_outbox_rows(ctx: Context, tenant: str, no: int, count: int) -> None:
    """What a transaction leaves: ``count`` events whose rows the next transaction deletes."""
    loaded = ctx.accounts.load(tenant, no)
    assert loaded is not None
    events = tuple(CorrectionAdded(f"probe.{no}.{i}", no, f"probe{i}", "avisa", i, "probe") for i in range(count))
    ctx.accounts.commit(tenant, loaded, Changes(loaded.account, events=events))


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pending=st.integers(0, 95))
def test_a_write_off_works_whatever_the_transaction_before_left_in_the_outbox(
        ctx: Context, clock: SettableClock, shop: str, pending: int) -> None:
    if "weekly" not in ctx.catalogue.get(shop).plans:
        weekly_plan_with_one_reminder_then_stop(ctx, shop)
    no = indebted(ctx, clock, shop, f"w{pending}@example.no")
    loaded = ctx.accounts.load(shop, no)
    assert loaded is not None and len(loaded.account.open_demands) > 30
    leave_outbox_rows(ctx, shop, no, pending)
    done = customer_service.write_off(ctx, shop, no, "avisa", "Gone abroad")  # TooManyEntities: 422
    after = ctx.accounts.load(shop, no)
    assert after is not None and not after.account.open_demands and after.account.balances["avisa"] == 0
    assert len(done.ledger) == len(loaded.account.open_demands)
    customer_service.set_order_block(ctx, shop, no, "avisa", "probe")  # a later transaction
    customer_service.set_order_block(ctx, shop, no, "avisa", None)
    final = ctx.accounts.load(shop, no)
    assert final is not None and not [e for e in final.outbox if e.id.startswith("probe.")]  # all gone in the end


def stopped_debtors(ctx: Context, clock: SettableClock, shop: str, prefix: str) -> list[int]:
    """Three subscribers who owe and whose subscriptions were stopped today."""
    weekly_plan_with_one_reminder_then_stop(ctx, shop)
    subscribers = [indebted(ctx, clock, shop, f"{prefix}{i}@example.no") for i in range(3)]
    for no in subscribers:
        loaded = ctx.accounts.load(shop, no)
        assert loaded is not None
        (sub,) = loaded.account.subscriptions.values()
        customer_service.stop(ctx, shop, no, sub.id, False, TODAY, None, "Moved")
    return subscribers


def test_the_bulk_write_off_is_not_stopped_by_one_subscribers_outbox(ctx: Context, clock: SettableClock,
                                                                     shop: str) -> None:
    subscribers = stopped_debtors(ctx, clock, shop, "b")
    leave_outbox_rows(ctx, shop, subscribers[0], 40)
    clock.set(oslo_morning(TODAY + timedelta(days=30)))
    done = customer_service.bulk_write_off(ctx, shop, "avisa", "Ended, unpaid", date(2025, 1, 1),
                                           TODAY + timedelta(days=30))
    assert done.subscribers == 3
    for no in subscribers:
        after = ctx.accounts.load(shop, no)
        assert after is not None and not after.account.open_demands


def test_the_bulk_write_off_reports_a_failing_subscriber_and_writes_off_the_others(
        ctx: Context, clock: SettableClock, shop: str, monkeypatch: pytest.MonkeyPatch) -> None:
    subscribers = stopped_debtors(ctx, clock, shop, "f")
    clock.set(oslo_morning(TODAY + timedelta(days=30)))
    real = customer_service.write_off

    def poisoned(ctx_: Context, tenant: str, no: int, *args: object) -> object:
        if no == subscribers[1]:
            raise OverflowError("date value out of range for f1@example.no")
        return real(ctx_, tenant, no, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(customer_service, "write_off", poisoned)
    done = customer_service.bulk_write_off(ctx, shop, "avisa", "Ended, unpaid", date(2025, 1, 1),
                                           TODAY + timedelta(days=30))
    assert done.subscribers == 2
    assert done.failed == {subscribers[1]: "OverflowError: date value out of range for <e-mail>"}
    for no in subscribers:
        after = ctx.accounts.load(shop, no)
        assert after is not None and bool(after.account.open_demands) == (no == subscribers[1])
