"""The catalogue: organisations (C1), products with price history (C2), subscription
plans (C3) and billing plans (C4).

Manual sections "Organizations" (3), "Products&subscription plans" (6.10) and
"Billing plan" (7.18). Prices are gross (VAT included) in minor units. A product's
price applies by the period's start date: the newest price point whose ``valid_from``
is on or before that day, so future prices can be entered ahead of time.

Every item checks its own values before it is stored (``check_bounds``: ids in a safe
alphabet, amounts within ``MAX_MINOR``, days within a year, VAT 0-100 %, dates in
``FIRST_DAY..LAST_DAY``, known time zones, bounded texts and lists); the catalogue store
refuses to write an item that fails it, so nothing the invoice run cannot compute with is
stored by any path. The HTTP boundary checks the same bounds first, field by field
(``functions.validation``). Reading is not checked: an item stored before these checks
existed still loads, and ``shared.domain.limits`` names its bad value where it is used.
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Sized
from dataclasses import dataclass, field
from datetime import date
from email import message_from_bytes
from email.errors import NonASCIILocalPartDefect
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import default as default_policy
from enum import StrEnum
from functools import cache

from .calendar import Frequency
from .dunning import BalanceInvoiceRule, NoticeChannel, ReminderStep, StopRule
from .kid import KidScheme
from .limits import FIRST_DAY, LAST_DAY, MAX_LEAD_DAYS, MAX_MINOR, check_days
from .money import CURRENCIES
from .settlement import SettlementPolicy


class CatalogueError(ValueError):
    """The catalogue is inconsistent or lacks what an operation needs."""


class CatalogueInUse(CatalogueError):
    """An item cannot be deleted while subscriptions, invoices or other items use it."""


MAX_DAYS = MAX_LEAD_DAYS
MAX_RETRY_DAYS = 14  # Vipps Recurring: retryDays 0-14
MAX_EXTRA_PAYMENT_REQUESTS = 10
SAFE_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@cache
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _id(what: str, value: str | None, optional: bool = False) -> None:
    if value is None and optional:
        return
    if not isinstance(value, str) or not SAFE_ID.fullmatch(value):
        raise CatalogueError(f"{what} must be 1-64 of A-Z a-z 0-9 . _ -")


def _text(what: str, value: str | None, longest: int, shortest: int = 0) -> None:
    if value is None:
        return
    if not shortest <= len(value) <= longest or CONTROL.search(value):
        raise CatalogueError(f"{what} must be {shortest}-{longest} characters without control characters")


def one_address(value: str) -> bool:
    """One addr-spec (RFC 5322; a non-ASCII local part as RFC 6531 allows): what the mail
    adapters take as the sender and Reply-To of the organisation's mail. Anything else made
    every mail of the organisation refused and printed instead."""
    try:
        Address(addr_spec=value)
    except NonASCIILocalPartDefect:
        return True
    except Exception:  # whatever the parser raises, it is not one address
        # ValueError, HeaderParseError, IndexError, and even AttributeError from CPython's
        # header parser itself (``"\\@["``: 'InvalidHeaderDefect' object has no attribute 'all_defects')
        return False
    return reads_back(value)


def reads_back(value: str | Address) -> bool:
    """``value`` (an address, or a mailbox with its display name), written into a header and
    read back as a receiving parser reads it, is still one address: CPython's writing side
    accepts some that its reading side cannot parse (IndexError, HeaderParseError), which a
    mail server or client would choke on too."""
    try:
        probe = EmailMessage()
        probe["To"] = value
        back = message_from_bytes(probe.as_bytes(), policy=default_policy)["To"]
        return back is not None and len(back.addresses) == 1
    except Exception:  # whatever the parser raises, it is not one address
        return False


def _between(what: str, value: int | None, low: int, high: int) -> None:
    if value is not None and not low <= value <= high:
        raise CatalogueError(f"{what} must be from {low} to {high}")


def _day(what: str, value: date | None) -> None:
    if value is not None and not FIRST_DAY <= value <= LAST_DAY:
        raise CatalogueError(f"{what} must be a date from {FIRST_DAY} to {LAST_DAY}")


def _count(what: str, values: Sized, most: int) -> None:
    if len(values) > most:
        raise CatalogueError(f"{what}: at most {most}")


class PaymentType(StrEnum):
    """How a subscriber pays. ``pty`` codes are the sales poster's (manual 7.26, Vipps)."""

    INVOICE = "invoice"
    VIPPS = "vipps"
    CARD = "card"
    AVTALEGIRO = "avtalegiro"
    EFAKTURA = "efaktura"
    EHF = "ehf"

    @classmethod
    def from_pty(cls, code: str) -> PaymentType:
        """Accept the manual's PTY codes (1 invoice, 2 Vipps, 9 Visa/Mastercard) or a name."""
        by_code = {"1": cls.INVOICE, "2": cls.VIPPS, "9": cls.CARD}
        key = code.strip().lower()
        if key in by_code:
            return by_code[key]
        try:
            return cls(key)
        except ValueError:
            raise CatalogueError(f"unknown payment type {code!r}") from None


