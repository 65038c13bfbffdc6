"""The unit of work (issue 9, item 1): every use case on one subscriber goes through
``unit_of_work.UnitOfWork.change``, so the retry limit, the outbox and the parts are the
same for all of them. Proved over the use cases, against Azurite, by fault injection."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

import pytest
from azure.core.exceptions import ServiceResponseError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.adapters.accounts import AccountRepository
from shared.adapters.bus import EVENTS, BusMessage
from shared.domain.account import Changes, Correction
from shared.domain.events import CorrectionAdded
from shared.ports import ConcurrencyConflict
from shared.service import customer_service, isolation
from shared.service.billing import bill_one, bill_subscribers
from shared.service.context import Context
from shared.service.orders import place_order
from shared.service.unit_of_work import MAX_ATTEMPTS, Conflicted, NoSuchSubscriber, Seen, UnitOfWork, change
from tests.conftest import oslo_morning
from tests.fakes.accounts import commit_each
from tests.fixtures import install_catalogue, order
from tests.service.test_numbering_gapless import issued

RENEWAL_DAY = date(2026, 1, 22)


@dataclass
class Racing:
    """The subscriber repository whose commits conflict ``conflicts`` times (a racer always
    got there first), then pass; everything else passes through."""

    real: AccountRepository
    conflicts: int = 10**6
    commits: int = 0

    def commit(self, tenant: str, loaded: Any, changes: Changes) -> Any:
        self.commits += 1
        if self.commits <= self.conflicts:
            raise ConcurrencyConflict("changed meanwhile")
        return self.real.commit(tenant, loaded, changes)

    def commit_many(self, tenant: str, items: Any) -> Any:  # each through this commit, faults and all
        return commit_each(self, tenant, items)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


@dataclass
class Recording:
    """The bus, recording what each send carried."""

    real: Any
    sent: list[tuple[str, list[str]]] = field(default_factory=list)

    def send(self, queue: str, messages: Sequence[BusMessage]) -> None:
        self.sent.append((queue, [m.id for m in messages]))
        self.real.send(queue, messages)

    def events(self) -> list[str]:
        return [i for queue, ids in self.sent if queue == EVENTS for i in ids]


def racing(ctx: Context, accounts: object) -> Context:
    """``ctx`` with a stand-in for its subscriber repository."""
    return replace(ctx, accounts=accounts)  # type: ignore[arg-type]


UseCase = Callable[[Context, str, int, int], Any]  # (ctx, tenant, subscriber, its first invoice)
USE_CASES: dict[str, UseCase] = {
    "order": lambda c, t, n, _inv: place_order(c, order(t, 1, plan="digital-yearly"), subscriber_no=n),
    "renewal": lambda c, t, n, _inv: bill_one(c, t, RENEWAL_DAY, n),
    "credit note": lambda c, t, n, inv: customer_service.credit_invoice(c, t, n, inv, "Mistake"),
    "order block": lambda c, t, n, _inv: customer_service.set_order_block(c, t, n, "avisa", "Fraud"),
    "write-off": lambda c, t, n, _inv: customer_service.write_off(c, t, n, "avisa", "Gone abroad"),
    "correction": lambda c, t, n, _inv: customer_service.add_correction(c, t, n, "avisa", -100, "Typo", "c1"),
}


@pytest.mark.parametrize("use_case", sorted(USE_CASES))
def test_every_use_case_gives_up_after_the_one_retry_limit_and_leaves_no_gap(
        ctx: Context, shop: str, use_case: str) -> None:
    placed = place_order(ctx, order(shop, 1))  # invoice 1
    ctx.clock.set(oslo_morning(RENEWAL_DAY))  # type: ignore[attr-defined]
    before = placed_account(ctx, shop, placed.subscriber_no)
    race = Racing(ctx.accounts)
    with pytest.raises(ConcurrencyConflict):
        USE_CASES[use_case](racing(ctx, race), shop, placed.subscriber_no, placed.invoices[0].number)
    assert race.commits == MAX_ATTEMPTS
    assert placed_account(ctx, shop, placed.subscriber_no) == before
    USE_CASES[use_case](ctx, shop, placed.subscriber_no, placed.invoices[0].number)  # the race is over: it goes
    place_order(ctx, order(shop, 2))
    numbers = issued(ctx, shop)
    assert numbers == list(range(1, len(numbers) + 1))  # what the failed attempts claimed was released


def placed_account(ctx: Context, tenant: str, subscriber_no: int) -> Any:
    loaded = ctx.accounts.load(tenant, subscriber_no)
    assert loaded is not None
    return loaded.account


@pytest.mark.parametrize("use_case", sorted(USE_CASES))
def test_every_use_case_goes_through_after_fewer_conflicts_than_the_limit(
        ctx: Context, shop: str, use_case: str) -> None:
    placed = place_order(ctx, order(shop, 1))
    ctx.clock.set(oslo_morning(RENEWAL_DAY))  # type: ignore[attr-defined]
    race = Racing(ctx.accounts, conflicts=MAX_ATTEMPTS - 1)
    USE_CASES[use_case](racing(ctx, race), shop, placed.subscriber_no, placed.invoices[0].number)
    assert race.commits >= MAX_ATTEMPTS
    place_order(ctx, order(shop, 2))
    numbers = issued(ctx, shop)
    assert numbers == list(range(1, len(numbers) + 1))


def probe(limit: int, seen_parts: list[int]) -> Callable[[Seen], Changes]:
    """A decision too big for one transaction: one correction (and one event) per part, ``limit`` in all."""

    def decide(seen: Seen) -> Changes:
        seen_parts.append(seen.part)
        have = seen.account.corrections
        if len(have) >= limit:
            return Changes(seen.account)
        fix = Correction(f"p{len(have)}", "avisa", -100, "part", seen.today)
        return Changes(replace(seen.account, corrections=(*have, fix)),
                       events=(CorrectionAdded(f"probe.{seen.account.number}.{len(have)}", seen.account.number,
                                              fix.id, "avisa", -100, "part"),))

    return decide


def test_a_decision_in_parts_commits_each_part_and_publishes_each_event_once(ctx: Context, shop: str) -> None:
    no = place_order(ctx, order(shop, 1)).subscriber_no
    bus = Recording(ctx.bus)
    parts: list[int] = []
    done = change(replace(ctx, bus=bus), shop, no, probe(3, parts), parts=10)
    assert len(done.events) == 3 and len(done.account.corrections) == 3
    assert parts == [0, 1, 2, 3]  # the fourth run finds nothing more to do, in memory
    assert [e for e in bus.events() if e.startswith("probe.")] == [f"probe.{no}.{i}" for i in range(3)]
    assert len(placed_account(ctx, shop, no).corrections) == 3


def test_a_conflict_in_the_middle_of_parts_goes_on_from_what_committed(ctx: Context, shop: str) -> None:
    no = place_order(ctx, order(shop, 1)).subscriber_no
    real = ctx.accounts
    commits: list[int] = []

    class SecondConflicts(Racing):
        def commit(self, tenant: str, loaded: Any, changes: Changes) -> Any:
            commits.append(len(changes.account.corrections))
            if len(commits) == 2:
                raise ConcurrencyConflict("a racer")
            return real.commit(tenant, loaded, changes)

    done = change(racing(ctx, SecondConflicts(real)), shop, no, probe(3, []), parts=10)
    assert commits == [1, 2, 2, 3]
    assert [e.id for e in done.events] == [f"probe.{no}.{i}" for i in range(3)]
    assert len(placed_account(ctx, shop, no).corrections) == 3


def test_with_one_attempt_a_conflict_says_what_parts_committed(ctx: Context, shop: str) -> None:
    no = place_order(ctx, order(shop, 1)).subscriber_no
    race = Racing(ctx.accounts, conflicts=0)
    original = race.commit

    def second_conflicts(tenant: str, loaded: Any, changes: Changes) -> Any:
        if race.commits == 1:
            race.commits += 1
            raise ConcurrencyConflict("a racer")
        return original(tenant, loaded, changes)

    race.commit = second_conflicts  # type: ignore[method-assign]
    with UnitOfWork(racing(ctx, race), shop) as uow, pytest.raises(Conflicted) as raised:
        uow.change(no, probe(3, []), parts=10, attempts=1)
    assert raised.value.done is not None and len(raised.value.done.account.corrections) == 1


def test_an_unknown_subscriber_is_not_found_unless_the_operation_starts_one(ctx: Context, shop: str) -> None:
    with pytest.raises(NoSuchSubscriber):
        change(ctx, shop, 987654, probe(1, []))
    assert ctx.accounts.load(shop, 987654) is None


def test_a_batch_publishes_its_events_in_one_send(ctx: Context, shop: str,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(isolation, "BACKOFF_S", 0.0)
    numbers = [place_order(ctx, order(shop, i)).subscriber_no for i in range(4)]
    bus = Recording(ctx.bus)
    race = Racing(ctx.accounts, conflicts=1)  # the first commit conflicts: redone alone, sent on its own
    result = bill_subscribers(replace(racing(ctx, race), bus=bus), shop, RENEWAL_DAY, numbers)
    assert (result.invoices, result.conflicts, result.needs_attention) == (4, 1, 0)
    assert [queue for queue, _ in bus.sent].count(EVENTS) == 2  # the batch's three in one, the redone one alone


@dataclass
class Fated:
    """The subscriber repository where each subscriber's commits meet their fate: ``conflict``
    (the first one conflicts), ``transient`` (the first one meets a dropped connection),
    ``always`` (every one conflicts: a racer that never stops), anything else passes."""

    real: AccountRepository
    fates: dict[int, str]
    commits: dict[int, int] = field(default_factory=dict)

    def commit(self, tenant: str, loaded: Any, changes: Changes) -> Any:
        no = changes.account.number
        self.commits[no] = self.commits.get(no, 0) + 1
        fate = self.fates.get(no)
        if fate == "always" or (fate == "conflict" and self.commits[no] == 1):
            raise ConcurrencyConflict("a racer")
        if fate == "transient" and self.commits[no] == 1:
            raise ServiceResponseError("connection reset")
        return self.real.commit(tenant, loaded, changes)

    def commit_many(self, tenant: str, items: Any) -> Any:  # each through this commit, faults and all
        return commit_each(self, tenant, items)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


FATES = st.lists(st.sampled_from(["ok", "ok", "conflict", "transient", "always"]), min_size=1, max_size=5)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fates=FATES)
def test_the_batch_runner_does_each_subscriber_once_whatever_its_neighbours_meet(
        ctx: Context, fates: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(isolation, "BACKOFF_S", 0.0)
    tenant = f"u{uuid.uuid4().hex[:10]}"
    ctx.clock.set(oslo_morning(date(2026, 1, 5)))  # type: ignore[attr-defined]
    install_catalogue(ctx, tenant)
    numbers = [place_order(ctx, order(tenant, i)).subscriber_no for i in range(len(fates))]
    fated = dict(zip(numbers, fates, strict=True))
    bus = Recording(ctx.bus)
    result = bill_subscribers(replace(racing(ctx, Fated(ctx.accounts, fated)), bus=bus), tenant, RENEWAL_DAY,
                              numbers)
    stuck = {n for n, f in fated.items() if f == "always"}
    assert result.invoices == len(numbers) - len(stuck)
    assert result.conflicts == sum(1 for f in fates if f in ("conflict", "always"))
    assert result.needs_attention == len(stuck)
    assert {a.subscriber_no for a in ctx.attention.all(tenant)} == stuck
    assert [len(ctx.accounts.documents(tenant, n).invoices) for n in numbers] == [
        1 if n in stuck else 2 for n in numbers]
    sends = [ids for queue, ids in bus.sent if queue == EVENTS]
    batch = 1 if "ok" in fates else 0  # one send for what the fast path committed, if anything
    assert len(sends) == batch + sum(1 for f in fates if f in ("conflict", "transient"))  # and each redo's
    again = bill_subscribers(ctx, tenant, RENEWAL_DAY, numbers, attention=sorted(stuck))  # the racer has stopped
    assert (again.invoices, again.needs_attention) == (len(stuck), 0)
    assert ctx.attention.all(tenant) == []
    assert issued(ctx, tenant) == list(range(1, 2 * len(numbers) + 1))  # no number lost to the failures
