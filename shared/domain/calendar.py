"""Billing periods and the billing calendar.

A subscription's periods are anchored on its start day and computed from the anchor,
never chained, so a subscription started 31 January renews on 28/29 February and then
on 31 March again (manual 10.1 "How Renewal&Demands work": a new period starts at the
end of the current one). Month arithmetic uses python-dateutil's ``relativedelta``,
which clamps to the month's last day.

The *cadence key* names the set of days on which a frequency's periods can start for a
given anchor. The invoice run's index is keyed by it, so the run finds every
subscription whose period starts on a day without scanning and without rewriting the
index at each renewal (see ``shared/adapters/indexes.py``).

    >>> anchor = date(2024, 1, 31)
    >>> [str(period_start(anchor, Frequency.MONTHLY, n)) for n in range(3)]
    ['2024-01-31', '2024-02-29', '2024-03-31']
"""

from __future__ import annotations

import calendar as _calendar
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from zoneinfo import ZoneInfo

from dateutil.relativedelta import relativedelta

from .limits import check_day


class Frequency(StrEnum):
    WEEKLY = "weekly"
    FOUR_WEEKLY = "four_weekly"
    MONTHLY = "monthly"
    QUARTERLY = "quarterly"
    HALF_YEARLY = "half_yearly"
    YEARLY = "yearly"

    @property
    def months(self) -> int:
        return _MONTHS.get(self, 0)

    @property
    def days(self) -> int:
        return _DAYS.get(self, 0)


_MONTHS = {Frequency.MONTHLY: 1, Frequency.QUARTERLY: 3, Frequency.HALF_YEARLY: 6, Frequency.YEARLY: 12}
_DAYS = {Frequency.WEEKLY: 7, Frequency.FOUR_WEEKLY: 28}


@dataclass(frozen=True, slots=True, order=True)
class Period:
    """A billing period: ``start`` inclusive, ``end`` exclusive (the next period's start)."""

    start: date
    end: date

    @property
    def last_day(self) -> date:
        return self.end - timedelta(days=1)

    @property
    def days(self) -> int:
        return (self.end - self.start).days


@lru_cache(maxsize=1 << 16)  # pure, and asked several times per invoice; dateutil is not cheap
def period_start(anchor: date, frequency: Frequency, index: int) -> date:
    """Start of the ``index``-th period (0 is the first) of a subscription anchored on ``anchor``."""
    if index < 0:
        raise ValueError("period index must be non-negative")
    check_day(anchor, "period anchor")
    if frequency.months:
        return anchor + relativedelta(months=frequency.months * index)
    return anchor + timedelta(days=frequency.days * index)


def period(anchor: date, frequency: Frequency, index: int) -> Period:
    return Period(period_start(anchor, frequency, index), period_start(anchor, frequency, index + 1))


def _month_number(day: date) -> int:
    return day.year * 12 + day.month - 1


def cadence_key(anchor: date, frequency: Frequency) -> str:
    """The key shared by all anchors whose periods start on the same days."""
    if frequency.months:
        return f"m{frequency.months}.{_month_number(anchor) % frequency.months}.{anchor.day}"
    return f"d{frequency.days}.{anchor.toordinal() % frequency.days}"


def cadence_keys_starting_on(day: date, frequency: Frequency) -> list[str]:
    """Every cadence key with a period starting on ``day``.

    On a month's last day, anchors on later days (clamped) start there too.
    """
    if not frequency.months:
        return [cadence_key(day, frequency)]
    last = _calendar.monthrange(day.year, day.month)[1]
    anchor_days = range(day.day, 32) if day.day == last else [day.day]
    phase = _month_number(day) % frequency.months
    return [f"m{frequency.months}.{phase}.{d}" for d in anchor_days]


def local_date(moment: datetime, time_zone: str) -> date:
    """The calendar date of an aware instant in an organisation's time zone (Europe/Oslo ...)."""
    if moment.tzinfo is None:
        raise ValueError("billing needs an aware datetime")
    return moment.astimezone(ZoneInfo(time_zone)).date()
