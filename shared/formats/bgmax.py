"""Bankgirot BgMax: the file of incoming bankgiro payments (Bankgiro Inbetalningar), Sweden.

Our own reader and writer, because no maintained Python package exists. Written from
Bankgirot's technical manual "Bankgiro Inbetalningar" (record and file description of
the BgMax file, layout version 01): 80-character records in ISO-8859-1, one file holding
one or more deposits (``TK05`` ... ``TK15``), each with its payments.

| record | name | fields used |
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

Control totals are checked as the file streams by: each deposit record against the
payments since its opening record (count and amount: payments minus deductions), the
end record against the counts of the whole file. A mismatch raises
``ControlTotalError``; callers read the file once to validate and once to book, so
nothing is booked from a file that does not add up, and memory stays flat.

``read_file`` (used by ``read.read_bank_file``) is the strict reader of a whole file:

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
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import date

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


# ---- reading records ---------------------------------------------------------------------

def _num(text: str, what: str) -> int:
    if not text.strip().isdigit():
        raise FormatError(f"{what}: expected digits, got {text!r}")
    return int(text)


def _money(line: str) -> tuple[str, str, int, int, int, str, bool]:
    return (line[2:12], line[12:37].strip(), _num(line[37:55], "amount"), _num(line[55], "reference code"),
            _num(line[56], "channel code"), line[57:69], line[69:70] == "1")


def parse_record(raw: str) -> Record:
    line = raw.rstrip("\r\n").ljust(WIDTH)
    code = line[:2]
    if code == "01":
        if line[2:22].strip() != "BGMAX":
            raise FormatError("start record without layout name BGMAX")
        return Start(line[24:44], line[44] == "T", _num(line[22:24], "version"))
    if code == "05":
        return Opening(line[2:12], line[22:25], line[12:22].strip())
    if code in ("20", "21"):
        bg, ref, amount, rc, ch, serial, image = _money(line)
        deduction = _num(line[70], "deduction code") if code == "21" else None
        return Payment(bg, ref, amount, rc, ch, serial, image, deduction)
    if code in ("22", "23"):
        return ExtraReference(*_money(line), negative=code == "23")
    if code == "25":
        return Information(line[2:52].rstrip())
    if code == "26":
        return Name(line[2:37].rstrip(), line[37:72].rstrip())
    if code == "27":
        return Address1(line[2:37].rstrip(), line[37:46].strip())
    if code == "28":
        return Address2(line[2:37].rstrip(), line[37:72].rstrip(), line[72:74].strip())
    if code == "29":
        return OrganizationNumber(line[2:14].strip())
    if code == "15":
        day = line[37:45]
        return Deposit(line[2:37].strip(), date(_num(day[:4], "year"), _num(day[4:6], "month"), _num(day[6:], "day")),
                       line[45:50], _num(line[50:68], "deposit amount"), _num(line[71:79], "number of payments"),
                       line[68:71], line[79].strip())
    if code == "70":
        return End(*(_num(line[i : i + 8], "count") for i in (2, 10, 18, 26)))
    raise FormatError(f"unknown record type {code!r}")


def records(lines: Iterable[str]) -> Iterator[Record]:
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            yield parse_record(line)
        except (FormatError, ValueError, IndexError) as exc:
            raise FormatError(f"line {number}: {exc}") from exc


def decode_lines(chunks: Iterable[bytes]) -> Iterator[str]:
    """ISO-8859-1 lines from a byte stream (a blob download), without reading it whole."""
    rest = b""
    for chunk in chunks:
        rest += chunk
        *complete, rest = rest.split(b"\n")
        for line in complete:
            yield line.decode(ENCODING)
    if rest:
        yield rest.decode(ENCODING)


# ---- reading payments, with the control totals -------------------------------------------

@dataclass
class _Deposit:
    opening: Opening
    payments: list[IncomingPayment] = field(default_factory=list)
    count: int = 0
    amount: int = 0


def payments(lines: Iterable[str]) -> Iterator[IncomingPayment]:
    """The file's payments, deposit by deposit; raises ControlTotalError where totals differ.

    A deposit's payments are yielded when its deposit record (which carries the date and
    the totals) has been checked, so a deposit is held in memory, never the file.
    """
    counts = {"payments": 0, "deductions": 0, "extra_references": 0, "deposits": 0}
    started = ended = False
    deposit: _Deposit | None = None
    current: IncomingPayment | None = None
    for record in records(lines):
        if isinstance(record, Start):
            started = True
        elif not started:
            raise FormatError("the file does not begin with a start record (01)")
        elif isinstance(record, Opening):
            deposit = _Deposit(record)
        elif isinstance(record, End):
            _check_end(record, counts)
            ended = True
        elif deposit is None:
            raise FormatError(f"{type(record).__name__} outside a deposit")
        elif isinstance(record, Payment):
            current = _payment(record, deposit, counts)
        elif isinstance(record, Deposit):
            yield from _close(record, deposit)
            counts["deposits"] += 1
            deposit, current = None, None
        elif current is None:
            raise FormatError(f"{type(record).__name__} before any payment")
        else:
            counts["extra_references"] += isinstance(record, ExtraReference)
            current = _enrich(current, record)
            deposit.payments[-1] = current
    if not ended:
        raise ControlTotalError("the file has no end record (70): it may be cut short")


def _payment(record: Payment, deposit: _Deposit, counts: dict[str, int]) -> IncomingPayment:
    deduction = record.deduction_code is not None
    counts["deductions" if deduction else "payments"] += 1
    amount = -record.amount_minor if deduction else record.amount_minor
    deposit.count += 1
    deposit.amount += amount
    payment = IncomingPayment("bgmax", record.serial, amount, deposit.opening.currency, record.reference or None,
                              date.min, payer_account=record.payer_bankgiro.lstrip("0") or None,
                              payee_account=deposit.opening.payee_bankgiro.lstrip("0"))
    deposit.payments.append(payment)
    return payment


def _enrich(payment: IncomingPayment, record: Record) -> IncomingPayment:
    if isinstance(record, ExtraReference):
        return replace(payment, extra_references=(*payment.extra_references, record.reference))
    if isinstance(record, Information):
        return replace(payment, information=(*payment.information, record.text.strip()))
    if isinstance(record, Name):
        return replace(payment, payer_name=" ".join(p for p in (record.name, record.extra_name) if p))
    if isinstance(record, OrganizationNumber):
        return replace(payment, payer_organization_number=record.number.lstrip("0") or None)
    return payment  # addresses: kept in the file, not needed for matching


def _close(record: Deposit, deposit: _Deposit) -> Iterator[IncomingPayment]:
    if record.payments != deposit.count or record.amount_minor != deposit.amount:
        raise ControlTotalError(
            f"deposit {record.serial}: record says {record.payments} payments of {record.amount_minor}, "
            f"the file holds {deposit.count} of {deposit.amount}")
    for payment in deposit.payments:
        yield replace(payment, payment_date=record.payment_date, line_id=f"{record.serial}.{payment.line_id}")


def _check_end(record: End, counts: dict[str, int]) -> None:
    found = End(counts["payments"], counts["deductions"], counts["extra_references"], counts["deposits"])
    if record != found:
        raise ControlTotalError(f"end record says {record}, the file holds {found}")


# ---- writing ------------------------------------------------------------------------------

def _field(value: object, width: int, align: str = "<", fill: str = " ") -> str:
    if isinstance(value, int) and value < 0:
        raise FormatError(f"BgMax amounts and counts are unsigned, got {value}")
    text = str(value)
    if len(text) > width:
        raise FormatError(f"{text!r} is longer than {width}")
    return f"{text:{fill}{align}{width}}"


def _money_line(code: str, r: AmountRecord) -> str:
    return (code + _field(r.payer_bankgiro, 10, ">", "0") + _field(r.reference, 25)
            + _field(r.amount_minor, 18, ">", "0") + str(r.reference_code) + str(r.channel_code)
            + _field(r.serial, 12) + ("1" if r.image else "0"))


def format_record(r: Record) -> str:
    if isinstance(r, Start):
        line = "01" + _field("BGMAX", 20) + f"{r.version:02d}" + _field(r.timestamp, 20) + ("T" if r.test else "P")
    elif isinstance(r, Opening):
        line = "05" + _field(r.payee_bankgiro, 10, ">", "0") + _field(r.payee_plusgiro, 10) + _field(r.currency, 3)
    elif isinstance(r, Payment):
        line = _money_line("21" if r.deduction_code is not None else "20", r)
        line += str(r.deduction_code) if r.deduction_code is not None else ""
    elif isinstance(r, ExtraReference):
        line = _money_line("23" if r.negative else "22", r)
    elif isinstance(r, Information):
        line = "25" + _field(r.text, 50)
    elif isinstance(r, Name):
        line = "26" + _field(r.name, 35) + _field(r.extra_name, 35)
    elif isinstance(r, Address1):
        line = "27" + _field(r.address, 35) + _field(r.postcode, 9)
    elif isinstance(r, Address2):
        line = "28" + _field(r.town, 35) + _field(r.country, 35) + _field(r.country_code, 2)
    elif isinstance(r, OrganizationNumber):
        line = "29" + _field(r.number, 12, ">", "0")
    elif isinstance(r, Deposit):
        line = ("15" + _field(r.payee_account, 35, ">", "0") + r.payment_date.strftime("%Y%m%d") + _field(r.serial, 5)
                + _field(r.amount_minor, 18, ">", "0") + _field(r.currency, 3) + _field(r.payments, 8, ">", "0")
                + _field(r.deposit_type, 1))
    else:
        line = "70" + "".join(_field(n, 8, ">", "0") for n in (r.payments, r.deductions, r.extra_references,
                                                                r.deposits))
    return line.ljust(WIDTH)


def write(records_: Iterable[Record]) -> bytes:
    """A BgMax file of these records, ISO-8859-1, CRLF-free lines of 80 characters."""
    return "".join(format_record(r) + "\n" for r in records_).encode(ENCODING)


# ---- the strict reader: every payment record accounted for (read.read_bank_file) --------

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CURRENCY = re.compile(r"[A-Z]{3}")
MONEY = ("20", "21")  # payment, deduction: the deposit records count and sum these
EXTRA = ("22", "23")  # extra reference, extra reference "minus": a breakdown of the payment before them
DETAILS = ("25", "26", "27", "28", "29")  # information, name, address 1 and 2, organisation number
OCR_CHECKED = 2  # reference code 2: an OCR reference Bankgirot has checked, so digits only


class _Unreadable(Exception):
    """A record of a payment that cannot be read with certainty (the payment is set aside)."""


def _digits(text: str) -> bool:
    return text.isascii() and text.isdigit()


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
    start = _start(*numbered[0])
    if start.test:
        raise NotIncomingPayments("not an incoming payment file: a BgMax test file (test marker 'T' in the start "
                                  "record); its payments are not money and are not booked")
    records: list[IncomingPayment | UnreadableRecord] = []
    counts = {"20": 0, "21": 0, "22": 0, "23": 0, "15": 0}
    totals: dict[str, list[int]] = {}
    payees: list[str] = []
    told: dict[str, list[str]] = {}  # each receiving bankgiro's deposits, their lines (one transmission each)
    deposit: _OpenDeposit | None = None
    end = None
    for number, line in numbered[1:]:
        if deposit is not None:
            told[deposit.payee_bankgiro].append(line)
        code = line[:2]
        if end is not None:
            raise FormatError(f"line {number}: data after the end record (70)")
        if code == "70":
            if deposit is not None:
                raise FormatError(f"line {number}: end record inside deposit {deposit.ordinal} (no deposit record 15)")
            end = _end(number, line)
        elif code == "05":
            if deposit is not None:
                raise FormatError(f"line {number}: opening record inside deposit {deposit.ordinal} "
                                  "(no deposit record 15)")
            deposit = _opening(number, line, counts["15"] + 1)
            payees.append(deposit.payee_bankgiro)
            told.setdefault(deposit.payee_bankgiro, []).append(line)
        elif deposit is None:
            raise FormatError(f"line {number}: record {code!r} outside a deposit")
        elif code in MONEY:
            counts[code] += 1
            deposit.groups.append(_group(number, line, f"{deposit.ordinal}.{len(deposit.groups) + 1}"))
        elif code in EXTRA or code in DETAILS:
            if not deposit.groups:
                raise FormatError(f"line {number}: record {code!r} before any payment of its deposit")
            counts[code] = counts.get(code, 0) + 1
            _attach(deposit.groups[-1], number, line)
        elif code == "15":
            counts["15"] += 1
            records.extend(_close_deposit(number, line, deposit, totals))
            deposit = None
        else:
            raise FormatError(f"line {number}: unknown record type {code!r}")
    if end is None:
        raise FormatError("the file has no end record (70): it may be cut short")
    found = End(counts["20"], counts["21"], counts["22"] + counts["23"], counts["15"])
    if end != found:
        raise ControlTotalError(f"end record says {end}, the file holds {found}")
    identity = f"bgmax:{'+'.join(dict.fromkeys(payees)) or '-'}:{start.timestamp}"
    parts = tuple((f"bgmax:{payee}:{start.timestamp}", digest_of([numbered[0][1], *lines]), payee)
                  for payee, lines in told.items())
    return BankFile("bgmax", identity, digest, tuple(records), (),
                    tuple(ControlTotal(c, n, a, a) for c, (n, a) in sorted(totals.items()) if n), start.test, parts)


def _padded(number: int, line: str) -> str:
    if _CONTROL.search(line[:2]) or len(line) > WIDTH:
        raise FormatError(f"line {number}: not an 80-character BgMax record")
    return line.ljust(WIDTH)


def _start(number: int, line: str) -> Start:
    line = _padded(number, line)
    if _CONTROL.search(line) or line[2:22].rstrip() != "BGMAX":
        raise FormatError(f"line {number}: not a BgMax start record (01BGMAX)")
    if not _digits(line[22:24]) or not _digits(line[24:44]) or line[44] not in "TP":
        raise FormatError(f"line {number}: start record without version, timestamp or test marker T/P")
    return Start(line[24:44], line[44] == "T", int(line[22:24]))


def _end(number: int, line: str) -> End:
    line = _padded(number, line)
    fields = [line[i : i + 8] for i in (2, 10, 18, 26)]
    if _CONTROL.search(line) or not all(_digits(f) for f in fields):
        raise FormatError(f"line {number}: end record (70) counts are not digits")
    return End(*(int(f) for f in fields))


def _opening(number: int, line: str, ordinal: int) -> _OpenDeposit:
    line = _padded(number, line)
    if _CONTROL.search(line) or not _digits(line[2:12]) or not _CURRENCY.fullmatch(line[22:25]):
        raise FormatError(f"line {number}: opening record (05) without payee bankgiro or currency")
    return _OpenDeposit(ordinal, line[2:12].lstrip("0"), line[22:25])


def _group(number: int, raw: str, line_id: str) -> _Group:
    line = _padded(number, raw) if len(raw) <= WIDTH else raw
    if not _digits(line[37:55]):
        raise FormatError(f"line {number}: amount {line[37:55]!r} of record {line[:2]} is not 18 digits")
    kind = RecordKind.DEDUCTION if line[:2] == "21" else RecordKind.PAYMENT
    group = _Group(line_id, [raw], int(line[37:55]), kind)
    group.problems.extend(_money_problems(line))
    if kind is RecordKind.DEDUCTION and not _digits(line[70]):
        group.problems.append(f"deduction code {line[70]!r} is not a digit")
    return group


def _money_problems(line: str) -> list[str]:
    """Why a record of layout 20-23 cannot be read with certainty (empty if it can)."""
    problems = []
    if len(line) > WIDTH:
        problems.append(f"record {line[:2]} is {len(line)} characters, not {WIDTH}")
    if _CONTROL.search(line):
        problems.append(f"control characters in record {line[:2]}: {line!r}")
    if not _digits(line[2:12]) or not _digits(line[55:57]) or line[69] not in "01 ":
        problems.append(f"record {line[:2]}: payer bankgiro, reference code, channel or image marker not as specified")
    elif int(line[55]) == OCR_CHECKED and not _digits(line[12:37].strip(" ")):
        problems.append(f"record {line[:2]}: OCR reference {line[12:37].strip()!r} (code 2) is not digits")
    return problems


def _attach(group: _Group, number: int, raw: str) -> None:
    group.lines.append(raw)
    if len(raw) > WIDTH or _CONTROL.search(raw):
        group.problems.append(f"line {number}: record {raw[:2]} is damaged (control characters or too long)")
    elif raw[:2] in EXTRA:
        group.problems.extend(f"line {number}: {p}" for p in _money_problems(raw.ljust(WIDTH)))
        if not _digits(raw.ljust(WIDTH)[37:55]):
            group.problems.append(f"line {number}: extra reference amount is not digits")


def _close_deposit(number: int, raw: str, deposit: _OpenDeposit,
           totals: dict[str, list[int]]) -> Iterator[IncomingPayment | UnreadableRecord]:
    line = _padded(number, raw)
    day = line[37:45]
    if (_CONTROL.search(line) or not _digits(line[50:68]) or not _digits(line[71:79]) or not _digits(day)
            or line[68:71] != deposit.currency):
        raise FormatError(f"line {number}: deposit record (15) without amount, count, date or its deposit's currency")
    try:
        paid_on = date(int(day[:4]), int(day[4:6]), int(day[6:]))
    except ValueError:
        raise FormatError(f"line {number}: deposit record (15) has no valid payment date ({day!r})") from None
    amount, count = int(line[50:68]), int(line[71:79])
    found = sum(-g.amount if g.kind is RecordKind.DEDUCTION else g.amount for g in deposit.groups)
    if (count, amount) != (len(deposit.groups), found):
        raise ControlTotalError(f"deposit {deposit.ordinal} (line {number}): record says {count} payments of "
                                f"{amount}, the file holds {len(deposit.groups)} of {found}")
    total = totals.setdefault(deposit.currency, [0, 0])
    total[0] += count
    total[1] += amount
    for group in deposit.groups:
        yield _read(group, deposit, paid_on)


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
        payment = _enrich(payment, record)
        if isinstance(record, ExtraReference):
            amount = -record.amount_minor if record.negative else record.amount_minor
            payment = replace(payment, extra_reference_amounts=(*payment.extra_reference_amounts, amount))
    return payment
