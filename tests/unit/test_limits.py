"""Values outside billing's limits fail with ``ValueOutOfRange`` where they are used, before
anything is decided, never with ``OverflowError`` (or a storage error) deep inside: so data
stored before the boundary checked it only stops its own subscriber or tenant."""

from __future__ import annotations

import doctest
from dataclasses import replace
from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.domain import limits
from shared.domain.account import Correction, due_drafts, next_drafts
from shared.domain.catalogue import CatalogueError
from shared.domain.limits import FIRST_DAY, LAST_DAY, MAX_LEAD_DAYS, MAX_MINOR, ValueOutOfRange
from tests.unit.test_invoicing import CAT, MONTHLY, account, monthly

any_day = st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31))
any_int = st.one_of(st.integers(), st.integers(min_value=-(10**40), max_value=10**40))
any_lead = st.one_of(st.integers(min_value=0, max_value=2 * MAX_LEAD_DAYS), st.integers(min_value=0))  # < 0: refused


def test_the_examples_in_the_limits_module_hold() -> None:
    assert doctest.testmod(limits).failed == 0


@settings(max_examples=300, deadline=None)
@given(anchor=any_day, stop=st.none() | any_day, today=st.dates(min_value=FIRST_DAY, max_value=LAST_DAY),
       lead=any_lead, correction=any_int, next_period=st.integers(min_value=0, max_value=3))
def test_the_invoice_decision_either_decides_or_names_the_value_out_of_range(
        anchor: date, stop: date | None, today: date, lead: int, correction: int, next_period: int) -> None:
    catalogue = replace(CAT, billing_plans={**CAT.billing_plans, MONTHLY.id: replace(MONTHLY, lead_days=lead)})
    acct = replace(account(monthly(anchor, next_period, stop_date=stop)),
                   corrections=(Correction("c1", "avisa", correction, "adjustment", today),))
    in_range = FIRST_DAY <= anchor <= LAST_DAY and 0 <= lead <= MAX_LEAD_DAYS and abs(correction) <= MAX_MINOR
    for decide in (lambda: due_drafts(acct, catalogue, today), lambda: next_drafts(acct, catalogue),
                   catalogue.cadences):
        try:
            decide()
        except ValueOutOfRange as exc:  # a value out of range, or years of periods due at once
            assert not in_range or "periods due" in str(exc)
        except CatalogueError as exc:  # a product without a price that early: named, and not a limit
            assert "price" in str(exc)
        # anything else (OverflowError, "year 10000 is out of range") fails the test


def test_a_restart_in_year_9999_is_refused_by_name() -> None:
    with pytest.raises(ValueOutOfRange, match="period anchor 9999-12-31"):
        due_drafts(account(monthly(date(9999, 12, 31))), CAT, date(2026, 1, 5))


def test_lead_days_of_a_billion_are_refused_by_name_before_any_date_arithmetic() -> None:
    catalogue = replace(CAT, billing_plans={MONTHLY.id: replace(MONTHLY, lead_days=10**9)})
    with pytest.raises(ValueOutOfRange, match="billing plan monthly-14: lead days 1000000000"):
        catalogue.cadences()
    with pytest.raises(ValueOutOfRange, match="lead days"):
        due_drafts(account(monthly(date(2026, 1, 5), next_period=1)), catalogue, date(2026, 1, 22))


def test_a_correction_of_ten_to_the_thirty_is_refused_before_numbers_are_claimed() -> None:
    acct = replace(account(monthly(date(2026, 1, 5))),
                   corrections=(Correction("big", "avisa", 10**30, "typo", date(2026, 1, 5)),))
    with pytest.raises(ValueOutOfRange, match="correction big"):
        due_drafts(acct, CAT, date(2026, 1, 5))


def test_values_at_the_limits_are_billed() -> None:
    acct = replace(account(monthly(LAST_DAY - timedelta(days=40))),
                   corrections=(Correction("max", "avisa", -MAX_MINOR, "credit", date(2026, 1, 5)),))
    (draft,) = next_drafts(acct, CAT)  # the correction goes onto the next invoice
    assert draft.lines[-1].gross_minor == -MAX_MINOR
