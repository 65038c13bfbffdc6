"""Which PDF library renders our documents: the same one-page invoice with 3 lines in
reportlab (``shared.documents.pdf.render_pdf`` itself), fpdf2 and typst (and weasyprint
when it is importable: it is not in the project's locks, measure it in a throwaway venv).

Each library draws the same content (``content``: every text of the invoice, formatted
by ``shared.documents.texts``) in the same font (Bitstream Vera, shipped inside the
reportlab package) with a comparable layout: head, lines table, VAT per rate, totals,
payment part, footer. Prints one JSON object, one entry per library:

  reportlab is measured twice: ``render_pdf`` (what production runs) and
  ``reportlab_same_layout`` (its canvas drawing just the content the others draw).

  pdfs_per_s        PDFs rendered per CPU-second, the process pinned to one core (so what
                    other processes on the machine do does not count), after a warm-up;
                    the best of three rounds of ``--seconds`` of CPU time each
  pdfs_per_wall_s   the same per wall-clock second (lower when the machine is busy)
  bytes_per_pdf     the size of one PDF
  text_extracts     pdfplumber finds every legally required field (``required``), æøå included
  missing           the required fields it did not find
  fonts_embedded    every font of every page has an embedded font file (FontFile/2/3)
  deterministic     two renders of the same invoice give the same bytes

    python -m bench.pdf_libraries [--seconds 3]
    /tmp/weasy-venv/bin/python -m bench.pdf_libraries --only weasyprint   # a throwaway venv
"""

from __future__ import annotations

import argparse
import html
import io
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import reportlab

from devhost import sample_documents
from shared.documents import texts
from shared.documents.pdf import account_text, orgnr_text, render_pdf
from shared.domain.documents import Document

FONT_DIR = os.path.join(os.path.dirname(reportlab.__file__), "fonts")
VERA, VERA_BOLD = os.path.join(FONT_DIR, "Vera.ttf"), os.path.join(FONT_DIR, "VeraBd.ttf")


@dataclass(frozen=True)
class Content:
    """Every text of the invoice, as the renderers under test draw it."""

    title: str
    seller: list[str]
    buyer: list[str]
    facts: list[tuple[str, str]]
    table: list[list[str]]  # the head row, then one row per line
    vat: list[list[str]]  # the head row, then one row per rate
    totals: list[tuple[str, str]]
    payment: list[tuple[str, str]]
    footer: list[str]


def content(doc: Document) -> Content:
    lang = doc.letter.language
    seller = doc.letter.seller
    buyer = doc.letter.buyer
    t = lambda key: texts.text(lang, key)  # noqa: E731
    money = lambda minor: texts.amount(minor, doc.currency, lang)  # noqa: E731
    assert doc.period is not None and doc.due_date is not None
    return Content(
        texts.title(doc.kind, lang),
        [seller.party.name, seller.party.address or "", f"{seller.party.postal_code} {seller.party.city}",
         f"{t('org_number')} {orgnr_text(seller.party)} MVA", "Foretaksregisteret"],
        [buyer.name, buyer.address or "", f"{buyer.postal_code} {buyer.city}"],
        [(t("invoice_number"), str(doc.number)), (t("invoice_date"), texts.day(doc.issue_date, lang)),
         (t("delivery_period"), texts.period(*doc.period, lang)), (t("due_date"), texts.day(doc.due_date, lang)),
         (t("customer_number"), str(doc.letter.subscriber_no)), ("KID", doc.kid)],
        [[t("description"), t("quantity"), t("unit_price"), t("vat_rate"), t("line_amount")],
         *[[li.description, str(li.quantity), money(li.unit_price_minor), texts.percent(li.vat_rate_bp, lang),
            money(li.gross_minor)] for li in doc.lines]],
        [[t("vat_rate"), t("vat_basis"), t("vat")],
         *[[texts.percent(p.rate_bp, lang), money(p.net_minor), money(p.vat_minor)] for p in doc.vat]],
        [(t("net_total"), money(doc.net_minor)), (t("vat_total"), money(doc.vat_minor)),
         (t("total"), money(doc.total_minor)), (t("amount_due"), money(doc.amount_due_minor))],
        [(t("account"), account_text(seller.bank_account, "NO")), ("KID", doc.kid),
         (t("amount"), money(doc.amount_due_minor)), (t("due_date"), texts.day(doc.due_date, lang))],
        [seller.branding.footer, f"{seller.party.name} · {seller.branding.contact_email}",
         t("page").format(page=1, pages=1)],
    )


