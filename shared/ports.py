"""What the service layer needs from the world, and the errors it must understand.

The use cases speak to storage, the bus, notifiers, the clock and (soon) payment
providers only through the ``Protocol``s here: ``service.context.Context`` is typed with
them, ``shared.bootstrap`` (the composition root) wires the Azure adapters of
``shared/adapters`` into it, and ``tests/fakes`` wires in-memory fakes of the same ports
for service tests that need no Azurite. The contract tests (``tests/contract``) run the
same assertions against each fake and its adapter, so a fake cannot drift from the real
thing.

Beside the ports live the values they speak in (``Loaded``, ``History``, ``NumberClaim``,
``BusMessage``, ``Notice``, ...) and the errors a use case must tell apart
(``ConcurrencyConflict``, ``NotFound``, ``StorageLimit``, ``TooManyEntities``,
``transient``), so a use case never imports an adapter to learn what came back or what
went wrong, and an adapter raises them without importing the service layer.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any, BinaryIO, Protocol

from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError

from .domain.account import Account, Changes, ReminderDocument
from .domain.catalogue import Catalogue
from .domain.events import Event
from .domain.identity import AccessRecord, SiteTable
from .domain.import_report import ImportReport
from .domain.invoicing import CreditNote, Invoice
from .domain.ledger import LedgerEntry
from .domain.payments import BookedPayment, ReceivedPayment
from .formats.payments import IncomingPayment, UnreadableRecord

# ---- errors -------------------------------------------------------------------------------


class ConcurrencyConflict(Exception):
    """Someone else changed the partition since it was read (ETag mismatch or insert race).
    ``at``: the operation of a transaction that failed, when the service says which."""

    at: int | None = None


class NotFound(LookupError):
    """What a call names does not exist (a subscriber, an invoice, a report)."""


class BatchRefused(ValueError):
    """A transaction the store would reject."""


class StorageLimit(ValueError):
    """A value or an operation beyond a storage limit: refused before anything is sent."""


class TooManyEntities(BatchRefused, StorageLimit):
    """One operation that would write more rows than one transaction holds (100)."""


class Unavailable(Exception):
    """The store or the network did not answer, or answered 'busy' (what a fake raises to
    inject the failure an Azure SDK reports with its own exception types)."""


def transient(exc: BaseException) -> bool:
    """A storage or network failure that may pass if tried again (not a fault of the data):
    a conflict, ``Unavailable``, or the Azure SDK's 'no answer', timeout, throttling or 5xx."""
    if isinstance(exc, (ConcurrencyConflict, Unavailable, ServiceRequestError, ServiceResponseError)):
        return True
    return isinstance(exc, HttpResponseError) and (exc.status_code in (408, 429) or (exc.status_code or 0) >= 500)


# ---- accounts (one partition per subscriber) -------------------------------------------------


@dataclass
class Loaded:
    """A subscriber's partition as loaded (or as a commit left it)."""

    account: Account
    etag: str | None  # None: the subscriber is new and not stored yet
    outbox: list[Event] = field(default_factory=list)
    stored: dict[str, Any] = field(default_factory=dict)  # the adapter's item rows as stored: RowKey -> value
    where: str = ""  # the partition it was read from (a tenant moving between layouts has two)


@dataclass
class History:
    invoices: list[Invoice]
    ledger: list[LedgerEntry]
    reminders: list[ReminderDocument]
    credit_notes: list[CreditNote]

    @property
    def credited(self) -> tuple[int, ...]:
        """Invoice numbers with a credit note: ``Account.credited``, derived, not stored."""
        return tuple(sorted({c.invoice_number for c in self.credit_notes}))


def with_documents(loaded: Loaded, history: History) -> Loaded:
    """``loaded`` with what only the documents tell: which invoices are credited."""
    return replace(loaded, account=replace(loaded.account, credited=history.credited))


