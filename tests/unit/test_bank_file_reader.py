"""read_bank_file: every money record of a bank file accounted for, exactly once.

Real files nobody on the project wrote (tests/data/real, see its README) must add up to
their own control totals; reversals and deductions have their own kind; records that
cannot be read with certainty are set aside with their raw lines; files that are not
incoming payment files are refused; every KID a scheme issues reads back from every
format we import.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from pathlib import Path

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st
from netsgiro import records as nr

from shared.domain.kid import KidRef, KidScheme
from shared.formats import bgmax, ocr_giro, read_bank_file
from shared.formats.payments import (
    BankFile,
    ControlTotalError,
    FormatError,
    IncomingPayment,
    NotIncomingPayments,
    RecordKind,
    UnknownFormat,
    UnreadableRecord,
)

DATA = Path(__file__).resolve().parent.parent / "data"
REAL = DATA / "real"


def adds_up(read: BankFile) -> None:
    """The invariant payments_in checks: per currency, records and net amount equal the file's totals."""
    count: dict[str, int] = defaultdict(int)
    net: dict[str, int] = defaultdict(int)
    for record in read.payments:
        assert record.amount_minor is not None and record.amount_minor >= 0
        assert record.currency is not None
        count[record.currency] += 1
        net[record.currency] += record.amount_minor if record.kind is RecordKind.PAYMENT else -record.amount_minor
    assert {t.currency: (t.records, t.amount_minor) for t in read.totals} == {c: (count[c], net[c]) for c in count}
    assert len({r.line_id for r in read.payments}) == len(read.payments)


def real(name: str) -> BankFile:
    read = read_bank_file((REAL / name).read_bytes())
    adds_up(read)
    return read


def test_bankgirots_example_file_reads_every_payment_though_serials_repeat() -> None:
    read = real("bgmax_bankgirot_example_fabhed.txt")  # ISO-8859-1, CRLF, as Bankgirot publishes it
    assert read.identity == "bgmax:9912346:20040525173035010331"
    assert [(r.line_id, r.amount_minor, r.kind) for r in read.payments] == [
        ("1.1", 100000, RecordKind.PAYMENT), ("1.2", 50000, RecordKind.DEDUCTION), ("1.3", 140000, RecordKind.PAYMENT),
        ("2.1", 110000, RecordKind.PAYMENT), ("2.2", 120000, RecordKind.PAYMENT), ("2.3", 70000, RecordKind.PAYMENT),
        ("2.4", 500000, RecordKind.PAYMENT)]
    serials = [r.raw.splitlines()[0][57:69] for r in read.payments[3:]]
    assert serials[2] == serials[3]  # two payments of one deposit share BGC serial 000000000016: both are here
    assert [t.amount_minor for t in read.totals] == [190000 + 800000]


def test_an_extra_reference_damaged_by_a_tab_sets_its_payment_aside_with_the_raw_lines() -> None:
    damaged = real("bgmax_bankgirot_example_fabhed.txt").payments[2]
    assert isinstance(damaged, UnreadableRecord)
    assert (damaged.amount_minor, damaged.currency, damaged.payee_account) == (140000, "SEK", "9912346")
    assert "\t" in damaged.raw and "657866" in damaged.raw and "control characters" in damaged.reason


def test_a_file_of_two_currencies_has_a_total_per_currency() -> None:
    read = real("bgmax_bankgirot_example_three_deposits_rickardlindgren.txt")
    assert {t.currency: t.amount_minor for t in read.totals} == {"SEK": 990000, "EUR": 400000}
    split = read.payments[7]
    assert isinstance(split, IncomingPayment)
    assert (split.currency, split.extra_references) == ("EUR", ("801266", "801365", "801464"))


def test_blank_serials_lose_no_payment() -> None:
    read = real("bgmax_blank_serials_pybgmax.txt")
    assert [r.amount_minor for r in read.payments] == [10000, 20000, 30000, 10000]
    assert all(r.raw.splitlines()[0].ljust(80)[57:69].strip() == "" for r in read.payments)


def test_netsgiros_ocr_giro_example_adds_up_to_its_end_records() -> None:
    read = real("ocr_giro_transactions_netsgiro.txt")
    assert (read.identity, len(read.payments), read.totals[0].amount_minor) == ("nets:00008080:0170031", 20, 5144900)
    assert read.payments[0].information == ("Foo bar baz",)  # type: ignore[union-attr]


