from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.domain.catalogue import FeeTaxPolicy
from shared.domain.invoicing import fee_lines, line
from shared.domain.limits import MAX_MINOR
from shared.domain.money import CurrencyMismatch, Money, allocate, divide_half_up, vat_of_gross

amounts = st.integers(min_value=-MAX_MINOR, max_value=MAX_MINOR)  # a line beyond is ValueOutOfRange
rates = st.sampled_from([0, 1200, 1500, 2500, 600, 2000])


def test_money_refuses_floats_and_mixed_currencies() -> None:
    with pytest.raises(TypeError):
        Money(1.5, "NOK")  # type: ignore[arg-type]
    with pytest.raises(CurrencyMismatch):
        Money(100, "NOK") + Money(100, "SEK")
    with pytest.raises(TypeError):
        Money(100, "NOK") * 1.25  # type: ignore[operator]


def test_vat_of_a_gross_price_with_25_percent_is_a_fifth() -> None:
    # 299.00 incl. 25 % VAT: 299.00 * 25 / 125 = 59.80
    assert vat_of_gross(29900, 2500) == 5980
    # 49.00 incl. 25 %: 9.80; 0 % VAT (newspapers in Norway): none
    assert vat_of_gross(4900, 2500) == 980
    assert vat_of_gross(29900, 0) == 0


def test_half_up_rounding_rounds_halves_away_from_zero() -> None:
    assert divide_half_up(5, 2) == 3
    assert divide_half_up(-5, 2) == -3
    assert divide_half_up(4, 3) == 1


@given(amounts, st.lists(st.integers(min_value=0, max_value=10**6), min_size=1, max_size=12))
def test_allocation_never_creates_or_loses_money(amount: int, weights: list[int]) -> None:
    parts = allocate(amount, weights)
    assert sum(parts) == amount
    assert len(parts) == len(weights)


@given(amounts, rates)
def test_net_plus_vat_is_always_the_gross(gross: int, rate: int) -> None:
    item = line("x", 1, gross, rate)
    assert item.net_minor + item.vat_minor == item.gross_minor == gross
    assert abs(item.vat_minor) <= abs(gross)


@given(st.integers(min_value=0, max_value=10**7),
       st.lists(st.tuples(st.integers(min_value=0, max_value=10**6), rates), min_size=1, max_size=6))
def test_a_distributed_fee_keeps_its_amount_over_the_vat_rates(fee: int, products: list[tuple[int, int]]) -> None:
    lines = [line("p", 1, price, rate) for price, rate in products]
    fees = fee_lines(fee, lines, FeeTaxPolicy.DISTRIBUTIONAL)
    assert sum(f.gross_minor for f in fees) == fee
    assert {f.vat_rate_bp for f in fees} <= {r for _, r in products} | {0}


def test_a_fee_without_tax_policy_has_no_vat() -> None:
    fees = fee_lines(3900, [line("p", 1, 29900, 2500)], FeeTaxPolicy.NO_TAX)
    assert [(f.gross_minor, f.vat_minor) for f in fees] == [(3900, 0)]


def test_money_prints_in_major_units() -> None:
    assert str(Money(-12345, "NOK")) == "-123.45 NOK"
    assert [m.minor for m in Money(-100, "SEK").allocate([1, 1, 1])] == [-34, -33, -33]
