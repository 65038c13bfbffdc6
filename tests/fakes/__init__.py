"""In-memory fakes of every port in ``shared/ports.py`` (our own, as cosmicpython's
``FakeRepository``): service tests on them need no Azurite. ``tests/contract`` holds each
fake to the same assertions as its Azure adapter, so a fake cannot drift from it.

``fake_context()`` wires them all into a ``Context`` (the fakes' composition root).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from shared.clock import SettableClock
from shared.service.context import Context

from .accounts import FakeAccounts
from .catalogue import FakeCatalogue
from .delivery import FakeAccessPoint, FakeDeliveryLog, FakeDocumentFiles, FakeMailer, FakePrintQueue
from .identity import FakeAccessRecords, FakeOneTimeCodes, FakeSessions
from .imports import FakeFileDrop, FakeImportJournal
from .indexes import (
    FakeAttention,
    FakeDueIndex,
    FakeDunningIndex,
    FakeEmails,
    FakeOrderRecords,
    FakePendingOrders,
    FakeTenants,
)
from .messages import FakeBus, FakeNotifier
from .numbering import FakeInvoiceNumbers, FakeSubscriberNumbers
from .payments_inbox import FakePaymentsInbox
from .print_files import FakePrintFiles
from .provider import FakeProviderWatch
from .providers import FakeSwedbankPay, FakeVipps

__all__ = [
    "FakeAccessPoint",
    "FakeAccessRecords",
    "FakeAccounts",
    "FakeAttention",
    "FakeBus",
    "FakeCatalogue",
    "FakeContext",
    "FakeDeliveryLog",
    "FakeDocumentFiles",
    "FakeDueIndex",
    "FakeDunningIndex",
    "FakeEmails",
    "FakeFileDrop",
    "FakeImportJournal",
    "FakeInvoiceNumbers",
    "FakeMailer",
    "FakeNotifier",
    "FakeOneTimeCodes",
    "FakeOrderRecords",
    "FakePaymentsInbox",
    "FakePendingOrders",
    "FakePrintFiles",
    "FakePrintQueue",
    "FakeProviderWatch",
    "FakeSessions",
    "FakeSubscriberNumbers",
    "FakeSwedbankPay",
    "FakeTenants",
    "FakeVipps",
    "fake_context",
]


@dataclass
class FakeContext(Context):
    """The context on fakes, each typed as its fake so a test can inspect or inject into it."""

    clock: SettableClock
    bus: FakeBus
    accounts: FakeAccounts
    catalogue: FakeCatalogue
    invoice_numbers: FakeInvoiceNumbers
    subscriber_numbers: FakeSubscriberNumbers
    due_index: FakeDueIndex
    emails: FakeEmails
    tenants: FakeTenants
    dunning_index: FakeDunningIndex
    attention: FakeAttention
    orders: FakeOrderRecords
    pending: FakePendingOrders
    inbox: FakePaymentsInbox
    imports: FakeImportJournal
    mailer: FakeMailer
    access_point: FakeAccessPoint
    document_files: FakeDocumentFiles
    deliveries: FakeDeliveryLog
    print_queue: FakePrintQueue
    mail_sender: str
    vipps: FakeVipps = field(default_factory=FakeVipps)
    swedbankpay: FakeSwedbankPay = field(default_factory=FakeSwedbankPay)
    provider_watch: FakeProviderWatch = field(default_factory=FakeProviderWatch)
    public_url: str = "http://localhost:7071"
    access: FakeAccessRecords = field(default_factory=FakeAccessRecords)
    codes: FakeOneTimeCodes = field(default_factory=FakeOneTimeCodes)
    sessions: FakeSessions = field(default_factory=FakeSessions)
    notifier: FakeNotifier = field(default_factory=FakeNotifier)
    drop: FakeFileDrop = field(default_factory=FakeFileDrop)
    print_files: FakePrintFiles = field(default_factory=FakePrintFiles)


def fake_context(clock: SettableClock) -> FakeContext:
    watermarks: dict[tuple[str, str], date] = {}
    return FakeContext(clock=clock, bus=FakeBus(), accounts=FakeAccounts(), catalogue=FakeCatalogue(),
                       invoice_numbers=FakeInvoiceNumbers(), subscriber_numbers=FakeSubscriberNumbers(),
                       due_index=FakeDueIndex(), emails=FakeEmails(), tenants=FakeTenants(watermarks),
                       dunning_index=FakeDunningIndex(), attention=FakeAttention(watermarks),
                       orders=FakeOrderRecords(), pending=FakePendingOrders(), inbox=FakePaymentsInbox(),
                       imports=FakeImportJournal(), mailer=FakeMailer(), access_point=FakeAccessPoint(),
                       document_files=FakeDocumentFiles(), deliveries=FakeDeliveryLog(), print_queue=FakePrintQueue(),
                       mail_sender="no-reply@abonno.local")