class Accounts(Protocol):
    """Subscriber partitions: load an ``Account``, commit ``Changes`` atomically under the
    ETag of the load (``ConcurrencyConflict`` if someone committed since; a document,
    ledger entry, payment or outbox message created twice conflicts too), and read the
    documents issued. ``commit`` raises ``TooManyEntities`` before writing anything if the
    changes need more rows than one transaction holds; it clears the outbox messages found
    at load (as far as room allows) and returns the partition as it now is."""

    def load(self, tenant: str, subscriber_no: int) -> Loaded | None: ...
    def commit(self, tenant: str, loaded: Loaded | None, changes: Changes) -> Loaded: ...
    def history(self, tenant: str, subscriber_no: int) -> tuple[list[Invoice], list[LedgerEntry]]: ...
    def documents(self, tenant: str, subscriber_no: int) -> History: ...
    def reminder(self, tenant: str, subscriber_no: int, demand_no: int) -> ReminderDocument | None: ...
    def booked(self, tenant: str, subscriber_no: int, payment_ids: list[str]) -> set[str]: ...
    def payments(self, tenant: str, subscriber_no: int) -> list[BookedPayment]: ...
    def invoice(self, tenant: str, subscriber_no: int, demand_no: int) -> Invoice | None: ...
    def load_with_invoice(self, tenant: str, subscriber_no: int, demand_no: int
                          ) -> tuple[Loaded | None, Invoice | None]: ...  # one round trip: load + invoice
    def fence(self, tenant: str, subscriber_no: int) -> bool: ...
    def scan_tenant(self, tenant: str) -> Iterator[tuple[Loaded, History]]: ...
    # Many subscribers at once (issue 13): the partition a subscriber lives in, so a batch can
    # be grouped by it; the hot rows of many subscribers in one query per partition; and the
    # changes of many committed in as few transactions as the 100-row / 4 MiB limits allow.
    # ``commit_many`` answers per item, in order: the partition as now (like ``commit``), or
    # the exception that item alone met (``ConcurrencyConflict`` on its ETag or a row it
    # creates twice, ``TooManyEntities``, a ``StorageLimit``); the others commit without it.
    def partition_of(self, tenant: str, subscriber_no: int) -> str: ...
    def load_many(self, tenant: str, subscriber_nos: Sequence[int]) -> dict[int, Loaded]: ...
    def commit_many(self, tenant: str, items: Sequence[tuple[Loaded | None, Changes]]
                    ) -> list[Loaded | Exception]: ...


# ---- catalogue ---------------------------------------------------------------------------------


class CatalogueRepository(Protocol):
    """The tenant's catalogue, read whole. ``put`` checks the item's bounds first."""

    def get(self, tenant: str) -> Catalogue: ...
    def put(self, tenant: str, kind: str, item: Any) -> None: ...
    def delete(self, tenant: str, kind: str, item_id: str) -> None: ...


# ---- numbering -------------------------------------------------------------------------------


@dataclass(frozen=True)
class NumberClaim:
    number: int
    void: bool
    etag: str


class InvoiceNumbering(Protocol):
    """Gapless invoice numbers per series (``pk``), claimed per document by its claim key
    (the same key always gets the same number), released by void -> fence -> verify -> free
    (``adapters/numbering.py`` tells why). Claims made before ``older_than`` (seconds since
    the epoch) are what the auditor's sweep looks at."""

    def claim(self, pk: str, keys: Sequence[str]) -> dict[str, int]: ...
    def claims(self, pk: str, older_than: float | None = None) -> dict[str, int]: ...
    def stale_voids(self, pk: str, older_than: float) -> dict[str, NumberClaim]: ...
    def free_numbers(self, pk: str) -> tuple[int, ...]: ...
    def void(self, pk: str, held: Mapping[str, int]) -> dict[str, NumberClaim]: ...
    def restore(self, pk: str, voided: Mapping[str, NumberClaim]) -> None: ...
    def free(self, pk: str, voided: Mapping[str, NumberClaim]) -> None: ...


class SubscriberNumbering(Protocol):
    """Customer numbers: unique and increasing per tenant; gaps allowed."""

    def next(self, tenant: str) -> int: ...


# ---- indexes -----------------------------------------------------------------------------------


class DueSubscribers(Protocol):
    """Who may have an invoice due, by the cadence key of a subscription's anchor."""

    def add(self, tenant: str, cadence: str, subscriber_no: int, subscription_id: str) -> None: ...
    def subscribers(self, tenant: str, cadences: Iterable[str]) -> list[int]: ...


class DunningVisits(Protocol):
    """Whom the dunning run must visit on a day besides the renewals."""

    def add(self, tenant: str, day: date, subscriber_no: int) -> None: ...
    def add_many(self, tenant: str, visits: Iterable[tuple[date, int]]) -> None:
        """Many (day, subscriber) at once: one transaction per day's partition and 100 rows."""
        ...
    def subscribers(self, tenant: str, days: Iterable[date]) -> set[int]: ...


class Emails(Protocol):
    """Which subscriber an e-mail address (trimmed, case-insensitive) belongs to; the first
    ``claim`` wins, also under concurrent orders."""

    def find(self, tenant: str, email: str) -> int | None: ...
    def claim(self, tenant: str, email: str, subscriber_no: int) -> int: ...
    def release(self, tenant: str, email: str, subscriber_no: int) -> bool:
        """Unbind ``email`` if (and only while) it is bound to ``subscriber_no`` (a changed or
        erased address, M1/S8); True if this call unbound it."""
        ...


@dataclass(frozen=True)
class OrderRecord:
    fingerprint: str
    subscriber_no: int  # the new subscriber this order makes, if its e-mail is nobody's yet
    subscription_id: str


