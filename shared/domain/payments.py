"""Payments in (P2; manual 10.2 "Payment states and handling").

A payment is identified when organisation, subscriber, currency, amount, payment date
and value date are known; it then awaits approval, and approved it is completed. Bank
file payments whose KID decodes to a subscriber of the paying organisation are
identified by ``MatchUsingExternalIdentifier`` and approved at once; those that cannot
be identified go to "requires processing" instead (they never reach a ledger). A
reversal is not a negative payment: it is booked against the payment it takes back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from .settlement import Allocation


class PaymentState(StrEnum):
    AWAITING_IDENTIFICATION = "AwaitingIdentification"
    AWAITING_APPROVAL = "AwaitingApproval"
    COMPLETED = "Completed"


class PaymentKind(StrEnum):
    PAYMENT = "payment"
    REVERSAL = "reversal"  # takes back a payment booked before (OCR giro transaction types 18, 20)


class MatchType(StrEnum):
    EXTERNAL_IDENTIFIER = "MatchUsingExternalIdentifier"
    SUBSCRIBER_AND_INVOICE = "MatchingUsingSubscriberAndInvoice"
    NO_INVOICE = "NoInvoiceMatch"


@dataclass(frozen=True, slots=True)
class ReceivedPayment:
    """An identified payment, ready to be booked on one subscriber's ledger."""

    id: str  # stable for the same line of the same file: booking it twice is refused
    organization_id: str
    currency: str
    amount_minor: int
    payment_date: date
    source: str
    match_type: MatchType
    reference: str | None = None
    demand_no: int | None = None
    kind: PaymentKind = PaymentKind.PAYMENT
    reverses: str | None = None  # a reversal: the id of the payment it takes back
    provider_ref: str = ""  # a card charge: Swedbank Pay's payment order id, which a refund (reversal) names


def row_id(payment: ReceivedPayment) -> str:
    """The key of a booked payment in its subscriber's partition. A reversal is keyed by the
    payment it takes back, so a payment can be reversed once, however many reversals name it."""
    return f"{payment.reverses}~rev" if payment.reverses else payment.id


@dataclass(frozen=True, slots=True)
class BookedPayment:
    payment: ReceivedPayment
    state: PaymentState
    booked: date
    allocations: tuple[Allocation, ...]
    credit_minor: int
