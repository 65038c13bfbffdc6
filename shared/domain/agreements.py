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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from enum import StrEnum
from typing import Any

from .calendar import Frequency
from .catalogue import PaymentType
from .subscriptions import Subscription


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


def agreement_of_initial_charge(value: str) -> str | None:
    """The key of the agreement whose initial charge ``value`` is (``initial_charge_id`` of the
    same subscriber and subscription); None for any other id."""
    return "a" + value[1:] if value.startswith("i") and subscriber_of(value) is not None else None


def subscriber_of(value: str) -> int | None:
    """The subscriber number any of our ids names (agreement key, charge id, initial charge id)."""
    m = re.fullmatch(r"[aci]([1-9][0-9]{0,11})-[A-Za-z0-9-]{1,27}", value)
    return int(m[1]) if m else None


CARD_CHECKOUT_TRIES = 5  # payment orders one card checkout may make (one per try whose answer was lost)


def card_reference(key: str, attempt: int) -> str:
    """The payeeReference of a card checkout's ``attempt``-th payment order: the agreement key,
    then ``{key}-{attempt}``. Swedbank Pay refuses a used payeeReference and cannot be asked for
    an order by it, so a checkout whose first order's answer was lost makes the next one."""
    return key if attempt == 1 else f"{key}-{attempt}"


def key_of_card_reference(value: str) -> str | None:
    """The agreement key a checkout's payeeReference (``card_reference``) names; None for any other."""
    m = re.fullmatch(r"(a[1-9][0-9]{0,11}-[A-Za-z0-9]{1,26})(?:-([2-9]))?", value)
    return m[1] if m and (m[2] is None or int(m[2]) <= CARD_CHECKOUT_TRIES) else None


def parse_agreement_key(value: str) -> int | None:
    """The subscriber number of an ``agreement_key``; None for anything else."""
    m = re.fullmatch(r"a([1-9][0-9]{0,11})-[A-Za-z0-9]{1,26}", value)
    return int(m[1]) if m else None


# ---- what the provider's word means for an agreement (checkout, P6) -------------------------------
# Pure decisions of ``service.checkout``: the service re-reads the agreement (Vipps) or the payment
# order (card) at the provider and hands what it read to these; the same reading always gives the
# same decision, so a webhook, a callback, a poll and any repeat of them end in one state.

VIPPS_MIN_PRICE_MINOR = 100  # Recurring v3 ``pricing.amount`` minimum: 1 kr (manual 6.10: price >= 1)
VIPPS_PRODUCT_NAME = 45  # ``productName`` maxLength (manual 6.10: under 45 characters)
VIPPS_PRODUCT_DESCRIPTION = 100  # ``productDescription`` maxLength
EXPIRY_NOTICE_DAYS = 30  # a card's subscriber is told this many days before the card expires (D3)
PENDING_POLL_DAYS = 7  # a pending checkout is polled daily this long (Vipps expires a draft in 10 minutes)


class Verdict(StrEnum):
    """What the provider's state means for our agreement."""

    NONE = "none"  # nothing new (or news from the past: a final agreement never changes)
    WAIT = "wait"  # still waiting for the payer
    ACTIVATE = "activate"  # approved / paid: place the order
    REJECT = "reject"  # the payer said no, or the payment failed: the order is dropped (or placed with invoice)
    EXPIRE = "expire"  # the payer never answered
    STOP = "stop"  # an active agreement was stopped at the provider (by the payer, the provider or us)


def vipps_verdict(agreement: PaymentAgreement, status: str, initial_taken: bool) -> Verdict:
    """Vipps' agreement ``status`` (PENDING | ACTIVE | STOPPED | EXPIRED) for our ``agreement``.

    A draft the payer declines reads STOPPED, as does an approved one the payer stopped before
    we saw it active; the initial charge tells them apart (``initial_taken``: it was reserved or
    captured, so the payer approved). Both orders of "activated, stopped" end in the same state:
    the order placed, then switched to invoice."""
    status = status.upper()
    if agreement.status is AgreementStatus.PENDING:
        if status == "ACTIVE" or (status == "STOPPED" and initial_taken):
            return Verdict.ACTIVATE
        return {"PENDING": Verdict.WAIT, "STOPPED": Verdict.REJECT, "EXPIRED": Verdict.EXPIRE}.get(status,
                                                                                                 Verdict.NONE)
    if agreement.status is AgreementStatus.ACTIVE and status in ("STOPPED", "EXPIRED"):
        return Verdict.STOP
    return Verdict.NONE


CARD_PAID = ("Paid",)
CARD_REFUSED = ("Failed", "Aborted", "Cancelled", "Reversed")


def card_verdict(agreement: PaymentAgreement, status: str) -> Verdict:
    """Swedbank Pay's payment order ``status`` (Initialized | Paid | Failed | Cancelled | Aborted |
    Reversed) for the checkout's ``agreement``. A card agreement is never stopped at the provider:
    it ends when the card expires."""
    if agreement.status is not AgreementStatus.PENDING:
        return Verdict.NONE
    if status in CARD_PAID:
        return Verdict.ACTIVATE
    if status in CARD_REFUSED:
        return Verdict.REJECT
    return Verdict.WAIT