class OrderReferences(Protocol):
    """An order reference bound, first come, to the order it came with."""

    def bind(self, tenant: str, order_ref: str, record: OrderRecord) -> OrderRecord: ...


@dataclass(frozen=True)
class PendingOrder:
    id: str
    subscriber_no: int  # the existing subscriber whose e-mail the order gave
    order: dict[str, Any]  # the order as posted (``PlaceOrder`` fields, JSON)
    received: str
    state: str = "pending"  # pending, confirmed, rejected
    etag: str = ""


class PendingOrderQueue(Protocol):
    """Anonymous orders on an existing subscriber's e-mail, held for customer service;
    ``decide`` under the held order's ETag (a second decision conflicts)."""

    def add(self, tenant: str, pending: PendingOrder) -> PendingOrder: ...
    def get(self, tenant: str, order_id: str) -> PendingOrder | None: ...
    def list(self, tenant: str, state: str = "pending") -> list[PendingOrder]: ...
    def decide(self, tenant: str, pending: PendingOrder, state: str) -> PendingOrder: ...


class TenantRegistry(Protocol):
    """The tenants the timers run for, and each run's watermark."""

    def register(self, tenant: str) -> None: ...
    def exists(self, tenant: str) -> bool: ...
    def all(self) -> list[str]: ...
    def set_watermark(self, tenant: str, run: str, through: date) -> None: ...


# ---- needs attention ---------------------------------------------------------------------------

TENANT_RUN = 0  # the subscriber number of an attention row about the tenant's whole run


@dataclass(frozen=True)
class Attention:
    run: str
    subscriber_no: int
    ref: str
    first_day: date
    day: date
    reason: str
    count: int


@dataclass(frozen=True)
class RunState:
    """A tenant's run as the timer finds it: how far it has run, and whom it must retry."""

    watermark: date | None
    attention: frozenset[int]  # subscriber numbers with a row; TENANT_RUN: the run itself failed
    failed_since: date | None = None  # the first day the tenant's run failed, while it fails

    @property
    def done_through(self) -> date | None:
        """The last day the run is done for: the watermark; for a run that failed before it
        ever succeeded, the day before its first failure, so the failed days are caught up."""
        if self.watermark is None and self.failed_since is not None:
            return self.failed_since - timedelta(days=1)
        return self.watermark


class AttentionRows(Protocol):
    """What a run could not do, per subscriber (or ``TENANT_RUN``) and ``ref``; the same
    failure recorded again counts up on its row. ``run_state`` reads the run's watermark
    (``TenantRegistry.set_watermark``) with the rows."""

    def run_state(self, tenant: str, run: str) -> RunState: ...
    def record(self, tenant: str, run: str, subscriber_no: int, day: date, reason: str,
               ref: str = "") -> Attention: ...
    def find(self, tenant: str, run: str, subscriber_no: int, ref: str = "") -> Attention | None: ...
    def resolve(self, tenant: str, run: str, subscriber_no: int, ref: str = "") -> None: ...
    def all(self, tenant: str) -> list[Attention]: ...


# ---- bank-file imports -------------------------------------------------------------------------


@dataclass(frozen=True)
class TransmissionClaim:
    digest: str
    state: str  # "importing" | "imported"
    file: str
    report_id: str  # the import (file identity's key) that took it
    fresh: bool = False  # taken by this call


class ImportJournal(Protocol):
    """Bank-file imports: each transmission's identity claimed once, the import reports, and
    the blob trigger's attempts per file version."""

    def claim(self, tenant: str, key: str, digest: str, file: str, report: str = "") -> TransmissionClaim: ...
    def imported(self, tenant: str, key: str, digest: str, file: str, report: str = "") -> None: ...
    def release(self, tenant: str, key: str) -> None: ...
    def save(self, tenant: str, report: ImportReport) -> None: ...
    def report(self, tenant: str, report_id: str) -> ImportReport | None: ...
    def reports(self, tenant: str) -> list[ImportReport]: ...
    def attempt(self, name: str, data: bytes) -> tuple[int, str | None]: ...
    def decide(self, name: str, data: bytes, decision: str, report_id: str = "") -> None: ...


class FileDrop(Protocol):
    """Where a bank file that will not import goes, beside a report a person reads:
    ``reject`` (refused; its report says why and what was written) or ``quarantine``
    (not for us, or not a bank file; nothing was written)."""

    def reject(self, name: str, data: bytes, report: str) -> None: ...
    def quarantine(self, name: str, data: bytes, report: str) -> None: ...


# ---- bus, notifier, clock ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BusMessage:
    id: str  # the sender's identity of the message: a re-sent message is dropped as a duplicate
    body: dict[str, Any]

    def encode(self) -> str:
        return json.dumps({"id": self.id, "body": self.body}, separators=(",", ":"))


