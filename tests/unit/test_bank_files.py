"""Bank files: BgMax (our own reader and writer, derived from its declared layout) and Nets
OCR giro (netsgiro), read through read_bank_file with their control totals, golden files
and round trips."""

from __future__ import annotations

import dataclasses
from datetime import date
from itertools import pairwise
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from shared.formats import bgmax, ocr_giro, read_bank_file
from shared.formats.payments import (
    ControlTotalError,
    FormatError,
    IncomingPayment,
    RecordKind,
    UnknownFormat,
    signed,
)

GOLDEN = Path(__file__).resolve().parent.parent / "data" / "bgmax_two_deposits.txt"


def golden_payments() -> list[IncomingPayment]:
    read = read_bank_file(GOLDEN.read_bytes())
    assert all(isinstance(p, IncomingPayment) for p in read.payments)
    return list(read.payments)  # type: ignore[arg-type]


def test_the_hand_checked_bgmax_file_reads_as_worked_out_by_hand() -> None:
    found = [(p.line_id, signed(p), p.reference, p.payment_date) for p in golden_payments()]
    assert found == [
        ("1.1", 129900, "4711000000033", date(2026, 11, 23)),
        ("1.2", -15000, "4711000000041", date(2026, 11, 23)),  # a deduction (TK21)
        ("1.3", 200000, None, date(2026, 11, 23)),
        ("2.1", 9950, "4713000000014", date(2026, 11, 24)),
        ("2.2", 1000, "9999", date(2026, 11, 24)),
    ]
    first, deduction, split, *_ = golden_payments()
    assert deduction.kind is RecordKind.DEDUCTION and deduction.amount_minor == 15000
    assert (first.payer_name, first.payer_organization_number) == ("Åsa Öberg", "5560123456")  # ISO-8859-1
    assert split.extra_references == ("4712000000016", "4712000000024")
    assert split.information == ("Betalning för två fakturor",)


def _golden_lines() -> list[str]:
    return GOLDEN.read_bytes().decode(bgmax.ENCODING).splitlines()


def test_the_bgmax_writer_reproduces_the_golden_file_byte_for_byte() -> None:
    assert bgmax.write(bgmax.parse_record(line) for line in _golden_lines()) == GOLDEN.read_bytes()


def _read(lines: list[str]) -> None:
    read_bank_file("\n".join(lines).encode(bgmax.ENCODING))


def test_a_deposit_whose_amount_does_not_add_up_is_rejected() -> None:
    lines = [line.replace("000000000000314900SEK", "000000000000314901SEK") for line in _golden_lines()]
    with pytest.raises(ControlTotalError, match="deposit 1 "):
        _read(lines)


def test_an_end_record_with_the_wrong_counts_is_rejected() -> None:
    lines = [line.replace("70000000040000000100000002", "70000000050000000100000002")  # 5 payments, not 4
             for line in _golden_lines()]
    with pytest.raises(ControlTotalError, match="end record"):
        _read(lines)


def test_a_file_cut_short_is_rejected() -> None:
    with pytest.raises(FormatError, match="no end record"):
        _read(_golden_lines()[:-1])


def test_an_unknown_record_type_names_its_line() -> None:
    lines = _golden_lines()
    lines.insert(3, "99" + " " * 78)
    with pytest.raises(FormatError, match="line 4"):
        _read(lines)


references = st.text(alphabet="0123456789", min_size=0, max_size=25)
money = st.integers(min_value=1, max_value=10**12)


