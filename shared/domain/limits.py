"""The business limits billing computes within, checked where a value is used.

The HTTP boundary refuses values outside these limits with 422 before anything is
stored. These checks are the second line (defence in depth): data stored before the
boundary checked it, or written by another path, fails with ``ValueOutOfRange`` at the
entry of the function that would use it, naming the value, instead of an
``OverflowError`` or a storage SDK error deep inside, after invoice numbers were
claimed. The service layer treats any such failure as this subscriber's (or tenant's)
alone: the rest of the batch is billed (see ``shared/service/isolation.py``).

    >>> check_day(date(2100, 12, 31), "restart")
    datetime.date(2100, 12, 31)
    >>> check_day(date(9999, 12, 31), "restart")
    Traceback (most recent call last):
    ...
    shared.domain.limits.ValueOutOfRange: restart 9999-12-31 is outside 2000-01-01..2100-12-31
    >>> check_minor(-10**12, "correction %s", "c1")
    Traceback (most recent call last):
    ...
    shared.domain.limits.ValueOutOfRange: correction c1 -1000000000000 is outside -100000000000..100000000000
"""

from __future__ import annotations

from datetime import date

FIRST_DAY = date(2000, 1, 1)
LAST_DAY = date(2100, 12, 31)
MAX_MINOR = 10**11  # one billion kroner, kronor or euro in minor units: far inside Int64
MAX_LEAD_DAYS = 366


class ValueOutOfRange(ValueError):
    """A value outside what billing can compute with; names the value and the range."""


def check_day(day: date, what: str, *args: object) -> date:
    """``day`` if it lies in the calendar window; ``what % args`` names it otherwise
    (formatted only then: these checks sit on the invoice run's hot path)."""
    if FIRST_DAY <= day <= LAST_DAY:
        return day
    raise ValueOutOfRange(f"{what % args} {day} is outside {FIRST_DAY}..{LAST_DAY}")


def check_days(days: int, what: str, *args: object) -> int:
    if 0 <= days <= MAX_LEAD_DAYS:
        return days
    raise ValueOutOfRange(f"{what % args} {days} is outside 0..{MAX_LEAD_DAYS}")


def check_minor(amount: int, what: str, *args: object) -> int:
    if -MAX_MINOR <= amount <= MAX_MINOR:
        return amount
    raise ValueOutOfRange(f"{what % args} {amount} is outside {-MAX_MINOR}..{MAX_MINOR}")
