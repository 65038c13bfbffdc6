""""Payment stop in N days" notices (manual 6.19, 7.7) only for subscriptions a payment
stop can still stop: never for one that has ended, was stopped already, or whose stop
(customer stop, pause, automatic stop) comes on or before the payment stop. Pure."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.domain.account import Account
from shared.domain.dunning_visit import dun, next_visit, stoppable
from shared.domain.events import PaymentStopNotice, SubscriptionStopped
from shared.domain.subscriptions import StopKind, Subscription
from tests.unit.test_dunning_visit import CAT, Numbers, bill, subscribed

STOP_CHECK = date(2026, 2, 26)  # January's invoice unpaid: reminder 2 due 16 Feb + delay 10 (see test_dunning_visit)
NOTICE_DAY = STOP_CHECK - timedelta(days=5)
FIRST, LAST = date(2026, 1, 1), date(2026, 4, 30)


def walk(acc: Account, numbers: Numbers, until: date) -> tuple[list[tuple[date, str]], Account]:
    """Every day from 1 Jan: the invoice run, then the dunning visit; nothing is paid.
    Returns (day, event type) of every event of the visits, and the account after."""
    seen = []
    day = FIRST
    while day <= until:
        changes = dun(bill(acc, day, numbers).account, CAT, day, numbers)
        seen += [(day, e.type) for e in changes.events]
        acc = changes.account
        day += timedelta(days=1)
    return seen, acc


def with_stop(stop_date: date | None, kind: StopKind | None) -> Account:
    acc = subscribed()
    sub = replace(acc.subscriptions["s1"], stop_date=stop_date, stop_kind=kind if stop_date else None)
    return acc.with_subscription(sub)


@pytest.mark.parametrize(("stop_date", "kind", "noticed"), [
    (None, None, True),  # running: noticed 5 days ahead, stopped on the day
    (date(2026, 2, 1), StopKind.CUSTOMER, False),  # ended weeks before the payment stop
    (date(2026, 2, 21), StopKind.PAUSE, False),  # paused on the notice day itself
    (STOP_CHECK, StopKind.AUTOMATIC, False),  # its own stop comes the same day: nothing for a payment stop
    (STOP_CHECK + timedelta(days=1), StopKind.CUSTOMER, True),  # a later stop: the payment stop comes first
    (date(2026, 6, 1), StopKind.CUSTOMER, True),
])
def test_a_stop_notice_only_for_a_subscription_the_payment_stop_will_stop(
        stop_date: date | None, kind: StopKind | None, noticed: bool) -> None:
    events, _acc = walk(with_stop(stop_date, kind), Numbers(), LAST)
    notices = [d for d, t in events if t == "PaymentStopNotice"]
    stops = [d for d, t in events if t == "SubscriptionStopped"]
    assert notices == ([NOTICE_DAY] if noticed else [])
    assert stops == ([STOP_CHECK] if noticed else [])  # a notice always tells the truth


def test_the_rule_over_subscription_states() -> None:
    sub = subscribed().subscriptions["s1"]
    assert stoppable(sub, STOP_CHECK) and not stoppable(None, STOP_CHECK)
    assert not stoppable(replace(sub, stop_date=STOP_CHECK), STOP_CHECK)
    assert stoppable(replace(sub, stop_date=STOP_CHECK + timedelta(days=1)), STOP_CHECK)


def test_no_dunning_visit_is_planned_for_a_notice_to_an_ended_subscription() -> None:
    _events, ended = walk(with_stop(date(2026, 2, 1), StopKind.CUSTOMER), Numbers(), date(2026, 2, 16))
    # January, unpaid when the subscription ended on 1 Feb, was credited then and its days
    # charged; the balance invoice of 2 Feb asks for it, and is never dunned
    assert [d.terms.kind for d in ended.open_demands.values()] == ["balance"]
    assert next_visit(ended, CAT, date(2026, 2, 16)) is None


stop_states = st.tuples(st.one_of(st.none(), st.dates(FIRST, date(2026, 7, 1))), st.sampled_from(list(StopKind)),
                        st.dates(FIRST, date(2026, 3, 31)))


@settings(max_examples=60, deadline=None)
@given(stop_states)
def test_every_stop_notice_is_followed_by_that_stop_and_none_goes_to_an_ended_subscription(
        state: tuple[date | None, StopKind, date]) -> None:
    """Whatever stop the subscription has, set on whatever day: a notice is sent only
    while the subscription runs and its own stop comes after the announced payment stop,
    and on the announced day the payment stop happens."""
    stop_date, kind, set_on = state
    numbers, acc, day = Numbers(), subscribed(), FIRST
    announced: list[date] = []
    while day <= LAST:
        if day == set_on:
            acc = acc.with_subscription(replace(acc.subscriptions["s1"], stop_date=stop_date, stop_kind=kind))
        acc = bill(acc, day, numbers).account
        before: Subscription = acc.subscriptions["s1"]
        changes = dun(acc, CAT, day, numbers)
        for e in changes.events:
            if isinstance(e, PaymentStopNotice):
                on = e.stop_date
                assert before.stop_date is None or before.stop_date > on, (before, on)
                announced.append(on)
            if isinstance(e, SubscriptionStopped) and e.kind == StopKind.PAYMENT:
                assert before.stop_date is None or before.stop_date > day
        acc = changes.account
        if day in announced and not (day >= set_on and stop_date is not None and stop_date <= day):
            assert acc.subscriptions["s1"].stop_kind is StopKind.PAYMENT  # the notice told the truth
        day += timedelta(days=1)
