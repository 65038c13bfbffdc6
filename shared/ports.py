"""What the service layer needs from the world, and the errors it must understand.

The use cases speak to storage, the bus and notifiers through these; the adapters in
``shared/adapters`` implement them against Azure (and tests may supply their own). The
errors live here, beside the ports, so a use case never imports an adapter to learn
what went wrong, and an adapter raises them without importing the service layer.
"""

from __future__ import annotations


class ConcurrencyConflict(Exception):
    """Someone else changed the partition since it was read (ETag mismatch or insert race)."""


class NotFound(LookupError):
    """What a call names does not exist (a subscriber, an invoice, a report)."""


# ==== payments inbox (helper "payments", issue 9) =============================================
# What the bank-file import and customer service keep about payments that are not (yet) on a
# ledger: payments awaiting approval, and records set aside for customer service ("requires
# processing"; manual 10.2). Implemented by ``adapters.payments_inbox.PaymentsInbox`` (table
# ``Payments``) and, for tests, ``tests.fakes.payments_inbox.FakePaymentsInbox``.

from collections.abc import Iterator  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from datetime import datetime  # noqa: E402
from enum import StrEnum  # noqa: E402
from typing import Protocol  # noqa: E402

from .domain.payments import BookedPayment, ReceivedPayment  # noqa: E402
from .formats.payments import IncomingPayment, UnreadableRecord  # noqa: E402


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
