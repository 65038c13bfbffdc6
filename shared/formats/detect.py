"""Which bank file format a file is, from its content (never from its name)."""

from __future__ import annotations

from enum import StrEnum

from .payments import UnknownFormat


class BankFileFormat(StrEnum):
    OCR_GIRO = "ocr_giro"  # Nets (also carries AvtaleGiro agreements)
    BGMAX = "bgmax"  # Bankgirot


def detect(head: bytes) -> BankFileFormat:
    """The format of a file from its first bytes (the first record is enough)."""
    start = head.lstrip(b"\xef\xbb\xbf")[:80]
    if start.startswith(b"NY000010"):
        return BankFileFormat.OCR_GIRO
    if start.startswith(b"01BGMAX"):
        return BankFileFormat.BGMAX
    raise UnknownFormat(f"not a Nets OCR giro or BgMax file (starts {start[:16]!r})")
