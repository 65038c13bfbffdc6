"""A document as a PDF (L7): what a subscriber reads, prints and pays from.

``render_pdf(document, logo)`` draws one A4 document with reportlab's canvas (chosen by
measurement: docs/pdf-library.md). One template per ``TEMPLATE_VERSION`` of
``shared.domain.letters``; a document issued under a version this module does not know is
refused (``ValueError``), never drawn with another version's layout.

What it shows follows the law of the seller's country (bokføringsforskriften § 5-1-1 in
Norway; the VAT act's invoice rules in Sweden): the seller's name and organisation
number ("MVA" after it when VAT-registered, "Foretaksregisteret" for a company; in Sweden
the VAT registration number), the buyer's name and address, number and date, delivery
period or date, each line's description, quantity and price, VAT per rate (rate, basis,
amount) and the total, the due date, and the payment part by the letter's payment
method (account and KID/OCR for a giro; "the amount is charged" and the charge date for
AvtaleGiro, Vipps and card). A preview (``number == 0``) is marked as such and has no KID.

Layout: a head (brand colour band, logo, title, seller, buyer, facts), the lines (as
many pages as they need, the column heads repeated), then the VAT breakdown, totals and
payment part on the last page, and a footer on every page (branding footer text,
contact, "page n of m"). Pages are planned before anything is drawn, so "of m" is known.

The same document gives the same bytes: reportlab's invariant mode, the creation date
the document's issue date, the file identifier derived from the document, and fonts
embedded as subsets (Bitstream Vera from the reportlab package, or DejaVu Sans from
``fonts/`` for a document with letters Vera lacks; no system font is read).
"""

from __future__ import annotations

import hashlib
import io
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields, is_dataclass
from datetime import date
from functools import cache, lru_cache

import reportlab  # type: ignore[import-untyped]  # reportlab ships no type hints
from PIL import Image
from reportlab.lib.colors import Color, HexColor, black  # type: ignore[import-untyped]  # reportlab ships no type hints
from reportlab.lib.pagesizes import A4  # type: ignore[import-untyped]  # reportlab ships no type hints
from reportlab.lib.utils import ImageReader  # type: ignore[import-untyped]  # reportlab ships no type hints
from reportlab.pdfbase import pdfmetrics  # type: ignore[import-untyped]  # reportlab ships no type hints
from reportlab.pdfbase.ttfonts import TTFont  # type: ignore[import-untyped]  # reportlab ships no type hints
from reportlab.pdfgen.canvas import Canvas  # type: ignore[import-untyped]  # reportlab ships no type hints

from shared.domain.documents import Document, Kind
from shared.domain.invoicing import InvoiceLine
from shared.domain.letters import TEMPLATE_VERSION, Language, Party, PaymentMethod, Seller
from shared.domain.money import divide_half_up

from . import texts
from .texts import amount, day, text

TEMPLATES = frozenset({1})  # every template version this renderer can draw
assert TEMPLATE_VERSION in TEMPLATES, "a new template version needs its layout here"

# Bitstream Vera (inside the reportlab wheel) draws every document whose texts it covers
# (Latin-1 and a little more: æøåäö, €); a document with a letter beyond it (Sami č đ ŋ š ŧ
# ž, Polish ł ś, Baltic ė ...) is drawn in DejaVu Sans, Vera's extension with the same
# design, committed with its licence in fonts/. Neither is read from the system.
# Bold is the regular font filled and stroked (``FauxBoldCanvas``): one embedded font instead of
# two makes the PDF about half the size and renders 1.5 times as fast (docs/pdf-library.md).
FONT, BOLD = "AbonnoSans", "AbonnoSans-Bold"
WIDE, WIDE_BOLD = "AbonnoSansWide", "AbonnoSansWide-Bold"
REGULAR_OF = {BOLD: FONT, WIDE_BOLD: WIDE}  # the font a bold name is drawn and measured in
BOLD_STROKE = 0.05  # the stroke that makes a regular font bold, per point of font size
_VERA_DIR = os.path.join(os.path.dirname(reportlab.__file__), "fonts")
_DEJAVU_DIR = os.path.join(os.path.dirname(__file__), "fonts")
pdfmetrics.registerFont(TTFont(FONT, os.path.join(_VERA_DIR, "Vera.ttf")))
VERA_COVERS = frozenset(chr(code) for code in pdfmetrics.getFont(FONT).face.charToGlyph) | {"\n"}