class Bus(Protocol):
    def send(self, queue: str, messages: Sequence[BusMessage]) -> None: ...


@dataclass(frozen=True, slots=True)
class Notice:
    id: str
    tenant: str
    channel: str  # "email" or "sms"
    to: str
    subject: str
    body: str
    sender: str
    day: str  # yyyy-mm-dd, for the file's folder


class Notifier(Protocol):
    """Delivers one e-mail or SMS; delivering the same notice (same id) twice is harmless."""

    def send(self, notice: Notice) -> None: ...


class Clock(Protocol):
    def now(self) -> datetime: ...


# ---- documents (L7, D3) ------------------------------------------------------------------------


@dataclass(frozen=True)
class PrintItem:
    """A document handed to the print channel: it goes into the organisation's print batch
    of ``day`` (in postal-code order, then subscriber and document)."""

    organization_id: str
    subscriber_no: int
    document_id: str
    postal_code: str  # "" when the subscriber has none: such letters sort first, for a person to look at
    name: str  # the addressee, for the manifest


class PrintQueue(Protocol):
    """The documents waiting for a day's print batch, per tenant (an index table: the batch
    never scans subscribers). Adding the same item twice keeps one."""

    def add(self, tenant: str, day: date, item: PrintItem) -> None: ...
    def items(self, tenant: str, day: date, organization_id: str) -> Iterator[PrintItem]:
        """The organisation's items of ``day`` in print order, streamed (not all held at once)."""
        ...
    def organizations(self, tenant: str, day: date) -> list[str]: ...


class PrintFiles(Protocol):
    """The print house's files of a day, ``print/{tenant}/{day}/{name}`` (the daily print
    batch: one merged PDF and one CSV manifest per organisation, and the batch's report)."""

    def get(self, tenant: str, day: date, name: str) -> bytes | None: ...
    def put(self, tenant: str, day: date, name: str, data: bytes, content_type: str) -> None: ...
    def open(self, tenant: str, day: date, name: str, content_type: str) -> AbstractContextManager[BinaryIO]:
        """A file written as a stream (block by block, never held whole): it appears, whole and
        replacing any file of the name, when the ``with`` block ends without an error; a block
        that raises leaves what was there before."""
        ...


# ---- payment providers (P6: Vipps MobilePay Recurring v3, Swedbank Pay Payment Order v3) ------------
# One port per provider. The adapters (``adapters/vipps.py``, ``adapters/swedbankpay.py``) speak the
# providers' published HTTP APIs with ``requests`` (timeouts, retries with back-off on 429/5xx,
# correlation ids, access tokens cached until expiry, credentials per tenant from the app settings);
# locally and in tests they speak to the simulators in ``devhost/`` the same way. Every call that
# creates or changes something carries our idempotency key, so a retried call makes nothing twice.
# Money is minor units + currency. Errors: ``ProviderRefused`` (4xx: for good, with the problem's
# text), ``ProviderUnavailable`` (network, 429, 5xx after the retries: the bus tries again).


