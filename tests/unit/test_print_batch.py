"""Many PDFs as one, streamed (``shared.documents.print_batch``): every page of every
document in order with its text, fonts shared, a bad input left out whole, and memory
that does not grow with the number of documents (the print house's daily batch, L7/D3)."""

from __future__ import annotations

import io
import json
import pickle
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pdfplumber
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pypdf import PdfReader
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen import canvas

from devhost import sample_documents as sample
from shared.documents.pdf import render_pdf
from shared.documents.print_batch import Merger, UnreadablePdf, merge

FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")


def letter(number: int, pages: int = 1) -> bytes:
    """A letter as a renderer makes one: an embedded TrueType subset (æøå) and, on each
    page, ``Letter {number:06d} page {p}`` in Helvetica (plain text in the content stream)."""
    if "DejaVu" not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(TTFont("DejaVu", str(FONT)))
    out = io.BytesIO()
    c = canvas.Canvas(out, invariant=True)
    for page in range(1, pages + 1):
        c.setFont("DejaVu", 11)
        c.drawString(72, 760, "Abonno Avis AS, Storgata 1, 0155 Oslo: æøå ÆØÅ")
        c.setFont("Helvetica", 11)
        c.drawString(72, 720, f"Letter {number:06d} page {page}")
        c.showPage()
    c.save()
    return out.getvalue()


def texts(pdf: bytes) -> list[str]:
    return [page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages]


def merged(pdfs: list[bytes], **options: int) -> tuple[int, bytes]:
    out = io.BytesIO()
    merger = Merger(out, **options)
    for pdf in pdfs:
        merger.add(pdf)
    return merger.close(), out.getvalue()


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


MEASURE = """
import ctypes, gc, json, os, pickle, sys, threading
from shared.documents.print_batch import merge

class Sink:
    def write(self, data):
        return len(data)

pool = pickle.loads(open(sys.argv[1], "rb").read())

def rss():
    return int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

def peak_while(count):
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)  # what was freed before goes back: the start is now
    start, top, done = rss(), [0], threading.Event()
    def watch():
        while not done.wait(0.002):
            top[0] = max(top[0], rss())
    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        pages = merge((pool[n % len(pool)] for n in range(count)), Sink())
    finally:
        done.set()
        watcher.join()
    return pages, max(top[0], rss()) - start

peak_while(20)  # the code paths warmed up
print(json.dumps([peak_while(200), peak_while(2000)]))
"""


def test_memory_stays_flat_from_200_to_2000_rendered_invoices(invoices: list[bytes], tmp_path: Path) -> None:
    """In a process of its own, the resident memory sampled while 200 and then 2 000 real
    invoices are merged (the inputs loaded before): the peak growth is the same, where a
    merger holding the documents would need 1 800 x 24 kB = 44 MB more for the 2 000."""
    pool = tmp_path / "invoices.pickle"
    pool.write_bytes(pickle.dumps(invoices))
    child = subprocess.run([sys.executable, "-c", MEASURE, str(pool)], capture_output=True, text=True,
                           cwd=Path(__file__).resolve().parents[2])
    assert child.returncode == 0, child.stderr
    (small, small_peak), (large, large_peak) = json.loads(child.stdout)
    assert (small, large) == (200, 2000)
    # Measured: a few hundred kB either way; what grows with the batch is only the
    # cross-reference offsets and page numbers (8 bytes each, ~50 kB for the 2 000).
    assert large_peak - small_peak < 2 * 2**20, (small_peak, large_peak)
    assert large_peak < 8 * 2**20, (small_peak, large_peak)


def test_real_invoices_merge_with_their_text_and_share_their_fonts(invoices: list[bytes]) -> None:
    pages, pdf = merged(invoices[:20])
    _, unshared = merged(invoices[:20], shared=0)
    assert pages == 20
    read = texts(pdf)
    assert [t.count(f"{4_711_000_000 + n:013d}") > 0 for n, t in enumerate(read)] == [True] * 20  # each its KID
    assert read == texts(unshared)
    assert len(pdf) * 5 < len(unshared) < sum(len(i) for i in invoices[:20]) * 1.01


def hand_made(text: str) -> bytes:
    """A PDF whose page inherits its media box, resources and rotation from two levels of
    page tree (ISO 32000-1, 7.7.3.4), as some producers write them; the nearer node's
    /Rotate (180) overrides the root's (90)."""
    content = b"BT /F1 12 Tf 10 50 Td (%s) Tj ET" % text.encode()
    objects = [
        b"<</Type/Catalog/Pages 2 0 R>>",
        b"<</Type/Pages/Kids[6 0 R]/Count 1/MediaBox[0 0 200 100]/Resources<</Font<</F1 5 0 R>>>>/Rotate 90>>",
        b"<</Type/Page/Parent 6 0 R/Contents 4 0 R>>",
        b"<</Length %d>>stream\n%s\nendstream" % (len(content), content),
        b"<</Type/Font/Subtype/Type1/BaseFont/Helvetica>>",
        b"<</Type/Pages/Parent 2 0 R/Kids[3 0 R]/Count 1/Rotate 180>>",
    ]
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<</Size %d/Root 1 0 R>>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def test_a_page_keeps_what_it_inherited_from_its_page_tree() -> None:
    _, pdf = merged([hand_made("First"), letter(1), hand_made("Third")])
    pages = PdfReader(io.BytesIO(pdf)).pages
    assert [p.extract_text().splitlines()[-1] for p in pages] == ["First", "Letter 000001 page 1", "Third"]
    assert [(list(map(float, p.mediabox)), p.get("/Rotate")) for p in (pages[0], pages[2])] == [
        ([0, 0, 200, 100], 180)] * 2


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(1, 3), st.sampled_from(["good", "inherited", "torn", "headless", "junk"])),
                max_size=7))
def test_any_mix_of_documents_gives_the_pages_of_those_that_can_be_read_in_order(
        documents: list[tuple[int, str]]) -> None:
    """Whatever comes in: a document goes in whole (its pages as it reads alone) or not at
    all (``UnreadablePdf``), and the merged pages are those, in order. Good ones always go in."""
    out = io.BytesIO()
    merger = Merger(out)
    expected: list[str] = []
    for n, (pages, shape) in enumerate(documents):
        whole = hand_made(f"Inherited {n}") if shape == "inherited" else letter(n, pages)
        broken = {"torn": whole[: len(whole) // 3], "headless": whole[20:], "junk": b"no PDF here %d" % n}
        pdf = broken.get(shape, whole)
        try:
            added = merger.add(pdf)
        except UnreadablePdf:
            assert shape in ("torn", "headless", "junk")
            continue
        alone = texts(pdf)
        assert added == len(alone)
        expected += alone
    assert merger.close() == len(expected)
    assert texts(out.getvalue()) == expected