@settings(max_examples=50)
@given(st.lists(st.lists(st.tuples(references, money, st.booleans()), min_size=1, max_size=6), min_size=1, max_size=4))
def test_any_written_bgmax_file_reads_back_with_its_totals(deposits: list[list[tuple[str, int, bool]]]) -> None:
    records: list[bgmax.Record] = [bgmax.Start("20261123061500000000")]
    serial = 0
    for n, payments in enumerate(deposits, 1):
        records.append(bgmax.Opening("5551234"))
        for ref, amount, deduction in payments:
            serial += 1
            # reference code 2 (OCR, checked by Bankgirot) for a reference, 3 (none) for a blank one
            records.append(bgmax.Payment("9876543", ref, amount, 2 if ref else 3, 1, f"{serial:012d}",
                                         deduction_code=0 if deduction else None))
        total = sum(-a if d else a for _, a, d in payments)
        assume(total >= 0)  # a deposit is never negative; the writer refuses one
        records.append(bgmax.Deposit("123456789012", date(2026, 11, 23), f"{n:05d}", total, len(payments)))
    deductions = sum(d for ps in deposits for _, _, d in ps)
    records.append(bgmax.End(sum(len(ps) for ps in deposits) - deductions, deductions, 0, len(deposits)))
    data = bgmax.write(records)
    read = read_bank_file(data).payments
    assert [signed(p) for p in read] == [-a if d else a for ps in deposits for _, a, d in ps]
    assert [p.reference for p in read] == [r or None for ps in deposits for r, _, _ in ps]  # type: ignore[union-attr]
    assert bgmax.write(bgmax.parse_record(line) for line in data.decode(bgmax.ENCODING).splitlines()) == data


def test_an_ocr_giro_transmission_written_by_netsgiro_reads_back_in_integer_ore() -> None:
    text = ocr_giro.transmission([("000100000000016", 34800), ("000100100000024", 38750)], date(2026, 11, 23))
    read = read_bank_file(text.encode()).payments
    assert [(p.reference, p.amount_minor, p.currency) for p in read] == [  # type: ignore[union-attr]
        ("000100000000016", 34800, "NOK"), ("000100100000024", 38750, "NOK")]
    assert len({p.line_id for p in read}) == 2


def _tamper(text: str, prefix: str, start: int, end: int, delta: int) -> str:
    line = next(li for li in text.splitlines() if li.startswith(prefix))
    value = str(int(line[start:end]) + delta).zfill(end - start)
    return text.replace(line, line[:start] + value + line[end:])


def test_an_ocr_assignment_whose_total_amount_is_wrong_is_rejected_though_netsgiro_accepts_it() -> None:
    text = ocr_giro.transmission([("000100000000016", 34800)], date(2026, 11, 23))
    bad = _tamper(text, "NY090088", 24, 41, 1)
    with pytest.raises(ControlTotalError, match="assignment"):
        read_bank_file(bad.encode())


def test_an_ocr_transmission_whose_transaction_count_is_wrong_is_rejected() -> None:
    text = ocr_giro.transmission([("000100000000016", 34800)], date(2026, 11, 23))
    bad = _tamper(text, "NY000089", 8, 16, 1)
    with pytest.raises(ControlTotalError, match="transmission"):
        read_bank_file(bad.encode())


@settings(max_examples=30)
@given(st.lists(st.tuples(st.text(alphabet="0123456789", min_size=2, max_size=25), st.integers(1, 10**10)),
                min_size=1, max_size=20))
def test_any_ocr_transmission_round_trips_every_ore(paid: list[tuple[str, int]]) -> None:
    read = read_bank_file(ocr_giro.transmission(paid, date(2026, 11, 23)).encode()).payments
    assert [(p.reference, p.amount_minor) for p in read] == paid  # type: ignore[union-attr]


def test_the_format_is_told_by_the_content() -> None:
    assert read_bank_file(GOLDEN.read_bytes()).format == "bgmax"
    ocr = ocr_giro.transmission([("000100000000016", 1)], date(2026, 1, 1)).encode()
    assert read_bank_file(ocr).format == "ocr_giro"
    with pytest.raises(UnknownFormat):
        read_bank_file(b"<?xml version='1.0'?><Document/>")


def test_the_bgmax_writer_refuses_a_negative_amount() -> None:
    with pytest.raises(bgmax.FormatError, match="unsigned"):
        bgmax.format_record(bgmax.Deposit("1", date(2026, 1, 1), "00001", -100, 1))


