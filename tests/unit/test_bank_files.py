"""Bank files: BgMax (our own reader and writer) and Nets OCR giro (netsgiro), with
their control totals, golden files and round trips."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from shared.formats import bgmax, ocr_giro
from shared.formats.detect import BankFileFormat, detect
from shared.formats.payments import ControlTotalError, UnknownFormat

GOLDEN = Path(__file__).resolve().parent.parent / "data" / "bgmax_two_deposits.txt"


def golden_payments() -> list:  # type: ignore[type-arg]
    return list(bgmax.payments(bgmax.decode_lines([GOLDEN.read_bytes()])))


def test_the_hand_checked_bgmax_file_reads_as_worked_out_by_hand() -> None:
    found = [(p.line_id, p.amount_minor, p.reference, p.payment_date) for p in golden_payments()]
    assert found == [
        ("00001.000000000101", 129900, "4711000000033", date(2026, 11, 23)),
        ("00001.000000000102", -15000, "4711000000041", date(2026, 11, 23)),  # a deduction (TK21)
        ("00001.000000000103", 200000, None, date(2026, 11, 23)),
        ("00002.000000000201", 9950, "4713000000014", date(2026, 11, 24)),
        ("00002.000000000202", 1000, "9999", date(2026, 11, 24)),
    ]
    first, _, split, *_ = golden_payments()
    assert (first.payer_name, first.payer_organization_number) == ("Åsa Öberg", "5560123456")  # ISO-8859-1
    assert split.extra_references == ("4712000000016", "4712000000024")
    assert split.information == ("Betalning för två fakturor",)


def test_the_bgmax_writer_reproduces_the_golden_file_byte_for_byte() -> None:
    data = GOLDEN.read_bytes()
    assert bgmax.write(bgmax.records(bgmax.decode_lines([data]))) == data


def test_a_file_streamed_in_small_chunks_reads_the_same() -> None:
    data = GOLDEN.read_bytes()
    chunks = [data[i : i + 7] for i in range(0, len(data), 7)]
    assert list(bgmax.payments(bgmax.decode_lines(chunks))) == golden_payments()


def test_a_deposit_whose_amount_does_not_add_up_is_rejected() -> None:
    text = GOLDEN.read_bytes().decode(bgmax.ENCODING).replace("000000000000314900SEK", "000000000000314901SEK")
    with pytest.raises(ControlTotalError, match="deposit 00001"):
        list(bgmax.payments(text.splitlines()))


def test_an_end_record_with_the_wrong_counts_is_rejected() -> None:
    text = GOLDEN.read_bytes().decode(bgmax.ENCODING)
    text = text.replace("70000000040000000100000002", "70000000050000000100000002")  # 5 payments, not 4
    with pytest.raises(ControlTotalError, match="end record"):
        list(bgmax.payments(text.splitlines()))


def test_a_file_cut_short_is_rejected() -> None:
    lines = GOLDEN.read_bytes().decode(bgmax.ENCODING).splitlines()[:-1]
    with pytest.raises(ControlTotalError, match="no end record"):
        list(bgmax.payments(lines))


def test_an_unknown_record_type_names_its_line() -> None:
    lines = GOLDEN.read_bytes().decode(bgmax.ENCODING).splitlines()
    lines.insert(3, "99" + " " * 78)
    with pytest.raises(bgmax.FormatError, match="line 4"):
        list(bgmax.payments(lines))


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
            records.append(bgmax.Payment("9876543", ref, amount, 2, 1, f"{serial:012d}",
                                         deduction_code=0 if deduction else None))
        total = sum(-a if d else a for _, a, d in payments)
        assume(total >= 0)  # a deposit is never negative; the writer refuses one
        records.append(bgmax.Deposit("123456789012", date(2026, 11, 23), f"{n:05d}", total, len(payments)))
    deductions = sum(d for ps in deposits for _, _, d in ps)
    records.append(bgmax.End(sum(len(ps) for ps in deposits) - deductions, deductions, 0, len(deposits)))
    data = bgmax.write(records)
    read = list(bgmax.payments(bgmax.decode_lines([data])))
    assert [p.amount_minor for p in read] == [-a if d else a for ps in deposits for _, a, d in ps]
    assert [p.reference for p in read] == [r or None for ps in deposits for r, _, _ in ps]
    assert bgmax.write(bgmax.records(bgmax.decode_lines([data]))) == data


def test_an_ocr_giro_transmission_written_by_netsgiro_reads_back_in_integer_ore() -> None:
    text = ocr_giro.transmission([("000100000000016", 34800), ("000100100000024", 38750)], date(2026, 11, 23))
    read = list(ocr_giro.payments(text))
    assert [(p.reference, p.amount_minor, p.currency) for p in read] == [
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
        list(ocr_giro.payments(bad))


def test_an_ocr_transmission_whose_transaction_count_is_wrong_is_rejected() -> None:
    text = ocr_giro.transmission([("000100000000016", 34800)], date(2026, 11, 23))
    bad = _tamper(text, "NY000089", 8, 16, 1)
    with pytest.raises(ControlTotalError, match="transmission"):
        list(ocr_giro.payments(bad))


@settings(max_examples=30)
@given(st.lists(st.tuples(st.text(alphabet="0123456789", min_size=2, max_size=25), st.integers(1, 10**10)),
                min_size=1, max_size=20))
def test_any_ocr_transmission_round_trips_every_ore(paid: list[tuple[str, int]]) -> None:
    read = list(ocr_giro.payments(ocr_giro.transmission(paid, date(2026, 11, 23))))
    assert [(p.reference, p.amount_minor) for p in read] == paid


def test_the_format_is_told_by_the_content() -> None:
    assert detect(GOLDEN.read_bytes()) is BankFileFormat.BGMAX
    assert detect(ocr_giro.transmission([("000100000000016", 1)], date(2026, 1, 1)).encode()) is BankFileFormat.OCR_GIRO
    with pytest.raises(UnknownFormat):
        detect(b"<?xml version='1.0'?><Document/>")


def test_the_bgmax_writer_refuses_a_negative_amount() -> None:
    with pytest.raises(bgmax.FormatError, match="unsigned"):
        bgmax.format_record(bgmax.Deposit("1", date(2026, 1, 1), "00001", -100, 1))


OCR_GOLDEN = GOLDEN.parent / "ocr_giro_three_payments.txt"


def test_the_ocr_golden_file_reads_as_written_and_netsgiro_still_writes_it_byte_for_byte() -> None:
    text = OCR_GOLDEN.read_text()
    read = list(ocr_giro.payments(text))
    assert [(p.reference, p.amount_minor, p.payee_account) for p in read] == [
        ("000100000000016", 34800, "86011117947"), ("000100100000024", 38750, "86011117947"),
        ("0036633", 12345, "86011117947")]  # the last a MOD11 KID from a real Nets file
    paid = [(p.reference or "", p.amount_minor) for p in read]
    assert ocr_giro.transmission(paid, date(2026, 11, 23), number="1000081", account="86011117947") == text
