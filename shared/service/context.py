"""What the use cases are handed: the ports (``shared.ports``), typed by what they do, not
by what implements them. ``shared.bootstrap`` (the composition root) fills them with the
Azure adapters; ``tests/fakes`` with in-memory fakes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from ..domain.calendar import local_date
from ..domain.catalogue import Catalogue
from ..ports import (
    Accounts,
    AttentionRows,
    Bus,
    CatalogueRepository,
    Clock,
    DueSubscribers,
    DunningVisits,
    Emails,
    ImportJournal,
    InvoiceNumbering,
    OrderReferences,
    PaymentsInboxPort,
    PendingOrderQueue,
    SubscriberNumbering,
    TenantRegistry,
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

    def today(self, catalogue: Catalogue) -> date:
        """The billing date: today in the tenant's time zone (its first organisation's)."""
        zones = sorted({o.time_zone for o in catalogue.organizations.values()}) or ["Europe/Oslo"]
        return local_date(self.clock.now(), zones[0])