def test_an_agreements_only_transmission_is_valid_and_carries_its_mandates() -> None:
    read = real("avtalegiro_agreements_netsgiro.txt")
    assert (read.payments, read.totals, len(read.mandates)) == ((), (), 16)
    assert read.mandates[0].kid == "000112000507155" and read.mandates[0].registration == "new_or_updated"


def test_an_avtalegiro_claim_file_is_not_an_incoming_payment_file() -> None:
    with pytest.raises(NotIncomingPayments, match=r"not an incoming payment file: .*claim"):
        read_bank_file((REAL / "avtalegiro_claims_netsgiro.txt").read_bytes())


def _transmission_end(records: int, on: date) -> str:
    """A Nets transmission end record of no transactions, written by netsgiro."""
    return str(nr.TransmissionEnd(service_code=0, num_transactions=0, num_records=records, total_amount=0,
                                  nets_date=on).to_ocr())


def test_a_transmission_without_assignments_is_not_an_incoming_payment_file() -> None:
    text = ocr_giro.transmission([("12345", 100)], date(2026, 1, 1)).splitlines()
    empty = [text[0], _transmission_end(records=2, on=date(2026, 1, 1))]
    with pytest.raises(NotIncomingPayments, match="no OCR giro"):
        read_bank_file("\n".join(empty).encode())


def test_reversals_are_their_own_kind_with_a_positive_amount_and_nets_gross_total() -> None:
    text = ocr_giro.transmission([("12345", 100), ("12345", 200), ("55", 5000)], date(2026, 1, 1),
                                 types=[18, 20, 10])
    read = read_bank_file(text.encode())
    adds_up(read)
    assert [(r.kind, r.amount_minor) for r in read.payments] == [
        (RecordKind.REVERSAL, 100), (RecordKind.REVERSAL, 200), (RecordKind.PAYMENT, 5000)]
    (total,) = read.totals
    assert (total.stated_amount_minor, total.amount_minor) == (5300, 4700)  # Nets adds reversals into its sum


def test_a_minus_sign_on_a_payment_is_not_guessed() -> None:
    lines = ocr_giro.transmission([("12345", 100)], date(2026, 1, 1), types=[10]).splitlines()
    lines[2] = lines[2][:31] + "-" + lines[2][32:]
    (record,) = read_bank_file("\n".join(lines).encode()).payments
    assert isinstance(record, UnreadableRecord) and "negative sign" in record.reason


def _bgmax(*payments: bgmax.Record, currency: str = "SEK", total: int, count: int, extra: int = 0,
           deductions: int = 0) -> bytes:
    return bgmax.write([bgmax.Start("20260110061500000000"), bgmax.Opening("5551234", currency), *payments,
                        bgmax.Deposit("1234567890", date(2026, 1, 10), "00001", total, count, currency),
                        bgmax.End(count - deductions, deductions, extra, 1)])


def test_a_deduction_is_its_own_kind_with_a_positive_amount() -> None:
    data = _bgmax(bgmax.Payment("9876543", "4711000000033", 10000, 2, 1, "000000000001"),
                  bgmax.Payment("9876543", "4711000000041", 2500, 2, 1, "000000000001", deduction_code=0),
                  total=7500, count=2, deductions=1)
    read = read_bank_file(data)
    adds_up(read)
    assert [(r.kind, r.amount_minor) for r in read.payments] == [(RecordKind.PAYMENT, 10000),
                                                                 (RecordKind.DEDUCTION, 2500)]


def test_a_negative_extra_reference_is_a_signed_part_of_its_payment_not_money_of_its_own() -> None:
    data = _bgmax(bgmax.Payment("9876543", "", 8000, 3, 1, ""),
                  bgmax.ExtraReference("9876543", "4711000000033", 10000, 2, 1, ""),
                  bgmax.ExtraReference("9876543", "4711000000041", 2000, 2, 1, "", negative=True),
                  total=8000, count=1, extra=2)
    (payment,) = read_bank_file(data).payments
    assert isinstance(payment, IncomingPayment)
    assert payment.extra_references == ("4711000000033", "4711000000041")
    assert payment.extra_reference_amounts == (10000, -2000)


