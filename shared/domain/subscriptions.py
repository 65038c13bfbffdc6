"""Subscribers (S1) and their subscriptions (S2, S3).

A subscription is anchored on its start date; its periods come from
``calendar.period``. ``next_period`` counts the periods already invoiced: an issued
invoice locks its period (manual 10.1: "once the invoice gets issued the current
delivery can no longer be changed until we credit invoice").
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date
from enum import StrEnum

from stdnum.no import orgnr
from stdnum.se import orgnr as se_orgnr

from .calendar import Frequency, Period, cadence_key, period
from .catalogue import Channel, PaymentType
from .identity import MAX_IP_RANGES


class SubscriberError(ValueError):
    """Subscriber data that cannot be accepted."""


@dataclass(frozen=True, slots=True)
class Subscriber:
    number: int
    name: str
    email: str
    phone: str | None = None
    address: str | None = None
    postal_code: str | None = None
    city: str | None = None
    country: str = "NO"
    organization_number: str | None = None  # B2B subscribers (EHF later)
    created: date | None = None
    ip_ranges: tuple[str, ...] = ()  # a site licence (campus): CIDR ranges whose visitors get its access (M1)
    erased: date | None = None  # personal data pseudonymised on this day (GDPR, S8); invoices and ledger kept

    def __post_init__(self) -> None:
        if self.number <= 0:
            raise SubscriberError("subscriber number must be positive")
        if "@" not in self.email:
            raise SubscriberError(f"not an e-mail address: {self.email!r}")
        valid = se_orgnr.is_valid if self.country == "SE" else orgnr.is_valid
        if self.organization_number is not None and not valid(self.organization_number):
            raise SubscriberError(f"invalid organisation number {self.organization_number!r}")
        if len(self.ip_ranges) > MAX_IP_RANGES:
            raise SubscriberError(f"at most {MAX_IP_RANGES} IP ranges")

    def searchable_text(self) -> str:
        values = (str(self.number), self.name, self.email, self.phone, self.address,
                  self.postal_code, self.city, self.organization_number)
        return " ".join(v for v in values if v).lower()


class StopKind(StrEnum):
    CUSTOMER = "customer"  # manual 6.4
    PAYMENT = "payment"  # manual 7.7
    PAUSE = "pause"  # manual 6.6
    AUTOMATIC = "automatic"  # manual 7.8


class SubscriptionStatus(StrEnum):
    ACTIVE = "active"
    FUTURE = "future"
    ENDED = "ended"


@dataclass(frozen=True, slots=True)
class Subscription:
    id: str
    plan_id: str
    organization_id: str
    frequency: Frequency
    anchor: date
    payment_type: PaymentType
    copies: int = 1
    next_period: int = 0  # periods [0, next_period) are invoiced
    stop_date: date | None = None  # first day without delivery
    reporting_tags: tuple[str, ...] = field(default=())
    stop_kind: StopKind | None = None
    stop_code: str | None = None  # manual 6.13
    stop_reason: str = ""
    scheduled_start: bool = False  # a restart after a pause: the first invoice comes lead days ahead, too
    resumes: str | None = None  # the paused subscription this one restarts
    delivery: Channel | None = None  # how its documents go (manual 16); None: the organisation's default
    buyer_reference: str = ""  # the subscriber's own order reference, shown on invoices (EHF BuyerReference)
    agreement: str | None = None  # the key in ``Account.agreements`` of the Vipps / card agreement it is charged on

    def renewal_on(self, day: date) -> date:
        """The renewal date of the period ongoing on ``day``: its end (the start, before the start)."""
        if day < self.anchor:
            return self.anchor
        index = 0
        while self.period(index).end <= day:
            index += 1
        return self.period(index).end

    def period(self, index: int) -> Period:
        return period(self.anchor, self.frequency, index)

    @property
    def cadence(self) -> str:
        return cadence_key(self.anchor, self.frequency)

    def runs_in(self, index: int) -> bool:
        return self.stop_date is None or self.period(index).start < self.stop_date

    def status_on(self, day: date) -> SubscriptionStatus:
        if day < self.anchor:
            return SubscriptionStatus.FUTURE
        if self.stop_date is not None and day >= self.stop_date:
            return SubscriptionStatus.ENDED
        return SubscriptionStatus.ACTIVE

    def invoiced(self, periods: int) -> Subscription:
        return replace(self, next_period=self.next_period + periods)
