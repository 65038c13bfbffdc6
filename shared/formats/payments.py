"""What every bank file format yields: one incoming payment, in integer minor units.

Format modules (``ocr_giro``, ``bgmax``) turn their records into ``IncomingPayment``;
matching and booking (issue "Payments in") work on these only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date


class ControlTotalError(ValueError):
    """A file's own control totals (record counts, amount sums) do not add up."""


class UnknownFormat(ValueError):
    """The content is none of the bank file formats we read."""


@dataclass(frozen=True, slots=True)
class IncomingPayment:
    source: str  # "ocr_giro" | "bgmax"
    line_id: str  # identifies the payment within its file, stable across re-reads
    amount_minor: int  # negative for a deduction (BgMax TK21)
    currency: str
    reference: str | None  # KID / OCR reference
    payment_date: date
    extra_references: tuple[str, ...] = ()
    payee_account: str | None = None  # the organisation's account (OCR) or bankgiro number (BgMax)
    payer_name: str | None = None
    payer_account: str | None = None
    payer_organization_number: str | None = None
    information: tuple[str, ...] = ()
