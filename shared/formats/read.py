"""Read any incoming bank file from its bytes: ``read_bank_file(data) -> BankFile``.

The one entry point for bank files from outside (SFTP drops, uploads). Every failure is
a ``BankFileError`` subclass with a message for people: ``UnknownFormat``,
``NotIncomingPayments``, ``FormatError`` (broken structure), ``ControlTotalError``
(the file's own totals disagree with its records). No other exception type escapes,
whatever the bytes (``tests/unit/test_bank_file_fuzz.py`` proves it).

Decoding and normalising, before anything is read:

| step | rule |
|---|---|
| byte order mark | a leading UTF-8 BOM (``EF BB BF``) is dropped |
| encoding | strict UTF-8 if the bytes are valid UTF-8, else ISO-8859-1 (the banks' own encoding; every byte decodes) |
| line endings | CRLF and lone CR become LF |
| trailing spaces | dropped from every line (BgMax readers pad records back to 80) |
| trailing blank lines | dropped |

The readers work on these normalised lines, and ``BankFile.content_digest`` is the
SHA-256 (hex) of the non-blank ones joined with LF (no final LF), encoded as UTF-8, so the same
transmission re-encoded (ISO-8859-1 <-> UTF-8) or with other line endings has the same
digest and reads the same. A file in
ISO-8859-1 whose non-ASCII bytes happen to form valid UTF-8 (e.g. ``Ã¥``) would be read
as UTF-8; no bank text we know of does that, and the fields we book on are ASCII digits.

``BankFile.identity`` comes from the records, as the sender guarantees it (Nets: data
transmitter and transmission number of the start record; BgMax: payee bankgiro and the
creation timestamp of TK01), so it does not change with encoding or line endings.
"""

from __future__ import annotations

from . import bgmax, ocr_giro
from .payments import BankFile, NotIncomingPayments, UnknownFormat, digest

BOM = "\ufeff"


def decode(data: bytes) -> str:
    """The text of a bank file: strict UTF-8 when valid, else ISO-8859-1; without a BOM."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("iso-8859-1")
    return text.removeprefix(BOM)


def normalise(text: str) -> list[str]:
    """Lines without line-ending characters or trailing spaces; no trailing blank lines."""
    lines = [line.rstrip(" ") for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def read_bank_file(data: bytes) -> BankFile:
    """The identity, money records, mandates and control totals of an incoming bank file.

    Raises a ``BankFileError`` subclass for anything that is not a whole, consistent
    incoming payment file; a file it returns adds up to its own totals
    (``BankFile.check_totals``).
    """
    lines = normalise(decode(data))
    first = next((line for line in lines if line.strip()), "")
    if first.startswith("NY000010"):
        read = ocr_giro.read_file(lines, digest(lines))
    elif first.startswith("01BGMAX"):
        read = bgmax.read_file(lines, digest(lines))
    elif "AUTOGIRO" in first[:40]:
        raise NotIncomingPayments("not an incoming payment file: a Bankgirot Autogiro file")
    else:
        raise UnknownFormat(f"not a Nets OCR giro or BgMax file (starts {first[:16]!r})")
    read.check_totals()
    return read
