"""EHF 3.0 (PEPPOL BIS Billing 3.0): invoices and credit notes as UBL 2.1 for organisations.

Manual 7.12: a subscriber with an organisation number gets its invoices and credit notes
as EHF when the organisation sends EHF. ``render_ehf`` turns a ``Document`` (an invoice,
additional or balance invoice: UBL ``Invoice`` 380; a credit note: UBL ``CreditNote``
381) and its PDF (attached, BT-125) into the XML an access point accepts: it passes the
official EN 16931 and PEPPOL BIS Billing 3.0 schematrons with no fatal error
(``docs/ehf.md`` has the evidence and the mapping).

What the rules make us think about (each is tested under its rule id in
``tests/unit/test_ehf.py``):

* Amounts are gross in our domain, net in UBL. A line's net amount is its gross less
  the VAT we charged on it, so per category the taxable amount plus the VAT we charged
  is exactly the gross (BR-CO-10/13/15/16 hold to the øre, and the payable amount is
  what the document asks for). The VAT was rounded per line, so a category's VAT can
  differ from taxable x rate by up to 0.625 øre per line: the official BR-CO-17/BR-S-09
  tolerance is under one whole currency unit, which ``why_not_ehf`` checks.
* VAT category (UNCL 5305): a seller not VAT registered sells outside VAT, ``O``
  (BR-O-*: no VAT identifier, no other category, a reason); otherwise a rate above zero
  is ``S`` with its percent (Norway's 15 % and 12 % too), and zero is ``Z`` in Norway
  (zero rated, "fritatt": newspapers, mval. § 6-2) and ``E`` in Sweden (exempt,
  "undantag från skatteplikt", with its reason: BR-E-10). A Swedish seller's standard
  rate must be 25, 12 or 6 % (SE-R-006).
* Parties by organisation number: electronic address and legal entity with scheme 0192
  (Norway, MOD11: PEPPOL-COMMON-R041) or 0007 (Sweden, Luhn: PEPPOL-COMMON-R049); the
  seller's VAT identifier ``NO`` + number + ``MVA`` (NO-R-001) or the Swedish
  ``SE…01`` (SE-R-001/002); "Foretaksregisteret" for a Norwegian company (NO-R-002).
* BuyerReference or OrderReference is required (PEPPOL-EN16931-R003): the reference the
  subscriber gave is both; without one, the buyer reference is the subscriber number,
  the account the buyer has with the seller.
* Payment means (UNCL 4461): giro is a credit transfer (30) with the KID as payment id
  and the account (BR-61; a Swedish bankgiro as ``SE:BANKGIRO``, SE-R-011); AvtaleGiro is
  a direct debit (49) whose mandate is its KID (PEPPOL-EN16931-R061); Vipps an online
  payment service (68); card a bank card (48).
* A credit note's amounts are positive (its lines credit), it refers to the invoice it
  credits (BG-3), and its payable amount is what it credits.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum
from functools import lru_cache

from lxml import etree  # type: ignore[import-untyped]
from stdnum.no import kontonr
from stdnum.no import orgnr as no_orgnr
from stdnum.se import orgnr as se_orgnr

from shared.domain.documents import Document, Kind
from shared.domain.invoicing import InvoiceLine
from shared.domain.letters import Party, PaymentMethod, Seller

CUSTOMIZATION_ID = "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0"
PROFILE_ID = "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"  # BIS Billing 3.0, process P1
EHF_KINDS = frozenset({Kind.INVOICE, Kind.ADDITIONAL, Kind.BALANCE, Kind.CREDIT_NOTE})
ehf_kinds = EHF_KINDS  # the name the delivery side asks with

NS_INVOICE = "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
NS_CREDIT_NOTE = "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2"
CAC = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
CBC = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"

ENDPOINT_SCHEME = {"NO": "0192", "SE": "0007"}  # ISO 6523 ICD: Enhetsregisteret, Bolagsverket
SE_STANDARD_RATES_BP = frozenset({600, 1200, 2500})  # SE-R-006
SE_VAT_NUMBER = re.compile("SE[0-9]{12}")  # SE-R-001/002
UNIT = "EA"  # UN/ECE Rec. 20 "each": copies, months of a subscription, a fee
OFFICIAL_TOLERANCE_MINOR = 100  # BR-CO-17/BR-S-09: |tax - taxable x rate| < 1 currency unit

NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")  # XML 1.0 Char

INVOICE_TYPE = "380"  # UNCL 1001 commercial invoice
CREDIT_NOTE_TYPE = "381"  # UNCL 1001 credit note


class Category(StrEnum):
    """UNCL 5305 VAT category codes Abonno uses."""

    STANDARD = "S"
    ZERO = "Z"
    EXEMPT = "E"
    NOT_SUBJECT = "O"


EXEMPTION_REASON = {Category.EXEMPT: "Undantag från skatteplikt (mervärdesskattelagen)",
                    Category.NOT_SUBJECT: "Not subject to VAT"}
EXEMPTION_CODE = {Category.NOT_SUBJECT: "VATEX-EU-O"}  # PEPPOL-EN16931-P0105: O goes with VATEX-EU-O


class PaymentMeansCode(StrEnum):
    """UNCL 4461 (BR-CL-16)."""

    NOT_DEFINED = "1"
    CREDIT_TRANSFER = "30"
    BANK_CARD = "48"
    DIRECT_DEBIT = "49"
    ONLINE_PAYMENT_SERVICE = "68"


class NotEhf(ValueError):
    """The document cannot be a valid EHF document; the message says why."""


# ---------------------------------------------------------------- what can be EHF


@lru_cache(maxsize=1024)  # parties repeat (one seller, a few buyers) and stdnum is not free
def organization_number(party: Party) -> str | None:
    """The party's organisation number as PEPPOL writes it (digits only), if it is valid
    for its country's scheme (0192 Norway, 0007 Sweden); else None."""
    number = party.organization_number
    if not number or party.country not in ENDPOINT_SCHEME:
        return None
    module = se_orgnr if party.country == "SE" else no_orgnr
    return str(module.compact(number)) if module.is_valid(number) else None


