"""A dunning visit that loses a race must not leave its invoice numbers claimed (L1,
issue 8 part 3). The visit claims numbers for the credit notes of a payment stop (or a
balance invoice) and commits; when another operation changed the subscriber first, it
is redone alone, and if the redo no longer needs those numbers (the debt was paid or
written off meanwhile), they must be released, not left as a claim no document
carries: a gap in the series that only an admin's sweep would close."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from typing import Any

import pytest

from shared.adapters.accounts import AccountRepository
from shared.clock import SettableClock
from shared.domain.account import Changes
from shared.service import customer_service
from shared.service.billing import bill_one
from shared.service.context import Context
from shared.service.dunning import dun_subscribers
from shared.service.orders import place_order
from tests.conftest import oslo_morning
from tests.fakes.accounts import commit_each
from tests.fixtures import order
from tests.service.test_large_account import weekly_plan_with_one_reminder_then_stop
from tests.service.test_numbering_gapless import issued, series

pytestmark = pytest.mark.fakes  # each test runs on Azurite and on the in-memory fakes

TODAY = date(2026, 1, 5)


@dataclass
class RacedFirstCommit:
    """Runs ``racer`` (another operation on the same subscriber) just before the first commit."""

    real: AccountRepository
    racer: Any
    done: list[bool] = field(default_factory=list)

    def commit(self, tenant: str, loaded: Any, changes: Changes) -> Any:
        if not self.done:
            self.done.append(True)
            self.racer()
        return self.real.commit(tenant, loaded, changes)

    def commit_many(self, tenant: str, items: Any) -> Any:  # each through this commit, faults and all
        return commit_each(self, tenant, items)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


@pytest.mark.parametrize("racer", ["write_off", "credit_all"])
def test_a_payment_stop_that_loses_its_race_leaves_no_number_claimed(ctx: Context, clock: SettableClock,
                                                                     shop: str, racer: str) -> None:
    weekly_plan_with_one_reminder_then_stop(ctx, shop)
    clock.set(oslo_morning(date(2025, 11, 3)))
    no = place_order(ctx, order(shop, plan="weekly")).subscriber_no
    clock.set(oslo_morning(TODAY))
    while bill_one(ctx, shop, TODAY, no):
        pass
    assert dun_subscribers(ctx, shop, TODAY, [no]).reminders > 0
    stop_day = TODAY + timedelta(days=20)
    clock.set(oslo_morning(stop_day))

    def race() -> None:  # customer service settles the debt while the dunning run is at its commit
        if racer == "write_off":
            customer_service.write_off(ctx, shop, no, "avisa", "Agreed with the subscriber")
            return
        loaded = ctx.accounts.load(shop, no)
        assert loaded is not None
        for demand in sorted(loaded.account.open_demands.values(), key=lambda d: d.demand_no)[:3]:
            customer_service.credit_invoice(ctx, shop, no, demand.terms.invoice_number, "Complaint")

    raced = RacedFirstCommit(ctx.accounts, race)
    result = dun_subscribers(replace(ctx, accounts=raced), shop, stop_day, [no])  # type: ignore[arg-type]
    assert raced.done and result.conflicts == 1
    numbers = issued(ctx, shop)
    free = ctx.invoice_numbers.free_numbers(series(ctx, shop))
    assert len(set(numbers)) == len(numbers)
    assert sorted([*numbers, *free]) == list(range(1, len(numbers) + len(free) + 1))
    loose = set(ctx.invoice_numbers.claims(series(ctx, shop)).values()) - set(numbers)
    assert not loose, f"claimed, on no document: {sorted(loose)}"  # a gap until an admin sweeps
    place_order(ctx, order(shop, 2))
    after = issued(ctx, shop)
    assert after == list(range(1, len(after) + 1))  # the next document closes any released number