class Channel(StrEnum):
    """How a document reaches the subscriber (manual 16: Invoice, Email, EHF; 6.19 SMS)."""

    EMAIL = "email"  # the PDF attached, with a short HTML and text body
    EHF = "ehf"  # PEPPOL BIS Billing 3.0 through an access point (organisations only)
    PRINT = "print"  # the daily print batch; the channel of last resort
    SMS = "sms"  # a text with a time-limited link to the PDF


class StopPolicy(StrEnum):
    """How a subscriber may stop a subscription on My page (manual 6.14.2)."""

    END_OF_PERIOD = "end_of_period"  # only at the end of the ongoing period
    OPTIONAL = "optional"  # on a chosen day in the period, or at its end
    NONE = "none"  # not on My page: customer service stops it


ORIGIN = re.compile(r"https?://[A-Za-z0-9.-]{1,253}(:[0-9]{1,5})?")
MAX_SEATS = 10_000
COLOUR = re.compile(r"#[0-9A-Fa-f]{6}")
LANGUAGES = ("nb", "sv", "en")


@dataclass(frozen=True, slots=True)
class Branding:
    """The organisation's look on its documents (C1, L7)."""

    logo_blob: str | None = None  # a PNG or JPEG in the ``branding`` container, under ``{tenant}/``
    colour: str = "#1F3A5F"  # #RRGGBB
    footer: str = ""
    contact_email: str | None = None
    contact_phone: str | None = None

    def check_bounds(self, what: str) -> None:
        if self.logo_blob is not None and not re.fullmatch(r"[A-Za-z0-9._-]{1,100}\.(png|jpg|jpeg)", self.logo_blob):
            raise CatalogueError(f"{what}: branding logo_blob must be a file name ending in .png, .jpg or .jpeg")
        if not COLOUR.fullmatch(self.colour):
            raise CatalogueError(f"{what}: branding colour must be #RRGGBB")
        _text(f"{what}: branding footer", self.footer, 500)
        _text(f"{what}: branding contact_email", self.contact_email, 254)
        if self.contact_email is not None and not one_address(self.contact_email):
            raise CatalogueError(f"{what}: branding contact_email must be one e-mail address (name@domain)")
        _text(f"{what}: branding contact_phone", self.contact_phone, 32)


class FeeTaxPolicy(StrEnum):
    """Manual 7.18: fee VAT follows the products ("distributional") or the fee has none."""

    DISTRIBUTIONAL = "distributional"
    NO_TAX = "no_tax"