def seller_vat_id(seller: Seller) -> str | None:
    """BT-31: ``NO`` + organisation number + ``MVA`` (NO-R-001) or the Swedish VAT number
    (``SE`` + organisation number + ``01``, 14 characters: SE-R-001/002); None when the
    seller is not VAT registered."""
    number = organization_number(seller.party)
    if not seller.vat_registered or number is None:
        return None
    if seller.party.country == "NO":
        return f"NO{number}MVA"
    vat = "".join((seller.vat_number or f"SE{number}01").split()).upper()
    return vat if SE_VAT_NUMBER.fullmatch(vat) else None


def category(rate_bp: int, seller: Seller) -> Category:
    """The VAT category of a line at ``rate_bp`` sold by ``seller`` (see the module docstring)."""
    if not seller.vat_registered:
        return Category.NOT_SUBJECT
    if rate_bp > 0:
        return Category.STANDARD
    return Category.EXEMPT if seller.party.country == "SE" else Category.ZERO


def why_not_ehf(document: Document) -> str | None:
    """None when ``render_ehf`` makes a valid EHF document of ``document``; else why not."""
    if document.kind not in EHF_KINDS:
        return f"a {document.kind.value} is not an EHF document (invoices and credit notes are)"
    if document.number <= 0:
        return "a preview has no number; only issued documents are sent"
    if not document.lines:
        return "an EHF document has at least one line (BR-16)"
    seller, buyer = document.letter.seller, document.letter.buyer
    if organization_number(seller.party) is None:
        return "the seller has no valid Norwegian or Swedish organisation number (PEPPOL-EN16931-R020)"
    if organization_number(buyer) is None:
        return "the buyer has no valid Norwegian or Swedish organisation number (PEPPOL-EN16931-R010)"
    if seller.vat_registered and seller_vat_id(seller) is None:
        return f"the seller's VAT number {seller.vat_number!r} is not SE + 12 digits (SE-R-001/002)"
    return _why_not_vat(document)


def _why_not_vat(document: Document) -> str | None:
    seller = document.letter.seller
    gross = sign(document) * sum(li.gross_minor for li in document.lines)
    if gross != sign(document) * document.total_minor:
        return f"the lines sum to {gross}, the document's total is {document.total_minor}"
    rates = {li.vat_rate_bp for li in document.lines}
    if not seller.vat_registered and rates != {0}:
        return "a seller not registered for VAT charges none (BR-O-*): a line has a VAT rate"
    if seller.party.country == "SE" and rates - SE_STANDARD_RATES_BP - {0}:
        return f"a Swedish seller's VAT rates are 25, 12 and 6 % (SE-R-006), not {sorted(rates)} bp"
    for part in breakdown(document):
        if part.category is Category.STANDARD and not within_official_tolerance(part):
            return (f"VAT {part.tax_minor} at {part.rate_bp} bp is not within one currency unit of "
                    f"{part.taxable_minor} x rate (BR-CO-17): too many lines rounded at this rate")
    return None