def required(c: Content) -> list[str]:
    """What bokføringsforskriften § 5-1-1 asks of the invoice (and the payment part), as text."""
    return [*c.seller, *c.buyer, *(f"{k} {v}" for k, v in c.facts), *(" ".join(row) for row in c.table[1:]),
            *(" ".join(row) for row in c.vat[1:]), *(f"{k} {v}" for k, v in c.totals), c.payment[0][1]]


# --- the renderers under test ---------------------------------------------------------------

def with_reportlab(doc: Document) -> Callable[[], bytes]:
    return lambda: render_pdf(doc)


def with_reportlab_same_layout(doc: Document) -> Callable[[], bytes]:
    """reportlab's canvas drawing exactly what fpdf2 and typst draw: the library's own cost,
    without ``render_pdf``'s layout work (wrapping, pagination, every kind)."""
    from reportlab.lib.colors import HexColor

    from shared.documents.pdf import BOLD, FONT, FauxBoldCanvas

    c = content(doc)
    band = HexColor("#8A1538")

    def render() -> bytes:
        out = io.BytesIO()
        pdf = FauxBoldCanvas(out, invariant=1, initialFontName=FONT, initialFontSize=9)
        pdf.setFillColor(band)
        pdf.rect(0, 826, 595.28, 16, stroke=0, fill=1)
        pdf.setFont(BOLD, 18)
        pdf.drawRightString(545, 785, c.title)
        pdf.setFillColorRGB(0, 0, 0)
        y = 760.0
        for i, text in enumerate(c.seller):
            pdf.setFont(BOLD if i == 0 else FONT, 9)
            pdf.drawString(315, y, text)
            y -= 12
        for label, value in c.facts:
            pdf.setFont(FONT, 7.5)
            pdf.drawString(315, y, label)
            pdf.setFont(BOLD, 9)
            pdf.drawRightString(545, y, value)
            y -= 12
        by = 690.0
        for i, text in enumerate(c.buyer):
            pdf.setFont(BOLD if i == 0 else FONT, 9)
            pdf.drawString(50, by, text)
            by -= 12
        y -= 20
        rights = (300, 388, 448, 545)
        for r, row in enumerate(c.table):
            pdf.setFont(BOLD if r == 0 else FONT, 9)
            pdf.drawString(50, y, row[0])
            for x, text in zip(rights, row[1:], strict=True):
                pdf.drawRightString(x, y, text)
            y -= 14
        y -= 10
        for r, row in enumerate(c.vat):
            pdf.setFont(BOLD if r == 0 else FONT, 9)
            pdf.drawString(50, y - r * 12, row[0])
            pdf.drawRightString(190, y - r * 12, row[1])
            pdf.drawRightString(270, y - r * 12, row[2])
        for r, (label, value) in enumerate(c.totals):
            pdf.setFont(BOLD if r == len(c.totals) - 1 else FONT, 9)
            pdf.drawString(335, y - r * 12, label)
            pdf.drawRightString(545, y - r * 12, value)
        pdf.setStrokeColor(band)
        pdf.rect(50, 96, 495, 96)
        for i, (label, value) in enumerate(c.payment):
            x, py = 60 + (i % 2) * 240, 172 - (i // 2) * 28
            pdf.setFont(FONT, 7.5)
            pdf.drawString(x, py, label)
            pdf.setFont(BOLD, 11)
            pdf.drawString(x, py - 13, value)
        pdf.setFont(FONT, 7.5)
        for i, text in enumerate(c.footer):
            pdf.drawString(50, 70 - i * 10, text)
        pdf.showPage()
        pdf.save()
        return out.getvalue()

    return render


def with_fpdf2(doc: Document) -> Callable[[], bytes]:
    from datetime import UTC, datetime

    from fpdf import FPDF

    c = content(doc)
    created = datetime(doc.issue_date.year, doc.issue_date.month, doc.issue_date.day, tzinfo=UTC)

    def render() -> bytes:
        pdf = FPDF(format="A4", unit="pt")
        pdf.set_creation_date(created)
        pdf.set_margins(50, 40, 50)
        pdf.add_font("Vera", "", VERA)
        pdf.add_font("Vera", "B", VERA_BOLD)
        pdf.add_page()
        pdf.set_fill_color(138, 21, 56)
        pdf.rect(0, 0, 595.28, 16, style="F")
        pdf.set_font("Vera", "B", 18)
        pdf.set_xy(300, 40)
        pdf.cell(245, 20, c.title, align="R")
        pdf.set_font("Vera", "", 9)
        y = 70.0
        for i, text in enumerate(c.seller):
            pdf.set_font("Vera", "B" if i == 0 else "", 9)
            pdf.set_xy(315, y)
            pdf.cell(230, 12, text)
            y += 12
        for label, value in c.facts:
            pdf.set_font("Vera", "", 7.5)
            pdf.set_xy(315, y)
            pdf.cell(90, 12, label)
            pdf.set_font("Vera", "B", 9)
            pdf.cell(140, 12, value, align="R")
            y += 12
        by = 150.0
        for i, text in enumerate(c.buyer):
            pdf.set_font("Vera", "B" if i == 0 else "", 9)
            pdf.set_xy(50, by)
            pdf.cell(250, 12, text)
            by += 12
        y += 20
        widths = (205, 45, 88, 60, 97)
        for r, row in enumerate(c.table):
            pdf.set_font("Vera", "B" if r == 0 else "", 9)
            pdf.set_xy(50, y)
            for i, (w, text) in enumerate(zip(widths, row, strict=True)):
                pdf.cell(w, 14, text, align="L" if i == 0 else "R")
            y += 14
        y += 10
        for r, row in enumerate(c.vat):
            pdf.set_font("Vera", "B" if r == 0 else "", 9)
            pdf.set_xy(50, y + r * 12)
            for i, (w, text) in enumerate(zip((60, 80, 80), row, strict=True)):
                pdf.cell(w, 12, text, align="L" if i == 0 else "R")
        for r, (label, value) in enumerate(c.totals):
            pdf.set_font("Vera", "B" if r == len(c.totals) - 1 else "", 9)
            pdf.set_xy(335, y + r * 12)
            pdf.cell(100, 12, label)
            pdf.cell(110, 12, value, align="R")
        pdf.set_draw_color(138, 21, 56)
        pdf.rect(50, 650, 495, 96)
        for i, (label, value) in enumerate(c.payment):
            x, py = 60 + (i % 2) * 240, 670 + (i // 2) * 28
            pdf.set_font("Vera", "", 7.5)
            pdf.set_xy(x, py)
            pdf.cell(200, 10, label)
            pdf.set_font("Vera", "B", 11)
            pdf.set_xy(x, py + 10)
            pdf.cell(200, 14, value)
        pdf.set_font("Vera", "", 7.5)
        for i, text in enumerate(c.footer):
            pdf.set_xy(50, 770 + i * 10)
            pdf.cell(495, 10, text)
        return bytes(pdf.output())

    return render


TYPST = b"""#let d = json(bytes(sys.inputs.data))
#set document(date: datetime(year: d.date.at(0), month: d.date.at(1), day: d.date.at(2)))
#set page(paper: "a4", margin: (x: 50pt, top: 40pt, bottom: 60pt),
  background: place(top, rect(width: 100%, height: 16pt, fill: rgb("#8A1538"))),
  footer: text(size: 7.5pt, fill: luma(90))[#d.footer.join("\\n")])
#set text(font: "Bitstream Vera Sans", size: 9pt, lang: "nb")
#grid(columns: (1fr, 230pt), gutter: 10pt,
  [#v(90pt) #text(weight: "bold", d.buyer.at(0)) \\ #d.buyer.slice(1).join("\\n")],
  [#align(right, text(size: 18pt, weight: "bold", fill: rgb("#8A1538"), d.title))
   #text(weight: "bold", d.seller.at(0)) \\ #d.seller.slice(1).join("\\n")
   #grid(columns: (1fr, auto), row-gutter: 4pt, ..d.facts.map(f => (text(size: 7.5pt, f.at(0)),
     align(right, text(weight: "bold", f.at(1))))).flatten())])
#v(16pt)
#table(columns: (1fr, auto, auto, auto, auto), stroke: none, align: (left, right, right, right, right),
  ..d.table.at(0).map(h => text(weight: "bold", h)), ..d.table.slice(1).flatten())
#grid(columns: (1fr, 1fr),
  table(columns: 3, stroke: none, align: (left, right, right),
    ..d.vat.at(0).map(h => text(weight: "bold", h)), ..d.vat.slice(1).flatten()),
  table(columns: (1fr, auto), stroke: none, align: (left, right), ..d.totals.flatten()))
#place(bottom, rect(width: 100%, stroke: rgb("#8A1538"), inset: 10pt)[
  #grid(columns: (1fr, 1fr), row-gutter: 8pt, ..d.payment.map(p => [#text(size: 7.5pt, p.at(0)) \\
    #text(size: 11pt, weight: "bold", p.at(1))]))])
"""


def with_typst(doc: Document) -> Callable[[], bytes]:
    import typst

    c = content(doc)
    data = json.dumps({**c.__dict__, "date": [doc.issue_date.year, doc.issue_date.month, doc.issue_date.day]})
    compiler = typst.Compiler(font_paths=[FONT_DIR], ignore_system_fonts=True)  # keeps the fonts between runs
    return lambda: bytes(compiler.compile(TYPST, sys_inputs={"data": data}))


def with_weasyprint(doc: Document) -> Callable[[], bytes]:
    from weasyprint import HTML
    from weasyprint.text.fonts import FontConfiguration

    c = content(doc)
    e = html.escape
    fonts = FontConfiguration()
    rows = "".join("<tr>" + "".join(f"<td>{e(x)}</td>" for x in row) + "</tr>" for row in c.table[1:])
    vat = "".join("<tr>" + "".join(f"<td>{e(x)}</td>" for x in row) + "</tr>" for row in c.vat[1:])
    issued = doc.issue_date.isoformat()
    page = f"""<html><head><meta name="dcterms.created" content="{issued}">
    <meta name="dcterms.modified" content="{issued}"><style>
      @font-face {{ font-family: V; src: url(file://{VERA}); }}
      @font-face {{ font-family: V; font-weight: bold; src: url(file://{VERA_BOLD}); }}
      @page {{ size: A4; margin: 40pt 50pt 60pt 50pt; }}
      body {{ font-family: V; font-size: 9pt; }} td {{ text-align: right; white-space: nowrap; padding: 1pt 6pt; }}
      td:first-child {{ text-align: left; }}
      .band {{ position: fixed; top: -40pt; left: -50pt; width: 600pt; height: 16pt; background: #8A1538; }}
      .right {{ float: right; width: 250pt; }} .pay {{ border: 1pt solid #8A1538; padding: 10pt; margin-top: 40pt; }}
    </style></head><body><div class="band"></div>
    <div class="right"><h1 style="text-align:right;color:#8A1538">{e(c.title)}</h1>
      <b>{e(c.seller[0])}</b><br>{"<br>".join(e(s) for s in c.seller[1:])}
      <table width="100%">{"".join(f"<tr><td>{e(k)}</td><td><b>{e(v)}</b></td></tr>" for k, v in c.facts)}</table>
    </div>
    <div style="padding-top:90pt"><b>{e(c.buyer[0])}</b><br>{"<br>".join(e(s) for s in c.buyer[1:])}</div>
    <table width="100%" style="clear:both;margin-top:30pt"><tr>{"".join(f"<th>{e(h)}</th>" for h in c.table[0])}</tr>
      {rows}</table>
    <table style="float:left"><tr>{"".join(f"<th>{e(h)}</th>" for h in c.vat[0])}</tr>{vat}</table>
    <table style="float:right">{"".join(f"<tr><td>{e(k)}</td><td>{e(v)}</td></tr>" for k, v in c.totals)}</table>
    <div class="pay" style="clear:both">{"".join(f"<p>{e(k)}<br><b>{e(v)}</b></p>" for k, v in c.payment)}</div>
    <footer>{"<br>".join(e(f) for f in c.footer)}</footer></body></html>"""
    document = HTML(string=page)
    return lambda: bytes(document.write_pdf(font_config=fonts))


LIBRARIES: dict[str, Callable[[Document], Callable[[], bytes]]] = {
    "reportlab": with_reportlab, "reportlab_same_layout": with_reportlab_same_layout, "fpdf2": with_fpdf2,
    "typst": with_typst, "weasyprint": with_weasyprint}


# --- the measurements -------------------------------------------------------------------------

def extracted(pdf: bytes) -> str:
    import pdfplumber

    with pdfplumber.open(io.BytesIO(pdf)) as doc:
        return "\n".join(" ".join(row.split()) for p in doc.pages for row in (p.extract_text() or "").splitlines())


def fonts_embedded(pdf: bytes) -> tuple[bool, list[str]]:
    from pypdf import PdfReader

    names: list[str] = []
    embedded = True
    for page in PdfReader(io.BytesIO(pdf)).pages:
        for ref in page["/Resources"].get("/Font", {}).values():
            font = ref.get_object()
            descendants = font.get("/DescendantFonts")
            target = descendants[0].get_object() if descendants else font
            descriptor = target.get("/FontDescriptor")
            keys = descriptor.get_object().keys() if descriptor else ()
            files = [k for k in ("/FontFile", "/FontFile2", "/FontFile3") if k in keys]
            names.append(f"{target.get('/BaseFont')}:{','.join(files) or 'not embedded'}")
            embedded = embedded and bool(files)
    return embedded and bool(names), names


def rate(render: Callable[[], bytes], seconds: float) -> tuple[float, float]:
    """PDFs per CPU-second of this process (what one core gives, whatever else the machine
    runs) and per wall-clock second; the best of three rounds after a warm-up."""
    for _ in range(5):
        render()
    best_cpu = best_wall = 0.0
    for _ in range(3):
        count, cpu, wall = 0, time.process_time(), time.perf_counter()
        while time.process_time() - cpu < seconds:
            render()
            count += 1
        best_cpu = max(best_cpu, count / (time.process_time() - cpu))
        best_wall = max(best_wall, count / (time.perf_counter() - wall))
    return round(best_cpu, 1), round(best_wall, 1)


def measure(name: str, doc: Document, seconds: float) -> dict[str, Any]:
    try:
        render = LIBRARIES[name](doc)
    except ImportError as error:
        return {"skipped": f"not installed: {error}"}
    pdf = render()
    text = extracted(pdf)
    missing = [field for field in required(content(doc)) if field not in text]
    embedded, fonts = fonts_embedded(pdf)
    per_cpu_s, per_wall_s = rate(render, seconds)
    return {"pdfs_per_s": per_cpu_s, "pdfs_per_wall_s": per_wall_s, "bytes_per_pdf": len(pdf),
            "text_extracts": not missing, "missing": missing, "fonts_embedded": embedded, "fonts": fonts,
            "deterministic": render() == pdf}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--only", choices=list(LIBRARIES), action="append")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[-1]})  # one core
    doc = sample_documents.document()
    result = {name: measure(name, doc, args.seconds) for name in (args.only or LIBRARIES)}
    invoice = {"lines": len(doc.lines), "pages": 1, "python": sys.version.split()[0]}
    json.dump({"invoice": invoice, **result}, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