@dataclass(frozen=True, slots=True)
class Organization:
    id: str
    name: str
    currency: str
    time_zone: str = "Europe/Oslo"
    country: str = "NO"
    organization_number: str | None = None
    bank_account: str | None = None
    ocr_agreement_id: str | None = None
    kid: KidScheme = field(default_factory=KidScheme)
    invoice_series: str = "main"
    manual_payment_approval: bool = False  # manual 10.2: identified payments then await approval
    order_blockage_minor: int | None = None  # manual 6.9: owing this much or more blocks new orders
    stop_codes: tuple[str, ...] = ()  # manual 6.13: when set, a stop must give one of these
    address: str | None = None  # the seller's address on documents (L7)
    postal_code: str | None = None
    city: str | None = None
    vat_registered: bool = True  # NO: "MVA" after the organisation number; SE: the VAT number shown
    company: bool = True  # NO: "Foretaksregisteret" (registered in the Register of Business Enterprises)
    vat_number: str | None = None  # SE: "SE" + organisation number + "01"; NO: derived when None
    language: str = ""  # of its documents: nb, sv or en; "" follows the country
    branding: Branding = field(default_factory=Branding)
    document_channel: Channel = Channel.EMAIL  # the default delivery channel (L7, D3)
    ehf_enabled: bool = False  # manual 7.12: EHF to subscribers with an organisation number
    self_service_stop_codes: tuple[str, ...] | None = None  # manual 6.13: the stop codes My page offers (None: all)
    origins: tuple[str, ...] = ()  # the organisation's web sites (scheme://host[:port]): CORS for My page's API
    fallback_to_invoice: bool = False  # P6: an order whose Vipps / card agreement is rejected or expires is
    # placed with invoice instead of cancelled

    def __post_init__(self) -> None:
        if self.currency not in CURRENCIES:
            raise CatalogueError(f"organization {self.id}: unsupported currency {self.currency}")

    def check_bounds(self) -> None:
        """Every value within what billing computes with (see the module docstring)."""
        _id("organization id", self.id)
        what = f"organization {self.id}"
        if self.time_zone not in _zones():
            raise CatalogueError(f"{what}: time_zone must be an IANA time zone such as Europe/Oslo")
        if not re.fullmatch(r"[A-Z]{2}", self.country):
            raise CatalogueError(f"{what}: country must be an ISO 3166 code of two capital letters")
        _text(f"{what}: name", self.name, 200, 1)
        for name in ("organization_number", "bank_account", "ocr_agreement_id", "vat_number", "postal_code"):
            _text(f"{what}: {name}", getattr(self, name), 64)
        _text(f"{what}: address", self.address, 200)
        _text(f"{what}: city", self.city, 100)
        if self.language not in ("", *LANGUAGES):
            raise CatalogueError(f"{what}: language must be one of nb, sv, en (or empty: by country)")
        self.branding.check_bounds(what)
        _id(f"{what}: invoice_series", self.invoice_series)
        _between(f"{what}: order_blockage_minor", self.order_blockage_minor, 0, MAX_MINOR)
        _count(f"{what}: stop_codes", self.stop_codes, 100)
        for code in self.stop_codes:
            _text(f"{what}: a stop code", code, 64, 1)
        if self.self_service_stop_codes is not None:
            unknown = set(self.self_service_stop_codes) - set(self.stop_codes)
            if unknown:
                raise CatalogueError(f"{what}: self_service_stop_codes must be among stop_codes ({sorted(unknown)})")
        _count(f"{what}: origins", self.origins, 20)
        for origin in self.origins:
            if not ORIGIN.fullmatch(origin):
                raise CatalogueError(f"{what}: an origin must be scheme://host[:port], such as https://avis.no")


@dataclass(frozen=True, slots=True)
class PricePoint:
    frequency: Frequency
    valid_from: date
    amount_minor: int

    def check_bounds(self) -> None:
        _day("price valid_from", self.valid_from)
        _between("price amount_minor", self.amount_minor, 0, MAX_MINOR)