@pytest.mark.parametrize(("damage", "expected"), [
    (lambda t: t.replace("4711000000033", "47110\t0000033"), "control characters"),
    (lambda t: t.replace("4711000000033", "4711O00000033"), "not digits"),  # a letter O in a checked OCR reference
    (lambda t: t.replace("210000000000010" + " " * 10, "210000000000010" + " " * 10 + "99"), "characters, not 80"),
])
def test_a_payment_that_cannot_be_read_with_certainty_is_set_aside(damage: object, expected: str) -> None:
    data = _bgmax(bgmax.Payment("9876543", "4711000000033", 10000, 2, 1, "000000000001"), total=10000, count=1)
    text = damage(data.decode("latin-1"))  # type: ignore[operator]
    (record,) = read_bank_file(text.encode("latin-1")).payments
    assert isinstance(record, UnreadableRecord) and expected in record.reason
    assert record.amount_minor == 10000 and record.raw.startswith("20")


@pytest.mark.parametrize(("damage", "error"), [
    (lambda t: t[: len(t) // 2], FormatError),  # cut mid-record
    (lambda t: t.splitlines()[0] + "\n" + "\x00\x01\x02binary" * 20, FormatError),
    (lambda t: "\n".join(t.splitlines()[:-1]), FormatError),  # no end record
    (lambda t: t + "trailing\n", FormatError),
    (lambda t: t.replace("000000000000010000", "0000000000000100x0", 1), FormatError),  # amount not digits
    (lambda t: t.replace("000000000000010000SEK", "000000000000010001SEK"), ControlTotalError),
    (lambda t: "<?xml version='1.0'?>", UnknownFormat),
    (lambda t: "", UnknownFormat),
])
def test_a_file_whose_structure_is_broken_is_rejected_whole(damage: object, error: type[Exception]) -> None:
    data = _bgmax(bgmax.Payment("9876543", "4711000000033", 10000, 2, 1, "000000000001"), total=10000, count=1)
    with pytest.raises(error):
        read_bank_file(damage(data.decode("latin-1")).encode("latin-1"))  # type: ignore[operator]


def test_identity_and_digest_do_not_change_with_encoding_or_line_endings() -> None:
    data = (REAL / "bgmax_bankgirot_example_fabhed.txt").read_bytes()
    text = data.decode("iso-8859-1")
    variants = [text.encode("utf-8"), b"\xef\xbb\xbf" + text.replace("\r\n", "\n").encode("utf-8"),
                text.replace("\r\n", "\r").encode("iso-8859-1"), (text + "\r\n\r\n").encode("iso-8859-1")]
    first = read_bank_file(data)
    assert all(read_bank_file(v) == first for v in variants)


# ---- every KID we issue reads back from every format we import -----------------------------

@st.composite
def schemes(draw: st.DrawFn) -> KidScheme:
    modulus, allow_dash = draw(st.sampled_from([("MOD10", False), ("MOD11", False), ("MOD11", True)]))
    length = draw(st.integers(4, 25))
    prefix = draw(st.text("0123456789", max_size=min(3, length - 3)))
    subscriber_digits = draw(st.integers(1, length - len(prefix) - 2))
    return KidScheme(length, modulus, prefix, subscriber_digits, allow_dash)  # type: ignore[arg-type]


def _kid_read_back(data: bytes) -> str:
    (record,) = read_bank_file(data).payments
    assert isinstance(record, IncomingPayment), record
    return record.reference or ""


@settings(max_examples=120, deadline=None)
@given(schemes(), st.integers(1, 10**24), st.integers(1, 10**24))
@example(KidScheme(15, "MOD11", "", 7, allow_dash=True), 1, 3)  # 00000010000000- : check value 10
def test_every_issued_kid_reads_back_from_ocr_giro_and_bgmax(scheme: KidScheme, subscriber: int, demand: int) -> None:
    subscriber %= 10**scheme.subscriber_digits
    demand %= 10**scheme.demand_digits
    assume(subscriber > 0 and demand > 0 and scheme.usable(subscriber, demand))
    kid = scheme.encode(subscriber, demand)
    ocr = ocr_giro.transmission([(kid, 34800)], date(2026, 1, 10)).encode()
    # Bankgirot checks OCR references with MOD10 (reference code 2); any other KID arrives as
    # a reference it has not checked (code 4), which the reader keeps as written.
    code = 2 if kid.isdigit() else 4
    bg = _bgmax(bgmax.Payment("9876543", kid, 34800, code, 1, "000000000001"), total=34800, count=1)
    for data in (ocr, bg):
        assert scheme.decode(_kid_read_back(data)) == KidRef(subscriber, demand)
    mandates = read_bank_file(ocr_giro.agreements_transmission([(kid, "new_or_updated", True)],
                                                                 date(2026, 1, 10)).encode()).mandates
    assert scheme.decode(mandates[0].kid) == KidRef(subscriber, demand)


def test_an_empty_assignment_adds_no_total_and_the_record_api_keeps_its_format_error() -> None:
    head = ocr_giro.transmission([("12345", 1)], date(2026, 1, 1)).splitlines()[:2]
    day = date(2026, 1, 1)
    lines = [*head, nr.AssignmentEnd(service_code=9, assignment_type=0, num_transactions=0, num_records=2,
                                     total_amount=0, nets_date_1=day, nets_date_2=day, nets_date_3=day).to_ocr(),
             _transmission_end(records=4, on=day)]
    assert read_bank_file("\n".join(lines).encode()).totals == ()
    assert bgmax.FormatError is FormatError


def _ocr() -> str:
    return ocr_giro.transmission([("000100000000016", 34800), ("12345", 100)], date(2026, 1, 10), types=[10, 10])


@pytest.mark.parametrize(("damage", "error"), [
    (lambda t: t[: len(t) // 2], FormatError),  # cut mid-record
    (lambda t: t.splitlines()[0] + "\n" + "\x00\xff binary" * 20, FormatError),
    (lambda t: "\n".join(t.splitlines()[:-1]), FormatError),  # no transmission end
    (lambda t: t + "\nNY000089" + "0" * 72, FormatError),  # data after the end
    (lambda t: t.replace("000000000000034800", "0000000000000348O0"), FormatError),  # amount not digits
    (lambda t: t.replace("NY0910", "NY0410", 1), FormatError),  # not an OCR giro transaction
    (lambda t: t.replace("NY090020", "NY040020"), NotIncomingPayments),  # another Nets service
    (lambda t: t.replace("000000000000034800", "000000000000034801"), ControlTotalError),
])
def test_an_ocr_file_whose_structure_is_broken_is_rejected_whole(damage: object, error: type[Exception]) -> None:
    with pytest.raises(error):
        read_bank_file(damage(_ocr()).encode("latin-1"))  # type: ignore[operator]


@pytest.mark.parametrize(("damage", "expected"), [
    (lambda t: t.replace("000100000000016", "0001000\t0000016"), "control characters"),
    (lambda t: t.replace("000100000000016", "0001000000000\u0661\u0666"), "ASCII"),  # Arabic-Indic digits
    (lambda t: t.replace("000100000000016", "00010000 000016"), "KID field"),
    (lambda t: t.replace("000100000000016000000", "000100000000016000000 x"), "characters, not 80"),
    (lambda t: t.replace("0000001100126", "0000001320126", 1), "amount item 1 is not laid out"),  # 32 January
])
def test_an_ocr_transaction_that_cannot_be_read_with_certainty_is_set_aside(damage: object, expected: str) -> None:
    first, second = read_bank_file(damage(_ocr()).encode("utf-8")).payments  # type: ignore[operator]
    assert isinstance(first, UnreadableRecord) and expected in first.reason, first
    assert (first.amount_minor, first.line_id, first.currency) == (34800, "1.1", "NOK")
    assert isinstance(second, IncomingPayment) and second.reference == "12345"


# ---- any file a bank could send reads back exactly --------------------------------------

serials = st.sampled_from(["", "000000000001", "000000000002"])  # blank and repeated, as real files have them
bg_payments = st.lists(st.tuples(st.text("0123456789", min_size=1, max_size=25), st.integers(1, 10**9),
                                 st.booleans(), serials), min_size=1, max_size=5)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["SEK", "EUR"]), bg_payments), min_size=1, max_size=3))