_REGISTERING = threading.Lock()


@cache
def _wide_fonts() -> tuple[str, str]:
    """DejaVu Sans, registered when a document first needs it (reading it takes a while)."""
    with _REGISTERING:  # documents are rendered in threads
        if WIDE not in pdfmetrics.getRegisteredFontNames():
            pdfmetrics.registerFont(TTFont(WIDE, os.path.join(_DEJAVU_DIR, "DejaVuSans.ttf")))
    return WIDE, WIDE_BOLD


def _strings(value: object) -> Iterator[str]:
    """Every text in a document: its fields, its letter's, its lines' (whatever they are)."""
    if isinstance(value, str):
        yield value
    elif is_dataclass(value) and not isinstance(value, type):
        for f in fields(value):
            yield from _strings(getattr(value, f.name))
    elif isinstance(value, tuple):
        for item in value:
            yield from _strings(item)


def fonts_for(document: Document) -> tuple[str, str]:
    """The regular and bold font that draw every text of ``document``."""
    if all(set(s) <= VERA_COVERS for s in _strings(document)):
        return FONT, BOLD
    return _wide_fonts()

WIDTH, HEIGHT = A4
LEFT, RIGHT = 50.0, WIDTH - 50.0
GREY = Color(0.35, 0.35, 0.35)
PREVIEW_RED = Color(0.75, 0.1, 0.1)
DEFAULT_COLOUR = "#1F3A5F"
SIZE, SMALL, LEADING = 9.0, 7.5, 12.0
BAND = 16.0
# columns of the lines table: description (left), then right edges of the figures
COL_DESC_WIDTH = 205.0
COL_QTY, COL_PRICE, COL_RATE, COL_AMOUNT = 300.0, 388.0, 448.0, RIGHT
FACTS_X, FACTS_VALUE_WIDTH = RIGHT - 230.0, 140.0
PAYMENT_HEIGHT = 96.0


def width(s: str, font: str = FONT, size: float = SIZE) -> float:
    return float(pdfmetrics.stringWidth(s, REGULAR_OF.get(font, font), size))


class FauxBoldCanvas(Canvas):  # type: ignore[misc]  # reportlab's Canvas is untyped
    """reportlab's canvas, drawing a bold font name as its regular font filled and stroked."""

    _bold = False

    def setFont(self, psfontname: str, size: float, leading: float | None = None) -> None:
        self._bold = psfontname in REGULAR_OF
        super().setFont(REGULAR_OF.get(psfontname, psfontname), size, leading)

    def drawString(self, x: float, y: float, text: str, *args: object, **kwargs: object) -> None:
        self._draw(super().drawString, x, y, text, *args, **kwargs)

    def drawRightString(self, x: float, y: float, text: str, *args: object, **kwargs: object) -> None:
        self._draw(super().drawRightString, x, y, text, *args, **kwargs)

    def _draw(self, draw: Callable[..., None], x: float, y: float, text: str, *args: object,
              **kwargs: object) -> None:
        if not self._bold:
            draw(x, y, text, *args, **kwargs)
            return
        self.saveState()
        self.setLineWidth(self._fontsize * BOLD_STROKE)
        self.setStrokeColor(self._fillColorObj)
        draw(x, y, text, 2, *args[1:], **kwargs)  # text render mode 2: fill, then stroke
        self.restoreState()


def wrap(s: str, limit: float, font: str = FONT, size: float = SIZE) -> list[str]:
    """``s`` in lines no wider than ``limit``: at spaces, and inside a word too long to fit."""
    if width(s, font, size) <= limit and "\n" not in s:
        return [s] if s.strip() else [""]
    lines: list[str] = []
    current = ""
    for word in s.split():
        candidate = f"{current} {word}" if current else word
        if width(candidate, font, size) <= limit:
            current = candidate
            continue
        if current:
            lines.append(current)
        current = ""
        while width(word, font, size) > limit:
            cut = max(1, _fitting(word, limit, font, size))
            lines.append(word[:cut])
            word = word[cut:]
        current = word
    if current:
        lines.append(current)
    return lines or [""]


def right(c: Canvas, x: float, y: float, value: str, room: float, font: str = FONT, size: float = SIZE) -> None:
    """``value`` right-aligned at ``x``, in a smaller size if it is wider than ``room`` (a huge amount)."""
    needed = width(value, font, size)
    if needed <= room:
        c.setFont(font, size)
        c.drawString(x - needed, y, value)
        return
    fitted = max(4.0, size * room / needed)
    c.setFont(font, fitted)
    c.drawString(x - needed * fitted / size, y, value)
    c.setFont(font, size)


