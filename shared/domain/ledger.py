"""The subscriber's ledger (L3, manual 7.20).

Every debit and credit of a subscriber in one organisation: an invoice of 100 is an
entry of -100, a payment of 100 an entry of +100, so a balance of 0 means settled and
a negative balance means the subscriber owes. Economies of different organisations
are kept apart: a balance is always per organisation.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from enum import StrEnum


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


def balance(entries: Iterable[LedgerEntry], organization_id: str) -> int:
    return sum(e.amount_minor for e in entries if e.organization_id == organization_id)


def invoice_entry(seq: int, organization_id: str, currency: str, booked: date,
                  invoice_number: int, total_minor: int) -> LedgerEntry:
    return LedgerEntry(seq, organization_id, currency, booked, EntryKind.INVOICE, -total_minor,
                       reference=str(invoice_number), text=f"Invoice {invoice_number}")