@dataclass(frozen=True, slots=True)
class Product:
    id: str
    name: str
    vat_rate_bp: int
    prices: tuple[PricePoint, ...]
    description: str = ""
    part_number: str | None = None
    physical: bool = False

    def check_bounds(self) -> None:
        _id("product id", self.id)
        what = f"product {self.id}"
        _text(f"{what}: name", self.name, 200, 1)
        _between(f"{what}: vat_rate_bp", self.vat_rate_bp, 0, 10_000)
        _count(f"{what}: prices", self.prices, 200)
        for price in self.prices:
            price.check_bounds()
        _text(f"{what}: description", self.description, 2000)
        _text(f"{what}: part_number", self.part_number, 64)

    def price_on(self, frequency: Frequency, day: date) -> int:
        applicable = [p for p in self.prices if p.frequency == frequency and p.valid_from <= day]
        if not applicable:
            raise CatalogueError(f"product {self.id} has no {frequency.value} price on {day}")
        return max(applicable, key=lambda p: p.valid_from).amount_minor


@dataclass(frozen=True, slots=True)
class Fee:
    payment_type: PaymentType
    amount_minor: int
    from_period: int = 1  # 1: from the first period, 2: from the second (manual 7.18)

    def check_bounds(self) -> None:
        _between("fee amount_minor", self.amount_minor, 0, MAX_MINOR)
        _between("fee from_period", self.from_period, 1, 1000)


@dataclass(frozen=True, slots=True)
class BillingPlan:
    id: str
    name: str
    frequency: Frequency
    lead_days: int = 14  # invoice produced this many days before its due date
    due_days: int | None = None  # payment terms of an invoice issued off schedule; default lead_days
    fees: tuple[Fee, ...] = ()
    fee_tax_policy: FeeTaxPolicy = FeeTaxPolicy.DISTRIBUTIONAL
    dunning_process_id: str | None = None
    retry_days: int = 2  # a Vipps charge is retried this many days after its due date (0-14; P6)

    def __post_init__(self) -> None:
        if self.lead_days < 0 or (self.due_days is not None and self.due_days < 0):
            raise CatalogueError(f"billing plan {self.id}: days cannot be negative")

    def check_bounds(self) -> None:
        _id("billing plan id", self.id)
        what = f"billing plan {self.id}"
        _text(f"{what}: name", self.name, 200, 1)
        _between(f"{what}: lead_days", self.lead_days, 0, MAX_DAYS)
        _between(f"{what}: due_days", self.due_days, 0, MAX_DAYS)
        _count(f"{what}: fees", self.fees, 20)
        for fee in self.fees:
            fee.check_bounds()
        _id(f"{what}: dunning_process_id", self.dunning_process_id, optional=True)
        _between(f"{what}: retry_days", self.retry_days, 0, MAX_RETRY_DAYS)

    @property
    def terms_days(self) -> int:
        return self.lead_days if self.due_days is None else self.due_days

    def fee_for(self, payment_type: PaymentType, period_index: int) -> int:
        return sum(
            f.amount_minor
            for f in self.fees
            if f.payment_type == payment_type and period_index + 1 >= f.from_period
        )