def test_any_bgmax_file_reads_back_every_payment_in_order_with_totals_per_currency(
        deposits: list[tuple[str, list[tuple[str, int, bool, str]]]]) -> None:
    records: list[bgmax.Record] = [bgmax.Start("20260110061500000000")]
    for n, (currency, paid) in enumerate(deposits, 1):
        total = sum(-a if d else a for _, a, d, _ in paid)
        assume(total >= 0)
        records += [bgmax.Opening("5551234", currency),
                    *(bgmax.Payment("9876543", ref, a, 2, 1, s, deduction_code=0 if d else None)
                      for ref, a, d, s in paid),
                    bgmax.Deposit("1234567890", date(2026, 1, 10), f"{n:05d}", total, len(paid), currency)]
    deductions = sum(d for _, paid in deposits for _, _, d, _ in paid)
    records.append(bgmax.End(sum(len(p) for _, p in deposits) - deductions, deductions, 0, len(deposits)))
    read = read_bank_file(bgmax.write(records))
    adds_up(read)
    assert [(r.line_id, r.reference, r.amount_minor, r.kind, r.currency) for r in read.payments] == [  # type: ignore[union-attr]
        (f"{n}.{i}", ref, a, RecordKind.DEDUCTION if d else RecordKind.PAYMENT, currency)
        for n, (currency, paid) in enumerate(deposits, 1) for i, (ref, a, d, _) in enumerate(paid, 1)]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.text("0123456789", min_size=1, max_size=25), st.integers(0, 10**12),
                          st.sampled_from([10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21])), min_size=1, max_size=12))
