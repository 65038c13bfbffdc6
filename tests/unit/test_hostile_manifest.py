"""A hostile subscriber against the print house: a name or postal code that a spreadsheet
would run as a formula (``=HYPERLINK(...)``, ``+``, ``-``, ``@``, a tab) goes into the print
batch's CSV manifest as text (a leading apostrophe), whatever else it holds (line breaks,
quotes, commas, RTL marks); numbers, a credit note's negative amount too, stay numbers."""

from __future__ import annotations

import csv
import io

from hypothesis import given
from hypothesis import strategies as st

from shared.service.printing import COLUMNS, FORMULA, _Manifest

names = st.text(max_size=200) | st.sampled_from(['=HYPERLINK("http://evil","x")', "+47 999", "-Ola", "@SUM(A1)",
                                                   "\t=1+1", "\r=1", "Ola\r\n=2+2,\"x\"", "\u202e=1"])


@given(names, names)
def test_no_text_cell_starts_a_formula_and_every_value_reads_back(name: str, postal_code: str) -> None:
    out = io.BytesIO()
    manifest = _Manifest(out)
    manifest.row(1, 1, 2, 4711, name, postal_code, "crn-0000000002", "credit_note", 2, -34800, "NOK", "")
    header, row = list(csv.reader(io.StringIO(out.getvalue().decode(), newline="")))
    assert tuple(header) == COLUMNS
    for written, given_ in ((row[4], name), (row[5], postal_code)):
        assert not written.startswith(FORMULA)
        assert written == given_ or written == "'" + given_
    assert row[9] == "-34800"
