"""Bankgirot BgMax: the file of incoming bankgiro payments (Bankgiro Inbetalningar), Sweden.

Our own reader and writer, because no maintained Python package exists. Written from
Bankgirot's technical manual "Bankgiro Inbetalningar" (record and file description of
the BgMax file, layout version 01): 80-character records in ISO-8859-1, one file holding
one or more deposits (``TK05`` ... ``TK15``), each with its payments.

The layout is declared once, in ``LAYOUTS``: for each record type (transaktionskod, the
first two characters) its fields with name, position (1-based, as the manual counts),
length and ``Kind``, as netsgiro declares the Nets records. The record API
(``parse_record``, ``format_record``, ``write``) and the strict reader's checks are
derived from that table; no other code slices a record.

| record | name | fields |
|---|---|---|
| 01 | start | layout name ``BGMAX``, version, timestamp, test marker (``T``/``P``) |
| 05 | opening (deposit start) | payee bankgiro, payee plusgiro, currency |
| 20 | payment | payer bankgiro, reference, amount, reference code, channel, BGC serial number, image marker |
| 21 | deduction | as 20, plus the deduction code; its amount is subtracted |
| 22/23 | extra reference (23: negative) | as 20 |
| 25 | information | free text |
| 26/27/28 | name / address 1 / address 2 | payer name, street, postcode, town, country |
| 29 | organisation number | payer's |
| 15 | deposit | payee account, payment date, deposit serial, amount, currency, number of payments |
| 70 | end | numbers of payment, deduction, extra reference and deposit records |

``read_file`` (used by ``read.read_bank_file``) is the strict reader of a whole file. The
control totals are checked as it goes: each deposit record against the payments since
its opening record (count and amount: payments minus deductions), the end record against
the counts of the whole file; a mismatch raises ``ControlTotalError``.

- a payment's ``line_id`` is ``{deposit}.{payment}``, ordinals in the file, never the BGC
  serial number (Bankgirot's own example file repeats serials within a deposit);
- TK20 is a payment, TK21 a deduction (``RecordKind.DEDUCTION``, its amount positive);
  the deposit record's amount is payments minus deductions and is the ControlTotal;
- TK22/TK23 are extra references of the payment before them. Their amounts are the
  payer's breakdown of that payment, not money of their own: the deposit record counts
  and sums only TK20/TK21, and the end record counts TK22 and TK23 together. TK23
  ("minus", e.g. a credit note the payer deducted) is kept as a negative amount in
  ``IncomingPayment.extra_reference_amounts``, never as a record with its own sign;
- a test file (TK01 test marker ``T``) is ``NotIncomingPayments``: its payments are not money;
- reference code 2 means Bankgirot checked the reference as an OCR number, so it must be
  digits; codes 3 to 5 (references in TK22/23, unchecked, wrong) may be free text;
- a payment whose records (TK20-29) cannot be read with certainty is an
  ``UnreadableRecord``; an amount that is not digits, or any damaged TK01/05/15/70,
  rejects the file (the totals could not be proven).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from enum import Enum
from typing import Any, TypeVar

from .payments import (
    BankFile,
    ControlTotal,
    ControlTotalError,
    FormatError,
    IncomingPayment,
    NotIncomingPayments,
    RecordKind,
    UnreadableRecord,
)
from .payments import digest as digest_of

ENCODING = "iso-8859-1"
WIDTH = 80
__all__ = ["FormatError"]  # kept here for callers of the record API; defined in .payments


# ---- the records ----------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Start:  # TK01
    timestamp: str  # YYYYMMDDHHMMSSffffff
    test: bool = False
    version: int = 1


@dataclass(frozen=True, slots=True)
class Opening:  # TK05
    payee_bankgiro: str
    currency: str = "SEK"
    payee_plusgiro: str = ""


@dataclass(frozen=True, slots=True)
class AmountRecord:
    """The layout records 20 to 23 share: payer bankgiro, reference, amount and codes."""

    payer_bankgiro: str
    reference: str
    amount_minor: int
    reference_code: int
    channel_code: int
    serial: str
    image: bool = False


@dataclass(frozen=True, slots=True)
class Payment(AmountRecord):  # TK20 (deduction_code None) or TK21
    deduction_code: int | None = None


@dataclass(frozen=True, slots=True)
class ExtraReference(AmountRecord):  # TK22, or TK23 when negative
    negative: bool = False


@dataclass(frozen=True, slots=True)
class Information:  # TK25
    text: str


@dataclass(frozen=True, slots=True)
class Name:  # TK26
    name: str
    extra_name: str = ""


@dataclass(frozen=True, slots=True)
class Address1:  # TK27
    address: str
    postcode: str = ""


@dataclass(frozen=True, slots=True)
class Address2:  # TK28
    town: str
    country: str = ""
    country_code: str = ""


@dataclass(frozen=True, slots=True)
class OrganizationNumber:  # TK29
    number: str


@dataclass(frozen=True, slots=True)
class Deposit:  # TK15
    payee_account: str
    payment_date: date
    serial: str
    amount_minor: int
    payments: int
    currency: str = "SEK"
    deposit_type: str = ""


@dataclass(frozen=True, slots=True)
class End:  # TK70
    payments: int
    deductions: int
    extra_references: int
    deposits: int


Record = (Start | Opening | Payment | ExtraReference | Information | Name | Address1 | Address2
          | OrganizationNumber | Deposit | End)


# ---- the layout, declared once ------------------------------------------------------------

class Kind(Enum):
    """How a field is written and read (the manual's numeric and alphanumeric, refined)."""

    NUMERIC = "numeric"  # digits kept as text (bankgiro, account, organisation number, timestamp)
    INTEGER = "integer"  # a number: a count, a code, the layout version
    AMOUNT = "amount"  # öre, unsigned
    DATE = "date"  # YYYYMMDD
    ALPHANUMERIC = "alphanumeric"  # text, left-aligned; read without the trailing fill
    REFERENCE = "reference"  # the payer's reference: written left-aligned, read without surrounding
    #                          spaces (banks right-align it: Bankgirot's own example file does)
    CURRENCY = "currency"  # ISO 4217: three capital letters
    MARKER = "marker"  # one character: Field.marks[0] means yes, the others no


_NUMBERS = (Kind.NUMERIC, Kind.INTEGER, Kind.AMOUNT)  # right-aligned, zero-filled
_EXPECTED = {Kind.NUMERIC: "digits", Kind.INTEGER: "digits", Kind.AMOUNT: "digits", Kind.DATE: "a date (YYYYMMDD)",
             Kind.CURRENCY: "a currency code (three capital letters)"}
_CURRENCY = re.compile(r"[A-Z]{3}")


@dataclass(frozen=True, slots=True)
class Field:
    """One field of a record: the record's attribute ``name`` at ``position`` (1-based, as the
    manual counts) for ``length`` characters."""

    name: str
    position: int
    length: int
    kind: Kind
    marks: str = ""  # MARKER: the character for yes, then those read as no (the first of them is written)
    constant: str = ""  # a fixed value (the layout name BGMAX), not an attribute of the record
    checked: bool = True  # False: carried but never relied on, so its damage makes no record uncertain

    @property
    def span(self) -> slice:
        return slice(self.position - 1, self.position - 1 + self.length)

    def text(self, line: str) -> str:
        return line[self.span]

    def problem(self, line: str) -> str | None:
        """Why this field of a (padded) line is not what its kind allows; None if it is."""
        text = self.text(line)
        if self.constant:
            return None if text.rstrip() == self.constant else f"{self.name} {text!r} is not {self.constant!r}"
        if not self.checked or _valid(self, text):
            return None
        expected = _EXPECTED.get(self.kind, f"one of {self.marks!r}")
        return f"{self.name} {text!r} is not {expected}"

    def decode(self, line: str) -> object:
        """The value of this field of a (padded) line that has no ``problem``."""
        text = self.text(line)
        if self.kind in (Kind.INTEGER, Kind.AMOUNT):
            return int(text)
        if self.kind is Kind.DATE:
            return date(int(text[:4]), int(text[4:6]), int(text[6:]))
        if self.kind is Kind.MARKER:
            return text == self.marks[0]
        if self.kind in (Kind.NUMERIC, Kind.REFERENCE):
            return text.strip()
        return text.rstrip()

    def encode(self, value: object) -> str:
        """The field's characters for a value (FormatError if it does not fit)."""
        if self.kind is Kind.DATE:
            if not isinstance(value, date):
                raise FormatError(f"{self.name}: expected a date, got {value!r}")
            value = f"{value.year:04d}{value.month:02d}{value.day:02d}"
        elif self.kind is Kind.MARKER:
            value = self.marks[0] if value else self.marks[1]
        if isinstance(value, int) and value < 0:
            raise FormatError(f"BgMax amounts and counts are unsigned, got {value}")
        text = str(value)
        if len(text) > self.length:
            raise FormatError(f"{self.name}: {text!r} is longer than {self.length}")
        return text.rjust(self.length, "0") if self.kind in _NUMBERS else text.ljust(self.length)


def _valid(spec: Field, text: str) -> bool:
    if spec.kind in _NUMBERS:
        return _digits(text)
    if spec.kind is Kind.DATE:
        return _digits(text) and _is_date(text)
    if spec.kind is Kind.CURRENCY:
        return _CURRENCY.fullmatch(text) is not None
    if spec.kind is Kind.MARKER:
        return len(text) == 1 and text in spec.marks
    return True  # text: control characters and length are the whole record's concern


def _digits(text: str) -> bool:
    return text.isascii() and text.isdigit()


def _is_date(text: str) -> bool:
    try:
        date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class Layout:
    """A record type: its code (positions 1-2), the record class and its fields. ``implied``
    holds what the code itself says (TK23: a negative extra reference)."""

    code: str
    record: type[Any]
    fields: tuple[Field, ...]
    implied: tuple[tuple[str, object], ...] = ()

    def problems(self, line: str) -> list[str]:
        return [p for f in self.fields if (p := f.problem(line)) is not None]

    def parse(self, line: str) -> Record:
        values = {f.name: f.decode(line) for f in self.fields if not f.constant}
        record: Record = self.record(**values, **dict(self.implied))
        return record

    def format(self, record: Record) -> str:
        line = self.code.ljust(WIDTH)
        for f in self.fields:
            text = f.encode(f.constant or getattr(record, f.name))
            line = line[: f.span.start] + text + line[f.span.stop :]
        return line

    def writes(self, record: Record) -> bool:
        return type(record) is self.record and all(getattr(record, k) == v for k, v in self.implied)


_A, _N = Kind.ALPHANUMERIC, Kind.NUMERIC  # the two kinds most fields are, short so the table reads as one
_AMOUNT = Field("amount_minor", 38, 18, Kind.AMOUNT)
_REFERENCE = Field("reference", 13, 25, Kind.REFERENCE)
_REFERENCE_CODE = Field("reference_code", 56, 1, Kind.INTEGER)
_AMOUNT_FIELDS = (Field("payer_bankgiro", 3, 10, _N), _REFERENCE, _AMOUNT, _REFERENCE_CODE,
                  Field("channel_code", 57, 1, Kind.INTEGER),
                  Field("serial", 58, 12, _A),  # BGC serial number: real files leave it blank and repeat it
                  Field("image", 70, 1, Kind.MARKER, marks="10 "))

# checked=False: the organisation number and the deposit's payee account were never held to
# digits (a damaged one neither set a payment aside nor rejected a file); the table keeps that.
LAYOUTS: dict[str, Layout] = {layout.code: layout for layout in (
    Layout("01", Start, (Field("layout", 3, 20, _A, constant="BGMAX"), Field("version", 23, 2, Kind.INTEGER),
                         Field("timestamp", 25, 20, _N), Field("test", 45, 1, Kind.MARKER, marks="TP"))),
    Layout("05", Opening, (Field("payee_bankgiro", 3, 10, _N), Field("payee_plusgiro", 13, 10, _A),
                           Field("currency", 23, 3, Kind.CURRENCY))),
    Layout("20", Payment, _AMOUNT_FIELDS, implied=(("deduction_code", None),)),
    Layout("21", Payment, (*_AMOUNT_FIELDS, Field("deduction_code", 71, 1, Kind.INTEGER))),
    Layout("22", ExtraReference, _AMOUNT_FIELDS, implied=(("negative", False),)),
    Layout("23", ExtraReference, _AMOUNT_FIELDS, implied=(("negative", True),)),
    Layout("25", Information, (Field("text", 3, 50, _A),)),
    Layout("26", Name, (Field("name", 3, 35, _A), Field("extra_name", 38, 35, _A))),
    Layout("27", Address1, (Field("address", 3, 35, _A), Field("postcode", 38, 9, _A))),
    Layout("28", Address2, (Field("town", 3, 35, _A), Field("country", 38, 35, _A), Field("country_code", 73, 2, _A))),
    Layout("29", OrganizationNumber, (Field("number", 3, 12, _N, checked=False),)),
    Layout("15", Deposit, (Field("payee_account", 3, 35, _N, checked=False), Field("payment_date", 38, 8, Kind.DATE),
                           Field("serial", 46, 5, _A), Field("amount_minor", 51, 18, Kind.AMOUNT),
                           Field("currency", 69, 3, Kind.CURRENCY), Field("payments", 72, 8, Kind.INTEGER),
                           Field("deposit_type", 80, 1, _A))),
    Layout("70", End, tuple(Field(name, 3 + 8 * i, 8, Kind.INTEGER)
                            for i, name in enumerate(("payments", "deductions", "extra_references", "deposits")))),
)}


# ---- the record API, derived from the layout ---------------------------------------------

def parse_record(raw: str) -> Record:
    """One record by its declared layout; FormatError if a field is not what its kind allows."""
    line = raw.rstrip("\r\n").ljust(WIDTH)
    layout = LAYOUTS.get(line[:2])
    if layout is None:
        raise FormatError(f"unknown record type {line[:2]!r}")
    problems = layout.problems(line)
    if problems:
        raise FormatError(f"record {layout.code}: {'; '.join(problems)}")
    return layout.parse(line)


def format_record(record: Record) -> str:
    """The 80 characters of a record, by its declared layout (FormatError if a value does not fit)."""
    for layout in LAYOUTS.values():
        if layout.writes(record):
            return layout.format(record)
    raise FormatError(f"no BgMax layout for {record!r}")


def write(records_: Iterable[Record]) -> bytes:
    """A BgMax file of these records, ISO-8859-1, CRLF-free lines of 80 characters."""
    return "".join(format_record(r) + "\n" for r in records_).encode(ENCODING)


# ---- the strict reader: every payment record accounted for (read.read_bank_file) --------

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
MONEY = ("20", "21")  # payment, deduction: the deposit records count and sum these
EXTRA = ("22", "23")  # extra reference, extra reference "minus": a breakdown of the payment before them
DETAILS = ("25", "26", "27", "28", "29")  # information, name, address 1 and 2, organisation number
OCR_CHECKED = 2  # reference code 2: an OCR reference Bankgirot has checked, so digits only
_R = TypeVar("_R")


@dataclass
class _Group:
    """A payment (TK20) or deduction (TK21) with the records that follow it."""

    line_id: str
    lines: list[str]
    amount: int
    kind: RecordKind
    problems: list[str] = field(default_factory=list)


@dataclass
class _OpenDeposit:
    ordinal: int
    payee_bankgiro: str
    currency: str
    groups: list[_Group] = field(default_factory=list)


def read_file(lines: Sequence[str], digest: str) -> BankFile:
    """The payments and deductions of a BgMax file, per deposit, with the file's totals.

    Structure must be exact (TK01 first, deposits TK05 ... TK15, TK70 last, amounts and
    counts digits), else ``FormatError``/``ControlTotalError``/``NotIncomingPayments``.
    A payment any of whose records cannot be read with certainty (control characters
    such as a tab, non-digits in a numeric field or in a checked OCR reference, a record
    longer than 80 characters) becomes an ``UnreadableRecord``; its amount, from its own
    TK20/TK21, still counts in the totals, which hold it to the deposit record.
    """
    numbered = [(n, line) for n, line in enumerate(lines, 1) if line.strip()]
    if not numbered:
        raise FormatError("the file is empty")
    start = _structural(*numbered[0], Start, "start record (01BGMAX)")
    if start.test:
        raise NotIncomingPayments("not an incoming payment file: a BgMax test file (test marker 'T' in the start "
                                  "record); its payments are not money and are not booked")
    reader = _Reader()
    for number, line in numbered[1:]:
        reader.read(number, line)
    return reader.bank_file(start, numbered[0][1], digest)


class _Reader:
    """The records after the start record: deposits (05 ... 15) with their payments, then 70."""

    def __init__(self) -> None:
        self.records: list[IncomingPayment | UnreadableRecord] = []
        self.counts: Counter[str] = Counter()  # records by type
        self.totals: dict[str, list[int]] = {}  # per currency: records, net amount
        self.told: dict[str, list[str]] = {}  # each receiving bankgiro's deposits, their lines (one transmission)
        self.deposit: _OpenDeposit | None = None
        self.end: End | None = None

    def read(self, number: int, line: str) -> None:
        if self.deposit is not None:
            self.told[self.deposit.payee_bankgiro].append(line)
        if self.end is not None:
            raise FormatError(f"line {number}: data after the end record (70)")
        code = line[:2]
        if code in ("05", "70"):
            self.between_deposits(number, line)
        elif self.deposit is None:
            raise FormatError(f"line {number}: record {code!r} outside a deposit")
        elif code == "15":
            self.close(number, line, self.deposit)
        else:
            self.payment_record(number, line, self.deposit)

    def between_deposits(self, number: int, line: str) -> None:
        end = line[:2] == "70"
        if self.deposit is not None:
            raise FormatError(f"line {number}: {'end' if end else 'opening'} record inside deposit "
                              f"{self.deposit.ordinal} (no deposit record 15)")
        if end:
            self.end = _structural(number, line, End, "end record (70)")
            return
        opening = _structural(number, line, Opening, "opening record (05)")
        self.deposit = _OpenDeposit(self.counts["15"] + 1, opening.payee_bankgiro.lstrip("0"), opening.currency)
        self.told.setdefault(self.deposit.payee_bankgiro, []).append(line)

    def payment_record(self, number: int, line: str, deposit: _OpenDeposit) -> None:
        code = line[:2]
        if code in MONEY:
            deposit.groups.append(_group(number, line, f"{deposit.ordinal}.{len(deposit.groups) + 1}"))
        elif code not in EXTRA + DETAILS:
            raise FormatError(f"line {number}: unknown record type {code!r}")
        elif not deposit.groups:
            raise FormatError(f"line {number}: record {code!r} before any payment of its deposit")
        else:
            deposit.groups[-1].lines.append(line)
            deposit.groups[-1].problems.extend(f"line {number}: {p}" for p in _problems(line))
        self.counts[code] += 1

    def close(self, number: int, line: str, deposit: _OpenDeposit) -> None:
        record = _structural(number, line, Deposit, "deposit record (15)")
        if record.currency != deposit.currency:
            raise FormatError(f"line {number}: deposit record (15) in {record.currency}, its opening record in "
                              f"{deposit.currency}")
        found = sum(-g.amount if g.kind is RecordKind.DEDUCTION else g.amount for g in deposit.groups)
        if (record.payments, record.amount_minor) != (len(deposit.groups), found):
            raise ControlTotalError(f"deposit {deposit.ordinal} (line {number}): record says {record.payments} "
                                    f"payments of {record.amount_minor}, the file holds {len(deposit.groups)} of "
                                    f"{found}")
        total = self.totals.setdefault(deposit.currency, [0, 0])
        total[0] += record.payments
        total[1] += record.amount_minor
        self.records.extend(_read(group, deposit, record.payment_date) for group in deposit.groups)
        self.counts["15"] += 1
        self.deposit = None

    def bank_file(self, start: Start, first_line: str, digest: str) -> BankFile:
        if self.end is None:
            raise FormatError("the file has no end record (70): it may be cut short")
        found = End(self.counts["20"], self.counts["21"], self.counts["22"] + self.counts["23"], self.counts["15"])
        if self.end != found:
            raise ControlTotalError(f"end record says {self.end}, the file holds {found}")
        identity = f"bgmax:{'+'.join(self.told) or '-'}:{start.timestamp}"
        parts = tuple((f"bgmax:{payee}:{start.timestamp}", digest_of([first_line, *lines]), payee)
                      for payee, lines in self.told.items())
        totals = tuple(ControlTotal(c, n, a, a) for c, (n, a) in sorted(self.totals.items()) if n)
        return BankFile("bgmax", identity, digest, tuple(self.records), (), totals, start.test, parts)


def _structural(number: int, raw: str, of: type[_R], what: str) -> _R:
    """A start, opening, deposit or end record: any damage rejects the file (its totals could not be proven)."""
    if len(raw) > WIDTH or _CONTROL.search(raw):
        raise FormatError(f"line {number}: {what} is not a BgMax record of 80 printable characters")
    line = raw.ljust(WIDTH)
    layout = LAYOUTS.get(line[:2])
    problems = layout.problems(line) if layout else [f"record type {line[:2]!r}"]
    if problems or layout is None:
        raise FormatError(f"line {number}: not a {what}: {'; '.join(problems)}")
    record = layout.parse(line)
    if not isinstance(record, of):
        raise FormatError(f"line {number}: not a {what}: record type {line[:2]!r}")
    return record


def _group(number: int, raw: str, line_id: str) -> _Group:
    line = raw.ljust(WIDTH)
    if _AMOUNT.problem(line):
        raise FormatError(f"line {number}: amount {_AMOUNT.text(line)!r} of record {line[:2]} is not 18 digits")
    kind = RecordKind.DEDUCTION if line[:2] == "21" else RecordKind.PAYMENT
    return _Group(line_id, [raw], int(_AMOUNT.text(line)), kind, _problems(raw))


def _problems(raw: str) -> list[str]:
    """Why a record of a payment (TK20-29) cannot be read with certainty (empty if it can)."""
    code, line = raw[:2], raw.ljust(WIDTH)
    problems = []
    if len(line) > WIDTH:
        problems.append(f"record {code} is {len(line)} characters, not {WIDTH}")
    if _CONTROL.search(line):
        problems.append(f"control characters in record {code}: {line!r}")
    problems += [f"record {code}: {p}" for p in LAYOUTS[code].problems(line)]
    if (code in MONEY + EXTRA and _REFERENCE_CODE.problem(line) is None
            and _REFERENCE_CODE.decode(line) == OCR_CHECKED and not _digits(_REFERENCE.text(line).strip(" "))):
        problems.append(f"record {code}: OCR reference {_REFERENCE.text(line).strip()!r} (code 2) is not digits")
    return problems


def _read(group: _Group, deposit: _OpenDeposit, paid_on: date) -> IncomingPayment | UnreadableRecord:
    raw = "\n".join(group.lines)
    if group.problems:
        return UnreadableRecord(group.line_id, raw, "; ".join(group.problems), group.amount, deposit.currency,
                                deposit.payee_bankgiro, group.kind, "bgmax")
    first, *rest = (parse_record(line) for line in group.lines)
    if not isinstance(first, Payment):  # _group opened it on code 20/21, so never
        raise FormatError(f"payment {group.line_id} does not begin with a payment record")
    payment = IncomingPayment(
        "bgmax", group.line_id, group.amount, deposit.currency, first.reference or None, paid_on,
        payee_account=deposit.payee_bankgiro, payer_account=first.payer_bankgiro.lstrip("0") or None,
        kind=group.kind, raw=raw, deduction_code=first.deduction_code)
    for record in rest:
        payment = _with(payment, record)
    return payment


def _with(payment: IncomingPayment, record: Record) -> IncomingPayment:
    """The payment with what a record after it adds (addresses stay in its raw lines: not needed to match)."""
    if isinstance(record, ExtraReference):
        amount = -record.amount_minor if record.negative else record.amount_minor
        return replace(payment, extra_references=(*payment.extra_references, record.reference),
                       extra_reference_amounts=(*payment.extra_reference_amounts, amount))
    if isinstance(record, Information):
        return replace(payment, information=(*payment.information, record.text.strip()))
    if isinstance(record, Name):
        return replace(payment, payer_name=" ".join(p for p in (record.name, record.extra_name) if p))
    if isinstance(record, OrganizationNumber):
        return replace(payment, payer_organization_number=record.number.lstrip("0") or None)
    return payment