class ProviderRefused(Exception):
    """The provider refused the request for good (a 4xx problem): ``status`` and its detail."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"{status}: {detail}")
        self.status = status
        self.detail = detail


class ProviderUnavailable(Unavailable):
    """The provider did not answer, or said 'busy' (429) or failed (5xx), after the retries."""


@dataclass(frozen=True)
class AgreementDraft:
    """What a Vipps draft agreement asks the payer to approve (``POST /recurring/v3/agreements``)."""

    external_id: str  # ``agreements.agreement_key``: how the agreement is mapped back to us
    product_name: str  # at most 45 characters
    product_description: str  # at most 100 characters
    price_minor: int  # LEGACY pricing: the amount of each period
    currency: str
    interval_unit: str  # YEAR | MONTH | WEEK | DAY
    interval_count: int  # 1-31
    merchant_agreement_url: str  # where the payer manages it (My page)
    merchant_redirect_url: str  # where the payer returns after approving or rejecting
    phone: str | None = None  # MSISDN, e.g. 4791234567
    initial_charge_minor: int | None = None  # the first period, taken when the payer approves
    initial_charge_id: str = ""  # its orderId (``agreements.charge_id``)
    initial_charge_description: str = ""


@dataclass(frozen=True)
class VippsAgreement:
    """An agreement as Vipps reports it (``GET /recurring/v3/agreements/{id}``)."""

    id: str  # agreementId
    status: str  # PENDING | ACTIVE | STOPPED | EXPIRED (Vipps' names)
    external_id: str
    price_minor: int
    currency: str
    confirmation_url: str = ""
    stopped_by: str = ""  # the stop event's actor, where known: MERCHANT | USER (or "")


@dataclass(frozen=True)
class ChargeRequest:
    """One charge to create (``POST /recurring/v3/agreements/{id}/charges``, or in bulk)."""

    agreement_id: str  # Vipps agreementId
    charge_id: str  # orderId (becomes the chargeId) and the Idempotency-Key
    amount_minor: int
    currency: str
    description: str  # at most 45 characters
    due: date  # at least the lead time ahead
    retry_days: int  # 0-14
    external_id: str = ""  # the KID, for the settlement report


@dataclass(frozen=True)
class VippsCharge:
    """A charge as Vipps reports it (``GET /recurring/v3/agreements/{id}/charges/{chargeId}``)."""

    id: str
    agreement_id: str
    status: str  # PENDING | DUE | PROCESSING | RESERVED | CHARGED | PARTIALLY_CAPTURED | FAILED | REFUNDED |
    #              PARTIALLY_REFUNDED | CANCELLED (Vipps' names)
    amount_minor: int
    currency: str
    due: date
    captured_minor: int = 0
    refunded_minor: int = 0
    cancelled_minor: int = 0
    failure_reason: str = ""  # user_action_required | charge_amount_too_high | non_technical_error | technical_error
    external_id: str = ""


class VippsRecurring(Protocol):
    """Vipps MobilePay Recurring v3 for one tenant's merchant (its MSN and keys)."""

    def create_agreement(self, tenant: str, draft: AgreementDraft, idempotency_key: str) -> VippsAgreement:
        """A draft agreement: its id and the confirmation URL to send the payer to (status PENDING)."""
        ...
    def agreement(self, tenant: str, agreement_id: str) -> VippsAgreement: ...
    def update_price(self, tenant: str, agreement_id: str, price_minor: int, idempotency_key: str) -> None: ...
    def stop_agreement(self, tenant: str, agreement_id: str, idempotency_key: str) -> None: ...
    def create_charges(self, tenant: str, charges: Sequence[ChargeRequest]) -> dict[str, str]:
        """Create charges (in bulk where the API allows, within its rate limit); charge id -> ""
        if created (or created before: the same charge id), else why it was refused."""
        ...
    def charge(self, tenant: str, agreement_id: str, charge_id: str) -> VippsCharge: ...
    def charges(self, tenant: str, agreement_id: str) -> list[VippsCharge]: ...
    def cancel_charge(self, tenant: str, agreement_id: str, charge_id: str, idempotency_key: str) -> None: ...
    def refund(self, tenant: str, agreement_id: str, charge_id: str, amount_minor: int, description: str,
               idempotency_key: str) -> None: ...
    def webhook_secret(self, tenant: str) -> str:
        """The secret of the tenant's webhook registration (what ``vipps_webhook`` verifies with)."""
        ...


@dataclass(frozen=True)
class CardPurchase:
    """A Swedbank Pay payment order (``operation: Purchase``) that also makes an unscheduled token."""

    payee_reference: str  # ours, unique per attempt (``agreements.agreement_key`` for the first purchase)
    amount_minor: int
    vat_minor: int
    currency: str
    description: str
    complete_url: str  # where the payer returns after paying
    cancel_url: str
    callback_url: str  # Swedbank Pay's server-to-server callback (its body is never trusted)
    language: str = "nb-NO"


@dataclass(frozen=True)
class CardPaymentOrder:
    """A payment order as Swedbank Pay reports it (``GET /psp/paymentorders/{id}?$expand=paid``)."""

    id: str  # /psp/paymentorders/{guid}
    status: str  # Initialized | Paid | Failed | Cancelled | Aborted | Reversed
    amount_minor: int
    currency: str
    payee_reference: str
    redirect_url: str = ""  # the payment page, while Initialized
    captured_minor: int = 0
    reversed_minor: int = 0
    token: str = ""  # the unscheduled token made by the first purchase
    card_mask: str = ""
    card_expiry: date | None = None  # the last day of the card's expiry month
    failure_reason: str = ""


class SwedbankPay(Protocol):
    """Swedbank Pay Payment Order v3 (card) for one tenant's payee."""

    def create_purchase(self, tenant: str, purchase: CardPurchase) -> CardPaymentOrder:
        """A payment order for the payer to complete on the payment page (``redirect_url``)."""
        ...
    def payment_order(self, tenant: str, payment_order_id: str) -> CardPaymentOrder: ...
    def unscheduled_purchase(self, tenant: str, token: str, payee_reference: str, amount_minor: int,
                             vat_minor: int, currency: str, description: str) -> CardPaymentOrder:
        """Charge the token (no payer present); the answer says whether it was authorized."""
        ...
    def capture(self, tenant: str, payment_order_id: str, amount_minor: int, vat_minor: int,
                payee_reference: str) -> CardPaymentOrder: ...
    def reversal(self, tenant: str, payment_order_id: str, amount_minor: int, vat_minor: int,
                 payee_reference: str) -> CardPaymentOrder: ...