def _fitting(word: str, limit: float, font: str, size: float) -> int:
    low, high = 0, len(word)
    while low < high:
        mid = (low + high + 1) // 2
        if width(word[:mid], font, size) <= limit:
            low = mid
        else:
            high = mid - 1
    return low


def orgnr_text(party: Party) -> str:
    """An organisation number as its country writes it: 923 609 016 (NO), 556036-0793 (SE)."""
    number = party.organization_number or ""
    digits = "".join(c for c in number if c.isdigit())
    if party.country == "SE" and len(digits) == 10:
        return f"{digits[:6]}-{digits[6:]}"
    if party.country == "NO" and len(digits) == 9:
        return f"{digits[:3]} {digits[3:6]} {digits[6:]}"
    return number


def vat_number(seller: Seller) -> str | None:
    """SE: the VAT registration number as given, else SE + organisation number + 01."""
    if not seller.vat_registered:
        return None
    if seller.vat_number:
        return seller.vat_number
    digits = "".join(c for c in seller.party.organization_number or "" if c.isdigit())
    if seller.party.country == "SE" and digits:
        return f"SE{digits}01"
    return None


def account_text(account: str | None, country: str) -> str:
    """A Norwegian account as 1234.56.78903; a bankgiro as 123-4567 or 1234-5678."""
    raw = account or ""
    digits = "".join(c for c in raw if c.isdigit())
    if country == "SE" and len(digits) in (7, 8) and digits == raw.replace("-", ""):
        return f"{digits[:-4]}-{digits[-4:]}"
    if country != "SE" and len(digits) == 11 and digits == raw.replace(".", "").replace(" ", ""):
        return f"{digits[:4]}.{digits[4:6]}.{digits[6:]}"
    return raw


def unit_net(line: InvoiceLine) -> int:
    """A line's unit price excluding VAT: its net amount over its quantity, to the nearest öre."""
    return divide_half_up(line.net_minor, line.quantity) if line.quantity > 0 else line.net_minor


@dataclass(frozen=True, slots=True)
class Row:
    """One invoice line as the lines table shows it: its description wrapped, its own
    period (when it differs from the document's) and the height it takes."""

    line: InvoiceLine
    description: tuple[str, ...]
    period: str
    height: float


