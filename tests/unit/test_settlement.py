"""Settlement of payments against open demands (manual 7.19 step 6, 7.21; P3)."""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import given
from hypothesis import strategies as st

from shared.domain.demands import DemandTerms, OpenDemand
from shared.domain.settlement import PolicyKind, SettlementPolicy, match, settle

FULL = SettlementPolicy()  # 100 %: the payment must cover the demand
FIVE_KRONER = SettlementPolicy(PolicyKind.AMOUNT, 500)  # manual 7.21: "equal or down to -5kr"


def demand(no: int, open_minor: int, due: date = date(2026, 2, 5)) -> OpenDemand:
    return OpenDemand(no, DemandTerms(1000 + no, "avisa", "s1", due), open_minor)


def test_an_invoice_of_500_paid_with_400_stays_open_with_100() -> None:
    # manual 7.9/7.19 example: invoice 500, payment 400 -> 100 remains (and the reminder is 100)
    result = settle([demand(1, 50000)], 1, 40000, lambda d: FULL)
    assert [(a.paid_minor, a.settled) for a in result.allocations] == [(40000, False)]
    assert [d.open_minor for d in result.open_after] == [10000]
    assert result.credit_minor == 0


def test_a_payment_short_by_at_most_5_kroner_settles_and_the_difference_is_written_off() -> None:
    # manual 7.21: 500.00 invoice, 495.00 paid: within -5 kr, so paid; 5.00 written off
    result = settle([demand(1, 50000)], 1, 49500, lambda d: FIVE_KRONER)
    (allocation,) = result.allocations
    assert (allocation.settled, allocation.written_off_minor) == (True, 500)
    assert result.open_after == ()
    # 494.99 is short by 5.01: not settled
    assert not settle([demand(1, 50000)], 1, 49499, lambda d: FIVE_KRONER).allocations[0].settled


def test_a_percent_policy_settles_when_the_payment_covers_that_share() -> None:
    ninety_eight = SettlementPolicy(PolicyKind.PERCENT, 9800)
    assert settle([demand(1, 10000)], 1, 9800, lambda d: ninety_eight).allocations[0].written_off_minor == 200
    assert not settle([demand(1, 10000)], 1, 9799, lambda d: ninety_eight).allocations[0].settled


def test_an_overpayment_settles_the_invoice_then_the_oldest_other_demands_then_stays_as_credit() -> None:
    older, paid_for, newer = demand(1, 30000, date(2026, 1, 5)), demand(2, 30000), demand(3, 30000, date(2026, 3, 5))
    result = settle([newer, paid_for, older], 2, 80000, lambda d: FULL)
    assert [(a.demand_no, a.paid_minor, a.settled) for a in result.allocations] == [
        (2, 30000, True), (1, 30000, True), (3, 20000, False)]
    assert [(d.demand_no, d.open_minor) for d in result.open_after] == [(3, 10000)]
    assert settle([paid_for], 2, 80000, lambda d: FULL).credit_minor == 50000


def test_tolerance_applies_to_the_matched_demand_only() -> None:
    result = settle([demand(1, 10000), demand(2, 10000)], 1, 19700, lambda d: FIVE_KRONER)
    assert [(a.demand_no, a.written_off_minor, a.settled) for a in result.allocations] == [
        (1, 0, True), (2, 0, False)]


def test_a_payment_without_reference_matches_the_only_open_demand_of_that_amount() -> None:
    assert match([demand(1, 34800)], None, 34800) == 1
    assert match([demand(1, 34800), demand(2, 34800)], None, 34800) is None
    assert match([demand(1, 34800)], 9, 100) is None
    assert match([demand(1, 34800), demand(2, 100)], 2, 5) == 2


def test_a_deduction_pays_nothing_and_lowers_the_credit() -> None:
    result = settle([demand(1, 10000)], 1, -1500, lambda d: FULL)
    assert (result.allocations, result.credit_minor) == ((), -1500)


demands = st.lists(st.tuples(st.integers(1, 10**6), st.integers(0, 400)), min_size=0, max_size=8)
policies = st.one_of(st.builds(SettlementPolicy, st.just(PolicyKind.PERCENT), st.integers(0, 10000)),
                     st.builds(SettlementPolicy, st.just(PolicyKind.AMOUNT), st.integers(0, 10**5)))


@given(demands, st.integers(-10**6, 10**7), policies, st.integers(0, 9))
def test_money_is_never_created_or_lost_in_settlement(spec: list[tuple[int, int]], amount: int,
                                                        policy: SettlementPolicy, pick: int) -> None:
    opened = [demand(i + 1, open_, date(2026, 1, 1) + timedelta(days=age)) for i, (open_, age) in enumerate(spec)]
    matched = opened[pick % len(opened)].demand_no if opened else None
    result = settle(opened, matched, amount, lambda d: policy)
    paid = sum(a.paid_minor for a in result.allocations)
    assert paid + result.credit_minor == amount
    before, after = sum(d.open_minor for d in opened), sum(d.open_minor for d in result.open_after)
    assert before - after == paid + result.written_off_minor
    # the subscriber's ledger: -open before, then + payment + write-offs == credit - open after
    assert -before + amount + result.written_off_minor == result.credit_minor - after
    assert all(a.paid_minor >= 0 and a.written_off_minor >= 0 for a in result.allocations)
    assert result.credit_minor <= 0 or after == 0 or amount <= 0  # credit only once every demand is paid