def test_any_ocr_giro_transmission_reads_back_every_transaction_with_its_kind(
        paid: list[tuple[str, int, int]]) -> None:
    text = ocr_giro.transmission([(k, a) for k, a, _ in paid], date(2026, 1, 10), types=[t for _, _, t in paid])
    read = read_bank_file(text.encode())
    adds_up(read)
    assert [(r.reference, r.amount_minor, r.kind) for r in read.payments] == [  # type: ignore[union-attr]
        (k, a, RecordKind.REVERSAL if t in (18, 20) else RecordKind.PAYMENT) for k, a, t in paid]


def test_a_bankgirot_autogiro_file_is_not_an_incoming_payment_file() -> None:
    opening = "01" + "20260110" + "AUTOGIRO".ljust(44) + "123456" + "0005551234"
    with pytest.raises(NotIncomingPayments, match="Autogiro"):
        read_bank_file(opening.ljust(80).encode())


def mixed_transmission() -> str:
    """One Nets transmission with an OCR giro assignment and an AvtaleGiro agreements assignment."""
    payments = ocr_giro.transmission([("000100000000016", 34800), ("00000010000000-", 100)], date(2026, 1, 10),
                                     types=[10, 18]).splitlines()
    agreements = ocr_giro.agreements_transmission([("000100000000016", "new_or_updated", True)],
                                                  date(2026, 1, 10)).splitlines()
    body = payments[:-1] + agreements[1:-1]
    end = nr.TransmissionEnd(service_code=0, num_transactions=3, num_records=len(body) + 1, total_amount=34900,
                             nets_date=date(2026, 1, 10))
    return "\n".join([*body, end.to_ocr()]) + "\n"


def test_a_transmission_of_payments_and_agreements_carries_both_with_their_positions() -> None:
    read = read_bank_file(mixed_transmission().encode())
    adds_up(read)
    assert [(r.line_id, r.kind, r.amount_minor) for r in read.payments] == [
        ("1.1", RecordKind.PAYMENT, 34800), ("1.2", RecordKind.REVERSAL, 100)]
    assert [(m.line_id, m.kid) for m in read.mandates] == [("2.1", "000100000000016")]
    assert read.totals[0].stated_amount_minor == 34900 and read.totals[0].amount_minor == 34700


def test_a_bgmax_file_for_two_bankgiro_numbers_names_both_in_its_identity() -> None:
    data = bgmax.write([bgmax.Start("20260110061500000000"), bgmax.Opening("5551234"),
                        bgmax.Payment("9876543", "4711000000033", 100, 2, 1, ""),
                        bgmax.Deposit("1", date(2026, 1, 10), "00001", 100, 1), bgmax.Opening("7771234"),
                        bgmax.Payment("9876543", "4711000000033", 100, 2, 1, ""),
                        bgmax.Deposit("1", date(2026, 1, 10), "00002", 100, 1), bgmax.End(2, 0, 0, 2)])
    read = read_bank_file(data)
    assert read.identity == "bgmax:5551234+7771234:20260110061500000000"
    assert [r.payee_account for r in read.payments] == ["5551234", "7771234"]  # type: ignore[union-attr]
