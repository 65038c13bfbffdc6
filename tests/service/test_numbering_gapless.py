"""Invoice numbers under failures (L1, issue 8 part 3): a number claimed for a transaction
that fails is used by the retry or released and reused, and never lands on two
documents. Faults are injected between the claim and the commit (a commit double that
raises), across several subscribers, invoices and credit notes."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.adapters.accounts import AccountRepository
from shared.adapters.numbering import series_key
from shared.domain.account import Changes, issue
from shared.ports import ConcurrencyConflict
from shared.service import customer_service, unit_of_work
from shared.service.billing import bill_one, bill_subscribers
from shared.service.context import Context
from shared.service.orders import place_order
from shared.service.unit_of_work import Claims, claim_key, release_unissued
from tests.conftest import oslo_morning
from tests.fakes.accounts import commit_each
from tests.fixtures import install_catalogue, order


class TooLarge(Exception):
    """What Table Storage answers for a property over 64 KiB (a permanent failure)."""


@dataclass
class FlakyAccounts:
    """The subscriber repository with a commit that fails as ``plan`` says (True: fail),
    one entry per commit; everything else passes through."""

    real: AccountRepository
    plan: list[bool] = field(default_factory=list)
    failed: int = 0

    def commit(self, tenant: str, loaded: Any, changes: Changes) -> Any:
        if self.plan and self.plan.pop(0):
            self.failed += 1
            raise TooLarge("PropertyValueTooLarge")
        return self.real.commit(tenant, loaded, changes)

    def commit_many(self, tenant: str, items: Any) -> Any:  # each through this commit, faults and all
        return commit_each(self, tenant, items)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def flaky(ctx: Context, plan: list[bool]) -> tuple[Context, FlakyAccounts]:
    accounts = FlakyAccounts(ctx.accounts, list(plan))
    return replace(ctx, accounts=accounts), accounts  # type: ignore[arg-type]


def series(ctx: Context, tenant: str) -> str:
    org = ctx.catalogue.get(tenant).organizations["avisa"]
    return series_key(tenant, org.id, org.invoice_series)


def issued(ctx: Context, tenant: str) -> list[int]:
    """Every number on an invoice or credit note of the tenant, duplicates kept."""
    numbers: list[int] = []
    for _loaded, history in ctx.accounts.scan_tenant(tenant):
        numbers += [i.number for i in history.invoices] + [c.number for c in history.credit_notes]
    return sorted(numbers)


@pytest.mark.fakes  # on Azurite and on the in-memory fakes
def test_a_failed_order_releases_its_number_and_the_next_order_takes_it(ctx: Context, shop: str) -> None:
    failing, accounts = flaky(ctx, [True])
    with pytest.raises(TooLarge):
        place_order(failing, order(shop, 1, ref="first"))
    assert accounts.failed == 1 and issued(ctx, shop) == []
    assert ctx.invoice_numbers.free_numbers(series(ctx, shop)) == ()  # number 1 was the top: the counter stepped back
    place_order(ctx, order(shop, 2, ref="second"))
    place_order(ctx, order(shop, 1, ref="first"))  # the retry succeeds
    assert issued(ctx, shop) == [1, 2]


@pytest.mark.fakes  # on Azurite and on the in-memory fakes
def test_a_number_released_below_the_top_goes_to_the_free_list_and_is_taken_first(ctx: Context, shop: str) -> None:
    first = place_order(ctx, order(shop, 1))  # number 1
    with Claims(ctx, shop, ctx.catalogue.get(shop)) as claims:  # claims 2 and 3, commits only 3
        loaded = ctx.accounts.load(shop, first.subscriber_no)
        assert loaded is not None
        got = claims.numbers([(first.subscriber_no, "avisa", "additional.x"), (first.subscriber_no, "avisa", "y")])
        assert sorted(got[first.subscriber_no].values()) == [2, 3]
        claims.committed(Changes(loaded.account))
        ctx.invoice_numbers.claim(series(ctx, shop), ["999.z"])  # 4, held by someone else
    assert ctx.invoice_numbers.free_numbers(series(ctx, shop)) == (2, 3)
    place_order(ctx, order(shop, 2))
    assert issued(ctx, shop) == [1, 2]


@pytest.mark.fakes  # on Azurite and on the in-memory fakes
def test_a_commit_that_fails_n_times_then_succeeds_keeps_the_series_gapless(ctx: Context, shop: str) -> None:
    placed = [place_order(ctx, order(shop, n)) for n in (1, 2, 3)]  # numbers 1-3
    ctx.clock.set(oslo_morning(date(2026, 1, 22)))  # type: ignore[attr-defined]
    failing, accounts = flaky(ctx, [True, True, True])  # the renewal of the first subscriber, three times
    for _ in range(3):
        with pytest.raises(TooLarge):
            bill_one(failing, shop, date(2026, 1, 22), placed[0].subscriber_no)
    assert accounts.failed == 3
    bill_subscribers(ctx, shop, date(2026, 1, 22), [p.subscriber_no for p in placed])
    customer_service.credit_invoice(ctx, shop, placed[1].subscriber_no, placed[1].invoices[0].number, "Mistake")
    assert issued(ctx, shop) == list(range(1, 8))  # 3 orders, 3 renewals, 1 credit note


@pytest.mark.fakes  # on Azurite and on the in-memory fakes
def test_releasing_a_number_a_racer_committed_restores_it_instead(ctx: Context, shop: str) -> None:
    placed = place_order(ctx, order(shop, 1))
    catalogue = ctx.catalogue.get(shop)
    with Claims(ctx, shop, catalogue) as loser:  # claims the renewal, as the racer does, and never commits it
        loser.numbers([(placed.subscriber_no, "avisa", f"{placed.subscription_id}.1")])
        assert bill_one(ctx, shop, date(2026, 1, 22), placed.subscriber_no) == 1  # the racer commits number 2
    assert ctx.invoice_numbers.free_numbers(series(ctx, shop)) == ()
    assert ctx.invoice_numbers.claims(series(ctx, shop))[claim_key(placed.subscriber_no,
                                                                   f"{placed.subscription_id}.1")] == 2
    place_order(ctx, order(shop, 2))
    assert issued(ctx, shop) == [1, 2, 3]


@pytest.mark.fakes  # on Azurite and on the in-memory fakes
def test_a_holder_of_a_released_number_cannot_commit_it(ctx: Context, shop: str) -> None:
    placed = place_order(ctx, order(shop, 1))
    catalogue = ctx.catalogue.get(shop)
    today = date(2026, 1, 22)
    loaded = ctx.accounts.load(shop, placed.subscriber_no)  # the slow worker loads, claims...
    assert loaded is not None
    drafts = unit_of_work.drafts_that_fit(loaded, loaded.account, catalogue, today)
    numbers = Claims(ctx, shop, catalogue).for_drafts(placed.subscriber_no, drafts)
    with Claims(ctx, shop, catalogue) as other:  # ...another process claims the same and releases it
        other.for_drafts(placed.subscriber_no, drafts)
    with pytest.raises(ConcurrencyConflict):  # the fence: the slow worker's load is stale
        ctx.accounts.commit(shop, loaded, issue(loaded.account, drafts, numbers, catalogue, today))
    assert bill_one(ctx, shop, today, placed.subscriber_no) == 1
    assert issued(ctx, shop) == [1, 2]


@pytest.mark.fakes  # on Azurite and on the in-memory fakes
def test_a_claim_left_by_a_process_that_died_is_released_by_the_sweep(ctx: Context, shop: str,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(unit_of_work, "release", lambda *a, **k: None)  # it died before it could release
    failing, _ = flaky(ctx, [True])
    with pytest.raises(TooLarge):
        place_order(failing, order(shop, 1))
    monkeypatch.undo()
    place_order(ctx, order(shop, 2))
    assert issued(ctx, shop) == [2]  # number 1 is claimed and on no document: a gap, for now
    assert release_unissued(ctx, shop) == 0  # too young: its commit might still be on its way
    assert release_unissued(ctx, shop, grace_s=-1) == 1
    place_order(ctx, order(shop, 3))
    assert issued(ctx, shop) == [1, 2]


# The property: random failures across subscribers, orders, renewals and credit notes.

DAYS = [date(2026, 1, 22), date(2026, 2, 19), date(2026, 3, 22)]
Step = tuple[str, int]  # ("order" | "renew" | "credit", subscriber index or day index)
STEPS = st.lists(st.tuples(st.sampled_from(["order", "renew", "credit"]), st.integers(0, 2)), min_size=3,
                 max_size=9)


@pytest.mark.fakes  # on Azurite and on the in-memory fakes
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=STEPS, failures=st.lists(st.booleans(), max_size=20))
def test_under_random_failures_the_issued_numbers_are_exactly_1_to_n(ctx: Context, steps: list[Step],
                                                                     failures: list[bool]) -> None:
    tenant = f"g{uuid.uuid4().hex[:10]}"
    install_catalogue(ctx, tenant)
    failing, _ = flaky(ctx, failures)
    subscribers: dict[int, int] = {}

    def run(c: Context, step: Step) -> None:
        kind, i = step
        if kind == "order":
            subscribers[i] = place_order(c, order(tenant, i, ref=f"o{i}")).subscriber_no
        elif kind == "renew" and subscribers:
            c.clock.set(oslo_morning(max(DAYS[i], c.clock.now().date())))  # type: ignore[attr-defined]
            bill_subscribers(c, tenant, c.clock.now().date(), sorted(subscribers.values()))
        elif kind == "credit" and i in subscribers:
            history = c.accounts.documents(tenant, subscribers[i])
            credited = {n.invoice_number for n in history.credit_notes}
            open_ = [inv.number for inv in history.invoices if inv.number not in credited]
            if open_:
                customer_service.credit_invoice(c, tenant, subscribers[i], max(open_), "Mistake")

    for step in steps:
        try:
            run(failing, step)
        except TooLarge:
            pass
        numbers = issued(ctx, tenant)
        free = ctx.invoice_numbers.free_numbers(series(ctx, tenant))
        assert len(set(numbers)) == len(numbers)  # never a duplicate
        assert sorted([*numbers, *free]) == list(range(1, len(numbers) + len(free) + 1))  # the rest is free
    for step in steps:  # the failures pass; everything is done again
        run(ctx, step)
    numbers = issued(ctx, tenant)
    assert numbers == list(range(1, len(numbers) + 1))


def test_the_sweep_endpoint_is_for_admins_and_releases_loose_claims(ctx: Context, shop: str,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from devhost import issuer
    from tests.integration.test_merchant import call

    monkeypatch.setattr(unit_of_work.release_unissued, "__defaults__", (-1,))  # no grace: the claim is old enough
    ctx.invoice_numbers.claim(series(ctx, shop), ["1234.sub.0"])  # a claim whose process died
    assert call("invoice_numbers_sweep", "POST", issuer.token(shop, ["support"]))[0] == 403
    status, done = call("invoice_numbers_sweep", "POST", issuer.token(shop, ["admin"]))
    assert (status, done) == (200, {"released": 1})
    place_order(ctx, order(shop, 1))
    assert issued(ctx, shop) == [1]


@pytest.mark.fakes  # on Azurite and on the in-memory fakes
def test_a_failed_transaction_outside_a_claims_session_releases_its_numbers(ctx: Context, shop: str) -> None:
    # the dunning run's path: numbers claimed by ``numbered`` alone, the transaction by ``write``
    from shared.domain import credit
    from shared.service.unit_of_work import numbered, write

    placed = place_order(ctx, order(shop, 1))  # invoice 1
    loaded = ctx.accounts.load(shop, placed.subscriber_no)
    assert loaded is not None
    inv = placed.invoices[0]
    changes = numbered(ctx, shop, ctx.catalogue.get(shop), lambda number: credit.credit_issued(
        loaded.account, inv, "Mistake", date(2026, 1, 5), number))
    assert [c.number for c in changes.credit_notes] == [2]
    failing, _ = flaky(ctx, [True])
    with pytest.raises(TooLarge):
        write(failing, shop, loaded, changes)
    assert 2 not in ctx.invoice_numbers.claims(series(ctx, shop)).values()
    place_order(ctx, order(shop, 2))
    assert issued(ctx, shop) == [1, 2]
