"""The pure rules of provider charges (``shared.domain.charges``): the due date's lead time,
the provider's statuses, and the merge that never goes backwards."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.domain.account import Account
from shared.domain.agreements import Charge, ChargeState, Provider
from shared.domain.calendar import local_date
from shared.domain.charges import (
    LEAD_DAYS,
    Observed,
    captured,
    card_state,
    charge_due,
    merged,
    settle,
    vipps_state,
)
from shared.domain.subscriptions import Subscriber
from tests.unit.test_dunning_visit import catalogue

DAY = date(2026, 2, 1)
CHARGE = Charge("c7-3-1", Provider.VIPPS, "a7-s1", "avisa", 3, 34800, "NOK", date(2026, 2, 5), 2, 1)


@given(st.dates(date(2020, 1, 1), date(2040, 12, 31)), st.integers(-60, 60))
def test_a_charge_is_due_on_its_invoice_s_day_but_never_inside_the_lead_time(booked: date, offset: int) -> None:
    invoice_due = booked + timedelta(days=offset)
    due = charge_due(invoice_due, booked)
    assert due >= booked + timedelta(days=LEAD_DAYS) and due >= invoice_due
    assert due in (invoice_due, booked + timedelta(days=LEAD_DAYS))


@pytest.mark.parametrize(("booked", "due"), [
    (date(2026, 1, 30), date(2026, 2, 1)), (date(2026, 2, 27), date(2026, 3, 1)),
    (date(2028, 2, 28), date(2028, 3, 1)), (date(2028, 2, 29), date(2028, 3, 2)),
    (date(2026, 12, 31), date(2027, 1, 2)), (date(2026, 4, 30), date(2026, 5, 2))])
def test_the_lead_time_runs_across_month_and_year_ends(booked: date, due: date) -> None:
    assert charge_due(booked, booked) == due


@pytest.mark.parametrize(("now", "day"), [
    (datetime(2026, 3, 28, 23, 30, tzinfo=UTC), date(2026, 3, 29)),  # the night DST starts: 00:30 CET
    (datetime(2026, 3, 29, 22, 30, tzinfo=UTC), date(2026, 3, 30)),  # 00:30 CEST
    (datetime(2026, 10, 24, 22, 30, tzinfo=UTC), date(2026, 10, 25)),  # the night DST ends: 00:30 CEST
    (datetime(2026, 10, 25, 22, 30, tzinfo=UTC), date(2026, 10, 25)),  # 23:30 CET
])
def test_the_lead_time_counts_from_the_day_in_oslo_across_dst(now: datetime, day: date) -> None:
    booked = local_date(now, "Europe/Oslo")
    assert booked == day
    assert charge_due(booked, booked) == day + timedelta(days=2)


def test_every_vipps_status_has_a_state_and_captured_ones_are_money() -> None:
    names = ["PENDING", "DUE", "PROCESSING", "RESERVED", "CHARGED", "PARTIALLY_CAPTURED", "PARTIALLY_REFUNDED",
             "REFUNDED", "FAILED", "CANCELLED"]
    states = {name: vipps_state(name) for name in names}
    assert {n for n, s in states.items() if captured(s)} == {"CHARGED", "PARTIALLY_CAPTURED", "PARTIALLY_REFUNDED",
                                                              "REFUNDED"}
    assert vipps_state("SOMETHING_NEW") is ChargeState.PENDING  # unknown: no news, never an outcome
    assert card_state("Paid", 34800) is ChargeState.CHARGED and card_state("Failed", 0) is ChargeState.FAILED
    assert card_state("Initialized", 0) is ChargeState.PROCESSING and card_state("Aborted", 0) is ChargeState.CANCELLED
    # Paid with nothing captured is an authorization: no money yet, never booked (the demo's
    # captured-vs-booked check found renewals booked that Swedbank Pay had only authorized)
    assert card_state("Paid", 0) is ChargeState.RESERVED and not captured(card_state("Paid", 0))


OPEN_STATES = [ChargeState.REQUESTED, ChargeState.PENDING, ChargeState.DUE, ChargeState.PROCESSING,
               ChargeState.RESERVED]


@given(st.lists(st.sampled_from(list(ChargeState)), max_size=12))
def test_a_merge_never_goes_backwards(seen: list[ChargeState]) -> None:
    charge = CHARGE
    for state in seen:
        after = merged(charge, Observed(state), DAY)
        assert after.state.rank >= charge.state.rank
        if state.rank < charge.state.rank:
            assert after == charge  # news from the past changes nothing
        charge = after
    ranks = [s.rank for s in seen]
    assert charge.state.rank == max([0, *ranks])


def test_the_same_news_again_changes_nothing() -> None:
    once = merged(CHARGE, Observed(ChargeState.DUE), DAY)
    assert merged(once, Observed(ChargeState.DUE), DAY + timedelta(days=1)) is once


def test_news_of_a_charge_with_no_row_is_settled_before_and_changes_nothing() -> None:
    account = Account(Subscriber(7, "Kari", "kari@example.no"))
    for state in ChargeState:
        changes = settle(account, CHARGE.id, Observed(state, 34800), catalogue(), DAY)
        assert changes.account is account and changes.empty
