"""What the use cases are handed: the ports, wired once in ``shared.bootstrap``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from ..adapters.accounts import AccountRepository
from ..adapters.attention import AttentionStore
from ..adapters.bus import Bus
from ..adapters.catalogue_store import CatalogueStore
from ..adapters.imports import ImportLog
from ..adapters.indexes import DueIndex, DunningIndex, EmailIndex, OrderRecords, PendingOrders, Tenants
from ..adapters.numbering import InvoiceNumbers, SubscriberNumbers
from ..adapters.payments_inbox import PaymentsInbox
from ..adapters.tables import Storage
from ..clock import Clock
from ..domain.calendar import local_date
from ..domain.catalogue import Catalogue


@dataclass
class Context:
    storage: Storage
    clock: Clock
    bus: Bus
    accounts: AccountRepository
    catalogue: CatalogueStore
    invoice_numbers: InvoiceNumbers
    subscriber_numbers: SubscriberNumbers
    due_index: DueIndex
    emails: EmailIndex
    tenants: Tenants
    dunning_index: DunningIndex
    attention: AttentionStore
    orders: OrderRecords
    pending: PendingOrders
    inbox: PaymentsInbox  # payments awaiting approval, records set aside
    imports: ImportLog  # bank file transmissions, import reports, the blob trigger's attempts

    @classmethod
    def build(cls, storage: Storage, clock: Clock, bus: Bus) -> Context:
        return cls(storage, clock, bus, AccountRepository(storage), CatalogueStore(storage),
                   InvoiceNumbers(storage), SubscriberNumbers(storage), DueIndex(storage),
                   EmailIndex(storage), Tenants(storage), DunningIndex(storage), AttentionStore(storage),
                   OrderRecords(storage), PendingOrders(storage), PaymentsInbox(storage), ImportLog(storage))

    def today(self, catalogue: Catalogue) -> date:
        """The billing date: today in the tenant's time zone (its first organisation's)."""
        zones = sorted({o.time_zone for o in catalogue.organizations.values()}) or ["Europe/Oslo"]
        return local_date(self.clock.now(), zones[0])
