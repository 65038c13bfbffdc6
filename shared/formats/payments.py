"""What every bank file format yields: its identity, its money records and its own totals.

Format readers (``ocr_giro``, ``bgmax``) turn a decoded file into a ``BankFile``;
matching and booking (issue "Payments in") work on these only. ``read.read_bank_file``
is the one entry point for bytes from outside.

The record of every money record of a file is in ``BankFile.payments``, in file order,
exactly once: an ``IncomingPayment`` when every field that matters was read with
certainty, else an ``UnreadableRecord`` with the raw line(s) and the reason (set aside,
never guessed). The invariant every accepted file holds (``BankFile.check_totals``)::

    for each currency c:
        sum(+amount for PAYMENT, -amount for REVERSAL and DEDUCTION, records of c)
            == ControlTotal(c).amount_minor
        number of records of c == ControlTotal(c).records

where an ``UnreadableRecord`` counts with its ``kind`` and ``amount_minor`` like a
readable one (a money record whose amount cannot be read rejects the whole file, so
an accepted file never holds an ``UnreadableRecord`` without an amount).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum


class BankFileError(ValueError):
    """Any reason a file cannot be read as an incoming payment file; the message is for people."""


class UnknownFormat(BankFileError):
    """The content is none of the bank file formats we read."""


class NotIncomingPayments(BankFileError):
    """A bank file of a known family that is not a file of incoming payments (e.g. a claim file)."""


class ControlTotalError(BankFileError):
    """A file's own control totals (record counts, amount sums) do not add up."""


class FormatError(BankFileError):
    """A file whose structure is broken: a record not laid out as its specification says,
    a line cut short, binary data, a missing or misplaced start/end record."""


class RecordKind(StrEnum):
    PAYMENT = "payment"  # money in
    REVERSAL = "reversal"  # Nets OCR giro transaction types 18 and 20: money back out
    DEDUCTION = "deduction"  # BgMax TK21 (avdragspost): subtracted from the deposit


@dataclass(frozen=True, slots=True)
class IncomingPayment:
    source: str  # "ocr_giro" | "bgmax"
    line_id: str  # the record's position in the file: "{assignment/deposit}.{record}", 1-based ordinals
    amount_minor: int  # never negative (``kind`` says the direction)
    currency: str
    reference: str | None  # KID / OCR reference
    payment_date: date
    extra_references: tuple[str, ...] = ()
    payee_account: str | None = None  # the organisation's account (OCR) or bankgiro number (BgMax)
    payer_name: str | None = None
    payer_account: str | None = None
    payer_organization_number: str | None = None
    information: tuple[str, ...] = ()
    kind: RecordKind = RecordKind.PAYMENT
    raw: str = ""  # the record's line(s), decoded, "\n"-joined, for reports
    # BgMax TK22/TK23: the amount the payer gave for each extra reference (same order as
    # extra_references; TK23 "minus" references negative). A breakdown of ``amount_minor``,
    # not money of its own: the deposit totals count only TK20/TK21.
    extra_reference_amounts: tuple[int, ...] = ()
    deduction_code: int | None = None  # BgMax TK21 only


@dataclass(frozen=True, slots=True)
class UnreadableRecord:
    """A money record that cannot be read with certainty: set aside with the reason, never guessed."""

    line_id: str
    raw: str
    reason: str
    amount_minor: int | None
    currency: str | None
    payee_account: str | None
    kind: RecordKind = RecordKind.PAYMENT  # the direction its record type says (for the totals)
    source: str = ""


@dataclass(frozen=True, slots=True)
class MandateRecord:
    """An AvtaleGiro agreement record (AvtaleGiro system specification, "avtaler"):
    the payer's bank reports a new or changed mandate, a deleted one, or an active one."""

    line_id: str
    payee_account: str
    kid: str
    registration: str  # "new_or_updated" | "deleted" | "active"
    notify: bool  # the payer wants a notice from the payee before each claim


@dataclass(frozen=True, slots=True)
class ControlTotal:
    """What a file's own control records say, per currency, as a net sum. Only currencies
    with records appear (an empty deposit or assignment adds no ControlTotal).

    ``records``: money records (OCR giro: transactions of OCR giro assignments; BgMax:
    TK20 + TK21, the deposit records' "number of payments").
    ``amount_minor``: payments minus reversals and deductions. BgMax deposit records (TK15)
    state exactly that. Nets adds reversals *into* an assignment's total ("amount from
    reversals, transaction type 18 and 20, are also added to the sum amount", OCR giro
    manual 2.5 field 7), so for OCR giro it is the end records' total minus twice the
    reversals; ``stated_amount_minor`` keeps the sum as the file states it.
    """

    currency: str
    records: int
    amount_minor: int
    stated_amount_minor: int = 0


def signed(record: IncomingPayment | UnreadableRecord) -> int:
    """A record's contribution to its currency's net total."""
    amount = record.amount_minor or 0
    return amount if record.kind is RecordKind.PAYMENT else -amount


@dataclass(frozen=True, slots=True)
class BankFile:
    format: str  # "ocr_giro" | "bgmax"
    identity: str  # "nets:{data transmitter}:{transmission number}" | "bgmax:{payee bankgiro(s)}:{TK01 timestamp}"
    content_digest: str  # sha256 hex of the decoded, line-ending-normalised text (see read.normalise)
    payments: tuple[IncomingPayment | UnreadableRecord, ...]
    mandates: tuple[MandateRecord, ...]
    totals: tuple[ControlTotal, ...]
    test: bool = False  # BgMax test marker 'T'
    # The transmissions the file holds, as its senders guarantee them: (identity, digest of that
    # transmission's normalised lines, payee account whose records belong to it, "" for all).
    # Empty: one, the file itself. A BgMax file holds one per receiving bankgiro (its identity is
    # bankgiro and TK01 timestamp), so the same deposits split or merged into other files are the
    # same transmissions.
    parts: tuple[tuple[str, str, str], ...] = ()

    def transmissions(self) -> tuple[tuple[str, str, str], ...]:
        return self.parts or ((self.identity, self.content_digest, ""),)

    def transmission_of(self, record: IncomingPayment | UnreadableRecord) -> str:
        """The identity of the transmission a money record belongs to."""
        for identity, _, payee in self.transmissions():
            if not payee or payee == record.payee_account:
                return identity
        return self.identity

    def found(self) -> tuple[ControlTotal, ...]:
        """The totals the records add up to, per currency, in the shape of ``totals``
        (``stated_amount_minor`` left 0: only the file states it)."""
        counts: dict[str, int] = defaultdict(int)
        sums: dict[str, int] = defaultdict(int)
        for record in self.payments:
            currency = record.currency or ""
            counts[currency] += 1
            sums[currency] += signed(record)
        return tuple(ControlTotal(c, counts[c], sums[c]) for c in sorted(counts))

    def check_totals(self) -> None:
        """Raise ControlTotalError unless the records add up to the file's totals, per currency."""
        said = {(t.currency, t.records, t.amount_minor) for t in self.totals}
        found = {(t.currency, t.records, t.amount_minor) for t in self.found()}
        if said != found:
            raise ControlTotalError(f"the file's control records say {sorted(said)}, its records add up to "
                                    f"{sorted(found)} (currency, records, net amount)")


def digest(lines: Sequence[str]) -> str:
    """SHA-256 of the lines the readers read: blank ones (which they skip) are not content, so a
    CR CR LF copy (a CRLF file through ASCII-mode FTP) or one with blank lines between records
    is the same transmission."""
    return hashlib.sha256("\n".join(line for line in lines if line.strip()).encode("utf-8")).hexdigest()