def can_be_ehf(document: Document) -> bool:
    """An invoice or credit note to an organisation (a valid organisation number) from a
    seller with one, whose figures EHF can carry; never a reminder or a stop notice."""
    return why_not_ehf(document) is None


# ---------------------------------------------------------------- figures


@dataclass(frozen=True, slots=True)
class UblLine:
    """One line as UBL carries it: net, in the document's sign convention."""

    line: InvoiceLine
    category: Category
    quantity: int
    net_minor: int  # BT-131
    vat_minor: int
    price: Decimal  # BT-146, net per unit, never negative (BR-27)


@dataclass(frozen=True, slots=True)
class BreakdownPart:
    """One VAT breakdown group (BG-23): a category and its rate."""

    category: Category
    rate_bp: int
    taxable_minor: int  # BT-116: the sum of its lines' net amounts
    tax_minor: int  # BT-117: the VAT we charged on those lines


def sign(document: Document) -> int:
    """A credit note's lines are negative in the domain and positive in UBL."""
    return -1 if document.kind is Kind.CREDIT_NOTE else 1


def net_price(net_minor: int, quantity: int) -> Decimal:
    """The net price of one unit, in major units, exact enough that quantity x price is the
    line's net amount to within half an øre (PEPPOL-EN16931-R120 allows 0.02): as many
    extra decimals as the quantity has digits.

        >>> net_price(10000, 3), net_price(12345, 1), net_price(0, 0)
        (Decimal('33.333'), Decimal('123.45'), Decimal('0.00'))
    """
    if quantity == 0:
        return Decimal("0.00")
    exact = Decimal(abs(net_minor)) / Decimal(100 * abs(quantity))
    places = 2 + (len(str(abs(quantity))) if abs(net_minor) % abs(quantity) else 0)
    return exact.quantize(Decimal(1).scaleb(-places))


def ubl_lines(document: Document) -> list[UblLine]:
    s, seller = sign(document), document.letter.seller
    out = []
    for li in document.lines:
        net, vat = s * li.net_minor, s * li.vat_minor
        quantity = -abs(li.quantity) if net < 0 else abs(li.quantity)
        out.append(UblLine(li, category(li.vat_rate_bp, seller), quantity, net, vat, net_price(net, quantity)))
    return out


def breakdown(document: Document, lines: Iterable[UblLine] | None = None) -> list[BreakdownPart]:
    """Per category and rate, lowest rate first: the taxable amount is the sum of the
    lines' net amounts and the tax the sum of the VAT charged on them, so taxable + tax
    is exactly the lines' gross."""
    sums: dict[tuple[Category, int], tuple[int, int]] = {}
    for u in ubl_lines(document) if lines is None else lines:
        key = (u.category, 0 if u.category is Category.NOT_SUBJECT else u.line.vat_rate_bp)
        taxable, tax = sums.get(key, (0, 0))
        sums[key] = (taxable + u.net_minor, tax + u.vat_minor)
    return [BreakdownPart(c, r, t, v) for (c, r), (t, v) in sorted(sums.items(), key=lambda kv: kv[0][1])]


def within_official_tolerance(part: BreakdownPart) -> bool:
    """BR-CO-17 and BR-S-09 as the official schematron states them (in øre):
    ``|tax| - 100 < round(|taxable| x rate) < |tax| + 100``, XPath ``round`` being half up."""
    expected = (abs(part.taxable_minor) * part.rate_bp * 2 + 10_000) // 20_000
    return abs(part.tax_minor) - OFFICIAL_TOLERANCE_MINOR < expected < abs(part.tax_minor) + OFFICIAL_TOLERANCE_MINOR


def text(value: str | None, fallback: str = "") -> str:
    """Free text as an element may carry it: characters XML 1.0 cannot hold dropped,
    whitespace collapsed; ``fallback`` when nothing is left, as an element may not be
    empty (PEPPOL-EN16931-R008).

        >>> text(" Kari" + chr(0) + " " + chr(10) + " Nordmann "), text(chr(7), "-")
        ('Kari Nordmann', '-')
    """
    return " ".join(NOT_XML.sub("", value or "").split()) or fallback