@dataclass(frozen=True)
class Watch:
    """Something the provider timer must look at on ``day`` if no webhook has settled it: a
    pending agreement (``charge_id`` "") or a charge whose outcome should be known."""

    subscriber_no: int
    provider: str
    agreement_key: str
    charge_id: str = ""


class ProviderWatch(Protocol):
    """An index of what to poll, by day (never a scan of subscribers). Written ahead of the
    commit that makes it necessary; a watch that finds nothing to do is harmless."""

    def add(self, tenant: str, day: date, watch: Watch) -> None: ...
    def due(self, tenant: str, through: date) -> list[tuple[date, Watch]]: ...
    def done(self, tenant: str, day: date, watch: Watch) -> None: ...


# ==== payments inbox (helper "payments", issue 9) =============================================
# What the bank-file import and customer service keep about payments that are not (yet) on a
# ledger: payments awaiting approval, and records set aside for customer service ("requires
# processing"; manual 10.2). Implemented by ``adapters.payments_inbox.PaymentsInbox`` (table
# ``Payments``) and, for tests, ``tests.fakes.payments_inbox.FakePaymentsInbox``.


class Handling(StrEnum):
    """Where customer service's handling of an inbox record is: one call at a time claims it."""

    OPEN = "open"
    CLAIMED = "claimed"  # a resolve or approval is booking it (or died doing so: see ``claimed_at``)
    DONE = "done"


@dataclass(frozen=True, slots=True)
class MandateAside:
    """An AvtaleGiro mandate record that matches no subscriber (what customer service sees of it)."""

    kid: str
    registration: str
    notify: bool
    account: str


@dataclass(frozen=True, slots=True)
class Hold:
    """The handling state of an inbox record as read; ``etag`` guards the next change of it."""

    state: Handling = Handling.OPEN
    target: str = ""  # what the claim books onto (a subscriber, or who approves)
    claimed_at: datetime | None = None
    etag: str = ""


@dataclass(frozen=True, slots=True)
class SetAside:
    """A record on the requires-processing list: why it is there and the record as imported."""

    id: str  # the payment id: ``{import}.{line id}`` (``{import}.m{line id}`` for a mandate)
    kind: str  # payment | reversal | deduction | unreadable | mandate
    record: IncomingPayment | UnreadableRecord | MandateAside
    reason_code: str | None  # ``import_report.Reason``; None on rows older than reason codes
    reason: str
    file: str
    report_id: str = ""
    amount_minor: int = 0
    currency: str = ""  # "" when the record does not say
    raw: str = ""
    resolved_to: int | None = None  # the subscriber customer service booked it onto
    hold: Hold = Hold()


@dataclass(frozen=True, slots=True)
class AwaitingPayment:
    """An identified payment of an organisation that approves payments by hand (AwaitingApproval)."""

    payment: ReceivedPayment
    subscriber_no: int
    file: str
    currency: str | None = None  # as listed (rows older than the column have none)
    approved_by: str | None = None
    reversed_by: str | None = None  # the bank took it back before it was approved
    hold: Hold = Hold()

    @property
    def id(self) -> str:
        return self.payment.id


class PaymentsInboxPort(Protocol):
    """Payments awaiting approval and records set aside, per tenant; claims under ETags.

    ``claim`` and ``take_back`` change a record only if it is as it was read (its
    ``hold.etag``): of two concurrent calls one wins, the other gets ``ConcurrencyConflict``.
    """

    def set_aside(self, tenant: str, aside: SetAside) -> bool:
        """Put a record on the list once (however often it is imported); False if it was there."""
        ...

    def set_asides(self, tenant: str, id_prefix: str = "") -> list[SetAside]:
        """The tenant's set-aside records (handled ones too), those whose id starts with ``id_prefix``."""
        ...

    def set_aside_record(self, tenant: str, payment_id: str) -> SetAside | None: ...

    def await_approval(self, tenant: str, awaiting: AwaitingPayment) -> bool:
        """Keep a payment for approval once; False if it was kept before."""
        ...

    def awaiting(self, tenant: str) -> list[AwaitingPayment]:
        """The tenant's payments for approval (approved and taken back ones too), by id."""
        ...

    def awaiting_payment(self, tenant: str, payment_id: str) -> AwaitingPayment | None: ...

    def claim(self, tenant: str, record: SetAside | AwaitingPayment, target: str, at: datetime) -> None:
        """Open (or stale-claimed) to claimed for ``target``, under the record's ETag."""
        ...

    def release(self, tenant: str, record: SetAside | AwaitingPayment) -> None:
        """Back to open: the claimed booking was refused and booked nothing."""
        ...

    def resolved(self, tenant: str, aside: SetAside, subscriber_no: int) -> None:
        """Done: booked onto ``subscriber_no``."""
        ...

    def approved(self, tenant: str, awaiting: AwaitingPayment, approved_by: str) -> None:
        """Done: approved (and booked) by ``approved_by``."""
        ...

    def take_back(self, tenant: str, awaiting: AwaitingPayment, reversal_id: str) -> None:
        """Done without booking: the bank reversed it (``reversal_id``) before it was approved;
        under its ETag, so no approval books it after."""
        ...

    def booked_payments(self, tenant: str, subscriber_no: int | None = None) -> Iterator[tuple[int, BookedPayment]]:
        """(subscriber number, booked payment) of one subscriber or of the whole tenant (a scan)."""
        ...