def initial_taken(state: ChargeState) -> bool:
    """The payer's money was reserved or captured: only an approved agreement does that."""
    return state in (ChargeState.RESERVED, ChargeState.CHARGED, ChargeState.PARTIALLY_REFUNDED,
                     ChargeState.REFUNDED)


def stopped_by(actor: str) -> str:
    """Vipps' stop actor as ours: merchant | user | provider."""
    return {"MERCHANT": "merchant", "USER": "user"}.get(actor.upper(), "provider")


def interval_of(frequency: Frequency) -> tuple[str, int]:
    """A billing frequency as Vipps' ``interval`` (unit, count): monthly (MONTH, 1), four-weekly
    (WEEK, 4), yearly (YEAR, 1)."""
    if frequency.months == 12:
        return "YEAR", 1
    if frequency.months:
        return "MONTH", frequency.months
    if frequency.days % 7 == 0:
        return "WEEK", frequency.days // 7
    return "DAY", frequency.days


def product_text(text: str, limit: int) -> str:
    """``text`` on one line, cut to ``limit`` characters (an ellipsis where it was cut)."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def activated(agreement: PaymentAgreement, day: date, token: str = "", card_mask: str = "",
              card_expiry: date | None = None) -> PaymentAgreement:
    """The agreement once the payer approved (its order is placed in the same transaction)."""
    return replace(agreement, status=AgreementStatus.ACTIVE, order=None, changed=day, token=token or agreement.token,
                   card_mask=card_mask or agreement.card_mask, card_expiry=card_expiry or agreement.card_expiry)


def ended(agreement: PaymentAgreement, verdict: Verdict, day: date, by: str = "") -> PaymentAgreement:
    """The agreement final: rejected, expired or stopped (never active again)."""
    status = {Verdict.REJECT: AgreementStatus.REJECTED, Verdict.EXPIRE: AgreementStatus.EXPIRED}.get(
        verdict, AgreementStatus.STOPPED)
    by = by if status is AgreementStatus.STOPPED else ""
    return replace(agreement, status=status, order=None, changed=day, stopped_by=by, stop_on=None)


def on_invoice(subscriptions: Mapping[str, Subscription], key: str) -> list[Subscription]:
    """The subscriptions charged on agreement ``key``, switched to invoice with KID: their next
    invoice is one to pay by KID (manual 16: a stopped Vipps agreement is never used again)."""
    return [replace(s, payment_type=PaymentType.INVOICE, agreement=None) for s in subscriptions.values()
            if s.agreement == key]


def stop_day(stops: date, open_charges: Sequence[Charge], today: date) -> date:
    """When to stop a Vipps agreement whose subscription ``stops``: not before that day, nor
    before the charges still open on it can have settled (their due date plus retry days): a
    stopped agreement cancels its pending charges and can never be active again, so never early."""
    settled = [c.due + timedelta(days=c.retry_days + 1) for c in open_charges]
    return max([stops, today, *settled])


def stop_due(agreement: PaymentAgreement, today: date) -> bool:
    return (agreement.provider is Provider.VIPPS and agreement.active and agreement.stop_on is not None
            and agreement.stop_on <= today)


def expiry_notice_day(agreement: PaymentAgreement) -> date | None:
    """The day a card agreement's subscriber is told the card expires (None: nothing to tell)."""
    if agreement.provider is not Provider.SWEDBANKPAY or agreement.card_expiry is None or agreement.expiry_noticed:
        return None
    return agreement.card_expiry - timedelta(days=EXPIRY_NOTICE_DAYS)


def notice_due(agreement: PaymentAgreement, today: date) -> bool:
    day = expiry_notice_day(agreement)
    return agreement.active and day is not None and day <= today


def card_expired(agreement: PaymentAgreement, today: date) -> bool:
    """An active card agreement whose card is past its expiry: it can never be charged again."""
    return (agreement.provider is Provider.SWEDBANKPAY and agreement.active and agreement.card_expiry is not None
            and agreement.card_expiry < today)


def watch_days(agreement: PaymentAgreement, today: date) -> set[date]:
    """The days the provider timer must look at the agreement: tomorrow while it is pending
    (webhooks get lost), the day it is to be stopped, the day its card expiry is to be told
    and the day after the card expires."""
    days: set[date] = set()
    if agreement.status is AgreementStatus.PENDING and (today - agreement.created).days < PENDING_POLL_DAYS:
        days.add(today + timedelta(days=1))
    if agreement.active and agreement.stop_on is not None:
        days.add(max(agreement.stop_on, today))
    notice = expiry_notice_day(agreement)
    if agreement.active and notice is not None:
        days.add(max(notice, today))
    if agreement.active and agreement.provider is Provider.SWEDBANKPAY and agreement.card_expiry is not None:
        days.add(max(agreement.card_expiry + timedelta(days=1), today))  # then it ends (``card_expired``)
    return days


def reusable_card(agreements: Mapping[str, PaymentAgreement], organization_id: str,
                  today: date) -> PaymentAgreement | None:
    """An active card agreement of the organisation whose card is valid today, if the subscriber
    has one (manual 16: a Swedbank Pay agreement may pay other subscriptions until it expires)."""
    cards = [a for a in agreements.values() if a.provider is Provider.SWEDBANKPAY and a.active and a.token
             and a.organization_id == organization_id and a.card_expiry is not None and a.card_expiry >= today]
    return max(cards, key=lambda a: (a.card_expiry or today, a.key), default=None)