def amount(minor: int) -> str:
    """Minor units as a UBL amount with two decimals (BR-DEC-*): ``-1234`` -> ``-12.34``."""
    whole, cents = divmod(abs(minor), 100)
    return f"{'-' if minor < 0 else ''}{whole}.{cents:02d}"


def percent(rate_bp: int) -> str:
    """Basis points as a UBL percent: 2500 -> ``25``, 1250 -> ``12.5``."""
    whole, frac = divmod(rate_bp, 100)
    return str(whole) if not frac else f"{whole}.{frac:02d}".rstrip("0")


def period(document: Document) -> tuple[date, date] | None:
    """The invoicing period (BG-14): the document's, widened to every line's so each line
    period lies within it (PEPPOL-EN16931-R110/R111)."""
    starts = [li.period_start for li in document.lines if li.period_start]
    ends = [li.period_end for li in document.lines if li.period_end]
    if document.period:
        starts.append(document.period[0])
        ends.append(document.period[1])
    return (min(starts), max(ends)) if starts and ends else None


def buyer_reference(document: Document) -> str:
    """BT-10: the reference the subscriber gave, else the subscriber number (what the buyer
    knows its account with the seller by), so PEPPOL-EN16931-R003 always holds."""
    return text(document.letter.buyer_reference) or str(document.letter.subscriber_no)


# ---------------------------------------------------------------- XML


class _Builder:
    def __init__(self, currency: str) -> None:
        self.currency = currency

    @staticmethod
    def el(parent: etree._Element, tag: str, text: str | None = None, ns: str = CBC,
           **attrs: str) -> etree._Element:
        node = etree.SubElement(parent, f"{{{ns}}}{tag}", attrs)
        if text is not None:
            node.text = text
        return node

    def cac(self, parent: etree._Element, tag: str) -> etree._Element:
        return self.el(parent, tag, ns=CAC)

    def money(self, parent: etree._Element, tag: str, minor: int) -> etree._Element:
        return self.el(parent, tag, amount(minor), currencyID=self.currency)


def render_ehf(document: Document, pdf: bytes) -> bytes:
    """The EHF (UBL 2.1 Invoice or CreditNote) of ``document`` with ``pdf`` attached.

    Raises ``NotEhf`` when ``why_not_ehf`` says it cannot be one."""
    reason = why_not_ehf(document)
    if reason:
        raise NotEhf(f"{document.id}: {reason}")
    if not pdf:
        raise ValueError(f"{document.id}: no PDF to attach (an empty attachment is an empty element, R008)")
    credit = document.kind is Kind.CREDIT_NOTE
    root_ns = NS_CREDIT_NOTE if credit else NS_INVOICE
    root = etree.Element(f"{{{root_ns}}}{'CreditNote' if credit else 'Invoice'}",
                         nsmap={None: root_ns, "cac": CAC, "cbc": CBC})
    b = _Builder(document.currency)
    _header(b, root, document, pdf)
    _parties(b, root, document)
    if not credit:
        _payment(b, root, document)
    lines = ubl_lines(document)
    _totals(b, root, document, breakdown(document, lines))
    for number, u in enumerate(lines, start=1):
        _line(b, root, number, u, credit)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


