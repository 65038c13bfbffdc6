"""Settling payments against open demands (P3; manual 7.19 step 6 "Settlement Policy",
7.21 "If the amount is equal or down to -5kr in difference, the invoice will be updated
as paid", 10.2 "Payment states and handling").

A payment matched to a demand (by KID, or by subscriber and invoice) pays it first:

* in full, or short by no more than the settlement policy allows: the demand is
  settled and the shortfall written off;
* short by more: the demand stays open with what is left (a partial payment);
* with money to spare: the rest pays the subscriber's other open demands in the same
  organisation, oldest due date first, and what is still left is credit on the
  ledger (it reduces the next invoice).

A payment matched to no demand pays the oldest open demands the same way. The policy
is per dunning process: *percent* (the payment covers at least this share of the open
amount; 100 % by default) or *amount* (the shortfall is at most this many minor units).
Money is never created or lost: paid + credit = the payment, and the ledger moves by
the payment plus what was written off.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import TYPE_CHECKING

from .money import BASIS_POINTS

if TYPE_CHECKING:  # demands -> invoicing -> catalogue -> settlement: the type is for annotations only
    from .demands import OpenDemand


class PolicyKind(StrEnum):
    PERCENT = "percent"
    AMOUNT = "amount"


@dataclass(frozen=True, slots=True)
class SettlementPolicy:
    kind: PolicyKind = PolicyKind.PERCENT
    value: int = BASIS_POINTS  # PERCENT: basis points of the open amount; AMOUNT: minor units

    def __post_init__(self) -> None:
        if self.value < 0 or (self.kind is PolicyKind.PERCENT and self.value > BASIS_POINTS):
            raise ValueError(f"settlement policy value {self.value} out of range for {self.kind}")

    def settles(self, open_minor: int, paid_minor: int) -> bool:
        if paid_minor >= open_minor:
            return True
        if self.kind is PolicyKind.PERCENT:
            return paid_minor * BASIS_POINTS >= open_minor * self.value
        return open_minor - paid_minor <= self.value


@dataclass(frozen=True, slots=True)
class Allocation:
    demand_no: int
    paid_minor: int
    written_off_minor: int
    settled: bool


@dataclass(frozen=True, slots=True)
class Settlement:
    allocations: tuple[Allocation, ...]
    credit_minor: int  # what the payment leaves on the ledger as credit
    open_after: tuple[OpenDemand, ...]

    @property
    def written_off_minor(self) -> int:
        return sum(a.written_off_minor for a in self.allocations)


def match(open_demands: Sequence[OpenDemand], demand_no: int | None, amount_minor: int) -> int | None:
    """The demand a payment is for: the one its reference names, or else the only open
    demand of exactly the paid amount (fallback matching)."""
    if demand_no is not None:
        for d in open_demands:
            if d.answers_to(demand_no):  # the invoice's KID, or one of its reminders'
                return d.demand_no
    exact = [d for d in open_demands if d.open_minor == amount_minor]
    return exact[0].demand_no if len(exact) == 1 and len(open_demands) == 1 else None


def settle(open_demands: Sequence[OpenDemand], matched: int | None, amount_minor: int,
           policy_for: Callable[[OpenDemand], SettlementPolicy]) -> Settlement:
    """Apply a payment of one organisation to that organisation's open demands."""
    if amount_minor <= 0:  # a deduction or a zero payment pays nothing; it moves the ledger only
        return Settlement((), amount_minor, tuple(open_demands))
    oldest_first = sorted(open_demands, key=lambda d: (d.terms.due_date, d.demand_no))
    order = [d for d in oldest_first if d.demand_no == matched] + [d for d in oldest_first if d.demand_no != matched]
    rest = amount_minor
    allocations: list[Allocation] = []
    after: dict[int, OpenDemand] = {d.demand_no: d for d in open_demands}
    for position, demand in enumerate(order):
        if rest == 0:
            break
        paid = min(rest, demand.open_minor)
        rest -= paid
        short = demand.open_minor - paid
        tolerant = position == 0 and short > 0 and policy_for(demand).settles(demand.open_minor, paid)
        written_off = short if tolerant else 0
        settled = short == 0 or tolerant
        allocations.append(Allocation(demand.demand_no, paid, written_off, settled))
        if settled:
            del after[demand.demand_no]
        else:
            after[demand.demand_no] = replace(demand, open_minor=short)
    return Settlement(tuple(allocations), rest, tuple(after.values()))
