from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from stdnum.exceptions import InvalidChecksum, InvalidLength

from shared.domain import kid
from shared.domain.kid import CheckDigitUnavailable, KidScheme

# KIDs from real Nets OCR giro transmissions (netsgiro's test file of a Nets OCR giro
# transmission); the senders used different agreements, so each is checked under its own.
NETS_MOD11 = ["0000531", "0036633", "0048763", "02212291038306"]
NETS_MOD10 = ["02311291029238", "02358291038305"]


def test_the_manuals_worked_examples() -> None:
    # OCR giro system manual ch. 5: 12345678 -> MOD10 check 2, MOD11 check 5
    assert kid.calc_check_digit("12345678", "MOD10") == "2"
    assert kid.calc_check_digit("12345678", "MOD11") == "5"


@pytest.mark.parametrize("number", NETS_MOD11)
def test_real_mod11_kids_from_nets_files_validate(number: str) -> None:
    assert kid.validate(number, "MOD11") == number


@pytest.mark.parametrize("number", NETS_MOD10)
def test_real_mod10_kids_from_nets_files_validate(number: str) -> None:
    assert kid.validate(number, "MOD10") == number


def test_a_changed_digit_fails_the_check() -> None:
    with pytest.raises(InvalidChecksum):
        kid.validate("0036634", "MOD11")
    assert not kid.is_valid("0", "MOD10")
    with pytest.raises(InvalidLength):
        kid.validate("1" * 26, "MOD10")


def test_mod11_remainder_ten_is_a_dash_only_where_the_agreement_allows_it() -> None:
    body = next(b for b in (f"{i:06d}" for i in range(1, 1000)) if kid._mod11_value(b) == 10)
    assert kid.calc_check_digit(body, "MOD11") == "-"
    assert kid.is_valid(body + "-", "MOD11")
    with pytest.raises(CheckDigitUnavailable):
        kid.calc_check_digit(body, "MOD11", allow_dash=False)


def test_a_scheme_skips_demand_numbers_that_would_need_a_dash() -> None:
    scheme = KidScheme(length=10, modulus="MOD11", subscriber_digits=5, allow_dash=False)
    unusable = [d for d in range(1, 200) if not scheme.usable(4711, d)]
    assert unusable, "some demand numbers give MOD11 remainder 10"
    assert all("-" not in scheme.encode(4711, d) for d in range(1, 200) if d not in unusable)


def test_format_groups_digits_in_fives() -> None:
    assert kid.format("000471100000036") == "00047 11000 00036"


schemes = st.builds(KidScheme, length=st.integers(min_value=14, max_value=25),  # room for 3 prefix, 6 + 3 digits
                    modulus=st.sampled_from(["MOD10", "MOD11"]), prefix=st.sampled_from(["", "001", "42"]),
                    subscriber_digits=st.integers(min_value=4, max_value=6), allow_dash=st.booleans())


@given(schemes, st.integers(min_value=1, max_value=9999), st.integers(min_value=1, max_value=999))
def test_a_kid_decodes_back_to_subscriber_and_demand(scheme: KidScheme, subscriber: int, demand: int) -> None:
    if not scheme.usable(subscriber, demand):
        return
    encoded = scheme.encode(subscriber, demand)
    assert len(encoded) == scheme.length
    assert encoded.startswith(scheme.prefix)
    ref = scheme.decode(encoded)
    assert (ref.subscriber_no, ref.demand_no) == (subscriber, demand)