def _header(b: _Builder, root: etree._Element, d: Document, pdf: bytes) -> None:
    credit = d.kind is Kind.CREDIT_NOTE
    b.el(root, "CustomizationID", CUSTOMIZATION_ID)
    b.el(root, "ProfileID", PROFILE_ID)
    b.el(root, "ID", str(d.number))
    b.el(root, "IssueDate", d.issue_date.isoformat())
    if not credit and d.due_date:
        b.el(root, "DueDate", d.due_date.isoformat())  # BR-CO-25
    b.el(root, "CreditNoteTypeCode" if credit else "InvoiceTypeCode", CREDIT_NOTE_TYPE if credit else INVOICE_TYPE)
    if credit and text(d.reason):
        b.el(root, "Note", text(d.reason))  # at most one (PEPPOL-EN16931-R002)
    b.el(root, "DocumentCurrencyCode", d.currency)
    b.el(root, "BuyerReference", buyer_reference(d))
    span = period(d)
    if span:
        inv_period = b.cac(root, "InvoicePeriod")
        b.el(inv_period, "StartDate", span[0].isoformat())
        b.el(inv_period, "EndDate", span[1].isoformat())
    if text(d.letter.buyer_reference):
        b.el(b.cac(root, "OrderReference"), "ID", text(d.letter.buyer_reference))  # BT-13
    if credit and d.invoice_number:
        ref = b.cac(b.cac(root, "BillingReference"), "InvoiceDocumentReference")
        b.el(ref, "ID", str(d.invoice_number))
        if d.invoice_issue_date:
            b.el(ref, "IssueDate", d.invoice_issue_date.isoformat())
    attachment = b.cac(root, "AdditionalDocumentReference")
    b.el(attachment, "ID", d.id)
    b.el(attachment, "DocumentDescription", "Credit note" if credit else "Invoice")
    b.el(b.cac(attachment, "Attachment"), "EmbeddedDocumentBinaryObject", base64.b64encode(pdf).decode("ascii"),
         mimeCode="application/pdf", filename=f"{d.id}.pdf")


def _address(b: _Builder, parent: etree._Element, party: Party) -> None:
    address = b.cac(parent, "PostalAddress")
    lines = [text(line) for line in (party.address or "").splitlines() if text(line)]
    if lines:
        b.el(address, "StreetName", lines[0])
    if len(lines) > 1:
        b.el(address, "AdditionalStreetName", ", ".join(lines[1:]))
    if text(party.city):
        b.el(address, "CityName", text(party.city))
    if text(party.postal_code):
        b.el(address, "PostalZone", text(party.postal_code))
    b.el(b.cac(address, "Country"), "IdentificationCode", party.country)


def _party(b: _Builder, parent: etree._Element, party: Party, tax_schemes: Iterable[tuple[str, str]],
           contact: tuple[str, str] = ("", "")) -> None:
    node = b.cac(parent, "Party")
    number = organization_number(party) or ""
    scheme = ENDPOINT_SCHEME[party.country]
    name = text(party.name, number)  # BR-06/BR-07: a name, never an empty one
    b.el(node, "EndpointID", number, schemeID=scheme)
    b.el(b.cac(node, "PartyName"), "Name", name)
    _address(b, node, party)
    for company_id, tax_scheme in tax_schemes:
        scheme_node = b.cac(node, "PartyTaxScheme")
        b.el(scheme_node, "CompanyID", company_id)
        b.el(b.cac(scheme_node, "TaxScheme"), "ID", tax_scheme)
    legal = b.cac(node, "PartyLegalEntity")
    b.el(legal, "RegistrationName", name)
    b.el(legal, "CompanyID", number, schemeID=scheme)
    phone, email = contact
    if phone or email:
        contact_node = b.cac(node, "Contact")  # BG-6
        if phone:
            b.el(contact_node, "Telephone", phone)
        if email:
            b.el(contact_node, "ElectronicMail", email)


def _parties(b: _Builder, root: etree._Element, d: Document) -> None:
    seller = d.letter.seller
    schemes = []
    vat_id = seller_vat_id(seller)
    if vat_id:
        schemes.append((vat_id, "VAT"))  # BT-31
    if seller.party.country == "NO" and seller.company:
        schemes.append(("Foretaksregisteret", "TAX"))  # BT-32, NO-R-002
    contact = (text(seller.branding.contact_phone), text(seller.branding.contact_email))
    _party(b, b.cac(root, "AccountingSupplierParty"), seller.party, schemes, contact)
    _party(b, b.cac(root, "AccountingCustomerParty"), d.letter.buyer, ())


def payment_means_code(d: Document) -> PaymentMeansCode:
    method = d.letter.payment
    if method is PaymentMethod.AVTALEGIRO and text(d.kid):
        return PaymentMeansCode.DIRECT_DEBIT
    if method is PaymentMethod.VIPPS:
        return PaymentMeansCode.ONLINE_PAYMENT_SERVICE
    if method is PaymentMethod.CARD:
        return PaymentMeansCode.BANK_CARD
    if d.letter.seller.bank_account and _account(d.letter.seller):
        return PaymentMeansCode.CREDIT_TRANSFER
    return PaymentMeansCode.NOT_DEFINED


