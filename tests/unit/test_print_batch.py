"""Many PDFs as one, streamed (``shared.documents.print_batch``): every page of every
document in order with its text, fonts shared, a bad input left out whole, and memory
that does not grow with the number of documents (the print house's daily batch, L7/D3)."""

from __future__ import annotations

import io
import shutil
import subprocess
import tracemalloc
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pdfplumber
import pytest
from pypdf import PdfReader
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen import canvas

from devhost import sample_documents as sample
from shared.documents.pdf import render_pdf
from shared.documents.print_batch import Merger, UnreadablePdf, merge

FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")


def letter(number: int, pages: int = 1, compress: bool = True) -> bytes:
    """A letter as a renderer makes one: an embedded TrueType subset (æøå) and, on each
    page, ``Letter {number:06d} page {p}`` in Helvetica (plain text in the content stream)."""
    if "DejaVu" not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(TTFont("DejaVu", str(FONT)))
    out = io.BytesIO()
    c = canvas.Canvas(out, invariant=True, pageCompression=compress)
    for page in range(1, pages + 1):
        c.setFont("DejaVu", 11)
        c.drawString(72, 760, "Abonno Avis AS, Storgata 1, 0155 Oslo: æøå ÆØÅ")
        c.setFont("Helvetica", 11)
        c.drawString(72, 720, f"Letter {number:06d} page {page}")
        c.showPage()
    c.save()
    return out.getvalue()


TEMPLATE = letter(0, compress=False)


def numbered(number: int) -> bytes:
    """The same one-page letter with another number, made without reportlab: the number
    is plain text in the uncompressed content stream and keeps its length, so the file's
    offsets still hold (cheap enough to make thousands inside a memory trace)."""
    return TEMPLATE.replace(b"Letter 000000", b"Letter %06d" % number)


def texts(pdf: bytes) -> list[str]:
    return [page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages]


def merged(pdfs: list[bytes], **options: int) -> tuple[int, bytes]:
    out = io.BytesIO()
    merger = Merger(out, **options)
    for pdf in pdfs:
        merger.add(pdf)
    return merger.close(), out.getvalue()


class CountingSink:
    """An output that keeps nothing: what a block upload to Blob Storage looks like to the merger."""

    def __init__(self) -> None:
        self.written = 0

    def write(self, data: bytes) -> int:
        self.written += len(data)
        return len(data)


def test_every_page_of_every_document_in_order_with_its_text() -> None:
    documents = [letter(n, pages=1 + n % 3) for n in range(12)]  # 1, 2 or 3 pages each
    out = io.BytesIO()
    pages = merge(iter(documents), out)
    expected = [f"Letter {n:06d} page {p}" for n in range(12) for p in range(1, 2 + n % 3)]
    assert pages == len(expected) == sum(1 + n % 3 for n in range(12))
    read = texts(out.getvalue())
    assert [t.splitlines()[1] for t in read] == expected
    assert all("æøå ÆØÅ" in t for t in read)  # the embedded font's text extracts too
    with pdfplumber.open(io.BytesIO(out.getvalue())) as plumber:
        assert [p.extract_text().splitlines()[1] for p in plumber.pages] == expected