# ==== delivery (helper "delivery", issue 10: L7, D3) ===========================================
# How a document reaches the subscriber: e-mail (``Mailer``), EHF (``AccessPoint``), print
# (``PrintQueue`` above), SMS with a signed link (``Notifier`` + ``DocumentFiles``), and the
# delivery log customer service reads (``DeliveryLog``). ``service.delivery`` is the use case.


class DeliveryStatus(StrEnum):
    QUEUED = "queued"  # claimed: being sent (or the sender died before it could say how it went)
    SENT = "sent"
    FAILED = "failed"  # refused for good; the document went to print instead
    BOUNCED = "bounced"  # accepted, then returned by the recipient's server; went to print instead


@dataclass(frozen=True, slots=True)
class Delivery:
    """One attempt to deliver one document by one channel: a row of the subscriber's delivery log."""

    document_id: str
    channel: str  # ``catalogue.Channel``: email, ehf, print, sms
    attempt: int  # 1 for the first; a resend is the next
    status: DeliveryStatus
    at: datetime  # when the status was set
    recipient: str = ""  # the address, phone, organisation number or postal code it went to
    provider_id: str = ""  # the mail provider's message id, the access point's transmission id
    reason: str = ""  # why it failed or bounced (no addresses)
    claimed_at: datetime | None = None  # when a sender last took it: a stale claim may be taken over
    etag: str = ""


class DeliveryLog(Protocol):
    """Delivery rows per (document, channel, attempt) in the subscriber's partition.
    ``claim`` creates one (the first caller wins: it returns ``(row, True)``; every later
    caller gets the row as stored and ``False``); ``update`` replaces it under its ETag
    (``ConcurrencyConflict`` if it changed since it was read)."""

    def claim(self, tenant: str, subscriber_no: int, delivery: Delivery) -> tuple[Delivery, bool]: ...
    def update(self, tenant: str, subscriber_no: int, delivery: Delivery) -> Delivery: ...
    def get(self, tenant: str, subscriber_no: int, document_id: str, channel: str,
            attempt: int) -> Delivery | None: ...
    def list(self, tenant: str, subscriber_no: int, document_id: str | None = None) -> list[Delivery]:
        """The subscriber's rows (of one document), by document, channel and attempt."""
        ...


@dataclass(frozen=True, slots=True)
class Attachment:
    filename: str
    content_type: str  # "application/pdf"
    data: bytes


@dataclass(frozen=True, slots=True)
class Mail:
    message_id: str  # deterministic per (document, channel, attempt): a repeat is recognisably the same mail
    sender: str
    to: str
    subject: str
    text: str
    html: str
    attachments: tuple[Attachment, ...] = ()
    sender_name: str = ""
    reply_to: str = ""


class MailRefused(Exception):
    """The mail service refused the message for good (a permanent 5xx, an invalid address)."""


class MailUnavailable(Unavailable):
    """The mail service could not be reached or said 'try later' (4xx): the bus retries."""


class Mailer(Protocol):
    """Sends one e-mail; returns the provider's message id. Raises ``MailRefused`` for a
    permanent refusal and ``MailUnavailable`` for a passing failure."""

    def send(self, mail: Mail) -> str: ...


class AccessPoint(Protocol):
    """The EHF / PEPPOL access point: who can receive, and sending one UBL document."""

    def can_receive(self, tenant: str, scheme: str, organization_number: str) -> bool: ...
    def send(self, tenant: str, day: date, name: str, ubl: bytes) -> str:
        """Transmit ``ubl`` (named ``name``, unique per document); sending the same name again
        transmits nothing more. Returns the transmission id."""
        ...


