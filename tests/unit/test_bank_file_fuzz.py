"""Fuzzing the bank file readers: mutate valid OCR giro and BgMax files (real ones and
written ones) and hold read_bank_file to its contract.

The only outcomes allowed: a BankFileError subclass (a clean rejection), or a BankFile
whose records add up to its own totals, per currency, in count and net amount, each
record once. Re-encoding and other line endings change nothing (identity, digest,
records); blank or repeated bank serials lose no payment.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from shared.formats import bgmax, ocr_giro, read_bank_file
from shared.formats.payments import BankFile, BankFileError
from shared.formats.read import decode

from .test_bank_file_reader import adds_up, mixed_transmission

DATA = Path(__file__).resolve().parent.parent / "data"


def _written_ocr() -> bytes:
    paid = [("000100000000016", 34800), ("00000010000000-", 12500), ("12345", 100), ("9", 777), ("0036633", 5)]
    return ocr_giro.transmission(paid, date(2026, 1, 10), types=[21, 10, 18, 20, 15]).encode("iso-8859-1")


def _written_bgmax() -> bytes:
    return bgmax.write([
        bgmax.Start("20260110061500000000"), bgmax.Opening("5551234"),
        bgmax.Payment("9876543", "4711000000033", 10000, 2, 1, "000000000001"), bgmax.Name("Åsa Öberg"),
        bgmax.Payment("9876543", "4711000000041", 2500, 2, 1, "000000000001", deduction_code=0),
        bgmax.Payment("9876543", "", 8000, 3, 1, ""),
        bgmax.ExtraReference("9876543", "4711000000058", 10000, 2, 1, ""),
        bgmax.ExtraReference("9876543", "4711000000066", 2000, 2, 1, "", negative=True),
        bgmax.Information("Två fakturor"),
        bgmax.Deposit("1234567890", date(2026, 1, 10), "00001", 15500, 3),
        bgmax.Opening("5551234", "EUR"), bgmax.Payment("9876543", "4711000000074", 990, 2, 1, ""),
        bgmax.Deposit("1234567890", date(2026, 1, 10), "00002", 990, 1, "EUR"),
        bgmax.End(3, 1, 2, 2)])


BASES = [_written_ocr(), _written_bgmax(), mixed_transmission().encode(),
         (DATA / "bgmax_two_deposits.txt").read_bytes(), (DATA / "ocr_giro_three_payments.txt").read_bytes(),
         *(p.read_bytes() for p in sorted((DATA / "real").glob("*.txt")) if "claims" not in p.name)]


def _lines(data: bytes) -> list[bytes]:
    return data.replace(b"\r\n", b"\n").split(b"\n")


@st.composite
def mutations(draw: st.DrawFn, data: bytes) -> bytes:
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["cut", "dup", "drop", "swap", "flip", "tail", "serial", "tab", "digit", "char"]))
        lines = _lines(data)
        i, j = draw(st.integers(0, len(lines) - 1)), draw(st.integers(0, len(lines) - 1))
        if op == "cut":
            data = data[: draw(st.integers(0, len(data)))]
        elif op == "dup":
            data = b"\n".join([*lines[: i + 1], lines[i], *lines[i + 1 :]])
        elif op == "drop":
            data = b"\n".join(lines[:i] + lines[i + 1 :])
        elif op == "swap":
            lines[i], lines[j] = lines[j], lines[i]
            data = b"\n".join(lines)
        elif op == "flip" and data:
            at = draw(st.integers(0, len(data) - 1))
            data = data[:at] + bytes([draw(st.integers(0, 255))]) + data[at + 1 :]
        elif op == "tail":
            data += draw(st.binary(min_size=1, max_size=64))
        elif op == "serial":
            data = _serials(data, draw(st.sampled_from([b" " * 12, b"000000000007"])))
        elif op == "char" and data:  # any character, UTF-8 encoded: other scripts' digits, controls, BOMs
            at = draw(st.integers(0, len(data) - 1))
            data = data[:at] + draw(st.characters(codec="utf-8")).encode() + data[at + 1 :]
        elif op in ("tab", "digit") and data:
            at = draw(st.integers(0, len(data) - 1))
            data = data[:at] + (b"\t" if op == "tab" else str(draw(st.integers(0, 9))).encode()) + data[at + 1 :]
    return data


def _serials(data: bytes, serial: bytes) -> bytes:
    """Every BgMax payment record's BGC serial number set to one value (blank or repeated)."""
    lines = _lines(data)
    return b"\n".join(li[:57] + serial + li[69:] if li[:2] in (b"20", b"21", b"22", b"23") and len(li) >= 69 else li
                      for li in lines)


def _read_or_reject(data: bytes) -> BankFile | None:
    try:
        read = read_bank_file(data)
    except BankFileError:
        return None
    adds_up(read)
    return read


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(BASES).flatmap(mutations))
def test_a_mutated_file_is_rejected_cleanly_or_adds_up_to_its_own_totals(data: bytes) -> None:
    _read_or_reject(data)


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(BASES).flatmap(mutations), st.sampled_from(["utf-8", "utf-8-sig", "iso-8859-1"]),
       st.sampled_from(["\n", "\r\n", "\r"]), st.integers(0, 2))
def test_encoding_and_line_endings_change_nothing(data: bytes, encoding: str, newline: str, blank: int) -> None:
    text = decode(data)
    try:
        again = (text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", newline) + newline * blank).encode(
            encoding)
    except UnicodeEncodeError:
        assume(False)
        return
    first = _read_or_reject(data)
    second = _read_or_reject(again)
    assert first == second  # the same BankFile (identity, digest, every record) or both rejected
    if first is None:
        try:
            read_bank_file(data)
        except BankFileError as one:
            try:
                read_bank_file(again)
            except BankFileError as other:
                assert type(one) is type(other)


@settings(max_examples=60, deadline=None)
@given(st.sampled_from([b for b in BASES if b.startswith(b"01BGMAX")]), st.sampled_from([b" " * 12, b"000000000001"]))
def test_blank_or_repeated_serials_lose_no_payment(data: bytes, serial: bytes) -> None:
    original, changed = read_bank_file(data), read_bank_file(_serials(data, serial))
    assert [(r.line_id, r.amount_minor, r.kind, type(r)) for r in changed.payments] == [
        (r.line_id, r.amount_minor, r.kind, type(r)) for r in original.payments]
    assert changed.identity == original.identity and changed.totals == original.totals