def test_the_merged_file_passes_qpdf_and_renders_with_poppler(tmp_path: Path) -> None:
    pages, pdf = merged([letter(n, pages=2) for n in range(5)])
    path = tmp_path / "batch.pdf"
    path.write_bytes(pdf)
    assert pages == 10
    if shutil.which("qpdf"):  # Debian's qpdf, when installed: structure and every stream checked
        check = subprocess.run(["qpdf", "--check", str(path)], capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr
        assert "No syntax or stream encoding errors" in check.stdout
    if shutil.which("pdftoppm"):
        subprocess.run(["pdftoppm", "-r", "10", "-f", "10", "-l", "10", "-png", str(path), str(tmp_path / "p")],
                       check=True, capture_output=True)
        assert list(tmp_path.glob("p*.png"))


def test_the_same_documents_give_the_same_bytes() -> None:
    documents = [letter(n) for n in range(4)]
    assert merged(documents)[1] == merged(documents)[1]


def test_fonts_identical_across_documents_are_written_once() -> None:
    documents = [letter(n) for n in range(40)]
    _, shared = merged(documents)
    _, unshared = merged(documents, shared=0)
    fonts = PdfReader(io.BytesIO(shared))
    embedded = {(name, ref.idnum) for page in fonts.pages
                for name, ref in page["/Resources"].get_object()["/Font"].get_object().items()
                if "DejaVu" in ref.get_object()["/BaseFont"]}
    assert len(embedded) == 1  # one embedded font object for all 40 letters
    assert len(shared) * 5 < len(unshared)  # the font program is most of a one-page letter
    assert texts(shared) == texts(unshared)


def test_a_document_that_cannot_be_read_is_left_out_whole_and_the_rest_merge() -> None:
    out = io.BytesIO()
    merger = Merger(out)
    merger.add(letter(1))
    broken = letter(2)
    for bad in (b"not a pdf", broken[: len(broken) // 2], b"%PDF-1.4\n%%EOF\n"):
        with pytest.raises(UnreadablePdf):
            merger.add(bad)
    merger.add(letter(3))
    assert merger.close() == 2
    assert [t.splitlines()[1] for t in texts(out.getvalue())] == ["Letter 000001 page 1", "Letter 000003 page 1"]


def test_an_empty_batch_is_a_valid_pdf_without_pages() -> None:
    out = io.BytesIO()
    assert merge([], out) == 0
    assert len(PdfReader(io.BytesIO(out.getvalue())).pages) == 0


@pytest.fixture(scope="module")
def invoices() -> list[bytes]:
    """200 real invoices (``render_pdf``), each with its own number and KID."""
    base = sample.document()
    return [render_pdf(replace(base, number=5000 + n, kid=f"{4_711_000_000 + n:013d}")) for n in range(200)]


def peak_merging(pdfs: list[bytes], count: int) -> tuple[int, int, int]:
    """(pages, bytes written, peak traced bytes) merging ``count`` of ``pdfs`` (in turn) to an
    output that keeps nothing. The inputs are made before the trace starts: what is traced
    is the merger's own memory."""
    def documents() -> Iterator[bytes]:
        for n in range(count):
            yield pdfs[n % len(pdfs)]

    sink = CountingSink()
    tracemalloc.start()
    try:
        pages = merge(documents(), sink)  # type: ignore[arg-type]  # only write() is used
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return pages, sink.written, peak


def test_memory_stays_flat_from_200_to_2000_rendered_invoices(invoices: list[bytes]) -> None:
    small_pages, small_bytes, small_peak = peak_merging(invoices, 200)
    large_pages, large_bytes, large_peak = peak_merging(invoices, 2000)
    assert (small_pages, large_pages) == (200, 2000)
    assert large_bytes > small_bytes  # (the repeats share much of what their first time wrote)
    # What grows is only the cross-reference offsets and the page numbers (8 bytes per
    # object and page, for the few objects an invoice does not share, and the arrays'
    # slack as they grow): ~100-200 bytes an invoice, against the 45 kB of each invoice a
    # merger that held the documents would keep.
    per_invoice = (large_peak - small_peak) / 1800
    assert per_invoice < len(invoices[0]) / 100, (small_peak, large_peak)
    assert large_peak < small_peak * 2, (small_peak, large_peak)


def test_real_invoices_merge_with_their_text_and_share_their_fonts(invoices: list[bytes]) -> None:
    pages, pdf = merged(invoices[:20])
    _, unshared = merged(invoices[:20], shared=0)
    assert pages == 20
    read = texts(pdf)
    assert [t.count(f"{4_711_000_000 + n:013d}") > 0 for n, t in enumerate(read)] == [True] * 20  # each its KID
    assert read == texts(unshared)
    assert len(pdf) * 5 < len(unshared) < sum(len(i) for i in invoices[:20]) * 1.01


def test_numbered_letters_differ_only_in_their_number() -> None:
    _, pdf = merged([numbered(7), numbered(123456)])
    assert [t.splitlines()[1] for t in texts(pdf)] == ["Letter 000007 page 1", "Letter 123456 page 1"]
