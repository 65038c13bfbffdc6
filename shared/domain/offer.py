"""What a sales poster shows for a plan (S2): its price per period with the VAT in it, the
fees by payment type, and the organisation's colours made readable (WCAG 2.1 contrast).

Pure: the catalogue and the day in, the offer out. Amounts are the catalogue's gross
minor units; the VAT is what the first invoice's lines will carry (``vat_of_gross`` per
product, as ``invoicing.line`` computes it), so the poster and the invoice agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from .calendar import Frequency
from .catalogue import Catalogue, PaymentType
from .money import vat_of_gross

AA_NORMAL = 4.5  # WCAG 2.1 AA: the contrast normal text needs
WHITE, BLACK = "#FFFFFF", "#000000"


@dataclass(frozen=True, slots=True)
class OfferLine:
    product_id: str
    name: str
    gross_minor: int
    vat_rate_bp: int
    vat_minor: int


@dataclass(frozen=True, slots=True)
class Offer:
    plan_id: str
    plan_name: str
    organization_id: str
    currency: str
    frequency: Frequency
    lines: tuple[OfferLine, ...]
    fees: tuple[tuple[PaymentType, int, int], ...]  # payment type, fee, the period it is charged from (1: first)
    orderable: bool
    automatic_stop: bool

    @property
    def total_minor(self) -> int:
        return sum(li.gross_minor for li in self.lines)

    @property
    def vat_minor(self) -> int:
        return sum(li.vat_minor for li in self.lines)


def offer_of(catalogue: Catalogue, plan_id: str, on: date) -> Offer:
    """The offer of ``plan_id`` on day ``on``; ``CatalogueError`` if the plan or a price is missing."""
    plan = catalogue.plan(plan_id)
    billing = catalogue.billing_plan_of(plan)
    org = catalogue.organization_of(plan)
    lines = []
    for product in catalogue.products_of(plan):
        gross = product.price_on(billing.frequency, on)
        lines.append(OfferLine(product.id, product.name, gross, product.vat_rate_bp,
                               vat_of_gross(gross, product.vat_rate_bp)))
    fees = tuple((f.payment_type, f.amount_minor, f.from_period) for f in billing.fees if f.amount_minor)
    return Offer(plan.id, plan.name, org.id, org.currency, billing.frequency, tuple(lines), fees,
                 plan.orderable_on(on), plan.automatic_stop)


def _channel(value: int) -> float:
    c = value / 255
    return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4


def luminance(colour: str) -> float:
    """The relative luminance of ``#RRGGBB`` (WCAG 2.1)."""
    r, g, b = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * _channel(r) + 0.7152 * _channel(g) + 0.0722 * _channel(b)


def contrast(a: str, b: str) -> float:
    """The contrast ratio of two ``#RRGGBB`` colours, 1 to 21."""
    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def text_on(colour: str) -> str:
    """White or black, whichever reads better on ``colour`` (one of them always reaches AA)."""
    return WHITE if contrast(WHITE, colour) >= contrast(BLACK, colour) else BLACK


def readable_on_white(colour: str) -> str:
    """``colour``, darkened step by step until text in it on white reaches AA."""
    r, g, b = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
    current = colour.upper()
    while contrast(current, WHITE) < AA_NORMAL:
        r, g, b = (int(v * 0.9) for v in (r, g, b))
        current = f"#{r:02X}{g:02X}{b:02X}"
    return current
