"""Nets OCR giro transmissions (Norway): incoming payments with KID, read with netsgiro.

Nets OCR giro system manual (``../shared/references/nets/``), chapter 3: a transmission
(``NY000010`` ... ``NY000089``) holds assignments (``NY090020`` ... ``NY090088``), each
with transactions of two or three records (amount items 1, 2 and 3). netsgiro parses the
records; it does not check the end records' control totals, so this module does: per
assignment and for the transmission, the number of transactions, the number of
records and the total amount. Amounts stay integer øre end to end (netsgiro's records
carry øre; its ``Decimal`` kroner are not used).

``read_file`` (used by ``read.read_bank_file``) is the strict reader: it walks the
records itself and has netsgiro parse each one, so one damaged transaction is set aside
(``UnreadableRecord``) instead of failing the file, and it reads what netsgiro refuses:

- a MOD11 KID ending in ``-`` (check value 10): netsgiro's pattern allows digits and
  spaces only, so the '-' is read from the line and netsgiro parses the rest (netsgiro
  *writes* such a KID as given, so ``transmission`` needs no help);
- transaction types 18 and 20 ("reversing", manual 2.1) are ``RecordKind.REVERSAL`` with
  a positive amount. Nets adds them into the end records' total amount (manual 2.5,
  field 7), so the net ControlTotal is that total minus twice the reversals;
- a '-' sign (field 11) on a transaction that is not a reversal is not guessed at: set aside;
- AvtaleGiro claim and cancellation assignments (service code 21, types 00 and 36) are
  sent *to* Nets: such a file is ``NotIncomingPayments``, as is one with no OCR giro or
  agreement assignment; an agreements-only transmission is valid (mandates, no money);
- ``line_id`` is ``{assignment}.{transaction}``, ordinals in the file.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import netsgiro
from netsgiro import records as nr

from .payments import (
    BankFile,
    ControlTotal,
    ControlTotalError,
    FormatError,
    IncomingPayment,
    MandateRecord,
    NotIncomingPayments,
    RecordKind,
    UnreadableRecord,
)


def transmission(paid: Sequence[tuple[str, int]], on: date, number: str = "1000001",
                 account: str = "88888888888", types: Sequence[int] = ()) -> str:
    """An OCR giro transmission paying ``(kid, amount in øre)`` pairs, written by netsgiro.

    What a bank sends; the demo's simulated bank and the tests use it. Øre become kroner
    exactly (``Decimal(øre) / 100``), never through a float. ``types`` gives each
    transaction's type (default 21, purchase with free text; 18 and 20 are reversals).
    """
    from decimal import Decimal

    out = netsgiro.Transmission(number=number, data_transmitter="00008080", data_recipient=netsgiro.NETS_ID,
                                date=on)
    assignment = netsgiro.Assignment(service_code=netsgiro.ServiceCode.OCR_GIRO,
                                     type=netsgiro.AssignmentType.TRANSACTIONS, number=number[-7:].rjust(7, "0"),
                                     account=account, agreement_id="000000000", date=on)
    for i, (kid, amount) in enumerate(paid, 1):
        assignment.transactions.append(netsgiro.Transaction(
            service_code=netsgiro.ServiceCode.OCR_GIRO, number=i,
            type=netsgiro.TransactionType(types[i - 1] if types else netsgiro.TransactionType.PURCHASE_WITH_TEXT),
            date=on, amount=Decimal(amount) / 100, kid=kid, reference="000000001", text=None, centre_id="13",
            day_code=on.day, partial_settlement_number=1, partial_settlement_serial_number="00001", sign="0",
            form_number="9876543210", bank_date=on, debit_account="12345678903", filler=None))
    out.assignments.append(assignment)
    return str(out.to_ocr())


_REGISTRATION = {
    netsgiro.AvtaleGiroRegistrationType.NEW_OR_UPDATED_AGREEMENT: "new_or_updated",
    netsgiro.AvtaleGiroRegistrationType.DELETED_AGREEMENT: "deleted",
    netsgiro.AvtaleGiroRegistrationType.ACTIVE_AGREEMENT: "active",
}


def agreements_transmission(changes: Sequence[tuple[str, str, bool]], on: date, number: str = "2000001",
                            account: str = "88888888888") -> str:
    """A transmission of AvtaleGiro agreement records ``(kid, registration, notify)``, by netsgiro."""
    by_name = {v: k for k, v in _REGISTRATION.items()}
    out = netsgiro.Transmission(number=number, data_transmitter="00008080", data_recipient=netsgiro.NETS_ID,
                                date=on)
    assignment = netsgiro.Assignment(service_code=netsgiro.ServiceCode.AVTALEGIRO,
                                     type=netsgiro.AssignmentType.AVTALEGIRO_AGREEMENTS,
                                     number=number[-7:].rjust(7, "0"), account=account)
    for i, (kid, registration, notify) in enumerate(changes, 1):
        assignment.transactions.append(netsgiro.Agreement(service_code=netsgiro.ServiceCode.AVTALEGIRO, number=i,
                                                          registration_type=by_name[registration], kid=kid,
                                                          notify=notify))
    out.assignments.append(assignment)
    return str(out.to_ocr())


# ---- the strict reader: every transaction accounted for (read.read_bank_file) -------------

CURRENCY = "NOK"  # OCR giro is in Norwegian kroner; amounts are øre
OCR_GIRO, AVTALEGIRO = "09", "21"
REVERSAL_TYPES = frozenset({18, 20})  # "reversing with KID", "reversing with free text" (manual 2.1)
TEXT_TYPES = frozenset({20, 21})  # these carry amount item 3 (free text)
PAYMENT_TYPES = frozenset(range(10, 22))  # manual 2.4 field 3: 10-17 giro, 18-21 terminals and internet
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_KID = re.compile(r"[0-9]+-?")  # ASCII digits, MOD11 may end in '-' (netsgiro's \d takes any script's digits)
# The positions this reader reads itself, before netsgiro parses a record (netsgiro holds each
# record's whole layout; these are what decide which record a line is, and the fields it
# refuses that we read: manual 2.2-2.5, 0-based slices).
FORMAT = slice(0, 2)  # "NY"
SERVICE = slice(2, 4)  # service code: 00 transmission, 09 OCR giro, 21 AvtaleGiro
TYPE = slice(4, 6)  # transaction or assignment type
RECORD = slice(6, 8)  # record type: 10/89 transmission, 20/88 assignment, 30-32 amount items, 70 agreement
HEAD = slice(0, 8)  # the four together
NUMBER = slice(8, 15)  # transaction number (amount items)
AMOUNT = slice(32, 49)  # amount item 1: øre, 17 digits
ITEM1_KID = slice(49, 74)  # amount item 1: KID, right-aligned
AGREEMENT_KID = slice(16, 41)  # AvtaleGiro agreement record: KID, right-aligned
_OUTGOING = {("21", "00"): "an AvtaleGiro claim assignment (betalingskrav: service code 21, assignment type 00)",
             ("21", "36"): "an AvtaleGiro cancellation assignment (sletteanmodning: service code 21, type 36)"}


class _Unreadable(Exception):
    """A transaction record that cannot be read with certainty (its transaction is set aside)."""


def _parse(cls: type[Any], line: str, what: str) -> Any:
    """One record by netsgiro, its exceptions turned into ours (netsgiro raises ValueError,
    TypeError or KeyError from its patterns, converters and validators)."""
    try:
        return cls.from_string(line)
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        raise FormatError(f"{what}: {exc}") from None


def _with_dash(cls: type[Any], line: str, kid: slice) -> tuple[Any, str | None]:
    """Parse a record whose KID field may end in MOD11's '-', which netsgiro's pattern
    (digits and spaces) refuses: netsgiro reads the line with that '-' as '0', and the
    KID is taken from the line itself. Returns the record and the KID (None if blank)."""
    field_ = line[kid]
    if field_.strip(" ") and not _KID.fullmatch(field_.lstrip(" ")):
        raise _Unreadable(f"KID field {field_!r} is not a right-aligned KID of digits (and a final '-')")
    if field_.endswith("-"):
        line = line[: kid.stop - 1] + "0" + line[kid.stop :]
    return _item(cls, line), field_.strip() or None


_ITEMS: dict[type[Any], str] = {nr.TransactionAmountItem1: "amount item 1", nr.TransactionAmountItem2: "amount item 2",
          nr.TransactionAmountItem3: "amount item 3", nr.AvtaleGiroAgreement: "agreement record"}


def _item(cls: type[Any], line: str) -> Any:
    try:
        return cls.from_string(line)
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        raise _Unreadable(f"{_ITEMS.get(cls, cls.__name__)} is not laid out as the OCR giro manual says "
                          f"(a field with a wrong value or length; netsgiro: {exc})") from None


@dataclass
class _Count:
    transactions: int = 0
    records: int = 0
    amount: int = 0

    def check(self, what: str, end: Any) -> None:
        said = (int(end.num_transactions), int(end.num_records), int(end.total_amount or 0))
        found = (self.transactions, self.records, self.amount)
        if said != found:
            raise ControlTotalError(f"{what}: end record says {said[0]} transactions, {said[1]} records, "
                                    f"{said[2]} øre; the file holds {found[0]}, {found[1]}, {found[2]}")


@dataclass
class _Transaction:
    line_id: str
    account: str
    lines: list[str] = field(default_factory=list)

    @property
    def type(self) -> int:
        return int(self.lines[0][TYPE])

    @property
    def amount(self) -> int:
        return int(self.lines[0][AMOUNT])


def read_file(lines: Sequence[str], digest: str) -> BankFile:
    """A transmission's transactions and agreements, with its totals, from normalised lines.

    Structure (start, assignments, end records, amounts, transaction types) must be
    exact, else ``FormatError``/``ControlTotalError``/``NotIncomingPayments``. A
    transaction whose records cannot be read with certainty (damaged KID or date,
    control characters, wrong length, a '-' sign on a payment) becomes an
    ``UnreadableRecord`` with its raw lines; its amount and type still count in the totals.
    """
    numbered = [(n, line) for n, line in enumerate(lines, 1) if line.strip()]
    if not numbered:
        raise FormatError("the file is empty")
    return _Reader(numbered, digest).read()


class _Reader:
    def __init__(self, numbered: list[tuple[int, str]], digest: str) -> None:
        self.numbered, self.digest, self.at = numbered, digest, 0
        self.records: list[IncomingPayment | UnreadableRecord] = []
        self.mandates: list[MandateRecord] = []
        self.assignments = 0
        self.ocr = _Count()  # OCR giro assignments only: the money
        self.reversed = 0

    def next(self) -> tuple[int, str]:
        if self.at >= len(self.numbered):
            raise FormatError("the transmission has no end record (NY000089): it may be cut short")
        self.at += 1
        return self.numbered[self.at - 1]

    def peek(self) -> str:
        return self.numbered[self.at][1] if self.at < len(self.numbered) else ""

    def read(self) -> BankFile:
        start = _record(self.next(), nr.TransmissionStart)
        transmission = _Count(records=1)
        while True:
            number, line = self.next()
            if line[HEAD] == "NY000089":
                end = _record((number, line), nr.TransmissionEnd)
                transmission.records += 1
                transmission.check("transmission", end)
                break
            if line[RECORD] != "20":
                raise FormatError(f"line {number}: record type {line[RECORD]!r} outside an assignment")
            count = self.assignment(number, line)
            transmission.transactions += count.transactions
            transmission.records += count.records
            transmission.amount += count.amount
        if self.at < len(self.numbered):
            raise FormatError(f"line {self.numbered[self.at][0]}: data after the transmission end record")
        if not self.assignments:
            raise NotIncomingPayments("not an incoming payment file: it holds no OCR giro or AvtaleGiro "
                                      "agreement assignment")
        totals = (ControlTotal(CURRENCY, self.ocr.transactions, self.ocr.amount - 2 * self.reversed,
                               self.ocr.amount),) if self.ocr.transactions else ()
        return BankFile("ocr_giro", f"nets:{start.data_transmitter}:{start.transmission_number}", self.digest,
                        tuple(self.records), tuple(self.mandates), totals)

    def assignment(self, number: int, line: str) -> _Count:
        service, type_ = line[SERVICE], line[TYPE]
        if (service, type_) in _OUTGOING:
            raise NotIncomingPayments(f"not an incoming payment file: line {number} starts {_OUTGOING[service, type_]}"
                                      ", which is sent to Nets, not from it")
        if (service, type_) not in ((OCR_GIRO, "00"), (AVTALEGIRO, "24")):
            raise NotIncomingPayments(f"not an incoming payment file: line {number} starts an assignment of service "
                                      f"code {service!r}, type {type_!r} (neither OCR giro nor AvtaleGiro agreements)")
        start = _record((number, line), nr.AssignmentStart)
        self.assignments += 1
        count = _Count(records=1)
        ordinal = 0
        while self.peek()[RECORD] != "88":
            ordinal += 1
            line_id = f"{self.assignments}.{ordinal}"
            if service == OCR_GIRO:
                transaction = self.transaction(line_id, start.assignment_account)
                count.records += len(transaction.lines)
                count.amount += transaction.amount
            else:
                count.records += 1
                self.mandates.append(self.agreement(line_id, start.assignment_account))
            count.transactions += 1
        end = _record(self.next(), nr.AssignmentEnd)
        if (end.service_code, end.assignment_type) != (start.service_code, start.assignment_type):
            raise FormatError(f"assignment {self.assignments}: its end record is of another service or type")
        count.records += 1
        count.check(f"assignment {self.assignments} ({start.assignment_number})", end)
        if service == OCR_GIRO:
            self.ocr.transactions += count.transactions
            self.ocr.records += count.records
            self.ocr.amount += count.amount
        return count

    def transaction(self, line_id: str, account: str) -> _Transaction:
        number, line = self.next()
        if line[FORMAT] != "NY" or line[SERVICE] != OCR_GIRO or line[RECORD] != "30":
            raise FormatError(f"line {number}: expected amount item 1 (NY09..30) of a transaction, got {line[HEAD]!r}")
        if not line[TYPE].isdigit() or int(line[TYPE]) not in PAYMENT_TYPES:
            raise FormatError(f"line {number}: transaction type {line[TYPE]!r} is not an OCR giro transaction type")
        if not _digits(line[AMOUNT]):
            raise FormatError(f"line {number}: amount {line[AMOUNT]!r} is not 17 digits")
        transaction = _Transaction(line_id, account, [line])
        while self.peek()[:4] == "NY" + OCR_GIRO and self.peek()[RECORD] in ("31", "32"):
            transaction.lines.append(self.next()[1])
        try:
            self.records.append(_payment(transaction))
        except _Unreadable as exc:
            self.records.append(UnreadableRecord(
                line_id, "\n".join(transaction.lines), f"OCR giro transaction unreadable: {exc}", transaction.amount,
                CURRENCY, account, _kind(transaction.type), "ocr_giro"))
        if transaction.type in REVERSAL_TYPES:
            self.reversed += transaction.amount
        return transaction

    def agreement(self, line_id: str, account: str) -> MandateRecord:
        number, line = self.next()
        if line[HEAD] != "NY219470" or _CONTROL.search(line) or len(line) != 80 or not line.isascii():
            raise FormatError(f"line {number}: expected an AvtaleGiro agreement record (NY219470), got {line[HEAD]!r}")
        try:
            agreement, kid = _with_dash(nr.AvtaleGiroAgreement, line, AGREEMENT_KID)
        except _Unreadable as exc:
            raise FormatError(f"line {number}: AvtaleGiro agreement unreadable: {exc}") from None
        return MandateRecord(line_id, account, kid or "", _REGISTRATION[agreement.registration_type],
                             bool(agreement.notify))


def _digits(text: str) -> bool:
    return text.isascii() and text.isdigit()


def _kind(transaction_type: int) -> RecordKind:
    return RecordKind.REVERSAL if transaction_type in REVERSAL_TYPES else RecordKind.PAYMENT


def _record(numbered: tuple[int, str], cls: type[Any]) -> Any:
    number, line = numbered
    if len(line) != 80 or _CONTROL.search(line) or not line.isascii():
        raise FormatError(f"line {number}: a {cls.__name__} record must be 80 printable ASCII characters")
    return _parse(cls, line, f"line {number}")


def _payment(t: _Transaction) -> IncomingPayment:
    """A transaction read with certainty, or _Unreadable with the reason."""
    for line in t.lines:
        if len(line) != 80:
            raise _Unreadable(f"a record of {len(line)} characters, not 80")
        if _CONTROL.search(line):
            raise _Unreadable("control characters in a record")
        if line[RECORD] != "32" and not line.isascii():  # only amount item 3 carries free text
            raise _Unreadable("characters outside ASCII in a record of digits")
        if line[TYPE] != t.lines[0][TYPE] or line[NUMBER] != t.lines[0][NUMBER]:
            raise _Unreadable("its records disagree on transaction type or number")
    kinds = [line[RECORD] for line in t.lines]
    if kinds != (["30", "31", "32"] if t.type in TEXT_TYPES else ["30", "31"]):
        raise _Unreadable(f"records {kinds} do not make a transaction of type {t.type}")
    item1, kid = _with_dash(nr.TransactionAmountItem1, t.lines[0], ITEM1_KID)
    if item1.sign == "-" and t.type not in REVERSAL_TYPES:
        raise _Unreadable(f"a negative sign on a transaction of type {t.type}, which is not a reversal")
    item2 = _item(nr.TransactionAmountItem2, t.lines[1])
    item3 = _item(nr.TransactionAmountItem3, t.lines[2]) if len(t.lines) == 3 else None
    debit = (item2.debit_account or "").strip()
    return IncomingPayment(
        source="ocr_giro", line_id=t.line_id, amount_minor=t.amount, currency=CURRENCY, reference=kid,
        payment_date=item1.nets_date, payee_account=t.account, payer_account=debit if debit.strip("0") else None,
        information=tuple(x for x in (((item3.text or "").strip() if item3 else ""),) if x),
        kind=_kind(t.type), raw="\n".join(t.lines))
