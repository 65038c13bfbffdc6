"""Payment agreements and provider charges (P6): Vipps MobilePay Recurring and Swedbank Pay cards.

An agreement is the payer's consent, given at the provider, to be charged for a
subscription. Manual 16 "Deactivated paymentagreements": a Vipps agreement belongs to one
subscription and, once stopped, can never be used again; a Swedbank Pay card agreement (an
unscheduled token) may be reused by the subscriber's other subscriptions until the card
expires. Both live in the subscriber's partition (``Account.agreements``), so an order, an
activation or a charge outcome is one transaction with the subscription, the invoice, the
ledger and the outbox.

A charge asks the provider for one demand (an invoice's KID): it is created from the
outbox (``ChargeRequested``), then followed by webhook, callback or polling until it ends
CHARGED, FAILED or CANCELLED. The provider's state is the truth: every source of news
(a webhook, a callback, a poll) re-reads the charge at the provider and hands the state it
reads to the same code, so duplicates and reordered events end in the same state as the
ordered sequence (``ChargeState.rank``: a state never goes back).

Charge ids are ours (Vipps ``orderId``, Swedbank Pay ``payeeReference``) and name what
they are for: ``charge_id`` below. They are also the charge's ``Idempotency-Key``: 1-40
characters of A-Z a-z 0-9 and ``-`` (never ``# ? / \\``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Any


class Provider(StrEnum):
    VIPPS = "vipps"  # Vipps MobilePay Recurring v3
    SWEDBANKPAY = "swedbankpay"  # Swedbank Pay Payment Order v3, unscheduled card purchases


class AgreementStatus(StrEnum):
    """Vipps' agreement statuses (``PENDING`` ... ``EXPIRED``), lower-cased; a card agreement
    is ``active`` once its first purchase is paid and ``expired`` after the card's expiry."""

    PENDING = "pending"  # waiting for the payer to approve at the provider
    ACTIVE = "active"
    STOPPED = "stopped"  # by us, by the payer in the app, or by the provider: never active again
    EXPIRED = "expired"  # the payer never approved (Vipps), or the card expired
    REJECTED = "rejected"  # the payer said no

    @property
    def final(self) -> bool:
        return self in (AgreementStatus.STOPPED, AgreementStatus.EXPIRED, AgreementStatus.REJECTED)


@dataclass(frozen=True, slots=True)
class PaymentAgreement:
    """One agreement at a provider, stored in the subscriber's partition (``0|agr|{key}``).

    While ``pending`` it carries the order it was made for (``order``: ``PlaceOrder`` as
    JSON): nothing else of the order exists yet (no subscription, no invoice, no number),
    so a rejected or expired agreement burns nothing."""

    key: str  # ours, stable: ``agreement_key`` (the Vipps externalId; the card checkout's payeeReference)
    provider: Provider
    organization_id: str
    subscription_id: str  # the subscription it pays (Vipps: the only one it may ever pay)
    status: AgreementStatus
    created: date
    price_minor: int  # what each period costs (Vipps LEGACY pricing); a card agreement: the first purchase
    currency: str
    provider_id: str = ""  # the provider's id: Vipps agreementId, Swedbank Pay payment order id
    confirmation_url: str = ""  # where the payer approves it (Vipps' confirmation URL, Swedbank Pay's redirect)
    order: Mapping[str, Any] | None = None  # the order it was made for, until it is placed
    initial_charge_id: str = ""  # the charge of the first period taken at approval, if any
    token: str = ""  # card: the unscheduled token (never logged, never shown)
    card_mask: str = ""  # card: e.g. 492500******0004
    card_expiry: date | None = None  # card: the last day the card is valid
    stopped_by: str = ""  # merchant | user | provider, once stopped
    stop_on: date | None = None  # we stop it at the provider on this day (the end of the paid period)
    expiry_noticed: bool = False  # card: the subscriber was told the card expires soon (D3)
    changed: date | None = None

    @property
    def active(self) -> bool:
        return self.status is AgreementStatus.ACTIVE