class _Renderer:
    def __init__(self, document: Document, logo: bytes | None) -> None:
        self.d = document
        self.lang: Language = document.letter.language
        self.seller = document.letter.seller
        self.country = self.seller.party.country
        self.font, self.bold = fonts_for(document)
        # Sweden: unit price and amount excluding VAT on each line (mervärdesskattelagen 17 kap. 24 §);
        # elsewhere the gross prices Nordic consumers are quoted
        self.net_prices = self.country == "SE"
        colour = self.seller.branding.colour
        try:
            self.colour: Color = HexColor(colour if colour.startswith("#") and len(colour) == 7 else DEFAULT_COLOUR)
        except (ValueError, TypeError):
            self.colour = HexColor(DEFAULT_COLOUR)
        self.logo = _image(logo)
        self.preview = document.number == 0
        self.footer_lines = self._footer_lines()

    # --- small helpers -------------------------------------------------------------------
    def t(self, key: str) -> str:
        return text(self.lang, key)

    def money(self, minor: int) -> str:
        return amount(minor, self.d.currency, self.lang)

    def when(self, value: date | None) -> str:
        return day(value, self.lang) if value else ""

    # --- planning ------------------------------------------------------------------------
    def _footer_lines(self) -> list[str]:
        b = self.seller.branding
        lines = wrap(b.footer, RIGHT - LEFT, self.font, SMALL) if b.footer.strip() else []
        contact = [self.seller.party.name]
        if b.contact_email:
            contact.append(f"{self.t('email')}: {b.contact_email}")
        if b.contact_phone:
            contact.append(f"{self.t('phone')}: {b.contact_phone}")
        return lines + wrap("  ·  ".join(contact), RIGHT - LEFT - 80, self.font, SMALL)

    @property
    def footer_top(self) -> float:
        return 30.0 + LEADING * 0.85 * len(self.footer_lines) + 8

    def line_rows(self) -> list[Row]:
        rows: list[Row] = []
        delivered = self.delivered()
        for li in self.d.lines:
            desc = tuple(wrap(li.description, COL_DESC_WIDTH, self.font))
            sub = ""
            if li.period_start and li.period_end and (li.period_start, li.period_end) != delivered:
                sub = texts.period(li.period_start, li.period_end, self.lang)
            rows.append(Row(li, desc, sub, LEADING * (len(desc) + (1 if sub else 0)) + 3))
        return rows

    def draw_row(self, c: Canvas, y: float, row: Row) -> None:
        li = row.line
        c.setFont(self.font, SIZE)
        base = y - LEADING + 3
        for i, part in enumerate(row.description):
            c.drawString(LEFT, base - i * LEADING, part)
        if row.period:
            c.setFont(self.font, SMALL)
            c.setFillColor(GREY)
            c.drawString(LEFT, base - len(row.description) * LEADING, row.period)
            c.setFillColor(black)
            c.setFont(self.font, SIZE)
        right(c, COL_QTY, base, texts.number(li.quantity, self.lang), COL_QTY - LEFT - COL_DESC_WIDTH - 6, self.font)
        if self.net_prices:
            price, amount = unit_net(li), li.net_minor
        else:
            price, amount = li.unit_price_minor, li.gross_minor
        right(c, COL_PRICE, base, self.money(price), COL_PRICE - COL_QTY - 4, self.font)
        right(c, COL_RATE, base, texts.percent(li.vat_rate_bp, self.lang), COL_RATE - COL_PRICE - 4, self.font)
        right(c, COL_AMOUNT, base, self.money(amount), COL_AMOUNT - COL_RATE - 4, self.font)

    def summary_height(self) -> float:
        if self.d.kind in (Kind.REMINDER, Kind.STOP_NOTICE):
            return LEADING * 3 + 14
        vat_rows = 2 + len(self.d.vat)
        total_rows = 4 + (1 if self.d.credit_applied_minor else 0)
        return LEADING * max(vat_rows, total_rows) + 24

    def tail_height(self) -> float:
        return self.summary_height() + PAYMENT_HEIGHT + 16

    def plan(self, head_bottom: float) -> list[list[Row]]:
        """The line rows per page; the last page also has room for the summary and payment part."""
        pages: list[list[Row]] = [[]]
        table_head = LEADING + 8
        y = head_bottom - table_head
        bottom = self.footer_top + 14
        for row in self.line_rows():
            if y - row.height < bottom:
                pages.append([])
                y = self.continuation_top() - table_head
            pages[-1].append(row)
            y -= row.height
        if y - self.tail_height() < self.footer_top:
            pages.append([])
        return pages

    def continuation_top(self) -> float:
        return float(HEIGHT - BAND - 56)

    # --- drawing -------------------------------------------------------------------------
    def render(self) -> bytes:
        buf = io.BytesIO()
        c = FauxBoldCanvas(buf, pagesize=A4, invariant=1, pageCompression=1, pdfVersion=(1, 4),
                           initialFontName=self.font, initialFontSize=SIZE)
        issued = self.d.issue_date
        c.setDateFormatter(lambda *_: f"D:{issued.year:04d}{issued.month:02d}{issued.day:02d}000000+00'00'")
        c.setTitle(f"{texts.title(self.d.kind, self.lang)} {self.d.number}")
        c.setAuthor(self.seller.party.name)
        c.setCreator("Abonno")
        c.setProducer("Abonno")
        c.setSubject(self.d.id)
        doc = c._doc  # reportlab offers no public way to fix the file identifier
        digest = hashlib.sha256(f"{self.d.id}|{self.d.number}|{issued}|{TEMPLATE_VERSION}".encode()).digest()[:16]
        hexid = digest.hex().upper().encode()
        doc._ID = b"\n[<" + hexid + b"><" + hexid + b">]\n"

        head_bottom = self.measure_head()
        pages = self.plan(head_bottom)
        for index, rows in enumerate(pages):
            first, last = index == 0, index == len(pages) - 1
            y = self.draw_head(c) if first else self.draw_continuation_head(c)
            if rows or (first and self.d.lines):
                y = self.draw_table_head(c, y)
                for row in rows:
                    self.draw_row(c, y, row)
                    y -= row.height
            if last:
                y = self.draw_summary(c, y - 8)
                self.draw_payment(c, y - 8)
            else:
                c.setFont(self.font, SMALL)
                c.setFillColor(GREY)
                c.drawRightString(RIGHT, self.footer_top + 2, self.t("carried"))
                c.setFillColor(black)
            self.draw_footer(c, index + 1, len(pages))
            c.showPage()
        c.save()
        return buf.getvalue()

    def measure_head(self) -> float:
        return self.draw_head(None)

    def draw_head(self, c: Canvas | None) -> float:
        """Draw the first page's head (or only measure it when ``c`` is None): its bottom y."""
        d, lang = self.d, self.lang
        if c is not None:
            c.setFillColor(self.colour)
            c.rect(0, HEIGHT - BAND, WIDTH, BAND, stroke=0, fill=1)
            c.setFillColor(black)
        top = HEIGHT - BAND - 18
        # logo at the left, title at the right
        logo_bottom = top
        if self.logo is not None:
            reader, (w, h) = self.logo
            scale = min(150 / w, 50 / h)
            if c is not None:
                c.drawImage(reader, LEFT, top - h * scale, w * scale, h * scale, mask="auto")
            logo_bottom = top - h * scale
        title = texts.title(d.kind, lang)
        if c is not None:
            c.setFont(self.bold, 18)
            c.setFillColor(self.colour)
            c.drawRightString(RIGHT, top - 16, title)
            c.setFillColor(black)
        y = top - 26
        if self.preview:
            if c is not None:
                label = self.t("preview")
                c.setFillColor(PREVIEW_RED)
                c.setFont(self.bold, 10)
                label_width = width(label, self.bold, 10)
                c.roundRect(RIGHT - label_width - 12, y - 16, label_width + 12, 18, 3, stroke=1, fill=0)
                c.drawRightString(RIGHT - 6, y - 11, label)
                c.setFillColor(black)
            y -= 24
        # seller at the right
        y = self.draw_block(c, FACTS_X, y - 4, self.seller_lines(), RIGHT - FACTS_X)
        # buyer at the left (the envelope window)
        left_y = self.draw_block(c, LEFT, min(logo_bottom, HEIGHT - 150) - 12, self.buyer_lines(), 250,
                                 label=self.t("buyer"))
        y = self.draw_facts(c, FACTS_X, y - 10)
        y = min(y, left_y) - 10
        return self.draw_kind_text(c, y)

    def seller_lines(self) -> list[tuple[str, bool]]:
        s = self.seller
        p = s.party
        lines: list[tuple[str, bool]] = [(p.name, True)]
        if p.address:
            lines.append((p.address, False))
        if p.postal_code or p.city:
            lines.append((f"{p.postal_code or ''} {p.city or ''}".strip(), False))
        norway = self.country == "NO"
        if p.organization_number:  # Norway: "MVA" after it when VAT-registered (bokføringsforskriften § 5-1-1)
            suffix = " MVA" if norway and s.vat_registered else ""
            lines.append((f"{self.t('org_number')} {orgnr_text(p)}{suffix}", False))
        if norway and s.company:
            lines.append(("Foretaksregisteret", False))
        vat = vat_number(s)
        if not norway and vat:  # Sweden and elsewhere: the VAT registration number
            lines.append((f"{self.t('vat_number')}: {vat}", False))
        if s.branding.contact_email:
            lines.append((f"{self.t('email')}: {s.branding.contact_email}", False))
        if s.branding.contact_phone:
            lines.append((f"{self.t('phone')}: {s.branding.contact_phone}", False))
        return lines

    def buyer_lines(self) -> list[tuple[str, bool]]:
        b = self.d.letter.buyer
        lines: list[tuple[str, bool]] = [(b.name, True)]
        if b.address:
            lines.append((b.address, False))
        if b.postal_code or b.city:
            lines.append((f"{b.postal_code or ''} {b.city or ''}".strip(), False))
        if b.country != self.country:
            lines.append((b.country, False))
        if b.organization_number:
            lines.append((f"{self.t('org_number')} {orgnr_text(b)}", False))
        return lines

    def draw_block(self, c: Canvas | None, x: float, y: float, lines: list[tuple[str, bool]], limit: float,
                   label: str = "") -> float:
        if label:
            if c is not None:
                c.setFont(self.font, SMALL)
                c.setFillColor(GREY)
                c.drawString(x, y, label)
                c.setFillColor(black)
            y -= LEADING
        for value, bold in lines:
            font = self.bold if bold else self.font
            for part in wrap(value, limit, font):
                if c is not None:
                    c.setFont(font, SIZE)
                    c.drawString(x, y, part)
                y -= LEADING
        return y

    def delivered(self) -> tuple[date, date] | None:
        """The delivery period: the document's, else (a credit note) the span its lines cover."""
        if self.d.period:
            return self.d.period
        starts = [li.period_start for li in self.d.lines if li.period_start]
        ends = [li.period_end for li in self.d.lines if li.period_end]
        return (min(starts), max(ends)) if starts and ends else None

    def facts(self) -> list[tuple[str, str]]:
        d = self.d
        facts: list[tuple[str, str]] = []
        if d.kind is Kind.CREDIT_NOTE:
            facts.append((self.t("credit_note_number"), str(d.number)))
            facts.append((self.t("credit_note_date"), self.when(d.issue_date)))
        elif d.kind.is_invoice:
            if not self.preview:
                facts.append((self.t("invoice_number"), str(d.number)))
            facts.append((self.t("invoice_date"), self.when(d.issue_date)))
        else:
            if d.kind is Kind.REMINDER:
                facts.append((self.t("reminder_step"), str(d.reminder_step)))
            facts.append((self.t("date"), self.when(d.issue_date)))
            if d.invoice_number is not None:
                facts.append((self.t("concerns_invoice"), str(d.invoice_number)))
        if d.kind.is_invoice or d.kind is Kind.CREDIT_NOTE:
            delivered = self.delivered()
            if delivered:
                facts.append((self.t("delivery_period"), texts.period(delivered[0], delivered[1], self.lang)))
            else:
                facts.append((self.t("delivery_date"), self.when(d.issue_date)))
        if d.kind is Kind.STOP_NOTICE:
            facts.append((self.t("stop_date"), self.when(d.stop_date or d.due_date)))
        elif d.due_date and d.kind is not Kind.CREDIT_NOTE:
            facts.append((self.t("due_date"), self.when(d.due_date)))
        facts.append((self.t("customer_number"), str(d.letter.subscriber_no)))
        if d.letter.buyer_reference:
            facts.append((self.t("your_reference"), d.letter.buyer_reference))
        if d.kid and d.kind is not Kind.CREDIT_NOTE:
            facts.append((texts.reference_label(self.country, self.lang), d.kid))
        return facts

    def draw_facts(self, c: Canvas | None, x: float, y: float) -> float:
        for label, value in self.facts():
            parts = wrap(value, FACTS_VALUE_WIDTH, self.bold)
            if c is not None:
                c.setFont(self.font, SMALL)
                c.setFillColor(GREY)
                c.drawString(x, y, label)
                c.setFillColor(black)
                c.setFont(self.bold, SIZE)
                for i, part in enumerate(parts):
                    c.drawRightString(RIGHT, y - i * LEADING, part)
            y -= LEADING * len(parts)
        return y

    def kind_paragraphs(self) -> list[str]:
        d = self.d
        if d.kind is Kind.CREDIT_NOTE:
            ref = f"{self.t('credits_invoice')} {d.invoice_number}"
            if d.invoice_issue_date:
                ref += f" {self.t('dated')} {self.when(d.invoice_issue_date)}"
            out = [ref]
            if d.reason:
                out.append(f"{self.t('reason')}: {d.reason}")
            return out
        if d.kind is Kind.REMINDER:
            ref = f"{self.t('concerns_invoice')} {d.invoice_number}"
            if d.invoice_issue_date:
                ref += f" {self.t('dated')} {self.when(d.invoice_issue_date)}"
            return [self.t("reminder_text"), ref]
        if d.kind is Kind.STOP_NOTICE:
            stop = self.when(d.stop_date or d.due_date)
            return [self.t("stop_text").format(date=stop),
                    self.t("how_to_pay").format(reference=texts.reference_label(self.country, self.lang))]
        return []

    def draw_kind_text(self, c: Canvas | None, y: float) -> float:
        for paragraph in self.kind_paragraphs():
            for part in wrap(paragraph, RIGHT - LEFT, self.font):
                if c is not None:
                    c.setFont(self.font, SIZE)
                    c.drawString(LEFT, y, part)
                y -= LEADING
            y -= 3
        return y

    def draw_continuation_head(self, c: Canvas) -> float:
        c.setFillColor(self.colour)
        c.rect(0, HEIGHT - BAND, WIDTH, BAND, stroke=0, fill=1)
        c.setFillColor(black)
        top = HEIGHT - BAND - 24
        c.setFont(self.bold, SIZE)
        c.drawString(LEFT, top, self.seller.party.name[:80])
        label = texts.title(self.d.kind, self.lang)
        if not self.preview:
            label += f" {self.d.number}"
        else:
            label += f" – {self.t('preview')}"
        c.drawRightString(RIGHT, top, label)
        return self.continuation_top()

    def draw_table_head(self, c: Canvas, y: float) -> float:
        c.setFont(self.bold, SIZE)
        base = y - LEADING + 3
        c.drawString(LEFT, base, self.t("description"))
        net = "_net" if self.net_prices else ""
        for x, room, key in ((COL_QTY, 40.0, "quantity"), (COL_PRICE, COL_PRICE - COL_QTY - 4, f"unit_price{net}"),
                             (COL_RATE, COL_RATE - COL_PRICE - 4, "vat_rate"),
                             (COL_AMOUNT, COL_AMOUNT - COL_RATE - 4, f"line_amount{net}")):
            right(c, x, base, self.t(key), room, self.bold)
        c.setStrokeColor(self.colour)
        c.setLineWidth(0.8)
        c.line(LEFT, y - LEADING, RIGHT, y - LEADING)
        c.setStrokeColor(black)
        return y - LEADING - 6

    def draw_summary(self, c: Canvas, y: float) -> float:
        d = self.d
        if d.kind in (Kind.REMINDER, Kind.STOP_NOTICE):
            return self.draw_demand_summary(c, y)
        c.setStrokeColor(self.colour)
        c.setLineWidth(0.5)
        c.line(LEFT, y + 4, RIGHT, y + 4)
        c.setStrokeColor(black)
        top = y - LEADING
        # VAT per rate: rate, basis, VAT
        c.setFont(self.bold, SIZE)
        c.drawString(LEFT, top, self.t("vat_rate"))
        c.drawRightString(LEFT + 130, top, self.t("vat_basis"))
        c.drawRightString(LEFT + 235, top, self.t("vat"))
        c.setFont(self.font, SIZE)
        vy = top
        for part in d.vat:
            vy -= LEADING
            c.drawString(LEFT, vy, texts.percent(part.rate_bp, self.lang))
            c.drawRightString(LEFT + 130, vy, self.money(part.net_minor))
            c.drawRightString(LEFT + 235, vy, self.money(part.vat_minor))
        # totals at the right
        label_x = 335.0
        ty = top
        rows = [(self.t("net_total"), d.net_minor, False), (self.t("vat_total"), d.vat_minor, False),
                (self.t("total"), d.total_minor, d.kind is Kind.CREDIT_NOTE)]
        if d.kind is not Kind.CREDIT_NOTE:
            if d.credit_applied_minor:
                rows.append((self.t("credit_applied"), -d.credit_applied_minor, False))
            rows.append((self.t("amount_due"), d.amount_due_minor, True))
        for label, value, bold in rows:
            c.setFont(self.bold if bold else self.font, SIZE)
            c.drawString(label_x, ty, label)
            c.drawRightString(RIGHT, ty, self.money(value))
            ty -= LEADING
        return min(vy, ty) - 10

    def draw_demand_summary(self, c: Canvas, y: float) -> float:
        d = self.d
        c.setStrokeColor(self.colour)
        c.setLineWidth(0.5)
        c.line(LEFT, y + 4, RIGHT, y + 4)
        c.setStrokeColor(black)
        ty = y - LEADING
        rows: list[tuple[str, int, bool]] = []
        if d.kind is Kind.REMINDER:
            rows.append((self.t("outstanding"), d.total_minor - d.fee_minor, False))
            rows.append((self.t("reminder_fee"), d.fee_minor, False))
            rows.append((self.t("amount_due"), d.amount_due_minor, True))
        else:
            rows.append((self.t("owed"), d.total_minor, True))
        for label, value, bold in rows:
            c.setFont(self.bold if bold else self.font, SIZE)
            c.drawString(335.0, ty, label)
            c.drawRightString(RIGHT, ty, self.money(value))
            ty -= LEADING
        return ty - 10

    def draw_payment(self, c: Canvas, y: float) -> None:
        """The payment part: in a box above the footer of the last page."""
        d = self.d
        top = min(y, self.footer_top + PAYMENT_HEIGHT + 8)
        bottom = top - PAYMENT_HEIGHT
        c.setStrokeColor(self.colour)
        c.setLineWidth(1)
        c.rect(LEFT, bottom, RIGHT - LEFT, PAYMENT_HEIGHT, stroke=1, fill=0)
        c.setStrokeColor(black)
        x = LEFT + 10
        c.setFont(self.bold, 10)
        c.setFillColor(self.colour)
        c.drawString(x, top - 16, self.t("payment"))
        c.setFillColor(black)
        if d.kind is Kind.CREDIT_NOTE:
            c.setFont(self.font, SIZE)
            c.drawString(x, top - 36, self.t("nothing_to_pay"))
            return
        if d.amount_due_minor <= 0:
            c.setFont(self.font, SIZE)
            c.drawString(x, top - 36, self.t("nothing_due"))
            return
        # a reminder or a stop notice is paid by giro whatever the method: the charge already failed
        method = d.letter.payment if d.kind.is_invoice else PaymentMethod.GIRO
        due = self.when(d.due_date)
        if method is PaymentMethod.GIRO:
            reference = d.kid if d.kid else self.t("preview_no_kid")
            cells = [(texts.account_label(self.country, self.lang),
                      account_text(self.seller.bank_account, self.country)),
                     (texts.reference_label(self.country, self.lang), reference),
                     (self.t("amount"), self.money(d.amount_due_minor)),
                     (self.t("due_date"), due)]
        else:
            c.setFont(self.bold, SIZE)
            c.drawString(x, top - 34, texts.payment_note(method, self.lang))
            cells = [(self.t("amount"), self.money(d.amount_due_minor)), (self.t("charge_date"), due)]
        for i, (label, value) in enumerate(cells):
            cx = x + (i % 2) * 240
            cy = top - (50 if method is not PaymentMethod.GIRO else 34) - (i // 2) * 28
            c.setFont(self.font, SMALL)
            c.setFillColor(GREY)
            c.drawString(cx, cy, label)
            c.setFillColor(black)
            c.setFont(self.bold, 11 if width(value, self.bold, 11) < 225 else SIZE)
            c.drawString(cx, cy - 13, value)

    def draw_footer(self, c: Canvas, page: int, pages: int) -> None:
        c.setStrokeColor(self.colour)
        c.setLineWidth(0.8)
        c.line(LEFT, self.footer_top - 2, RIGHT, self.footer_top - 2)
        c.setStrokeColor(black)
        c.setFont(self.font, SMALL)
        c.setFillColor(GREY)
        y = self.footer_top - 12
        for part in self.footer_lines:
            c.drawString(LEFT, y, part)
            y -= LEADING * 0.85
        c.drawRightString(RIGHT, 30, self.t("page").format(page=page, pages=pages))
        c.setFillColor(black)


LOGO_PIXELS = (600, 200)  # 4 times the drawn size (150 x 50 pt): sharp in print, small in the PDF
LOGO_MOST_PIXELS = 50_000_000  # a larger image is not decoded at all


@lru_cache(maxsize=32)
def _prepared_logo(logo: bytes) -> bytes | None:
    """The logo scaled down to what the document draws, as PNG (its transparency kept), or
    None when it does not read as an image: an organisation's big logo is not embedded in
    every document at full size, and it is decoded once per process, not per document."""
    try:
        with Image.open(io.BytesIO(logo)) as image:
            if image.width * image.height > LOGO_MOST_PIXELS:
                return None
            image.load()
            picture = image.convert("RGBA" if "A" in image.getbands() or "transparency" in image.info else "RGB")
        picture.thumbnail(LOGO_PIXELS, Image.Resampling.LANCZOS)
        out = io.BytesIO()
        picture.save(out, "PNG")
        return out.getvalue()
    except Exception:  # whatever a broken image raises, the document renders without it
        return None


def _image(logo: bytes | None) -> tuple[ImageReader, tuple[int, int]] | None:
    """The logo, if it reads as an image (PNG or JPEG); a broken image is left out."""
    prepared = _prepared_logo(logo) if logo else None
    if prepared is None:
        return None
    reader = ImageReader(io.BytesIO(prepared))
    w, h = reader.getSize()
    return (reader, (w, h)) if w > 0 and h > 0 else None


def render_pdf(document: Document, logo: bytes | None = None) -> bytes:
    """The document as PDF bytes (the same document and logo give the same bytes)."""
    version = document.letter.template_version
    if version not in TEMPLATES:
        raise ValueError(f"document {document.id}: unknown template version {version} "
                         f"(this renderer draws {sorted(TEMPLATES)})")
    return _Renderer(document, logo).render()