@dataclass(frozen=True, slots=True)
class DunningProcess:
    """Manual 7.19 (the steps of its wizard), 7.11 balance invoice and 6.19 notices."""

    id: str
    name: str
    settlement: SettlementPolicy = field(default_factory=SettlementPolicy)
    reminders: tuple[ReminderStep, ...] = ()
    consume_partial_payments: bool = True
    write_off_fee_on_exact_match: bool = False
    stop_rule: StopRule | None = None
    stop_notice_days: int | None = None  # "payment stop in N days" notice (6.19)
    notice_channel: NoticeChannel = NoticeChannel.EMAIL
    balance_invoice: BalanceInvoiceRule | None = None
    extra_payment_requests: int = 0  # manual 7.19 step 2: after a failed charge, a new charge this many times
    access_grace_days: int | None = None  # digital access after an unpaid invoice's due date: None until the
    # payment stop ends the subscription; N: access closes N days after the due date until it is paid (M1)

    def __post_init__(self) -> None:
        for step in self.reminders:
            if step.delay_days < 0 or step.min_due_days < 0 or step.fee_minor < 0:
                raise CatalogueError(f"dunning process {self.id}: reminder days and fees cannot be negative")
        if self.stop_rule is not None and (self.stop_rule.delay_days < 0 or self.stop_rule.threshold_minor < 0):
            raise CatalogueError(f"dunning process {self.id}: stop rule values cannot be negative")

    def check_bounds(self) -> None:
        _id("dunning process id", self.id)
        what = f"dunning process {self.id}"
        _text(f"{what}: name", self.name, 200, 1)
        _count(f"{what}: reminders", self.reminders, 20)
        for step in self.reminders:
            _between(f"{what}: reminder delay_days", step.delay_days, 0, MAX_DAYS)
            _between(f"{what}: reminder min_due_days", step.min_due_days, 0, MAX_DAYS)
            _between(f"{what}: reminder fee_minor", step.fee_minor, 0, MAX_MINOR)
        if self.stop_rule is not None:
            _between(f"{what}: stop_rule delay_days", self.stop_rule.delay_days, 0, MAX_DAYS)
            _between(f"{what}: stop_rule threshold_minor", self.stop_rule.threshold_minor, 0, MAX_MINOR)
            _text(f"{what}: stop_rule cause", self.stop_rule.cause, 200)
        _between(f"{what}: stop_notice_days", self.stop_notice_days, 0, MAX_DAYS)
        _between(f"{what}: extra_payment_requests", self.extra_payment_requests, 0, MAX_EXTRA_PAYMENT_REQUESTS)
        _between(f"{what}: access_grace_days", self.access_grace_days, 0, MAX_DAYS)
        if self.balance_invoice is not None:
            _between(f"{what}: balance_invoice days_after_stop", self.balance_invoice.days_after_stop, 0, MAX_DAYS)
            _between(f"{what}: balance_invoice min_owed_minor", self.balance_invoice.min_owed_minor, 0, MAX_MINOR)
        if self.settlement.value > MAX_MINOR:
            raise CatalogueError(f"{what}: settlement value must be at most {MAX_MINOR}")


@dataclass(frozen=True, slots=True)
class SubscriptionPlan:
    id: str
    name: str
    organization_id: str
    billing_plan_id: str
    product_ids: tuple[str, ...]
    valid_from: date | None = None
    valid_until: date | None = None
    disabled: bool = False
    renewal_name: str | None = None
    automatic_stop: bool = False  # manual 7.8: stops at the end of the first period
    stop_policy: StopPolicy = StopPolicy.END_OF_PERIOD  # manual 6.14.2: stops on My page
    pause_allowed: bool = False  # manual 6.6: the subscriber may pause it on My page
    seats: int = 0  # manual 6.15: extra logins a group subscription has (0: not a group subscription)
    seat_product_ids: tuple[str, ...] = ()  # what the group's members get access to (empty: all its products)

    def check_bounds(self) -> None:
        _id("plan id", self.id)
        what = f"plan {self.id}"
        _text(f"{what}: name", self.name, 200, 1)
        _text(f"{what}: renewal_name", self.renewal_name, 200)
        _id(f"{what}: organization_id", self.organization_id)
        _id(f"{what}: billing_plan_id", self.billing_plan_id)
        _count(f"{what}: product_ids", self.product_ids, 50)
        for product_id in self.product_ids:
            _id(f"{what}: a product id", product_id)
        _day(f"{what}: valid_from", self.valid_from)
        _day(f"{what}: valid_until", self.valid_until)
        _between(f"{what}: seats", self.seats, 0, MAX_SEATS)
        _count(f"{what}: seat_product_ids", self.seat_product_ids, 50)
        if set(self.seat_product_ids) - set(self.product_ids):
            raise CatalogueError(f"{what}: seat_product_ids must be among the plan's product_ids")
        if self.valid_from and self.valid_until and self.valid_until < self.valid_from:
            raise CatalogueError(f"{what}: valid_until is before valid_from")

    def orderable_on(self, day: date) -> bool:
        return (
            not self.disabled
            and (self.valid_from is None or self.valid_from <= day)
            and (self.valid_until is None or day <= self.valid_until)
        )