class DocumentFiles(Protocol):
    """Rendered documents as files (``{tenant}/{subscriber}/{document id}.{pdf|xml}``), and
    time-limited signed links to them (never a public container)."""

    def put(self, tenant: str, subscriber_no: int, document_id: str, suffix: str, data: bytes,
            content_type: str) -> str: ...
    def get(self, tenant: str, subscriber_no: int, document_id: str, suffix: str) -> bytes | None: ...
    def link(self, tenant: str, subscriber_no: int, document_id: str, suffix: str, valid_for: timedelta) -> str:
        """A URL that reads the file until ``valid_for`` from now (the storage service's clock)."""
        ...
    def logo(self, tenant: str, name: str) -> bytes | None:
        """The organisation's logo (``Branding.logo_blob``), None if there is none."""
        ...
    def put_logo(self, tenant: str, name: str, data: bytes, content_type: str) -> None:
        """Store a logo under ``name`` (the merchant API names it by its content)."""
        ...


# ---- self-service: subscriber logins, access, My page (M1, S8, S10; issue 12) -------------------


@dataclass(frozen=True)
class SubscriberPrincipal:
    """A subscriber's login, authenticated: by a bearer token of the tenant's identity
    provider (Azure AD B2C / Entra External ID), or by My page's session cookie."""

    tenant: str
    login: str  # identity.login_key(issuer, subject)
    issuer: str
    subject: str
    email: str | None = None  # as the identity provider asserts it: never enough to link a subscriber
    name: str | None = None
    session: str | None = None  # the session's key when the call came with My page's cookie


class AccessRecords(Protocol):
    """The precomputed access row of each login (``identity.AccessRecord``, one point read
    to answer what a login may reach) and each tenant's site table (``identity.SiteTable``)."""

    def get(self, tenant: str, login: str) -> AccessRecord | None: ...
    def read(self, tenant: str, login: str) -> tuple[AccessRecord | None, str | None]:
        """The record and its ETag (None, None: there is none)."""
        ...
    def put(self, tenant: str, record: AccessRecord, etag: str | None) -> None:
        """Create (``etag`` None) or replace under ``If-Match``; ``ConcurrencyConflict`` if the
        row was created or changed meanwhile."""
        ...
    def delete(self, tenant: str, login: str, etag: str | None = None) -> None:
        """Remove the row (under ``If-Match`` when ``etag`` is given: ``ConcurrencyConflict`` if
        it changed since); a row gone already is no error."""
        ...
    def logins(self, tenant: str) -> list[str]:
        """Every login with a row in ``tenant`` (a range query: a catalogue change's rebuild, never a lookup)."""
        ...
    def sites(self, tenant: str) -> tuple[SiteTable, str | None]:
        """The tenant's site table and its ETag (an empty table and None: none yet)."""
        ...
    def put_sites(self, tenant: str, table: SiteTable, etag: str | None) -> None: ...


@dataclass(frozen=True)
class OneTimeCode:
    """A code sent to an e-mail address to prove it (linking a login, an e-mail change, a
    group invitation): stored only as a salted hash, single use, expiring, with a count of
    wrong tries."""

    tenant: str
    purpose: str  # "link", "email", "invite"
    target: str  # what it is for: a digest (of the login and the address), never the address itself
    code_hash: str
    expires: datetime
    payload: Mapping[str, str] = field(default_factory=dict)  # what redeeming it does (subscriber, address ...)
    attempts: int = 0  # wrong codes tried


class OneTimeCodes(Protocol):
    def put(self, code: OneTimeCode) -> None:
        """Store ``code``, replacing an earlier one for the same tenant, purpose and target."""
        ...
    def get(self, tenant: str, purpose: str, target: str) -> tuple[OneTimeCode, str] | None:
        """The code and its ETag, or None."""
        ...
    def replace(self, code: OneTimeCode, etag: str) -> None:
        """Update (a wrong try counted) under ``If-Match``; ``ConcurrencyConflict`` if changed."""
        ...
    def delete(self, tenant: str, purpose: str, target: str, etag: str) -> None:
        """Use the code up under ``If-Match``: of two redeemers only one deletes it
        (``ConcurrencyConflict`` or ``NotFound`` for the other)."""
        ...


@dataclass(frozen=True)
class Session:
    """My page's server-side session (a backend-for-frontend): the browser holds only a
    random cookie; ``key`` is its SHA-256, so the stored row cannot be replayed as a cookie."""

    key: str
    tenant: str
    csrf: str  # sent back in the X-CSRF-Token header on every state-changing call
    expires: datetime
    principal: SubscriberPrincipal | None = None  # None while the sign-in is under way
    flow: Mapping[str, Any] | None = None  # msal's auth code flow (state, PKCE verifier, nonce) during sign-in
    return_to: str = ""  # the page to go back to after signing in (a path of ours)


class Sessions(Protocol):
    def put(self, session: Session) -> None: ...
    def get(self, tenant: str, key: str) -> Session | None:
        """The session, None if there is none or it has expired."""
        ...
    def delete(self, tenant: str, key: str) -> None: ...