OCR_GOLDEN = GOLDEN.parent / "ocr_giro_three_payments.txt"


def test_the_ocr_golden_file_reads_as_written_and_netsgiro_still_writes_it_byte_for_byte() -> None:
    text = OCR_GOLDEN.read_text()
    read = read_bank_file(text.encode()).payments
    assert [(p.reference, p.amount_minor, p.payee_account) for p in read] == [  # type: ignore[union-attr]
        ("000100000000016", 34800, "86011117947"), ("000100100000024", 38750, "86011117947"),
        ("0036633", 12345, "86011117947")]  # the last a MOD11 KID from a real Nets file
    paid = [(p.reference or "", p.amount_minor) for p in read]  # type: ignore[union-attr]
    assert ocr_giro.transmission(paid, date(2026, 11, 23), number="1000081", account="86011117947") == text


# ---- the BgMax layout, declared once: the table itself and a round trip through it ---------

def test_every_layout_covers_its_record_and_its_fields_fit_80_characters_without_overlap() -> None:
    for code, layout in bgmax.LAYOUTS.items():
        assert layout.code == code
        attributes = {f.name for f in dataclasses.fields(layout.record)}
        declared = [f.name for f in layout.fields if not f.constant] + [name for name, _ in layout.implied]
        assert sorted(declared) == sorted(attributes), code  # each attribute exactly once
        ends = [(f.position, f.position + f.length - 1) for f in layout.fields]
        assert ends == sorted(ends) and ends[0][0] >= 3 and ends[-1][1] <= bgmax.WIDTH, code
        assert all(a[1] < b[0] for a, b in pairwise(ends)), code


_LATIN1_TEXT = st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f",
                             exclude_categories=["Cc"])


def _value(spec: bgmax.Field) -> st.SearchStrategy[object]:
    """Any value the field can hold, in the form its reader gives it back."""
    kind = spec.kind
    if kind is bgmax.Kind.NUMERIC:
        return st.text("0123456789", min_size=spec.length, max_size=spec.length)
    if kind in (bgmax.Kind.INTEGER, bgmax.Kind.AMOUNT):
        return st.integers(0, 10**spec.length - 1)
    if kind is bgmax.Kind.DATE:
        return st.dates(date(1000, 1, 1))
    if kind is bgmax.Kind.CURRENCY:
        return st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=3, max_size=3)
    if kind is bgmax.Kind.MARKER:
        return st.booleans()
    text = st.text(_LATIN1_TEXT, max_size=spec.length)
    if kind is bgmax.Kind.REFERENCE:
        return text.map(str.strip)
    return text.map(str.rstrip)


@st.composite
def records(draw: st.DrawFn) -> bgmax.Record:
    layout = draw(st.sampled_from(list(bgmax.LAYOUTS.values())))
    values = {f.name: draw(_value(f)) for f in layout.fields if not f.constant}
    record: bgmax.Record = layout.record(**values, **dict(layout.implied))
    return record


@settings(max_examples=400)
@given(records())
def test_every_record_type_reads_back_as_written_through_its_declared_layout(record: bgmax.Record) -> None:
    line = bgmax.format_record(record)
    assert len(line) == bgmax.WIDTH and line.encode(bgmax.ENCODING)
    assert bgmax.parse_record(line) == record
    assert bgmax.format_record(bgmax.parse_record(line)) == line


def test_a_record_whose_field_is_not_of_its_kind_is_refused_by_the_record_api() -> None:
    line = bgmax.format_record(bgmax.Payment("9876543", "4711000000033", 10000, 2, 1, ""))
    with pytest.raises(FormatError, match="amount_minor"):
        bgmax.parse_record(line[:40] + "x" + line[41:])
    with pytest.raises(FormatError, match="unknown record type"):
        bgmax.parse_record("99" + line[2:])
