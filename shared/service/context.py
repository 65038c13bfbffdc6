"""What the use cases are handed: the ports (``shared.ports``), typed by what they do, not
by what implements them. ``shared.bootstrap`` (the composition root) fills them with the
Azure adapters; ``tests/fakes`` with in-memory fakes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from ..domain.calendar import local_date
from ..domain.catalogue import Catalogue
from ..ports import (
    AccessPoint,
    AccessRecords,
    Accounts,
    AttentionRows,
    Bus,
    CatalogueRepository,
    Clock,
    DeliveryLog,
    DocumentFiles,
    DueSubscribers,
    DunningVisits,
    Emails,
    ImportJournal,
    InvoiceNumbering,
    Mailer,
    Notifier,
    OneTimeCodes,
    OrderReferences,
    PaymentsInboxPort,
    PendingOrderQueue,
    PrintFiles,
    PrintQueue,
    ProviderWatch,
    Sessions,
    SubscriberNumbering,
    SwedbankPay,
    TenantRegistry,
    VippsRecurring,
)


@dataclass
class Context:
    clock: Clock
    bus: Bus
    accounts: Accounts
    catalogue: CatalogueRepository
    invoice_numbers: InvoiceNumbering
    subscriber_numbers: SubscriberNumbering
    due_index: DueSubscribers
    emails: Emails
    tenants: TenantRegistry
    dunning_index: DunningVisits
    attention: AttentionRows
    orders: OrderReferences
    pending: PendingOrderQueue
    inbox: PaymentsInboxPort  # payments awaiting approval, records set aside
    imports: ImportJournal  # bank file transmissions, import reports, the blob trigger's attempts
    # delivery (L7, D3; ``service.delivery``)
    mailer: Mailer  # e-mail: SMTP or Azure Communication Services
    access_point: AccessPoint  # EHF
    document_files: DocumentFiles  # rendered PDFs and XML, signed links
    deliveries: DeliveryLog  # the delivery log in the subscriber partitions
    print_queue: PrintQueue  # documents for the day's print batch
    mail_sender: str  # the From address of documents' e-mails when the organisation has no contact e-mail
    notifier: Notifier  # SMS (locally files in the ``notices`` container)
    print_files: PrintFiles  # the daily print batch's files for the print house (``service.printing``)
    # payment providers (P6; ``service.checkout``, ``service.charges``)
    vipps: VippsRecurring  # Vipps MobilePay Recurring v3 (locally: devhost.vipps_sim)
    swedbankpay: SwedbankPay  # Swedbank Pay cards (locally: devhost.swedbankpay_sim)
    provider_watch: ProviderWatch  # what the provider timer polls, by day
    public_url: str  # the app's own base URL (ABONNO_PUBLIC_URL): redirect, callback and My page links
    # self-service (M1, S8, S10; ``service.access``, ``service.identity``, ``service.self_service``)
    access: AccessRecords  # each login's access row, the tenants' site tables
    codes: OneTimeCodes  # one-time codes that prove an e-mail address
    sessions: Sessions  # My page's server-side sessions

    def today(self, catalogue: Catalogue) -> date:
        """The billing date: today in the tenant's time zone (its first organisation's)."""
        zones = sorted({o.time_zone for o in catalogue.organizations.values()}) or ["Europe/Oslo"]
        return local_date(self.clock.now(), zones[0])
