"""Invoices (L1): lines with VAT, fees, due dates, and which periods are due.

Timing follows the billing plan (manual 7.18 and 6.3): a renewal invoice is produced
``lead_days`` before its due date, which is the period's start; the first invoice is
produced at once when the subscription is ordered and falls due ``due_days`` (by
default the same as ``lead_days``) after the order, or on the start date when that is
later. One rule covers both, and also a late run after an outage:
``due = max(period start, issue date + due days)``.

Which invoices to issue is a pure function of the subscription and the day
(``due_period_indexes``), so running the invoice run twice for one day finds nothing
the second time: idempotent by construction (Kill Bill's invoice generator).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum

from .calendar import Period
from .catalogue import BillingPlan, FeeTaxPolicy, Organization, Product
from .ledger import VatPart, merge_vat
from .letters import Letter
from .limits import ValueOutOfRange, check_days, check_minor
from .money import allocate, vat_of_gross
from .subscriptions import Subscription

MAX_PERIODS_PER_RUN = 60  # a guard: catch-up beyond five years of monthly periods is an error


@dataclass(frozen=True, slots=True)
class InvoiceLine:
    description: str
    quantity: int
    unit_price_minor: int  # gross
    vat_rate_bp: int
    gross_minor: int
    vat_minor: int
    product_id: str | None = None
    period_start: date | None = None
    period_end: date | None = None  # last day, inclusive
    net_minor: int = 0  # gross less VAT: derived (stored for readers; a row without it loads)

    def __post_init__(self) -> None:
        object.__setattr__(self, "net_minor", self.gross_minor - self.vat_minor)

    def __neg__(self) -> InvoiceLine:
        """The line as a credit note carries it: every amount negated (VAT rounds half away
        from zero, so the negated VAT is the VAT of the negated gross)."""
        return InvoiceLine(self.description, self.quantity, -self.unit_price_minor, self.vat_rate_bp,
                           -self.gross_minor, -self.vat_minor, self.product_id, self.period_start, self.period_end)


def vat_parts(lines: Iterable[InvoiceLine]) -> tuple[VatPart, ...]:
    """A document's VAT breakdown: gross, net and VAT per rate, as its lines sum them."""
    return merge_vat(VatPart(li.vat_rate_bp, li.gross_minor, li.vat_minor) for li in lines)


def summary_lines(parts: Iterable[VatPart], text: str) -> tuple[InvoiceLine, ...]:
    """One line per rate carrying exactly a breakdown's gross and VAT (no VAT recomputed)."""
    return tuple(InvoiceLine(f"{text}, VAT {p.rate_bp / 100:g} %", 1, p.gross_minor, p.rate_bp, p.gross_minor,
                             p.vat_minor) for p in parts)