class ChargeState(StrEnum):
    """Where a charge is. ``REQUESTED`` is ours (in the outbox, not yet at the provider);
    the rest are the provider's states, lower-cased (Vipps names; a card purchase maps to
    them). ``rank`` orders them: an update to a lower rank is news from the past and is
    ignored, so any order of events ends in the same state."""

    REQUESTED = "requested"
    PENDING = "pending"
    DUE = "due"
    PROCESSING = "processing"
    RESERVED = "reserved"
    CHARGED = "charged"  # captured: booked as a payment
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"
    FAILED = "failed"  # handed to dunning
    CANCELLED = "cancelled"
    CREATION_FAILED = "creation_failed"  # the provider refused to create it (bulk creation, asynchronously)

    @property
    def rank(self) -> int:
        return _RANK[self]

    @property
    def final(self) -> bool:
        return self in (ChargeState.CHARGED, ChargeState.PARTIALLY_REFUNDED, ChargeState.REFUNDED,
                        ChargeState.FAILED, ChargeState.CANCELLED, ChargeState.CREATION_FAILED)


_RANK = {ChargeState.REQUESTED: 0, ChargeState.PENDING: 1, ChargeState.DUE: 2, ChargeState.PROCESSING: 3,
         ChargeState.RESERVED: 4, ChargeState.CHARGED: 5, ChargeState.PARTIALLY_REFUNDED: 6,
         ChargeState.REFUNDED: 7, ChargeState.FAILED: 5, ChargeState.CANCELLED: 5, ChargeState.CREATION_FAILED: 5}


@dataclass(frozen=True, slots=True)
class Charge:
    """One charge for one demand, stored in the subscriber's partition (``0|chg|{id}``) from
    the transaction that requests it until its outcome is booked."""

    id: str  # ``charge_id``: Vipps orderId / Swedbank Pay payeeReference, and the Idempotency-Key
    provider: Provider
    agreement_key: str
    organization_id: str
    demand_no: int  # the invoice (or reminder) demand it pays; 0 for an initial charge before its invoice exists
    amount_minor: int
    currency: str
    due: date
    retry_days: int
    attempt: int  # 1 for the first charge of a demand; an extra payment request (D1) is the next
    state: ChargeState = ChargeState.REQUESTED
    captured_minor: int = 0
    refunded_minor: int = 0
    failure_reason: str = ""
    provider_ref: str = ""  # Swedbank Pay: the payment order id of the purchase
    changed: date | None = None
    refunds: tuple[str, ...] = field(default=())  # refund ids already booked on the ledger


CHARGE_ID = re.compile(r"[A-Za-z0-9-]{1,40}")


def agreement_key(subscriber_no: int, subscription_id: str) -> str:
    """Our key of the agreement made for a subscription: ``a{subscriber}-{subscription}``."""
    key = f"a{subscriber_no}-{subscription_id}"
    if not CHARGE_ID.fullmatch(key):
        raise ValueError(f"agreement key {key!r} is not 1-40 of A-Z a-z 0-9 -")
    return key


def charge_id(subscriber_no: int, demand_no: int, attempt: int) -> str:
    """``c{subscriber}-{demand}-{attempt}``: unique per merchant, stable across retries, and
    what the subscriber and demand of a charge are read back from (``parse_charge_id``)."""
    value = f"c{subscriber_no}-{demand_no}-{attempt}"
    if not CHARGE_ID.fullmatch(value):
        raise ValueError(f"charge id {value!r} is not 1-40 of A-Z a-z 0-9 -")
    return value


def parse_charge_id(value: str) -> tuple[int, int, int] | None:
    """(subscriber, demand, attempt) of a ``charge_id``; None for anything else."""
    m = re.fullmatch(r"c([1-9][0-9]{0,11})-([0-9]{1,9})-([1-9][0-9]{0,2})", value)
    return (int(m[1]), int(m[2]), int(m[3])) if m else None


def initial_charge_id(subscriber_no: int, subscription_id: str) -> str:
    """``i{subscriber}-{subscription}``: the charge of the first period, taken when the payer
    approves the agreement (before the first invoice, and so its demand, exists)."""
    value = f"i{subscriber_no}-{subscription_id}"
    if not CHARGE_ID.fullmatch(value):
        raise ValueError(f"initial charge id {value!r} is not 1-40 of A-Z a-z 0-9 -")
    return value


def subscriber_of(value: str) -> int | None:
    """The subscriber number any of our ids names (agreement key, charge id, initial charge id)."""
    m = re.fullmatch(r"[aci]([1-9][0-9]{0,11})-[A-Za-z0-9-]{1,27}", value)
    return int(m[1]) if m else None


def parse_agreement_key(value: str) -> int | None:
    """The subscriber number of an ``agreement_key``; None for anything else."""
    m = re.fullmatch(r"a([1-9][0-9]{0,11})-[A-Za-z0-9]{1,26}", value)
    return int(m[1]) if m else None