def _account(seller: Seller) -> str:
    """BT-84: the seller's account, digits only (a Norwegian account number, a bankgiro)."""
    raw = seller.bank_account or ""
    if seller.party.country == "NO" and kontonr.is_valid(raw):
        return str(kontonr.compact(raw))
    return "".join(ch for ch in raw if ch.isdigit())


def _payment(b: _Builder, root: etree._Element, d: Document) -> None:
    code = payment_means_code(d)
    means = b.cac(root, "PaymentMeans")
    b.el(means, "PaymentMeansCode", code.value)
    if text(d.kid):
        b.el(means, "PaymentID", text(d.kid))  # BT-83: the KID / OCR reference
    if code is PaymentMeansCode.CREDIT_TRANSFER:
        account = b.cac(means, "PayeeFinancialAccount")
        b.el(account, "ID", _account(d.letter.seller))
        if d.letter.seller.party.country == "SE":
            b.el(b.cac(account, "FinancialInstitutionBranch"), "ID", "SE:BANKGIRO")  # SE-R-011
    if code is PaymentMeansCode.DIRECT_DEBIT:
        b.el(b.cac(means, "PaymentMandate"), "ID", text(d.kid))  # BT-89: AvtaleGiro mandates go by KID


def _totals(b: _Builder, root: etree._Element, d: Document, parts: list[BreakdownPart]) -> None:
    tax_total = b.cac(root, "TaxTotal")
    b.money(tax_total, "TaxAmount", sum(p.tax_minor for p in parts))
    for p in parts:
        sub = b.cac(tax_total, "TaxSubtotal")
        b.money(sub, "TaxableAmount", p.taxable_minor)
        b.money(sub, "TaxAmount", p.tax_minor)
        _tax_category(b, sub, "TaxCategory", p.category, p.rate_bp, reason=True)
    s = sign(d)
    net = sum(p.taxable_minor for p in parts)
    gross = net + sum(p.tax_minor for p in parts)  # the document's total (why_not_ehf checked)
    totals = b.cac(root, "LegalMonetaryTotal")
    b.money(totals, "LineExtensionAmount", net)
    b.money(totals, "TaxExclusiveAmount", net)
    b.money(totals, "TaxInclusiveAmount", gross)
    if d.credit_applied_minor:
        b.money(totals, "PrepaidAmount", s * d.credit_applied_minor)  # paid from the subscriber's balance
    b.money(totals, "PayableAmount", gross - s * d.credit_applied_minor)


def _tax_category(b: _Builder, parent: etree._Element, tag: str, cat: Category, rate_bp: int,
                  reason: bool = False) -> None:
    node = b.cac(parent, tag)
    b.el(node, "ID", cat.value)
    if cat is not Category.NOT_SUBJECT:
        b.el(node, "Percent", percent(rate_bp))  # BR-O-05: none for O
    if reason and cat in EXEMPTION_CODE:
        b.el(node, "TaxExemptionReasonCode", EXEMPTION_CODE[cat])
    if reason and cat in EXEMPTION_REASON:
        b.el(node, "TaxExemptionReason", EXEMPTION_REASON[cat])  # BR-E-10, BR-O-10
    b.el(b.cac(node, "TaxScheme"), "ID", "VAT")


def _line(b: _Builder, root: etree._Element, number: int, u: UblLine, credit: bool) -> None:
    line = b.cac(root, "CreditNoteLine" if credit else "InvoiceLine")
    b.el(line, "ID", str(number))
    b.el(line, "CreditedQuantity" if credit else "InvoicedQuantity", str(u.quantity), unitCode=UNIT)
    b.money(line, "LineExtensionAmount", u.net_minor)
    if u.line.period_start and u.line.period_end:
        line_period = b.cac(line, "InvoicePeriod")
        b.el(line_period, "StartDate", u.line.period_start.isoformat())
        b.el(line_period, "EndDate", u.line.period_end.isoformat())
    item = b.cac(line, "Item")
    b.el(item, "Name", text(u.line.description, "-"))  # BT-153
    if text(u.line.product_id):
        b.el(b.cac(item, "SellersItemIdentification"), "ID", text(u.line.product_id))
    _tax_category(b, item, "ClassifiedTaxCategory", u.category, u.line.vat_rate_bp)
    price = b.cac(line, "Price")
    b.el(price, "PriceAmount", str(u.price), currencyID=b.currency)
