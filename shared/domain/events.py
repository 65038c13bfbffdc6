"""What happened to a subscriber's account: the events the outbox carries to the bus.

One frozen dataclass per event, named in the past tense (Kill Bill's bus events,
cosmicpython's ``domain/events.py``). Each has a stable ``TYPE`` (the name on the wire,
never changed once sent) and a ``VERSION`` of its payload; ``REGISTRY`` maps every type
name to its class, and is what the codec (``adapters/codec.py``) reads stored outbox rows
and bus messages with. The ``id`` is deterministic (the operation that raised the event
computes it from what names the change), so an event raised again, or re-sent from the
outbox, is recognised as a duplicate by the bus and by consumers.

A new version of an event's payload gets ``VERSION = n + 1`` and an ``upgrade`` that turns
a payload of an older version (as stored in an outbox row or sent before) into the
current one; the codec applies it when reading, so old rows and messages keep loading.

Notices (``NOTICE``) are the events whose document the notification worker delivers
(D3, ``service.delivery``): ``InvoiceIssued``, ``CreditNoteIssued``, ``ReminderIssued`` and
``PaymentStopNotice``. Each names its stored document (``demand_no``, the credit note's
number); a field added to a payload later has a default, so messages sent before load.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, ClassVar

from .catalogue import PaymentType
from .dunning import NoticeChannel
from .payments import MatchType
from .subscriptions import StopKind


@dataclass(frozen=True, slots=True)
class Event:
    """An outbox message: written in the same transaction as the change it reports."""

    TYPE: ClassVar[str] = ""
    VERSION: ClassVar[int] = 1
    NOTICE: ClassVar[bool] = False  # sent to the notification worker too
    CHARGE: ClassVar[bool] = False  # sent to the charges worker too (``ChargeRequested``)
    ACCESS: ClassVar[bool] = False  # sent to the access worker too (``AccessChanged``)
    WIRE: ClassVar[Mapping[str, str]] = {}  # field -> payload key, where the key is no Python name

    id: str  # deterministic, so a re-sent message is recognised as a duplicate

    @property
    def type(self) -> str:
        return self.TYPE

    @classmethod
    def upgrade(cls, version: int, payload: dict[str, Any]) -> dict[str, Any]:
        """A payload of an older ``version`` as the current version has it (none older yet)."""
        raise ValueError(f"{cls.TYPE} has no version {version}")


@dataclass(frozen=True, slots=True)
class SubscriptionCreated(Event):
    TYPE: ClassVar[str] = "SubscriptionCreated"

    subscriber_no: int
    subscription_id: str
    plan_id: str
    start: date
    payment_type: PaymentType


@dataclass(frozen=True, slots=True)
class InvoiceIssued(Event):
    """An invoice was issued: its document is delivered (``NOTICE``)."""

    TYPE: ClassVar[str] = "InvoiceIssued"
    NOTICE: ClassVar[bool] = True

    subscriber_no: int
    invoice_number: int
    kid: str
    organization_id: str
    subscription_id: str
    total_minor: int
    credit_applied_minor: int
    amount_due_minor: int
    currency: str
    due_date: date
    demand_no: int = 0  # names the stored invoice (0: sent before the field existed; found by its number)


@dataclass(frozen=True, slots=True)
class PaymentCompleted(Event):
    TYPE: ClassVar[str] = "PaymentCompleted"

    subscriber_no: int
    payment_id: str
    amount_minor: int
    organization_id: str
    match_type: MatchType


@dataclass(frozen=True, slots=True)
class InvoicePaid(Event):
    TYPE: ClassVar[str] = "InvoicePaid"

    subscriber_no: int
    invoice_number: int
    organization_id: str


@dataclass(frozen=True, slots=True)
class PaymentReversed(Event):
    TYPE: ClassVar[str] = "PaymentReversed"

    subscriber_no: int
    payment_id: str
    reverses: str
    amount_minor: int
    organization_id: str
    reopened: tuple[int, ...]  # the demands the reversal made owed again


@dataclass(frozen=True, slots=True)
class RefundBooked(Event):
    TYPE: ClassVar[str] = "RefundBooked"

    subscriber_no: int
    refund_id: str
    amount_minor: int
    organization_id: str
    external_reference: str


@dataclass(frozen=True, slots=True)
class AvtaleGiroMandateChanged(Event):
    TYPE: ClassVar[str] = "AvtaleGiroMandateChanged"

    subscriber_no: int
    organization_id: str
    kid: str
    active: bool
    notify: bool


@dataclass(frozen=True, slots=True)
class SubscriptionStopped(Event):
    TYPE: ClassVar[str] = "SubscriptionStopped"

    subscriber_no: int
    subscription_id: str
    stop_date: date
    kind: StopKind
    code: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class SubscriptionStopChanged(Event):
    TYPE: ClassVar[str] = "SubscriptionStopChanged"
    WIRE: ClassVar[Mapping[str, str]] = {"from_": "from"}

    subscriber_no: int
    subscription_id: str
    from_: date
    to: date | None  # None: the stop was removed
    reason: str


@dataclass(frozen=True, slots=True)
class SubscriptionPaused(Event):
    TYPE: ClassVar[str] = "SubscriptionPaused"
    WIRE: ClassVar[Mapping[str, str]] = {"from_": "from"}

    subscriber_no: int
    subscription_id: str
    from_: date
    restart_on: date
    restart_subscription_id: str


@dataclass(frozen=True, slots=True)
class CreditNoteIssued(Event):
    """A credit note was issued: its document is delivered (``NOTICE``)."""

    TYPE: ClassVar[str] = "CreditNoteIssued"
    NOTICE: ClassVar[bool] = True

    subscriber_no: int
    credit_note_number: int
    invoice_number: int
    organization_id: str
    currency: str
    total_minor: int
    reason: str


@dataclass(frozen=True, slots=True)
class CorrectionAdded(Event):
    TYPE: ClassVar[str] = "CorrectionAdded"

    subscriber_no: int
    correction_id: str
    organization_id: str
    amount_minor: int
    text: str


@dataclass(frozen=True, slots=True)
class BalanceWrittenOff(Event):
    TYPE: ClassVar[str] = "BalanceWrittenOff"

    subscriber_no: int
    organization_id: str
    amount_minor: int
    reason: str


@dataclass(frozen=True, slots=True)
class ReminderPostponed(Event):
    TYPE: ClassVar[str] = "ReminderPostponed"

    subscriber_no: int
    invoice_number: int
    to: date
    reason: str


@dataclass(frozen=True, slots=True)
class SubscriberNotice(Event):
    """A notice to the subscriber: to whom and how it goes (manual 6.19), and from whom."""

    NOTICE: ClassVar[bool] = True

    subscriber_no: int
    name: str
    day: date
    channel: NoticeChannel
    to: str  # the phone number for an SMS, else the e-mail address
    organization_id: str
    organization_name: str
    invoice_number: int
    kid: str
    currency: str
    bank_account: str | None


@dataclass(frozen=True, slots=True)
class ReminderIssued(SubscriberNotice):
    """Manual 7.9: reminder ``step`` for an invoice, asking ``amount_minor`` fees included."""

    TYPE: ClassVar[str] = "ReminderIssued"

    step: int
    amount_minor: int
    fee_minor: int
    due_date: date
    demand_no: int = 0  # the reminder's own demand (0: sent before the field existed; found by invoice and step)


@dataclass(frozen=True, slots=True)
class PaymentStopNotice(SubscriberNotice):
    """Manual 7.7: "payment stop in N days", once per invoice."""

    TYPE: ClassVar[str] = "PaymentStopNotice"

    stop_date: date
    owed_minor: int


# ---- payment providers (P6: Vipps MobilePay Recurring, Swedbank Pay cards) -----------------------


@dataclass(frozen=True, slots=True)
class ChargeRequested(Event):
    """A charge to create at the provider for a demand (written with the invoice that needs it):
    the charges worker creates it from the ``charges`` queue, the charge id its Idempotency-Key."""

    TYPE: ClassVar[str] = "ChargeRequested"
    CHARGE: ClassVar[bool] = True  # sent to the ``charges`` queue too

    subscriber_no: int
    charge_id: str
    provider: str  # ``agreements.Provider``
    organization_id: str
    demand_no: int
    amount_minor: int
    currency: str
    due: date


@dataclass(frozen=True, slots=True)
class AgreementChanged(Event):
    """A payment agreement's status changed (activated, rejected, expired, stopped), and by whom."""

    TYPE: ClassVar[str] = "AgreementChanged"

    subscriber_no: int
    agreement_key: str
    provider: str
    organization_id: str
    subscription_id: str
    status: str  # ``agreements.AgreementStatus``
    by: str = ""  # merchant | user | provider