def prorate(parts: Sequence[VatPart], delivered_days: int, days: int) -> tuple[VatPart, ...]:
    """The share of a document's per-rate gross for ``delivered_days`` of its ``days``: each
    rate rounded down, then the øre that rounding left are given to the rates with the
    largest remainders, so the parts sum exactly to the delivered share of the total (also
    rounded down, ``delivered_share``). VAT is split out of each part by the one rule;
    a document delivered whole keeps its own VAT.

        >>> [(p.rate_bp, p.gross_minor, p.vat_minor) for p in prorate(
        ...     [VatPart(0, 29900, 0), VatPart(2500, 4900, 980)], 5, 31)]
        [(0, 4822, 0), (2500, 790, 158)]
    """
    if days <= 0 or delivered_days >= days:
        return merge_vat(parts)  # delivered whole: exactly the document's own VAT
    exact = [p.gross_minor * max(delivered_days, 0) for p in parts]
    shares = [e // days for e in exact]
    target = sum(exact) // days
    by_remainder = sorted(range(len(parts)), key=lambda i: (-(exact[i] % days), i))
    for i in by_remainder[: target - sum(shares)]:
        shares[i] += 1
    return merge_vat(VatPart.of_gross(p.rate_bp, g) for p, g in zip(parts, shares, strict=True))


def line(description: str, quantity: int, unit_price_minor: int, vat_rate_bp: int,
         product_id: str | None = None, span: Period | None = None) -> InvoiceLine:
    gross = check_minor(unit_price_minor * quantity, "line %r: amount", description)
    return InvoiceLine(description, quantity, unit_price_minor, vat_rate_bp, gross,
                       vat_of_gross(gross, vat_rate_bp), product_id,
                       span.start if span else None, span.last_day if span else None)


class DocumentKind(StrEnum):
    SUBSCRIPTION = "subscription"  # a subscription period
    ADDITIONAL = "additional"  # manual 7.10: products or free lines, issued at once
    BALANCE = "balance"  # manual 7.11: what a stopped subscriber still owes; already on the ledger


@dataclass(frozen=True, slots=True)
class InvoiceDraft:
    """An invoice before it has a number: what the draft view shows and the run issues."""

    subscription_id: str
    period_index: int
    organization_id: str
    currency: str
    issue_date: date
    due_date: date
    lines: tuple[InvoiceLine, ...]
    kind: DocumentKind = DocumentKind.SUBSCRIPTION
    ref: str = ""  # what makes a non-subscription invoice unique (its natural key)

    @property
    def total_minor(self) -> int:
        return sum(li.gross_minor for li in self.lines)

    @property
    def vat_minor(self) -> int:
        return sum(li.vat_minor for li in self.lines)

    @property
    def natural_key(self) -> str:
        """Identifies the demand for ever: one subscription period is invoiced once."""
        if self.kind is DocumentKind.SUBSCRIPTION:
            return f"{self.subscription_id}.{self.period_index}"
        return f"{self.kind.value}.{self.ref}"

    @property
    def span(self) -> tuple[date, date] | None:
        """The first day and the first day after of the periods its lines cover."""
        starts = [li.period_start for li in self.lines if li.period_start]
        ends = [li.period_end for li in self.lines if li.period_end]
        return (min(starts), max(ends) + timedelta(days=1)) if starts and ends else None



@dataclass(frozen=True, slots=True)
class Invoice:
    """An issued invoice. ``credit_applied_minor`` is ledger billing (manual 7.1, L3): credit
    the subscriber already has on the ledger pays that much of the invoice, shown on it as
    "paid from your balance"; the ledger debit stays the full total (the credit is already
    there), and what falls due is ``amount_due_minor``."""

    number: int
    demand_no: int
    kid: str
    draft: InvoiceDraft
    credit_applied_minor: int = 0
    letter: Letter | None = None  # what its document says besides the demand (None: issued before documents)

    @property
    def total_minor(self) -> int:
        return self.draft.total_minor

    @property
    def amount_due_minor(self) -> int:
        return self.draft.total_minor - self.credit_applied_minor


@dataclass(frozen=True, slots=True)
class CreditNote:
    """A credit note for a whole invoice (manual 7.15): a negative invoice of its total."""

    number: int
    invoice_number: int
    demand_no: int
    organization_id: str
    currency: str
    subscription_id: str
    issue_date: date
    total_minor: int  # the amount credited, positive
    reason: str
    lines: tuple[InvoiceLine, ...] = ()  # the credited invoice's lines, negated: they sum to -total_minor
    letter: Letter | None = None  # the credited invoice's (None: issued before documents)

    @property
    def vat(self) -> tuple[VatPart, ...]:
        return vat_parts(self.lines)


def production_date(subscription: Subscription, billing: BillingPlan, index: int) -> date:
    check_days(billing.lead_days, "billing plan %s: lead days", billing.id)
    return subscription.period(index).start - timedelta(days=billing.lead_days)


def due_date(period_start: date, issue_date: date, billing: BillingPlan) -> date:
    return max(period_start, issue_date + timedelta(days=billing.terms_days))


def due_period_indexes(subscription: Subscription, billing: BillingPlan, today: date) -> list[int]:
    """Uninvoiced periods whose production date has come (the first one always has)."""
    due: list[int] = []
    index = subscription.next_period
    while subscription.runs_in(index) and ((index == 0 and not subscription.scheduled_start)
                                           or production_date(subscription, billing, index) <= today):
        due.append(index)
        if len(due) > MAX_PERIODS_PER_RUN:
            raise ValueOutOfRange(f"subscription {subscription.id}: more than {MAX_PERIODS_PER_RUN} periods due")
        index += 1
    return due


def fee_lines(fee_minor: int, product_lines: Sequence[InvoiceLine], policy: FeeTaxPolicy) -> list[InvoiceLine]:
    """The payment-type fee; with the distributional policy split over the products' VAT rates."""
    if fee_minor == 0:
        return []
    if policy is FeeTaxPolicy.NO_TAX or not product_lines:
        return [line("Fee", 1, fee_minor, 0)]
    rates = sorted({li.vat_rate_bp for li in product_lines})
    weights = [sum(li.gross_minor for li in product_lines if li.vat_rate_bp == r) for r in rates]
    parts = allocate(fee_minor, weights)
    return [line("Fee", 1, part, rate) for rate, part in zip(rates, parts, strict=True) if part]


def delivered_share(total_minor: int, start: date, end: date, stop: date) -> int:
    """The part of a total for the days from ``start`` delivered before ``stop`` (rounded
    down: the subscriber is never charged for a day not delivered)."""
    days = (end - start).days
    delivered = min(max((stop - start).days, 0), days)
    return total_minor * delivered // days if days else total_minor


def draft_invoice(subscription: Subscription, index: int, issue_date: date, billing: BillingPlan,
                  organization: Organization, products: Sequence[Product]) -> InvoiceDraft:
    """The invoice of one period. A period a stop cuts short is invoiced for the days
    delivered before the stop only (manual 6.4 case 1, a stop before the invoice)."""
    span = subscription.period(index)
    product_lines = [
        line(p.name, subscription.copies, p.price_on(subscription.frequency, span.start), p.vat_rate_bp, p.id, span)
        for p in products
    ]
    stop = subscription.stop_date
    if stop is not None and span.start < stop < span.end:
        cut = Period(span.start, stop)
        product_lines = [line(f"{li.description} ({cut.start} to {cut.last_day})", 1,
                              delivered_share(li.gross_minor, span.start, span.end, stop), li.vat_rate_bp,
                              li.product_id, cut) for li in product_lines]
    fees = fee_lines(billing.fee_for(subscription.payment_type, index), product_lines, billing.fee_tax_policy)
    return InvoiceDraft(subscription.id, index, organization.id, organization.currency, issue_date,
                        due_date(span.start, issue_date, billing), tuple(product_lines + fees))
