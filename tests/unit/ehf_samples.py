"""EHF sample documents built from real domain values (``letter_for``, ``of_invoice``,
``of_credit_note``): the cases ``tests/unit/test_ehf.py`` validates and the files in
``tests/data/ehf/`` that were also run through the official validator (docs/ehf.md).

Regenerate the files (after a deliberate change, then re-run the official tool):
``.venv/bin/python -m tests.unit.ehf_samples``.
"""

from __future__ import annotations

import dataclasses
import zlib
from datetime import date
from pathlib import Path

from shared.documents.ehf import render_ehf
from shared.domain.calendar import Period
from shared.domain.catalogue import Branding, FeeTaxPolicy, Frequency, Organization, PaymentType
from shared.domain.documents import Document, of_credit_note, of_invoice
from shared.domain.invoicing import CreditNote, DocumentKind, Invoice, InvoiceDraft, InvoiceLine, fee_lines, line
from shared.domain.letters import Letter, letter_for
from shared.domain.subscriptions import Subscriber, Subscription

DATA = Path(__file__).resolve().parents[1] / "data" / "ehf"


def tiny_pdf(text: str = "Abonno") -> bytes:
    """A small valid one-page PDF (header, catalog, pages, page, content stream, xref)."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
               b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
               b"/Resources << /Font << /F1 5 0 R >> >> >>",
               b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream),
               b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for i, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (i, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


PDF = tiny_pdf()
assert zlib.crc32(PDF)  # the same bytes every run (no dates, no ids)

NO_ORG = Organization("avisa", "Avisa Nordvest AS", "NOK", organization_number="974760673",
                      bank_account="8601.11.17947", address="Storgata 1", postal_code="6413", city="Molde",
                      branding=Branding(contact_email="faktura@avisa.no", contact_phone="+47 71 00 00 00"))
SE_ORG = Organization("tidning", "Tidningen Norrland AB", "SEK", time_zone="Europe/Stockholm", country="SE",
                      organization_number="556036-0793", bank_account="5050-1055", address="Storgatan 2",
                      postal_code="90326", city="Umeå")
NO_BUYER = Subscriber(101, "Bedrift AS", "post@bedrift.no", address="Kongens gate 3\n2. etasje", postal_code="0153",
                      city="Oslo", organization_number="923609016")
SE_BUYER = Subscriber(202, "Företaget AB", "info@foretaget.se", address="Kungsgatan 4", postal_code="11143",
                      city="Stockholm", country="SE", organization_number="5567037485")
MONTH = Period(date(2026, 1, 1), date(2026, 2, 1))


def subscription(payment: PaymentType = PaymentType.INVOICE, buyer_reference: str = "") -> Subscription:
    return Subscription("s1", "plan", "avisa", Frequency.MONTHLY, MONTH.start, payment, buyer_reference=buyer_reference)


def letter(org: Organization = NO_ORG, buyer: Subscriber = NO_BUYER, payment: PaymentType = PaymentType.INVOICE,
           buyer_reference: str = "") -> Letter:
    return letter_for(buyer, org, subscription(payment, buyer_reference))


def invoice(lines: list[InvoiceLine], the_letter: Letter, number: int = 1001, credit: int = 0,
            kind: DocumentKind = DocumentKind.SUBSCRIPTION) -> Invoice:
    draft = InvoiceDraft("s1", 0, "avisa", the_letter.currency, date(2025, 12, 17), date(2026, 1, 1),
                         tuple(lines), kind, "" if kind is DocumentKind.SUBSCRIPTION else f"r{number}")
    return Invoice(number, number - 1000, f"{number:07d}", draft, credit, the_letter)  # KID: any digits here


def credit_note(inv: Invoice, number: int = 1) -> Document:
    assert inv.letter is not None
    note = CreditNote(number, inv.number, 900 + number, "avisa", inv.draft.currency, "s1", date(2026, 1, 10),
                      inv.total_minor, "Cancelled before delivery", tuple(-li for li in inv.draft.lines), inv.letter)
    return of_credit_note(note, inv.letter, inv)


def newspaper(price: int = 39900, rate: int = 0, copies: int = 1, name: str = "Avisa Nordvest") -> InvoiceLine:
    return line(name, copies, price, rate, "avis", MONTH)


def tiny_lines(n: int) -> list[InvoiceLine]:
    """``n`` lines of 0.03 at 25 %: each has 0.01 VAT, so taxable x rate (0.005 per line)
    falls behind the VAT we charged by half an øre per line."""
    return [line(f"Sample {i}", 1, 3, 2500) for i in range(n)]


def invoices() -> dict[str, Invoice]:
    """The invoice cases: each name says what it shows."""
    products = [newspaper(34900, 2500, 1, "Kryssord-appen"), newspaper(12300, 1500, 3, "Matkasse"),
                newspaper(9900, 1200, 1, "Kino"), newspaper(39900, 0)]
    return {
        "no-25-giro-buyer-ref": invoice([newspaper(34900, 2500, 1, "Kryssord-appen")],
                                        letter(buyer_reference="PO-4711 Innkjøp")),
        "no-0-zero-rated": invoice([newspaper(39900, 0, 2)], letter()),
        "no-mixed-25-15-12-0-fee-prepaid": invoice(
            products + fee_lines(3900, products, FeeTaxPolicy.DISTRIBUTIONAL), letter(), credit=20000),
        "no-fee-no-tax-prepaid-all": invoice([newspaper(39900, 2500), *fee_lines(4900, [], FeeTaxPolicy.NO_TAX)],
                                             letter(), credit=44800),
        "no-avtalegiro": invoice([newspaper(39900, 0)], letter(payment=PaymentType.AVTALEGIRO)),
        "no-vipps": invoice([newspaper(39900, 2500)], letter(payment=PaymentType.VIPPS)),
        "no-card": invoice([newspaper(39900, 2500)], letter(payment=PaymentType.CARD)),
        "no-not-vat-registered": invoice([newspaper(39900, 0)],
                                         letter(dataclasses.replace(NO_ORG, vat_registered=False))),
        "no-to-se-buyer": invoice([newspaper(39900, 2500)], letter(buyer=SE_BUYER, buyer_reference="Ref 42")),
        "no-additional": invoice([line("Ekstra eksemplar", 2, 4900, 2500)], letter(), 1009,
                                 kind=DocumentKind.ADDITIONAL),
        "no-balance": invoice([line("Levert 1.-10. januar", 1, 12870, 0, None, MONTH)], letter(), 1010,
                              kind=DocumentKind.BALANCE),
        "se-25-6-0-exempt-bankgiro": invoice(
            [newspaper(19900, 600), newspaper(9900, 2500, 1, "Korsord"), newspaper(5000, 0, 1, "Medlemsblad")],
            letter(SE_ORG, SE_BUYER, buyer_reference="Inköp 7")),
        "se-to-no-buyer": invoice([newspaper(19900, 1200, 2)], letter(SE_ORG, NO_BUYER)),
        "se-not-vat-registered": invoice([newspaper(19900, 0)],
                                         letter(dataclasses.replace(SE_ORG, vat_registered=False), SE_BUYER)),
        # BR-CO-17's tolerance: lines of 0.03 at 25 % each carry 0.01 VAT, half an øre more
        # than their taxable 0.02 x 25 %: 5 such lines are 0.03 apart (the package's own
        # tolerance is 0.01, the official one under 1.00), 199 lines are 0.99 apart
        "no-br-co-17-5-lines": invoice(tiny_lines(5), letter(), 1011, kind=DocumentKind.ADDITIONAL),
        "no-br-co-17-199-lines": invoice(tiny_lines(199), letter(), 1012, kind=DocumentKind.ADDITIONAL),
    }


def documents() -> dict[str, Document]:
    out: dict[str, Document] = {}
    for n, (name, inv) in enumerate(invoices().items(), start=1):
        assert inv.letter is not None
        out[f"invoice-{name}"] = of_invoice(inv, inv.letter)
        if inv.draft.kind is DocumentKind.SUBSCRIPTION:
            out[f"credit-note-{name}"] = credit_note(inv, n)
    return out


def write(directory: Path = DATA) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, doc in documents().items():
        path = directory / f"{name}.xml"
        path.write_bytes(render_ehf(doc, PDF))
        paths.append(path)
    return paths


if __name__ == "__main__":
    for p in write():
        print(p)