@dataclass(frozen=True, slots=True)
class Catalogue:
    """One tenant's catalogue, validated as a whole so that plans never dangle."""

    organizations: dict[str, Organization]
    products: dict[str, Product]
    billing_plans: dict[str, BillingPlan]
    plans: dict[str, SubscriptionPlan]
    dunning_processes: dict[str, DunningProcess] = field(default_factory=dict)

    def check(self) -> Catalogue:
        receiving: dict[tuple[str, str], str] = {}
        for org in self.organizations.values():
            if org.bank_account:
                other = receiving.setdefault((_account_digits(org.bank_account), org.currency), org.id)
                if other != org.id:
                    raise CatalogueError(f"organization {org.id}: bank account {org.bank_account} in {org.currency} "
                                         f"already receives payments for organization {other}")
        for billing in self.billing_plans.values():
            if billing.dunning_process_id and billing.dunning_process_id not in self.dunning_processes:
                raise CatalogueError(f"billing plan {billing.id}: unknown dunning process {billing.dunning_process_id}")
        for plan in self.plans.values():
            if plan.organization_id not in self.organizations:
                raise CatalogueError(f"plan {plan.id}: unknown organization {plan.organization_id}")
            if plan.billing_plan_id not in self.billing_plans:
                raise CatalogueError(f"plan {plan.id}: unknown billing plan {plan.billing_plan_id}")
            if not plan.product_ids:
                raise CatalogueError(f"plan {plan.id}: no products")
            for product_id in plan.product_ids:
                if product_id not in self.products:
                    raise CatalogueError(f"plan {plan.id}: unknown product {product_id}")
        return self

    def plan(self, plan_id: str) -> SubscriptionPlan:
        try:
            return self.plans[plan_id]
        except KeyError:
            raise CatalogueError(f"unknown subscription plan {plan_id!r}") from None

    def billing_plan_of(self, plan: SubscriptionPlan) -> BillingPlan:
        return self.billing_plans[plan.billing_plan_id]

    def organization_of(self, plan: SubscriptionPlan) -> Organization:
        return self.organizations[plan.organization_id]

    def products_of(self, plan: SubscriptionPlan) -> list[Product]:
        return [self.products[p] for p in plan.product_ids]

    def dunning_of(self, plan_id: str) -> DunningProcess | None:
        """The dunning process of a plan's billing plan; None means no reminders and no stop."""
        return self.dunning_processes.get(self.billing_plan_of(self.plan(plan_id)).dunning_process_id or "")

    def organization_by_account(self, account: str, currency: str | None) -> Organization | None:
        """The organisation whose bank account (or bankgiro) receives payments to ``account``
        in ``currency`` (None: in any currency; the first found). Account and currency
        together name at most one organisation (``check``)."""
        digits = _account_digits(account)
        for org in self.organizations.values():
            if org.bank_account and _account_digits(org.bank_account) == digits and currency in (None, org.currency):
                return org
        return None

    def cadences(self) -> set[tuple[Frequency, int]]:
        """The distinct (frequency, lead days) pairs the invoice run must look ahead for."""
        return {(b.frequency, check_days(b.lead_days, "billing plan %s: lead days", b.id))
                for b in self.billing_plans.values()}


def _account_digits(account: str) -> str:
    return "".join(c for c in account if c.isdigit()).lstrip("0")
