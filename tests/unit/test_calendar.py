from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from shared.domain.calendar import Frequency, cadence_key, cadence_keys_starting_on, local_date, period, period_start

anchors = st.dates(min_value=date(2000, 1, 1), max_value=date(2090, 12, 31))
frequencies = st.sampled_from(list(Frequency))


def test_a_subscription_started_31_january_renews_on_the_last_of_february_then_31_march() -> None:
    anchor = date(2024, 1, 31)
    starts = [period_start(anchor, Frequency.MONTHLY, n) for n in range(4)]
    assert starts == [date(2024, 1, 31), date(2024, 2, 29), date(2024, 3, 31), date(2024, 4, 30)]
    assert period_start(date(2025, 1, 31), Frequency.MONTHLY, 1) == date(2025, 2, 28)


def test_weekly_and_four_weekly_periods_count_days() -> None:
    assert period(date(2026, 1, 5), Frequency.WEEKLY, 2).start == date(2026, 1, 19)
    assert period(date(2026, 1, 5), Frequency.FOUR_WEEKLY, 1).days == 28


def test_yearly_from_29_february_falls_on_28_february_and_returns() -> None:
    anchor = date(2024, 2, 29)
    assert [period_start(anchor, Frequency.YEARLY, n) for n in (1, 4)] == [date(2025, 2, 28), date(2028, 2, 29)]


@given(anchors, frequencies, st.integers(min_value=0, max_value=40))
def test_periods_follow_each_other_without_gaps_or_overlaps(anchor: date, frequency: Frequency, n: int) -> None:
    first, second = period(anchor, frequency, n), period(anchor, frequency, n + 1)
    assert first.end == second.start
    assert first.start < first.end


@given(anchors, frequencies, st.integers(min_value=0, max_value=40))
def test_the_due_index_finds_every_period_start(anchor: date, frequency: Frequency, n: int) -> None:
    start = period_start(anchor, frequency, n)
    assert cadence_key(anchor, frequency) in cadence_keys_starting_on(start, frequency)


@given(anchors, frequencies, st.integers(min_value=1, max_value=400))
def test_the_due_index_finds_no_day_that_is_not_a_period_start(anchor: date, frequency: Frequency, offset: int) -> None:
    day = anchor + timedelta(days=offset)
    starts = {period_start(anchor, frequency, n) for n in range(0, 60)}
    assert (cadence_key(anchor, frequency) in cadence_keys_starting_on(day, frequency)) == (day in starts)


def test_the_billing_date_is_the_oslo_date() -> None:
    # 23:30 UTC on 31 December is already 1 January in Oslo (UTC+1 in winter)
    assert local_date(datetime(2025, 12, 31, 23, 30, tzinfo=UTC), "Europe/Oslo") == date(2026, 1, 1)
