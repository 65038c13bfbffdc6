"""The subscriber's ledger (L3, manual 7.20).

Every debit and credit of a subscriber in one organisation: an invoice of 100 is an
entry of -100, a payment of 100 an entry of +100, so a balance of 0 means settled and
a negative balance means the subscriber owes. Economies of different organisations
are kept apart: a balance is always per organisation.

An entry that moves VAT (an invoice, a credit note, a charge for delivered days) says
how much per rate (``LedgerEntry.vat``, signed as what the subscriber is charged: the
parts of a debit are positive and sum to ``-amount_minor``), so the VAT charged per
rate is the sum over the ledger. Payments, refunds, write-offs and reminder fees move
no VAT: a payment is no supply, and a reminder fee is compensation outside VAT.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from .money import vat_of_gross


@dataclass(frozen=True, slots=True)
class VatPart:
    """One VAT rate's share of a document or ledger movement: ``gross = net + vat``."""

    rate_bp: int
    gross_minor: int
    vat_minor: int
    net_minor: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "net_minor", self.gross_minor - self.vat_minor)  # derived, kept for readers

    @classmethod
    def of_gross(cls, rate_bp: int, gross_minor: int) -> VatPart:
        return cls(rate_bp, gross_minor, vat_of_gross(gross_minor, rate_bp))

    def __neg__(self) -> VatPart:
        return VatPart(self.rate_bp, -self.gross_minor, -self.vat_minor)


def merge_vat(parts: Iterable[VatPart]) -> tuple[VatPart, ...]:
    """Parts summed per rate, lowest rate first; a rate that sums to nothing is left out."""
    gross: dict[int, int] = {}
    vat: dict[int, int] = {}
    for p in parts:
        gross[p.rate_bp] = gross.get(p.rate_bp, 0) + p.gross_minor
        vat[p.rate_bp] = vat.get(p.rate_bp, 0) + p.vat_minor
    return tuple(VatPart(r, gross[r], vat[r]) for r in sorted(gross) if gross[r] or vat[r])


class EntryKind(StrEnum):
    INVOICE = "invoice"
    PAYMENT = "payment"
    CREDIT_NOTE = "credit_note"
    REFUND = "refund"
    WRITE_OFF = "write_off"
    CORRECTION = "correction"
    REMINDER_FEE = "reminder_fee"
    CHARGE = "charge"  # what a stop leaves owing for delivered days (manual 6.4, 7.7)
    REVERSAL = "reversal"  # the bank took a payment back (and with it the write-off it allowed)


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    seq: int
    organization_id: str
    currency: str
    booked: date
    kind: EntryKind
    amount_minor: int  # signed: negative is a debit (the subscriber owes more)
    reference: str
    text: str = ""
    vat: tuple[VatPart, ...] = ()  # per rate, signed as charged: sums to -amount_minor when VAT moves


def balance(entries: Iterable[LedgerEntry], organization_id: str) -> int:
    return sum(e.amount_minor for e in entries if e.organization_id == organization_id)


def invoice_entry(seq: int, organization_id: str, currency: str, booked: date,
                  invoice_number: int, total_minor: int, vat: tuple[VatPart, ...] = ()) -> LedgerEntry:
    return LedgerEntry(seq, organization_id, currency, booked, EntryKind.INVOICE, -total_minor,
                       reference=str(invoice_number), text=f"Invoice {invoice_number}", vat=vat)