@dataclass(frozen=True, slots=True)
class ChargeFailed(Event):
    """A charge ended without money (FAILED, CANCELLED, creation failed): its demand is left to
    dunning (an extra payment request or reminders with KID, per the dunning process)."""

    TYPE: ClassVar[str] = "ChargeFailed"

    subscriber_no: int
    charge_id: str
    provider: str
    organization_id: str
    demand_no: int
    state: str  # ``agreements.ChargeState``
    reason: str = ""


# ---- self-service (M1; issue 12) ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AccessChanged(Event):
    """The account of a subscriber with logins or IP ranges changed: the access worker
    recomputes the access rows of ``logins`` (linked before or after the change) and the
    subscriber's site entries. Raised by the unit of work for such accounts only; its id
    names the commit (``service.access.marked``), so only a repeat of one commit is a duplicate."""

    TYPE: ClassVar[str] = "AccessChanged"
    ACCESS: ClassVar[bool] = True  # sent to the ``access`` queue

    subscriber_no: int
    logins: tuple[str, ...] = ()
    sites: bool = False  # the subscriber has, or had, IP ranges


EVENT_TYPES: tuple[type[Event], ...] = (
    SubscriptionCreated, InvoiceIssued, PaymentCompleted, InvoicePaid, PaymentReversed, RefundBooked,
    AvtaleGiroMandateChanged, SubscriptionStopped, SubscriptionStopChanged, SubscriptionPaused, CreditNoteIssued,
    CorrectionAdded, BalanceWrittenOff, ReminderPostponed, ReminderIssued, PaymentStopNotice, ChargeRequested,
    AgreementChanged, ChargeFailed, AccessChanged)
REGISTRY: Mapping[str, type[Event]] = {cls.TYPE: cls for cls in EVENT_TYPES}  # type name -> class
